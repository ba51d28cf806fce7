"""HTTP for the crawl: each fetcher thread drives many downloads at once (curl.py), follows
redirects one hop at a time, and turns each into a Response, a Redirected, or a FetchError
with a short reason (failures.py).

A `FetchJob` is one CrawlItem's way through HTTP: a conditional request if a copy is stored,
then, hop by hop, the redirects the crawl allows to be followed in place (`may_follow`: the
scope rules and one test-and-set in the frontier, so a URL reached through a redirect is never
fetched again through a link). The retry *timing* is the RetryPolicy's (policy.py): the fetch
stage puts a failed URL back in the frontier instead of sleeping in a fetcher thread.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from crawler.config import HttpConfig
from crawler.errors import FetchError, LoginError
from crawler.http.curl import IDLE_WAIT, CurlEngine, CurlLoop, Request
from crawler.http.failures import E_WEIRD_SERVER_REPLY, failure
from crawler.http.headers import fresh_until, parse_content_type, parse_retry_after, utf8_header, validators
from crawler.http.policy import Follow, Redirected, RetryPolicy, SecureHosts, Session
from crawler.http.transfer import Exchange
from crawler.models import CrawlItem, Response, SavedFile
from crawler.urls import InvalidURLError, resolve

log = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
Result = Response | Redirected | FetchError


@dataclass
class FetchJob:
    item: CrawlItem
    stored: SavedFile | None  # the copy a conditional request names (first hop only)
    url: str = ""  # the URL asked for now
    hops: list[tuple[str, str]] = field(default_factory=list)  # redirects followed, as (source, target)
    form: bytes | None = None  # a form to POST (a login); a 301, 302 or 303 turns it into a GET
    session: int = 0  # the login session it started in (Session.generation)
    renewed: bool = False  # it found the session expired, which was renewed for it

    def __post_init__(self) -> None:
        self.url = self.url or self.item.url


class Fetcher:
    def __init__(self, config: HttpConfig, in_domains: Callable[[str], bool],
                 may_follow: Callable[[CrawlItem, str], Follow], heuristic_freshness: float = 0.0,
                 record_requests: bool = False) -> None:
        """`in_domains(url)`: may the host receive http.headers and credentials;
        `may_follow(item, target)`: what to do with each redirect; `heuristic_freshness`: the
        longest a response without explicit freshness counts as fresh (mirror.heuristic_freshness);
        `record_requests`: keep each request's headers as sent (for the WARC)."""
        self._config = config
        self._in_domains = in_domains
        self._may_follow = may_follow
        self._heuristic_freshness = heuristic_freshness
        self._engine = CurlEngine(config, record_requests=record_requests)
        self._secure_hosts = SecureHosts()
        self.retry_policy = RetryPolicy(config.retries, config.retry_backoff)
        self.session: Session | None = None  # set once logged in (login:)

    def following(self, may_follow: Callable[[CrawlItem, str], Follow]) -> Fetcher:
        """A fetcher on the same engine -- the same cookie jar and connections -- with its own
        rule for redirects (logging in follows every one) and no session to renew."""
        twin = copy.copy(self)
        twin._may_follow = may_follow
        twin.session = None
        return twin

    def renew_session(self, job: FetchJob) -> bool:
        """`job` was sent to the login page: log in again (once for the job) and start it over.
        False if it may not be, or the login failed."""
        if self.session is None or job.renewed:
            return False
        try:
            self.session.renew(job.session)
        except LoginError as error:
            log.error("%s", error)
            return False
        job.url, job.hops, job.renewed, job.session = job.item.url, [], True, self.session.generation
        return True

    def loop(self, capacity: int, max_connections: int) -> FetchLoop:
        """What one fetcher thread drives: up to `capacity` downloads at once."""
        return FetchLoop(self, self._engine.loop(capacity, max_connections))

    def fetch(self, item: CrawlItem, stored: SavedFile | None = None, form: bytes | None = None
              ) -> Response | Redirected:
        """One item, start to end, in the calling thread (crawl check, logging in; tests);
        `form`: POST it. Raises FetchError."""
        loop = self.loop(1, 1)
        try:
            loop.start(item, stored, form)
            while True:
                for _, result in loop.step():
                    if isinstance(result, FetchError):
                        raise result
                    return result
        finally:
            loop.close()

    def stop(self) -> None:
        """Cut every download in progress (Ctrl-C): they end as FetchError("interrupted")."""
        self._engine.stopping.set()

    @property
    def stopping(self) -> bool:
        return self._engine.stopping.is_set()

    # -- one hop's answer ---------------------------------------------------------------------

    def request(self, job: FetchJob) -> Request:
        conditions = validators(job.stored) if job.stored is not None and job.url == job.item.url else None
        lines = tuple(f"{name}: {value}" for name, value in (conditions or {}).items())
        trusted = self._in_domains(job.url) and not self._secure_hosts.in_clear(job.url)
        return Request(job.url, trusted=trusted, headers=lines, form=job.form)

    def result(self, job: FetchJob, exchange: Exchange) -> Result | None:
        """What one hop's exchange makes of the job: its result, or None when the job goes on
        to the redirect's target (job.url is that target then)."""
        status = exchange.status
        if status:
            self._secure_hosts.answered(job.url)
        if exchange.error == E_WEIRD_SERVER_REPLY and status in REDIRECT_STATUSES:  # its headers were refused
            return self._at_hop(job, FetchError(f"HTTP {status} with a malformed redirect: {exchange.error_message}",
                                                job.url, "bad_redirect", status=status))
        # When a status line and headers came, an error page or a redirect says what it is,
        # whatever became of its body.
        body_only = exchange.error != E_WEIRD_SERVER_REPLY and (status >= 400 or status in REDIRECT_STATUSES)
        if (exchange.error or exchange.failure) and not body_only:
            return self._at_hop(job, failure(exchange, job.url, self._config))
        if status in REDIRECT_STATUSES:
            return self._redirect(job, exchange)
        return self._complete(job, exchange)

    def _redirect(self, job: FetchJob, exchange: Exchange) -> Result | None:
        try:
            target = self._redirect_target(job.url, exchange)
        except FetchError as error:
            return self._at_hop(job, error)
        if self.session is not None and self.session.is_login_page(target):
            return self._at_hop(job, FetchError(f"HTTP {exchange.status} to the login page: the session expired",
                                                job.url, "session_expired", status=exchange.status))
        sources = [source for source, _ in job.hops]
        job.hops.append((job.url, target))
        if target == job.url or target in sources:
            return _chain_error(f"redirect loop at {target}", job, "redirect_loop", exchange.status)
        if len(job.hops) > self._config.max_redirects:  # checked before `target` is claimed
            return _chain_error(f"more than {self._config.max_redirects} redirects", job, "too_many_redirects",
                                exchange.status)
        follow = self._may_follow(job.item, target)
        if follow is not Follow.NOW:
            return Redirected(job.item.url, target, exchange.status, follow)
        job.url = target
        if exchange.status not in (307, 308):  # as browsers do: the form is not sent again
            job.form = None
        return None

    def _redirect_target(self, url: str, exchange: Exchange) -> str:
        # Repeated Location headers are one URL made of two unless they agree: either they do,
        # or the response does not say where it leads.
        locations = set(exchange.header_values("location"))
        status = exchange.status
        if len(locations) > 1:
            raise FetchError(f"HTTP {status} with {len(locations)} different Location headers", url, "bad_redirect",
                             status=status)
        location = utf8_header(locations.pop()) if locations else ""
        if not location:
            raise FetchError(f"HTTP {status} without a Location header", url, "bad_redirect", status=status)
        try:
            return resolve(url, location)
        except InvalidURLError as exc:
            raise FetchError(f"redirect to an unusable URL: {exc}", url, "bad_redirect", status=status) from None

    def _complete(self, job: FetchJob, exchange: Exchange) -> Result:
        status, url = exchange.status, job.url
        conditional = job.stored is not None and url == job.item.url
        if status == 304 and not conditional:  # it named no copy: nothing to keep, no body to save
            return self._at_hop(job, FetchError("HTTP 304 Not Modified to a request that named no stored copy", url,
                                                "unexpected_304", retryable=True, status=304))
        if status >= 400 or status < 200:
            reason = exchange.status_line.split(" ", 2)[2] if exchange.status_line.count(" ") >= 2 else ""
            return self._at_hop(job, FetchError(
                f"HTTP {status} {reason}".strip(), url, f"http_{status}", retryable=status == 429 or status >= 500,
                status=status, retry_after=parse_retry_after(exchange.header("retry-after"))))
        return self._response(job, exchange)

    def _response(self, job: FetchJob, exchange: Exchange) -> Response:
        now = datetime.now(timezone.utc)
        headers = _display_names(exchange.header_dict())
        media_type, charset = parse_content_type(headers.get("Content-Type", ""))
        until = fresh_until(headers, now, self._heuristic_freshness)
        not_modified = exchange.status == 304
        parts = exchange.status_line.split(" ", 2)
        return Response(
            url=job.url, status=exchange.status, content_type="" if not_modified else media_type,
            charset=None if not_modified else charset, body=b"" if not_modified else exchange.body,
            etag=headers.get("Etag"), last_modified=headers.get("Last-Modified"),
            fetched_at=now.isoformat(timespec="seconds"), redirects=tuple(source for source, _ in job.hops),
            fresh_until=until.isoformat(timespec="seconds") if until is not None else None,
            headers=headers, request_headers=exchange.request_headers,
            http_version=exchange.http_version, reason=parts[2] if len(parts) > 2 else "")

    @staticmethod
    def _at_hop(job: FetchJob, error: FetchError) -> FetchError:
        """A failure at the URL asked for now, with the redirects that led there."""
        error.hops = tuple(job.hops)
        return error


class FetchLoop:
    """One fetcher thread's downloads: jobs go in, results come out as their last hop ends.
    Not thread-safe: one thread uses it."""

    def __init__(self, fetcher: Fetcher, curl: CurlLoop) -> None:
        self._fetcher = fetcher
        self._curl = curl
        self.ring = curl.ring  # any thread: wakes a `step` that wants work

    def __len__(self) -> int:
        return len(self._curl)

    @property
    def capacity(self) -> int:
        return self._curl.capacity

    def has_room(self) -> bool:
        return self._curl.has_room()

    def start(self, item: CrawlItem, stored: SavedFile | None = None, form: bytes | None = None) -> None:
        """Start downloading `item` (conditionally, if `stored`; posting `form`, if given)."""
        session = self._fetcher.session
        job = FetchJob(item, stored, form=form, session=session.generation if session is not None else 0)
        self._curl.start(self._fetcher.request(job), job)

    def step(self, idle: float = IDLE_WAIT, *, wants_work: bool = False) -> list[tuple[CrawlItem, Result]]:
        """Drive the downloads for a moment (`idle` seconds at most when nothing happens, or
        until `ring` if it `wants_work`); the items whose result is known, with it."""
        if self._fetcher.stopping:
            return [(job.item, _interrupted(job)) for job in self._curl.drop_all() if isinstance(job, FetchJob)]
        done = []
        for job, exchange in self._curl.step(idle, wants_work=wants_work):
            assert isinstance(job, FetchJob)
            result = self._fetcher.result(job, exchange)
            if isinstance(result, FetchError) and result.reason == "session_expired" and \
                    self._fetcher.renew_session(job):
                result = None  # logged in again: the job starts over
            if result is None:  # a redirect followed in place: the next hop
                self._curl.start(self._fetcher.request(job), job)
            else:
                done.append((job.item, result))
        return done

    def close(self) -> None:
        self._curl.close()


def _interrupted(job: FetchJob) -> FetchError:
    return FetchError("the crawl stopped during the download", job.url, "interrupted")


def _chain_error(message: str, job: FetchJob, reason: str, status: int) -> FetchError:
    """A failure of a redirect chain as a whole (a loop, too many hops), reported under the URL
    asked for; the hops after it are redirects to record."""
    error = FetchError(message, job.item.url, reason, status=status)
    error.hops = tuple(job.hops)
    return error


def _display_names(headers: dict[str, str]) -> dict[str, str]:
    """Header names as HTTP/1.1 writes them (Content-Type; ETag as Etag), whatever case they
    came in (HTTP/2: lower case), so that they can be looked up and written (the WARC) alike."""
    return {"-".join(part.capitalize() for part in name.split("-")): value for name, value in headers.items()}
