from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.demo.server import SiteServer
from crawler.urls import InvalidURLError, canonicalize, clean_href, host_key, host_of, resolve
from tests import routes
from tests.conftest import CrawlRunner


@pytest.mark.parametrize(("url", "expected"), [
    ("HTTP://Example.COM/", "http://example.com/"),
    ("http://example.com", "http://example.com/"),
    ("http://example.com:80/a", "http://example.com/a"),
    ("https://example.com:443/a", "https://example.com/a"),
    ("https://example.com:8443/a", "https://example.com:8443/a"),
    ("http://example.com/a#frag", "http://example.com/a"),
    ("http://example.com/a/./b/../c", "http://example.com/a/c"),
    ("http://example.com/a/%2e%2e/b", "http://example.com/b"),
    ("http://example.com/../../etc/passwd", "http://example.com/etc/passwd"),
    ("http://example.com/a/..", "http://example.com/"),
    ("http://example.com/%7euser/%41", "http://example.com/~user/A"),
    ("http://example.com/a%2fb", "http://example.com/a%2Fb"),
    ("http://example.com/a b", "http://example.com/a%20b"),
    ("http://example.com/caf\u00e9", "http://example.com/caf%C3%A9"),
    ("http://example.com/100%", "http://example.com/100%25"),
    ("http://example.com/a\\b", "http://example.com/a/b"),
    ("http://example.com/p?b=2&a=1", "http://example.com/p?b=2&a=1"),
    ("http://example.com/p?", "http://example.com/p"),
    ("http://user:secret@example.com/", "http://example.com/"),
    ("http://example.com./", "http://example.com/"),
    ("http://b\u00fccher.example/", "http://xn--bcher-kva.example/"),
    ("http://B\u00dcCHER.example/", "http://xn--bcher-kva.example/"),
    ("http://b%C3%BCcher.example/x", "http://xn--bcher-kva.example/x"),
    ("http://fa\u00df.de/", "http://xn--fa-hia.de/"),  # as browsers: IDNA 2008, not fass.de
    ("http://\u03c0\u03b1\u03c1\u03ac\u03b4\u03b5\u03b9\u03b3\u03bc\u03b1.\u03b4\u03bf\u03ba\u03b9\u03bc\u03ae/",
     "http://xn--hxajbheg2az3al.xn--jxalpdlp/"),
    ("http://i\u2764.ws/", "http://xn--i-7iq.ws/"),  # IDNA 2008 refuses the symbol; browsers take it
    ("http://[::1]:8080/x", "http://[::1]:8080/x"),
])
def test_canonicalize(url: str, expected: str) -> None:
    assert canonicalize(url) == expected


@pytest.mark.parametrize("url", [
    "ftp://example.com/", "mailto:a@example.com", "javascript:alert(1)", "/relative",
    "http://", "http://example.com:99999/", "http://exa mple.com/", "http://example.com:x/",
])
def test_canonicalize_rejects(url: str) -> None:
    with pytest.raises(InvalidURLError):
        canonicalize(url)


@pytest.mark.parametrize(("base", "href", "expected"), [
    ("http://h/a/b.html", "c.html", "http://h/a/c.html"),
    ("http://h/a/b.html", "../c.html", "http://h/c.html"),
    ("http://h/a/b.html", "../../../../c.html", "http://h/c.html"),
    ("http://h/a/b.html", "/x", "http://h/x"),
    ("http://h/a/b.html", "//other/x", "http://other/x"),
    ("https://h/a/", "?q=1", "https://h/a/?q=1"),
    ("http://h/a/b.html", " \tc\n.html ", "http://h/a/c.html"),
    ("http://h/a/b.html", "..\\x\\y.html", "http://h/x/y.html"),
])
def test_resolve(base: str, href: str, expected: str) -> None:
    assert resolve(base, href) == expected


def test_clean_href_strips_like_a_browser() -> None:
    assert clean_href("\x00 a\tb\n ") == "ab"


def test_host_helpers() -> None:
    assert host_of("http://example.com:8080/x") == "example.com"
    assert host_key("http://example.com:8080/x") == "example.com:8080"
    assert host_of("http://[::1]:8080/x") == "[::1]"


url_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="#"), max_size=40)


@settings(max_examples=300, deadline=None)
@given(path=url_text, query=url_text)
def test_canonicalize_is_idempotent(path: str, query: str) -> None:
    url = f"http://example.com/{path}?{query}"
    try:
        once = canonicalize(url)
    except InvalidURLError:
        return
    assert canonicalize(once) == once
    assert once.startswith("http://example.com/")
    assert once.isascii() and " " not in once


def test_a_site_with_an_international_name_is_fetched_and_saved_under_its_ascii_form(crawl: CrawlRunner) -> None:
    # libcurl resolves every name under .localhost to this machine, as browsers do: a real
    # international host name that needs no DNS.
    with SiteServer(root=None) as server:
        unicode_origin = f"http://b\u00fccher.localhost:{server.port}"
        ascii_host = f"xn--bcher-kva.localhost:{server.port}"
        server.routes.update({
            "/": routes.html(f'<a href="{unicode_origin.upper()}/b.html">b</a><img src="/logo.png">'.encode()),
            "/b.html": routes.html(b"<p>b</p>"), "/logo.png": routes.raw(b"png", "image/png")})
        report, _ = crawl(unicode_origin + "/", scope={"domains": ["B\u00dcCHER.localhost"]},
                          politeness={"robots": False}, mirror={"sitemaps": False})
        asked = server.requests()
    assert report.start_urls == [f"http://{ascii_host}/"]
    assert sorted(asked) == [f"//{ascii_host}{path}" for path in ["/", "/b.html", "/logo.png"]]
    assert not report.tally.failures
    host_folder = Path(report.output) / ascii_host
    assert sorted(path.name for path in host_folder.iterdir()) == ["b.html", "index.html", "logo.png"]
