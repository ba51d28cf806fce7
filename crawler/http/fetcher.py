"""HTTP: one requests.Session per fetcher thread, redirects one hop at a time, size and time
limits, and failures as data.

This package is the only place that touches `requests`: every requests/urllib3 exception is
translated (failures.py) into a `FetchError` with a short `reason` and whether a retry may
help. The retry *timing* is the `RetryPolicy`'s (policy.py); the fetch stage re-queues the
URL in the frontier instead of sleeping in a fetcher thread.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from functools import lru_cache

import requests

from crawler.config import HttpConfig
from crawler.errors import FetchError
from crawler.http.body import TransferRate, arriving, decoded_to_the_end, drain
from crawler.http.failures import translate
from crawler.http.headers import fresh_until, parse_content_type, parse_retry_after, utf8_header, validators
from crawler.http.policy import Follow, Redirected, RetryPolicy
from crawler.http.watchdog import Watchdog, WatchedAdapter
from crawler.models import CrawlItem, Response, SavedFile
from crawler.urls import InvalidURLError, origin_of, resolve

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


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
            conditions = validators(stored) if stored is not None and url == item.url else None
            sources = tuple(source for source, _ in hops)
            try:
                response, target, status = self._one_request(url, sources, conditions)
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

    def _one_request(self, url: str, redirects: tuple[str, ...], conditions: dict[str, str] | None
                     ) -> tuple[Response | None, str | None, int]:
        """(the response, None, status) or (None, where it redirects, status)."""
        outcome: dict[str, str] = {}
        try:
            with self._watchdog.guard(self._config.max_time) as outcome:
                raw = self._request(url, conditions)
                with raw:
                    if raw.status_code not in REDIRECT_STATUSES:
                        return self._complete(url, raw, redirects, conditional=bool(conditions)), None, \
                            raw.status_code
                    drain(raw)
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

    def _request(self, url: str, conditions: dict[str, str] | None = None) -> requests.Response:
        # Custom headers and credentials go only to the hosts being mirrored.
        trusted = self._in_domains(url)
        session = self._session()
        # Prepared here rather than by Session.get, whose merging of session and request
        # settings is a third of requests' cost per request; the session still sends its
        # cookies and keeps those the server sets.
        request = requests.PreparedRequest()
        headers = {**self._headers, **(self._config.headers if trusted else {}), **(conditions or {})}
        try:
            request.prepare(method="GET", url=url, headers=headers, auth=self._auth if trusted else None,
                            cookies=session.cookies)
            return session.send(request, stream=True, allow_redirects=False, proxies=_proxies(url),
                                verify=session.verify, cert=None,
                                timeout=(self._config.timeout, self._config.timeout))
        except requests.exceptions.RequestException as exc:
            raise translate(exc, url) from None

    def _redirect_target(self, url: str, raw: requests.Response) -> str:
        # urllib3 joins repeated headers with ", ": one URL made of two. Either they agree, or
        # the response does not say where it leads.
        locations = set(raw.raw.headers.getlist("Location"))
        if len(locations) > 1:
            raise FetchError(f"HTTP {raw.status_code} with {len(locations)} different Location headers", url,
                             "bad_redirect", status=raw.status_code)
        location = utf8_header(locations.pop()) if locations else ""
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
            drain(raw)
            if not conditional:  # it named none: there is nothing to keep, and no body to save
                raise FetchError("HTTP 304 Not Modified to a request that named no stored copy", url,
                                 "unexpected_304", retryable=True, status=304)
            return Response(url=url, status=304, content_type="", charset=None, body=b"",
                            etag=raw.headers.get("ETag"), last_modified=raw.headers.get("Last-Modified"),
                            fetched_at=now.isoformat(timespec="seconds"), redirects=redirects,
                            fresh_until=self._fresh_until(raw, now), **_exchange(raw))
        if status >= 400 or status < 200:
            drain(raw)
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
            for chunk in arriving(raw):
                size += len(chunk)
                if size > limit:
                    raise FetchError(f"body exceeds max_bytes {limit}", url, "too_large")
                chunks.append(chunk)
                if rate.too_slow(time.monotonic(), raw.raw.tell()):
                    raise FetchError(f"the body arrived slower than min_rate ({self._config.min_rate} bytes/s) "
                                     f"for {self._config.timeout:g} s", url, "too_slow", retryable=True)
        except requests.exceptions.RequestException as exc:
            raise translate(exc, url) from None
        if not decoded_to_the_end(raw):
            raise FetchError(f"the {raw.headers.get('Content-Encoding')} body ended before its end", url,
                             "incomplete_body", retryable=True)
        raw.raw.release_conn()  # read to its end: the connection may carry the next request
        return b"".join(chunks)


@lru_cache(maxsize=1024)
def _proxies_for_origin(origin: str) -> dict[str, str]:
    return requests.utils.get_environ_proxies(origin + "/")  # HTTP(S)_PROXY, NO_PROXY


def _proxies(url: str) -> dict[str, str]:
    return _proxies_for_origin(origin_of(url))


def _chain_error(message: str, url: str, reason: str, hops: list[tuple[str, str]], status: int) -> FetchError:
    """A failure of a redirect chain as a whole (a loop, too many hops), reported under the URL
    asked for; the hops after it are redirects to record."""
    error = FetchError(message, url, reason, status=status)
    error.hops = tuple(hops)
    return error


def _exchange(raw: requests.Response) -> dict[str, object]:
    """The request and response headers, for the WARC record of this exchange."""
    version = {10: "HTTP/1.0", 11: "HTTP/1.1"}.get(getattr(raw.raw, "version", 11), "HTTP/1.1")
    return {"headers": dict(raw.headers), "request_headers": dict(raw.request.headers),
            "http_version": version, "reason": raw.reason or ""}
