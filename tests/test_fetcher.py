"""The fetcher, one item at a time, against a real local server (127.0.0.1, and localhost as
another host); the whole pipeline against misbehaving servers is in test_faults."""

from __future__ import annotations

import gzip
import socket
import threading
import zlib
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler

import brotli
import pycurl
import pytest

from crawler.config import HttpConfig
from crawler.demo.server import SiteServer
from crawler.errors import FetchError
from crawler.http.failures import failure
from crawler.http.fetcher import Fetcher
from crawler.http.headers import parse_content_type, parse_retry_after
from crawler.http.policy import Follow, Redirected, RetryPolicy
from crawler.http.transfer import ContentDecoder, Exchange
from crawler.models import CrawlItem, LinkKind, Response
from tests import routes

HEADERS = {"X-Token": "secret"}


@pytest.fixture
def server() -> Iterator[SiteServer]:
    with SiteServer(root=None, routes={}) as running:
        yield running


def make_fetcher(follow: bool = True, **http: object) -> Fetcher:
    """Only 127.0.0.1 is in scope: localhost stands for another host."""
    config = HttpConfig.model_validate({"headers": HEADERS, "timeout": 5, **http})
    return Fetcher(config, in_domains=lambda url: url.startswith("http://127.0.0.1:"),
                   may_follow=lambda item, target: Follow.NOW if follow else Follow.NO)


def item(url: str) -> CrawlItem:
    return CrawlItem(url, 0, LinkKind.PAGE)


def fetch_ok(fetcher: Fetcher, url: str) -> Response:
    result = fetcher.fetch(item(url))
    assert isinstance(result, Response)
    return result


def fetch_error(fetcher: Fetcher, url: str) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(item(url))
    return caught.value


def test_successful_fetch_keeps_body_type_and_validators(server: SiteServer) -> None:
    server.routes["/"] = lambda handler: routes.send(handler, 200, b"<html>hi</html>", "text/html; charset=ISO-8859-1",
                                                     {"ETag": '"v1"', "Last-Modified": "Mon, 02 Nov 2026 10:00:00 GMT"})
    result = fetch_ok(make_fetcher(), server.url)
    assert result.body == b"<html>hi</html>"
    assert (result.content_type, result.charset) == ("text/html", "iso-8859-1")
    assert (result.etag, result.last_modified) == ('"v1"', "Mon, 02 Nov 2026 10:00:00 GMT")
    assert result.url == server.url and result.redirects == ()
    assert result.headers is not None and result.headers["Content-Type"] == "text/html; charset=ISO-8859-1"


def test_user_agent_always_and_custom_headers_only_inside_the_domains(server: SiteServer) -> None:
    seen: list[dict[str, str]] = []
    server.routes["/"] = routes.recorded(seen, routes.html(b"x"))
    server.routes["/lib.js"] = routes.recorded(seen, routes.raw(b"x", "text/javascript"))
    fetcher = make_fetcher(user_agent="tester/1.0")
    fetch_ok(fetcher, server.url)
    fetch_ok(fetcher, server.url.replace("127.0.0.1", "localhost") + "lib.js")
    inside, outside = seen
    assert inside["user-agent"] == outside["user-agent"] == "tester/1.0"
    assert inside["x-token"] == "secret"
    assert "x-token" not in outside


def test_headers_are_not_carried_across_a_redirect_to_another_host(server: SiteServer) -> None:
    seen: list[dict[str, str]] = []
    other = server.url.replace("127.0.0.1", "localhost") + "x"
    server.routes["/"] = routes.recorded(seen, routes.redirect(other))
    server.routes["/x"] = routes.recorded(seen, routes.html(b"moved"))
    result = fetch_ok(make_fetcher(), server.url)
    assert result.url == other and result.redirects == (server.url,)
    assert "x-token" in seen[0] and "x-token" not in seen[1]


def test_redirect_not_allowed_is_reported_not_followed(server: SiteServer) -> None:
    server.routes["/"] = routes.redirect("/elsewhere", 301)
    result = make_fetcher(follow=False).fetch(item(server.url))
    assert result == Redirected(server.url, server.url + "elsewhere", 301, Follow.NO)
    assert server.requests() == {"/": 1}


def test_redirect_loop_fails(server: SiteServer) -> None:
    server.routes["/"] = routes.redirect("/a")
    server.routes["/a"] = routes.redirect("/")
    assert fetch_error(make_fetcher(), server.url).reason == "redirect_loop"


def test_redirect_without_location_fails(server: SiteServer) -> None:
    server.routes["/"] = routes.status(302)
    assert fetch_error(make_fetcher(), server.url).reason == "bad_redirect"


def test_a_loop_that_wants_work_is_rung_awake_and_its_downloads_go_on(server: SiteServer) -> None:
    """A fetcher thread with room waits in select() on its downloads and on its doorbell (rung
    by the frontier when work comes): woken, its download goes on to the end. (How much sooner
    than a download stirring is a speed, measured in bench/: docs/performance.md.)"""
    release = threading.Event()

    def held(handler: BaseHTTPRequestHandler) -> None:
        release.wait(30)
        routes.send(handler, 200, b"late")

    server.routes["/held"] = held
    loop = make_fetcher().loop(4, 4)
    try:
        loop.start(item(f"{server.url}/held"))
        loop.ring()
        loop.ring()  # rung twice before it is heard: one wake-up
        assert loop.step(60, wants_work=True) == []  # the download is still held
        release.set()
        done: list[tuple[CrawlItem, object]] = []
        while not done:
            done = loop.step(60, wants_work=True)
        [(_, response)] = done
        assert isinstance(response, Response) and response.body == b"late"
    finally:
        release.set()
        loop.close()


def test_client_errors_are_final_and_server_errors_retryable(server: SiteServer) -> None:
    server.routes["/"] = routes.status(404)
    server.routes["/busy"] = routes.status(503, {"Retry-After": "7"})
    server.routes["/slow-down"] = routes.status(429)
    missing = fetch_error(make_fetcher(), server.url)
    assert (missing.reason, missing.retryable, missing.status) == ("http_404", False, 404)
    assert str(missing) == "HTTP 404 Not Found"
    busy = fetch_error(make_fetcher(), server.url + "busy")
    assert (busy.reason, busy.retryable, busy.retry_after) == ("http_503", True, 7.0)
    assert fetch_error(make_fetcher(), server.url + "slow-down").retryable


def test_a_closed_port_is_a_retryable_connection_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = fetch_error(make_fetcher(), f"http://127.0.0.1:{port}/")
    assert (error.reason, error.retryable, str(error)) == ("connection_error", True,
                                                           "connection failed: Connection refused")


def test_silence_is_a_retryable_timeout(server: SiteServer) -> None:
    server.routes["/"] = routes.stall(5)
    error = fetch_error(make_fetcher(timeout=1), server.url)
    assert (error.reason, error.retryable) == ("timeout", True)


def test_broken_chunking_is_an_incomplete_body(server: SiteServer) -> None:
    server.routes["/"] = routes.raw_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n",
                                             b"5\r\nhello\r\n3\r\nab")
    error = fetch_error(make_fetcher(), server.url)
    assert (error.reason, error.retryable) == ("incomplete_body", True)


def test_declared_size_over_the_limit_fails_before_reading(server: SiteServer) -> None:
    server.routes["/"] = routes.raw(b"x" * 100, "text/plain")
    assert fetch_error(make_fetcher(max_bytes=50), server.url).reason == "too_large"


def test_decoded_size_is_limited_too(server: SiteServer) -> None:
    bomb = gzip.compress(b"\0" * 1_000_000)
    assert len(bomb) < 10_000
    server.routes["/"] = routes.gzip_bomb(1_000_000)
    assert fetch_error(make_fetcher(max_bytes=100_000), server.url).reason == "too_large"


def test_retry_policy_backs_off_exponentially_with_jitter_and_gives_up() -> None:
    policy = RetryPolicy(retries=3, backoff=1.0)
    for attempt, step in enumerate([1.0, 2.0, 4.0]):
        delays = [policy.delay(attempt) for _ in range(50)]
        assert all(d is not None and step / 2 <= d <= step for d in delays)
        assert len(set(delays)) > 1, "jitter spreads retries out"
    assert policy.delay(3) is None
    assert policy.delay(0, retry_after=30) == 30
    assert policy.delay(0, reason="dns_error") is not None
    assert policy.delay(1, reason="dns_error") is None
    assert RetryPolicy(retries=0, backoff=1.0).delay(0) is None


def test_parse_retry_after() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(formatdate(1_000_060, usegmt=True), now=1_000_000) == pytest.approx(60)
    assert parse_retry_after(formatdate(999_000, usegmt=True), now=1_000_000) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_parse_content_type() -> None:
    assert parse_content_type("Text/HTML; Charset=\"UTF-8\"") == ("text/html", "utf-8")
    assert parse_content_type("") == ("", None)
    assert parse_content_type("image/png") == ("image/png", None)


# -- libcurl's errors, in words ------------------------------------------------------------

CONFIG = HttpConfig(timeout=2, max_time=60, min_rate=1000)


def _every_libcurl_error() -> list[int]:
    return sorted({value for name, value in vars(pycurl).items() if name.startswith("E_") and isinstance(value, int)}
                  | {8, 92})


@pytest.mark.parametrize("code", _every_libcurl_error())
def test_every_libcurl_error_is_named_without_raising(code: int) -> None:
    for status in (0, 200):
        error = failure(Exchange(status=status, error=code, error_message="boom"), "http://site.test/", CONFIG)
        assert isinstance(error, FetchError) and error.url == "http://site.test/" and error.reason


@pytest.mark.parametrize(("exchange", "reason", "retryable"), [
    (Exchange(0, error=pycurl.E_COULDNT_CONNECT, os_errno=111), "connection_error", True),
    (Exchange(0, error=pycurl.E_COULDNT_RESOLVE_HOST, error_message="Could not resolve host: nowhere.invalid"),
     "dns_error", True),
    (Exchange(0, error=pycurl.E_OPERATION_TIMEDOUT, error_message="Connection timed out after 2001 ms"),
     "timeout", True),
    (Exchange(200, error=pycurl.E_OPERATION_TIMEDOUT, silent_for=2.0,
              error_message="Operation too slow. Less than 1000 bytes/sec transferred the last 2 seconds"),
     "timeout", True),
    (Exchange(200, error=pycurl.E_OPERATION_TIMEDOUT, silent_for=0.4,
              error_message="Operation too slow. Less than 1000 bytes/sec transferred the last 2 seconds"),
     "too_slow", True),
    (Exchange(200, error=pycurl.E_OPERATION_TIMEDOUT, lasted=60.0, error_message="Operation timed out after 60000"),
     "too_slow", False),
    (Exchange(0, error=pycurl.E_PEER_FAILED_VERIFICATION, error_message="SSL certificate problem"), "tls_error", False),
    (Exchange(200, error=pycurl.E_PARTIAL_FILE, error_message="transfer closed with 600 bytes remaining"),
     "incomplete_body", True),
    (Exchange(200, error=pycurl.E_RECV_ERROR, error_message="Connection reset by peer"), "incomplete_body", True),
    (Exchange(0, error=pycurl.E_RECV_ERROR, os_errno=104), "connection_error", True),
    (Exchange(0, error=pycurl.E_GOT_NOTHING), "connection_error", True),
    (Exchange(0, error=pycurl.E_UNSUPPORTED_PROTOCOL, error_message="Received HTTP/0.9 when not allowed"),
     "connection_error", True),
    (Exchange(0, error=pycurl.E_UNSUPPORTED_PROTOCOL, error_message="Protocol gopher not supported"),
     "invalid_url", False),
    (Exchange(200, error=pycurl.E_FILESIZE_EXCEEDED), "too_large", False),
    (Exchange(200, error=8, error_message="Duplicate Content-Length"), "bad_response", False),
    (Exchange(0, error=8, error_message="Unsupported HTTP version in response"), "connection_error", True),
    (Exchange(200, error=pycurl.E_WRITE_ERROR, failure="too_large:"), "too_large", False),
    (Exchange(200, error=pycurl.E_WRITE_ERROR, failure="decode_error:not a gzip stream"), "decode_error", False),
], ids=lambda value: value if isinstance(value, str) else "")
def test_each_branch_of_the_naming(exchange: Exchange, reason: str, retryable: bool) -> None:
    error = failure(exchange, "http://site.test/", CONFIG)
    assert (error.reason, error.retryable) == (reason, retryable)


# -- bodies decoded as they arrive ------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate", "br"])
def test_a_compressed_body_is_whole_only_when_its_stream_ended(encoding: str) -> None:
    text = b"some words to compress " * 100
    whole = {"gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress,
             "raw-deflate": lambda data: zlib.compress(data)[2:-4]}[encoding](text)
    coding = "deflate" if encoding == "raw-deflate" else encoding
    cut = ContentDecoder(coding)
    assert text.startswith(cut.feed(whole[: len(whole) // 2], 10**6))
    assert not cut.complete
    done = ContentDecoder(coding)
    assert done.feed(whole, 10**6) == text and done.complete


def test_a_decoder_gives_no_more_than_it_has_room_for() -> None:
    for coding, data in (("gzip", gzip.compress(b"\0" * 10**6)), ("br", brotli.compress(b"\0" * 10**6))):
        assert len(ContentDecoder(coding).feed(data, 1000)) <= 1000 + 65536  # the bound, plus a buffer at most


def test_bytes_that_are_not_what_their_encoding_says_are_refused() -> None:
    with pytest.raises(ValueError, match="not a gzip stream"):
        ContentDecoder("gzip").feed(b"plain text, not gzip", 1000)
