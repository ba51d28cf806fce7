"""Fetch logic against `responses` (no sockets); real misbehaving servers are in test_pipeline."""

from __future__ import annotations

import gzip
import zlib
from email.utils import formatdate

import brotli
import pytest
import requests
import responses
import urllib3

from crawler.config import HttpConfig
from crawler.errors import FetchError
from crawler.http.body import _decoder_finished
from crawler.http.failures import translate
from crawler.http.fetcher import Fetcher
from crawler.http.headers import parse_content_type, parse_retry_after
from crawler.http.policy import Follow, Redirected, RetryPolicy
from crawler.models import CrawlItem, LinkKind, Response

START = CrawlItem("http://site.test/", 0, LinkKind.PAGE)


def make_fetcher(follow: bool = True, **http: object) -> Fetcher:
    config = HttpConfig.model_validate({"headers": {"X-Token": "secret"}, **http})
    return Fetcher(config, in_domains=lambda url: url.startswith("http://site.test/"),
                   may_follow=lambda item, target: Follow.NOW if follow else Follow.NO)


def fetch_ok(fetcher: Fetcher, item: CrawlItem = START) -> Response:
    result = fetcher.fetch(item)
    assert isinstance(result, Response)
    return result


@responses.activate
def test_successful_fetch_keeps_body_type_and_validators() -> None:
    responses.get("http://site.test/", body=b"<html>hi</html>",
                  headers={"Content-Type": "text/html; charset=ISO-8859-1", "ETag": '"v1"',
                           "Last-Modified": "Mon, 02 Nov 2026 10:00:00 GMT"})
    result = fetch_ok(make_fetcher())
    assert result.body == b"<html>hi</html>"
    assert (result.content_type, result.charset) == ("text/html", "iso-8859-1")
    assert (result.etag, result.last_modified) == ('"v1"', "Mon, 02 Nov 2026 10:00:00 GMT")
    assert result.url == "http://site.test/" and result.redirects == ()


@responses.activate
def test_user_agent_always_and_custom_headers_only_inside_the_domains() -> None:
    responses.get("http://site.test/", body=b"x")
    responses.get("http://cdn.test/lib.js", body=b"x")
    fetcher = make_fetcher(user_agent="tester/1.0")
    fetch_ok(fetcher)
    fetch_ok(fetcher, CrawlItem("http://cdn.test/lib.js", 0, LinkKind.REQUISITE))
    inside, outside = (call.request.headers for call in responses.calls)
    assert inside["User-Agent"] == outside["User-Agent"] == "tester/1.0"
    assert inside["X-Token"] == "secret"
    assert "X-Token" not in outside


@responses.activate
def test_headers_are_not_carried_across_a_redirect_to_another_host() -> None:
    responses.get("http://site.test/", status=302, headers={"Location": "http://cdn.test/x"})
    responses.get("http://cdn.test/x", body=b"moved")
    result = fetch_ok(make_fetcher())
    assert result.url == "http://cdn.test/x" and result.redirects == ("http://site.test/",)
    assert "X-Token" not in responses.calls[1].request.headers


@responses.activate
def test_redirect_not_allowed_is_reported_not_followed() -> None:
    responses.get("http://site.test/", status=301, headers={"Location": "/elsewhere"})
    result = make_fetcher(follow=False).fetch(START)
    assert result == Redirected("http://site.test/", "http://site.test/elsewhere", 301, Follow.NO)
    assert len(responses.calls) == 1


@responses.activate
def test_redirect_loop_fails() -> None:
    responses.get("http://site.test/", status=302, headers={"Location": "/a"})
    responses.get("http://site.test/a", status=302, headers={"Location": "/"})
    with pytest.raises(FetchError) as caught:
        make_fetcher().fetch(START)
    assert caught.value.reason == "redirect_loop"


@responses.activate
def test_redirect_without_location_fails() -> None:
    responses.get("http://site.test/", status=302)
    with pytest.raises(FetchError) as caught:
        make_fetcher().fetch(START)
    assert caught.value.reason == "bad_redirect"


@responses.activate
def test_client_errors_are_final_and_server_errors_retryable() -> None:
    responses.get("http://site.test/", status=404)
    responses.get("http://site.test/busy", status=503, headers={"Retry-After": "7"})
    responses.get("http://site.test/slow-down", status=429)
    with pytest.raises(FetchError) as missing:
        make_fetcher().fetch(START)
    assert (missing.value.reason, missing.value.retryable, missing.value.status) == ("http_404", False, 404)
    with pytest.raises(FetchError) as busy:
        make_fetcher().fetch(CrawlItem("http://site.test/busy", 0, LinkKind.PAGE))
    assert (busy.value.reason, busy.value.retryable, busy.value.retry_after) == ("http_503", True, 7.0)
    with pytest.raises(FetchError) as limited:
        make_fetcher().fetch(CrawlItem("http://site.test/slow-down", 0, LinkKind.PAGE))
    assert limited.value.retryable


@pytest.mark.parametrize(("exception", "reason"), [
    (requests.exceptions.ConnectTimeout("connect timed out"), "timeout"),
    (requests.exceptions.ReadTimeout("read timed out"), "timeout"),
    (requests.exceptions.ConnectionError("refused"), "connection_error"),
    (requests.exceptions.ConnectionError("Failed to resolve 'nowhere.invalid'"), "dns_error"),
    (requests.exceptions.ChunkedEncodingError("broken"), "incomplete_body"),
])
@responses.activate
def test_network_errors_become_retryable_fetch_errors(exception: Exception, reason: str) -> None:
    responses.get("http://site.test/", body=exception)
    with pytest.raises(FetchError) as caught:
        make_fetcher().fetch(START)
    assert caught.value.reason == reason and caught.value.retryable


@responses.activate
def test_declared_size_over_the_limit_fails_before_reading() -> None:
    responses.get("http://site.test/", body=b"x" * 100, headers={"Content-Length": "100"},
                  auto_calculate_content_length=False)
    with pytest.raises(FetchError) as caught:
        make_fetcher(max_bytes=50).fetch(START)
    assert caught.value.reason == "too_large"


@responses.activate
def test_decoded_size_is_limited_too() -> None:
    bomb = gzip.compress(b"\0" * 1_000_000)
    responses.get("http://site.test/", body=bomb, headers={"Content-Encoding": "gzip"})
    assert len(bomb) < 10_000
    with pytest.raises(FetchError) as caught:
        make_fetcher(max_bytes=100_000).fetch(START)
    assert caught.value.reason == "too_large"


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


def _every_request_exception() -> list[requests.exceptions.RequestException]:
    """One instance of each exception class requests defines (whatever its version adds)."""
    found = []
    for name in dir(requests.exceptions):
        kind = getattr(requests.exceptions, name)
        if isinstance(kind, type) and issubclass(kind, requests.exceptions.RequestException):
            found.append(kind("a doc", "", 0) if kind is requests.exceptions.JSONDecodeError else kind("boom"))
    return found


@pytest.mark.parametrize("exception", _every_request_exception(), ids=lambda exc: type(exc).__name__)
def test_every_requests_exception_translates_without_raising(exception: Exception) -> None:
    error = translate(exception, "http://site.test/")
    assert isinstance(error, FetchError) and error.url == "http://site.test/" and error.reason


@pytest.mark.parametrize(("exception", "reason", "retryable"), [
    (requests.exceptions.ReadTimeout("read timed out"), "timeout", True),
    (requests.exceptions.SSLError("certificate verify failed"), "tls_error", False),
    (requests.exceptions.ChunkedEncodingError("broken"), "incomplete_body", True),
    (requests.exceptions.ContentDecodingError("not gzip"), "decode_error", False),
    (requests.exceptions.ConnectionError("Read timed out."), "timeout", True),
    (requests.exceptions.ConnectionError("Failed to resolve 'nowhere.invalid'"), "dns_error", True),
    (requests.exceptions.ConnectionError("refused"), "connection_error", True),
    (requests.exceptions.InvalidURL("no host"), "invalid_url", False),
    (requests.exceptions.InvalidSchema("gopher"), "invalid_url", False),
    (requests.exceptions.MissingSchema("no scheme"), "invalid_url", False),
    (requests.exceptions.InvalidHeader("Content-Length contained multiple unmatching values"), "bad_response",
     False),
    (requests.exceptions.RequestException("something else"), "request_error", True),
])
def test_each_branch_of_the_translation(exception: Exception, reason: str, retryable: bool) -> None:
    error = translate(exception, "http://site.test/")
    assert (error.reason, error.retryable) == (reason, retryable)


@pytest.mark.parametrize("encoding", sorted(urllib3.response.HTTPResponse.CONTENT_DECODERS))
def test_every_decoder_urllib3_has_says_whether_its_stream_ended(encoding: str) -> None:
    """The check for a compressed body cut short asks urllib3's decoders (private fields):
    if an upgrade changes them, this says so."""
    whole = {"gzip": gzip.compress, "x-gzip": gzip.compress, "deflate": zlib.compress,
             "br": brotli.compress}[encoding](b"some words to compress " * 100)
    cut = urllib3.response._get_decoder(encoding)
    cut.decompress(whole[: len(whole) // 2])
    assert not _decoder_finished(cut)
    done = urllib3.response._get_decoder(encoding)
    done.decompress(whole)
    assert _decoder_finished(done)
