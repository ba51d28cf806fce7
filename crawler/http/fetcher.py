"""HTTP: one requests.Session per fetcher thread, redirects, size limits, and failures as data.

This is the only module that touches `requests`: every requests/urllib3 exception is
translated here into a `FetchError` with a short `reason` and whether a retry may help.
The retry *timing* is the `RetryPolicy`'s; the pipeline re-queues the URL in the frontier
instead of sleeping in a fetcher thread.
"""

from __future__ import annotations

import email.utils
import enum
import http.client
import os
import random
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from urllib.parse import urlsplit

import requests
import urllib3
from urllib3.response import GzipDecoderState

from crawler.config import HttpConfig
from crawler.errors import FetchError
from crawler.http.watchdog import Watchdog, WatchedAdapter
from crawler.models import CrawlItem, Response, SavedFile
from crawler.urls import InvalidURLError, origin_of, resolve

CHUNK = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class RetryPolicy:
    """How many times, and after how long, a retryable failure is tried again."""

    retries: int
    backoff: float  # seconds before the first retry; doubles each time
    # A host name that does not resolve rarely starts resolving a few seconds later (a dead
    # third-party host, a typo): one more try covers a resolver hiccup without stalling the end
    # of the crawl on backoffs.
    dns_retries: int = 1

    def delay(self, attempt: int, retry_after: float | None = None, reason: str = "") -> float | None:
        """Seconds to wait before retry number `attempt + 1`, or None to give up."""
        if attempt >= (min(self.retries, self.dns_retries) if reason == "dns_error" else self.retries):
            return None
        # "Equal jitter": never less than half the exponential step, so a server that asked
        # for a pause gets one, but fetchers that failed together do not retry together.
        step = self.backoff * (2 ** attempt)
        delay = step / 2 + random.uniform(0, step / 2)
        return max(delay, retry_after or 0.0)


class Follow(enum.Enum):
    """What to do with a redirect: follow it now, leave it to the frontier, or drop it."""

    NOW = "now"
    LATER = "later"  # another host: its robots.txt and politeness apply, so it queues
    NO = "no"  # out of scope, disallowed, or already fetched


@dataclass(frozen=True, slots=True)
class Redirected:
    """`source` redirects to `target`, which this fetch did not follow."""

    source: str
    target: str
    status: int
    follow: Follow


class Fetcher:
    """Downloads one URL at a time per calling thread.

    `in_domains(url)` says whether a host may receive the configured headers and credentials.
    `may_follow(item, target)` decides each redirect; the pipeline answers with the scope
    rules and a test-and-set in the frontier, so a URL reached through a redirect is never
    fetched a second time through a link.
    """

    def __init__(self, config: HttpConfig, in_domains: Callable[[str], bool],
                 may_follow: Callable[[CrawlItem, str], Follow], pool_size: int = 4,
                 heuristic_freshness: float = 0.0) -> None:
        """`heuristic_freshness`: the longest a response without explicit freshness (max-age,
        Expires) counts as fresh, in seconds (mirror.heuristic_freshness)."""
        self._config = config
        self._in_domains = in_domains
        self._may_follow = may_follow
        self._pool_size = pool_size
        self._local = threading.local()
        self._auth = config.auth.credentials() if config.auth else None
        self._headers = {**requests.utils.default_headers(), "User-Agent": config.user_agent}
        # One jar for every fetcher thread (cookielib locks it): a cookie the site sets on
        # one response goes with the next request, whichever thread sends it -- as a browser,
        # wget and HTTrack do within a crawl.
        self._cookies = requests.cookies.RequestsCookieJar()
        self._watchdog = Watchdog()
        self.retry_policy = RetryPolicy(config.retries, config.retry_backoff)
        self.heuristic_freshness = heuristic_freshness

    def fetch(self, item: CrawlItem, stored: SavedFile | None = None) -> Response | Redirected:
        """The final response for `item`, following redirects. Raises FetchError.

        With a `stored` copy, the request is conditional (If-None-Match, If-Modified-Since):
        a 304 comes back as a Response with status 304 and no body. A 304 to a request that
        named no copy is a FetchError ("unexpected_304"): there is nothing to keep.
        """
        url, hops = item.url, []  # the redirects followed so far, as (source, target)
        while True:
            validators = _validators(stored) if stored is not None and url == item.url else None
            sources = tuple(source for source, _ in hops)
            try:
                response, target, status = self._one_request(url, sources, validators)
            except FetchError as error:  # at `url`, which the pipeline reports as itself
                error.hops = tuple(hops)
                raise
            if response is not None:
                return response
            assert target is not None
            hops.append((url, target))
            if target == url or target in sources:
                raise _chain_error(f"redirect loop at {target}", item.url, "redirect_loop", hops, status)
            if len(hops) > self._config.max_redirects:  # checked before `target` is claimed
                raise _chain_error(f"more than {self._config.max_redirects} redirects", item.url,
                                   "too_many_redirects", hops, status)
            follow = self._may_follow(item, target)
            if follow is not Follow.NOW:
                return Redirected(item.url, target, status, follow)
            url = target

    def stop(self) -> None:
        """Cut every response in progress (Ctrl-C): the fetchers get FetchError("interrupted")."""
        self._watchdog.stop_all()

    def close(self) -> None:
        """Close the calling thread's session (each fetcher thread calls this when it ends)."""
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None

    def shutdown(self) -> None:
        """After the last fetcher thread ended."""
        self._watchdog.close()

    # -- one request ----------------------------------------------------------------------

    def _one_request(self, url: str, redirects: tuple[str, ...], validators: dict[str, str] | None
                     ) -> tuple[Response | None, str | None, int]:
        """(the response, None, status) or (None, where it redirects, status)."""
        outcome: dict[str, str] = {}
        try:
            with self._watchdog.guard(self._config.max_time) as outcome:
                raw = self._request(url, validators)
                with raw:
                    if raw.status_code not in REDIRECT_STATUSES:
                        return self._complete(url, raw, redirects, conditional=bool(validators)), None, \
                            raw.status_code
                    _drain(raw)
                    return None, self._redirect_target(url, raw), raw.status_code
        finally:
            # Whatever the cut socket made of the response (an error, or a body that merely
            # looks complete), it is not kept.
            if outcome.get("cut"):
                raise self._cut_error(url, outcome["cut"]) from None

    def _cut_error(self, url: str, why: str) -> FetchError:
        if why == "stopped":
            return FetchError("the crawl stopped during the download", url, "interrupted")
        return FetchError(f"the response took longer than max_time ({self._config.max_time:g} s)",
                          url, "too_slow")

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # Proxies and the CA bundle come from the environment once (see _proxies), not
            # for every request as requests does by default; no .netrc credentials either:
            # credentials come from http.auth and go only to the crawled hosts.
            session.trust_env = False
            session.cookies = self._cookies
            session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            # Our own retry policy applies; urllib3 must not retry behind our back.
            adapter = WatchedAdapter(pool_connections=self._pool_size, pool_maxsize=self._pool_size,
                                     max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session

    def _request(self, url: str, validators: dict[str, str] | None = None) -> requests.Response:
        # Custom headers and credentials go only to the hosts being mirrored.
        trusted = self._in_domains(url)
        session = self._session()
        # Prepared here rather than by Session.get, whose merging of session and request
        # settings is a third of requests' cost per request; the session still sends its
        # cookies and keeps those the server sets.
        request = requests.PreparedRequest()
        headers = {**self._headers, **(self._config.headers if trusted else {}), **(validators or {})}
        try:
            request.prepare(method="GET", url=url, headers=headers, auth=self._auth if trusted else None,
                            cookies=session.cookies)
            return session.send(request, stream=True, allow_redirects=False, proxies=_proxies(url),
                                verify=session.verify, cert=None,
                                timeout=(self._config.timeout, self._config.timeout))
        except requests.exceptions.RequestException as exc:
            raise _translate(exc, url) from None

    def _redirect_target(self, url: str, raw: requests.Response) -> str:
        # urllib3 joins repeated headers with ", ": one URL made of two. Either they agree, or
        # the response does not say where it leads.
        locations = set(raw.raw.headers.getlist("Location"))
        if len(locations) > 1:
            raise FetchError(f"HTTP {raw.status_code} with {len(locations)} different Location headers", url,
                             "bad_redirect", status=raw.status_code)
        location = _utf8_header(locations.pop()) if locations else ""
        if not location:
            raise FetchError(f"HTTP {raw.status_code} without a Location header", url,
                             "bad_redirect", status=raw.status_code)
        try:
            return resolve(url, location)
        except InvalidURLError as exc:
            raise FetchError(f"redirect to an unusable URL: {exc}", url, "bad_redirect",
                             status=raw.status_code) from None

    def _complete(self, url: str, raw: requests.Response, redirects: tuple[str, ...], conditional: bool) -> Response:
        status = raw.status_code
        now = datetime.now(timezone.utc)
        if status == 304:  # not modified since the copy the conditional request named
            _drain(raw)
            if not conditional:  # it named none: there is nothing to keep, and no body to save
                raise FetchError("HTTP 304 Not Modified to a request that named no stored copy", url,
                                 "unexpected_304", retryable=True, status=304)
            return Response(url=url, status=304, content_type="", charset=None, body=b"",
                            etag=raw.headers.get("ETag"), last_modified=raw.headers.get("Last-Modified"),
                            fetched_at=now.isoformat(timespec="seconds"), redirects=redirects,
                            fresh_until=self._fresh_until(raw, now), **_exchange(raw))
        if status >= 400 or status < 200:
            _drain(raw)
            retryable = status == 429 or status >= 500
            raise FetchError(f"HTTP {status} {raw.reason or ''}".strip(), url, f"http_{status}",
                             retryable=retryable, status=status,
                             retry_after=parse_retry_after(raw.headers.get("Retry-After")))
        body = self._read_body(url, raw)
        media_type, charset = parse_content_type(raw.headers.get("Content-Type", ""))
        return Response(url=url, status=status, content_type=media_type, charset=charset,
                        body=body, etag=raw.headers.get("ETag"),
                        last_modified=raw.headers.get("Last-Modified"),
                        fetched_at=now.isoformat(timespec="seconds"), redirects=redirects,
                        fresh_until=self._fresh_until(raw, now), **_exchange(raw))

    def _fresh_until(self, raw: requests.Response, now: datetime) -> str | None:
        until = fresh_until(raw.headers, now, self.heuristic_freshness)
        return until.isoformat(timespec="seconds") if until is not None else None

    def _read_body(self, url: str, raw: requests.Response) -> bytes:
        limit = self._config.max_bytes
        declared = raw.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(f"Content-Length {declared} exceeds max_bytes {limit}", url, "too_large")
        chunks, size = [], 0
        rate = TransferRate(self._config.min_rate, self._config.timeout, time.monotonic())
        try:
            # Decoded bytes, so the limit also stops a compression bomb.
            for chunk in _arriving(raw):
                size += len(chunk)
                if size > limit:
                    raise FetchError(f"body exceeds max_bytes {limit}", url, "too_large")
                chunks.append(chunk)
                if rate.too_slow(time.monotonic(), raw.raw.tell()):
                    raise FetchError(f"the body arrived slower than min_rate ({self._config.min_rate} bytes/s) "
                                     f"for {self._config.timeout:g} s", url, "too_slow", retryable=True)
        except requests.exceptions.RequestException as exc:
            raise _translate(exc, url) from None
        if not _decoded_to_the_end(raw):
            raise FetchError(f"the {raw.headers.get('Content-Encoding')} body ended before its end", url,
                             "incomplete_body", retryable=True)
        raw.raw.release_conn()  # read to its end: the connection may carry the next request
        return b"".join(chunks)


class TransferRate:
    """Is a body arriving slower than `minimum` bytes per second over the last `window`
    seconds? Samples of (time, bytes so far) at least a tenth of the window apart."""

    def __init__(self, minimum: float, window: float, start: float) -> None:
        self._minimum = minimum
        self._window = window
        self._samples: deque[tuple[float, int]] = deque([(start, 0)])

    def too_slow(self, now: float, received: int) -> bool:
        if not self._minimum:
            return False
        samples = self._samples
        if now - samples[-1][0] >= self._window / 10:
            samples.append((now, received))
        # The oldest sample kept is the last one at least a window ago.
        while len(samples) > 1 and samples[1][0] <= now - self._window:
            samples.popleft()
        since, base = samples[0]
        elapsed = now - since
        return elapsed >= self._window and received - base < self._minimum * elapsed


def _arriving(raw: requests.Response) -> Iterator[bytes]:
    """The decoded body as it arrives: each chunk is what one read of the socket brought, so
    the caller sees a trickle as it trickles (requests' iter_content waits for a whole chunk).
    urllib3's errors become requests' ones, as iter_content would raise them."""
    stream = raw.raw
    errors = requests.exceptions
    try:
        while chunk := stream.read1(CHUNK, decode_content=True):
            yield chunk
    except urllib3.exceptions.ProtocolError as exc:
        raise errors.ChunkedEncodingError(exc) from None
    except urllib3.exceptions.DecodeError as exc:
        raise errors.ContentDecodingError(exc) from None
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise errors.ConnectionError(exc) from None
    except urllib3.exceptions.SSLError as exc:
        raise errors.SSLError(exc) from None


@lru_cache(maxsize=1024)
def _proxies_for_origin(origin: str) -> dict[str, str]:
    return requests.utils.get_environ_proxies(origin + "/")  # HTTP(S)_PROXY, NO_PROXY


def _proxies(url: str) -> dict[str, str]:
    return _proxies_for_origin(origin_of(url))


def _utf8_header(value: str) -> str:
    """http.client reads header bytes as Latin-1; a server sending a raw UTF-8 Location (as
    many do, and browsers read it so) meant UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:  # not UTF-8 bytes (or not from bytes at all): as it was read
        return value


def _chain_error(message: str, url: str, reason: str, hops: list[tuple[str, str]], status: int) -> FetchError:
    """A failure of a redirect chain as a whole (a loop, too many hops), reported under the URL
    asked for; the hops after it are redirects to record."""
    error = FetchError(message, url, reason, status=status)
    error.hops = tuple(hops)
    return error


def _validators(stored: SavedFile) -> dict[str, str] | None:
    headers = {}
    if stored.etag:
        headers["If-None-Match"] = stored.etag
    if stored.last_modified:
        headers["If-Modified-Since"] = stored.last_modified
    return headers or None


def _exchange(raw: requests.Response) -> dict[str, object]:
    """The request and response headers, for the WARC record of this exchange."""
    version = {10: "HTTP/1.0", 11: "HTTP/1.1"}.get(getattr(raw.raw, "version", 11), "HTTP/1.1")
    return {"headers": dict(raw.headers), "request_headers": dict(raw.request.headers),
            "http_version": version, "reason": raw.reason or ""}


def fresh_until(headers: Mapping[str, str], now: datetime, heuristic: float) -> datetime | None:
    """Until when a response may be reused without asking the server again (RFC 9111):
    Cache-Control max-age, else Expires, else -- for a response with Last-Modified -- a tenth
    of its age, at most `heuristic` seconds. None: it must be revalidated every time."""
    directives = {}
    for part in headers.get("Cache-Control", "").lower().split(","):
        name, _, value = part.strip().partition("=")
        directives[name] = value.strip('"')
    if "no-store" in directives or "no-cache" in directives:
        return None
    if directives.get("max-age", "").isdigit():
        age = int(directives["max-age"])
        return now + timedelta(seconds=age) if age > 0 else None
    expires = _http_date(headers.get("Expires"))
    if expires is not None:
        served = _http_date(headers.get("Date")) or now
        return now + (expires - served) if expires > served else None
    modified = _http_date(headers.get("Last-Modified"))
    if modified is None or heuristic <= 0:
        return None
    lifetime = min(heuristic, max(0.0, (now - modified).total_seconds()) / 10)
    return now + timedelta(seconds=lifetime) if lifetime > 0 else None


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _drain(raw: requests.Response, limit: int = 65536) -> None:
    """Read a small unwanted body (redirect, error page) so its connection can be reused;
    closing a response with unread bytes would drop the connection."""
    try:
        for read, _ in enumerate(raw.iter_content(CHUNK)):
            if (read + 1) * CHUNK >= limit:
                break
    except requests.exceptions.RequestException:
        pass


def _decoded_to_the_end(raw: requests.Response) -> bool:
    """Did a compressed body (Content-Encoding gzip, deflate, br) reach the end its format
    marks? When the connection closes where Content-Length says the body ends, urllib3 hands
    out the prefix it could decode and never says the stream stopped early: its decoder is
    asked here. Nothing on the wire (an empty body) is whole."""
    wire = raw.raw
    return wire is None or not wire.tell() or _decoder_finished(getattr(wire, "_decoder", None))


def _decoder_finished(decoder: object) -> bool:
    """urllib3's decoders: MultiDecoder ("gzip, br") holds several; GzipDecoder, DeflateDecoder
    and ZstdDecoder a decompressor with `eof`; BrotliDecoder one with `is_finished()`."""
    if decoder is None:
        return True
    parts = getattr(decoder, "_decoders", None)
    if parts is not None:
        return all(_decoder_finished(part) for part in parts)
    if getattr(decoder, "_state", None) == GzipDecoderState.SWALLOW_DATA:
        return True  # bytes after a whole gzip member, ignored as browsers do
    stream = getattr(decoder, "_obj", None)
    if hasattr(stream, "is_finished"):
        return bool(stream.is_finished())
    return bool(getattr(stream, "eof", True))


def _translate(exc: requests.exceptions.RequestException, url: str) -> FetchError:
    """Map a requests exception to a FetchError reason; network trouble is retryable."""
    innermost = _innermost(exc)
    detail = _cause(innermost)
    errors = requests.exceptions
    if isinstance(exc, errors.Timeout):
        return FetchError(f"timed out: {detail}", url, "timeout", retryable=True)
    if isinstance(exc, errors.SSLError):
        return FetchError(f"TLS error: {detail}", url, "tls_error")
    if isinstance(exc, errors.ChunkedEncodingError):
        return FetchError(f"connection broke mid-body: {detail}", url, "incomplete_body", retryable=True)
    if isinstance(exc, errors.ContentDecodingError):
        return FetchError(f"cannot decode the body: {detail}", url, "decode_error")
    if isinstance(exc, errors.ConnectionError):
        # requests reports a read timeout while streaming as a ConnectionError
        lowered = str(exc).lower()
        if "timed out" in lowered:
            return FetchError(f"timed out: {detail}", url, "timeout", retryable=True)
        if isinstance(innermost.__context__, socket.gaierror) or "failed to resolve" in lowered:
            return FetchError(f"cannot resolve the host name {urlsplit(url).hostname}: {detail}", url,
                              "dns_error", retryable=True)
        return FetchError(f"connection failed: {detail}", url, "connection_error", retryable=True)
    if isinstance(exc, (errors.InvalidURL, errors.InvalidSchema, errors.MissingSchema)):
        return FetchError(f"unusable URL: {detail}", url, "invalid_url")
    if isinstance(exc, errors.InvalidHeader):  # e.g. two Content-Length headers that disagree
        return FetchError(f"malformed response: {detail}", url, "bad_response")
    return FetchError(f"request failed: {detail}", url, "request_error", retryable=True)


def _innermost(exc: requests.exceptions.RequestException) -> BaseException:
    """The error under the wrappers of requests and urllib3 (whose MaxRetryError keeps it as
    `reason`)."""
    inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else exc
    reason = getattr(inner, "reason", None)  # ssl.SSLError has one too: a string
    return reason if isinstance(reason, BaseException) else inner


_POOL_PREFIX = re.compile(r"^\w+\(host='[^']*', port=\d+\): ")


def _cause(error: BaseException) -> str:
    """What went wrong, in the system's words where there are some: "Connection refused", not
    "HTTPConnectionPool(host='x', port=80): Max retries exceeded with url: / (Caused by
    NewConnectionError(...: Failed to establish a new connection: [Errno 111] Connection
    refused'))"."""
    for candidate in (error, error.__context__, *error.args):
        if isinstance(candidate, OSError) and candidate.strerror:
            return candidate.strerror
    if isinstance(error, http.client.BadStatusLine) and not isinstance(error, http.client.RemoteDisconnected):
        return f"not an HTTP response: {error.line[:100]!r}"
    nested = [arg for arg in error.args if isinstance(arg, BaseException)]
    if nested:  # urllib3's ProtocolError("Connection aborted.", the error)
        return _cause(nested[-1])
    return _POOL_PREFIX.sub("", str(error))[:300]


def parse_content_type(header: str) -> tuple[str, str | None]:
    """("text/html", "utf-8") from "text/html; charset=UTF-8"."""
    media_type, _, params = header.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'").lower()
    return media_type.strip().lower(), charset


def parse_retry_after(header: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return float(header)
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
