"""HTTPS against real TLS servers on loopback addresses, with certificates made by trustme: a
site mirrored whole, each way a certificate can fail, extra CAs, client certificates,
http.verify: false, and what a redirect from HTTPS to plain HTTP may carry."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest
import trustme

from crawler.config import HttpConfig
from crawler.demo.server import SiteServer
from crawler.errors import FetchError
from crawler.http.fetcher import Fetcher
from crawler.http.policy import Follow
from crawler.models import CrawlItem, LinkKind, Response
from tests import routes
from tests.conftest import DEMO_CDN_FILES, DEMO_SITE_FILES, CrawlRunner, read_manifest
from tests.offline_check import check_mirror
from tests.tls_site import TlsSiteServer, leaf, write_ca


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    return write_ca(ca, tmp_path / "ca.pem")


def fetcher(**http: object) -> Fetcher:
    config = HttpConfig.model_validate({"timeout": 5, **http})
    return Fetcher(config, in_domains=lambda url: True, may_follow=lambda item, target: Follow.NOW)


def fetch(fetch_with: Fetcher, url: str) -> Response:
    result = fetch_with.fetch(CrawlItem(url, 0, LinkKind.PAGE))
    assert isinstance(result, Response)
    return result


def failure(fetch_with: Fetcher, url: str) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch_with.fetch(CrawlItem(url, 0, LinkKind.PAGE))
    return caught.value


def test_an_https_site_mirrors_completely(ca: trustme.CA, ca_file: Path, crawl: CrawlRunner) -> None:
    with TlsSiteServer(leaf(ca)) as server:
        report, _ = crawl(server.url, http={"timeout": 5, "retries": 0, "ca_bundle": str(ca_file)})
    out = Path(report.output)
    site, cdn = server.url.split("/")[2], server.cdn_url.split("/")[2]
    saved = {path for path in check_mirror(out).files if "/" in path and not path.startswith(".crawl/")}
    expected = {f"{site}/{path}" for path in DEMO_SITE_FILES} | {f"{cdn}/{path}" for path in DEMO_CDN_FILES}
    assert saved == expected
    assert {failure.reason for failure in report.tally.failures} == {"http_404"}  # the site's broken links
    assert check_mirror(out, encodings={}).local_broken == []
    assert all(entry["url"].startswith("https://") for entry in read_manifest(out))


@pytest.mark.parametrize(("kind", "reason", "words"), [
    ("untrusted", "tls_untrusted", "not trusted: unable to get local issuer"),
    ("expired", "tls_expired", "has expired"),
    ("hostname", "tls_hostname", "another host name"),
])
def test_each_kind_of_certificate_failure_has_its_reason_and_the_subject(
        ca: trustme.CA, ca_file: Path, kind: str, reason: str, words: str) -> None:
    cert = {"untrusted": lambda: leaf(trustme.CA(), name="stranger.test"),
            "expired": lambda: leaf(ca, name="stranger.test", expired=True),
            "hostname": lambda: leaf(ca, "elsewhere.test", name="stranger.test")}[kind]()
    with TlsSiteServer(cert, root=None, routes={"/": routes.html(b"hi")}) as server:
        error = failure(fetcher(ca_bundle=str(ca_file), retries=3), server.url)
        assert server.requests() == {}
    assert error.reason == reason
    assert words in str(error)
    assert "CN = stranger.test" in str(error)  # the certificate's subject
    assert not error.retryable


def test_a_failed_handshake_fails_the_crawl_without_retries(crawl: CrawlRunner) -> None:
    with TlsSiteServer(leaf(trustme.CA(), name="stranger.test"), root=None,
                       routes={"/": routes.html(b"hi")}) as server:
        report, _ = crawl(server.url, http={"timeout": 5, "retries": 3}, mirror={"sitemaps": False})
    assert [(failure.reason, failure.url) for failure in report.start_url_failures().values()] == [
        ("tls_untrusted", server.url + "robots.txt")]
    assert report.tally.retries == 0 and report.outcome == "unreachable"


def test_ca_bundle_adds_to_the_cas_of_the_environment(ca: trustme.CA, ca_file: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    public = trustme.CA()  # stands for the public CAs: what REQUESTS_CA_BUNDLE names
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(write_ca(public, tmp_path / "public.pem")))
    page = {"/": routes.html(b"hi")}
    with TlsSiteServer(leaf(ca), root=None, routes=page) as intranet, \
            TlsSiteServer(leaf(public), root=None, routes=page) as public_site:
        assert failure(fetcher(), intranet.url).reason == "tls_untrusted"
        assert fetch(fetcher(), public_site.url).body == b"hi"
        both = fetcher(ca_bundle=str(ca_file))
        assert fetch(both, intranet.url).body == b"hi"
        assert fetch(both, public_site.url).body == b"hi"


def test_the_combined_bundle_is_removed_with_its_engine(ca_file: Path) -> None:
    engine = fetcher(ca_bundle=str(ca_file))._engine
    combined = Path(engine.tls.ca_file)
    assert combined.is_file() and combined != ca_file
    del engine
    import gc

    gc.collect()
    assert not combined.exists()


def test_client_cert(ca: trustme.CA, ca_file: Path, tmp_path: Path) -> None:
    clients = trustme.CA()
    client = clients.issue_cert("reader@example.test")
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    client.cert_chain_pems[0].write_to_path(str(cert))
    client.private_key_pem.write_to_path(str(key))
    both = tmp_path / "both.pem"
    both.write_bytes(client.private_key_and_cert_chain_pem.bytes())
    with TlsSiteServer(leaf(ca), root=None, routes={"/": routes.html(b"members")}, client_ca=clients,
                       tls_max=ssl.TLSVersion.TLSv1_2) as old_server:
        refused = failure(fetcher(ca_bundle=str(ca_file)), old_server.url)
        assert refused.reason == "tls_error" and "handshake failure" in str(refused)
    with TlsSiteServer(leaf(ca), root=None, routes={"/": routes.html(b"members")}, client_ca=clients) as server:
        # TLS 1.3 refuses after the handshake, in an alert the request (already on its way)
        # may meet as a closed connection instead.
        refused = failure(fetcher(ca_bundle=str(ca_file)), server.url)
        assert refused.reason in ("tls_error", "connection_error")
        if refused.reason == "tls_error":
            assert "the server wants a client certificate it accepts (http.client_cert)" in str(refused)
        signed = fetcher(ca_bundle=str(ca_file), client_cert={"cert": str(cert), "key": str(key)})
        assert fetch(signed, server.url).body == b"members"
        one_file = fetcher(ca_bundle=str(ca_file), client_cert={"cert": str(both)})
        assert fetch(one_file, server.url).body == b"members"


def test_verify_false_accepts_any_certificate_and_says_so(crawl: CrawlRunner,
                                                          crawler_log: pytest.LogCaptureFixture) -> None:
    with TlsSiteServer(leaf(trustme.CA()), root=None, routes={"/": routes.html(b"<p>hi</p>")}) as server:
        report, _ = crawl(server.url, http={"timeout": 5, "retries": 0, "verify": False})
    assert report.tally.files_saved >= 1 and not report.tally.failures
    warning = "http.verify is false: TLS certificates are not checked"
    assert any(warning in record.getMessage() and record.levelname == "WARNING" for record in crawler_log.records)
    saved = json.loads((Path(report.output) / "report.json").read_text())
    assert any(warning in text for text in saved["warnings"])
    assert warning in (Path(report.output) / "report.html").read_text()
    assert warning in report.summary()


def test_verify_is_on_by_default_and_no_warning_is_reported(crawl: CrawlRunner) -> None:
    assert HttpConfig().verify is True
    with SiteServer(root=None, routes={"/": routes.html(b"hi")}) as server:
        report, _ = crawl(server.url)
    assert json.loads((Path(report.output) / "report.json").read_text())["warnings"] == []


def cookie_page(body: bytes) -> routes.Route:
    """A page that sets a Secure cookie and a plain one."""
    def route(handler: routes.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Set-Cookie", "token=s3cret; Secure; Path=/")
        handler.send_header("Set-Cookie", "plain=visible; Path=/")
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    return route


def test_a_redirect_from_https_to_http_carries_no_secret(ca: trustme.CA, ca_file: Path, crawl: CrawlRunner,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # 127.0.0.2: libcurl, like browsers, counts 127.0.0.1 and localhost as secure even over
    # plain HTTP, and would send them Secure cookies.
    monkeypatch.setenv("SITE_PASSWORD", "hunter2")
    over_tls: list[dict[str, str]] = []
    in_clear: list[dict[str, str]] = []
    with SiteServer(root=None, host="127.0.0.2") as plain, \
            TlsSiteServer(leaf(ca), root=None, host="127.0.0.2") as secure:
        plain.routes.update({"/": routes.recorded(in_clear, routes.html(b"in clear")),
                             "/linked": routes.recorded(in_clear, routes.html(b"linked"))})
        body = f'<a href="/away">away</a> <a href="{plain.url}linked">linked</a> <a href="/next">n</a>'.encode()
        secure.routes.update({"/": routes.recorded(over_tls, cookie_page(body)),
                              "/away": routes.redirect(plain.url),
                              "/next": routes.recorded(over_tls, routes.html(b"next"))})
        report, _ = crawl(secure.url, politeness={"robots": False}, mirror={"sitemaps": False},
                          http={"timeout": 5, "retries": 0, "ca_bundle": str(ca_file),
                                "headers": {"X-Token": "abc"},
                                "auth": {"username": "alice", "password_env": "SITE_PASSWORD"}})
    assert not report.tally.failures
    assert sorted(request["path"] for request in in_clear) == ["/", "/linked"]
    for request in in_clear:  # the same host, in clear: neither headers, nor credentials, nor the Secure cookie
        assert "x-token" not in request and "authorization" not in request
        assert request.get("cookie") == "plain=visible"
    secured = next(request for request in over_tls if request["path"] == "/next")
    assert secured["x-token"] == "abc" and secured["authorization"].startswith("Basic ")
    assert "token=s3cret" in secured["cookie"]
