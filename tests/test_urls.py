from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.urls import InvalidURLError, canonicalize, clean_href, host_key, host_of, resolve


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
