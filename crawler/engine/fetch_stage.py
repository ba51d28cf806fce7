"""Stage 2, the fetchers: frontier -> HTTP -> page queue (network-bound).

Each fetcher thread drives many downloads at once (http/: libcurl's multi interface; over
HTTP/2 they share a connection): it takes URLs from the frontier while it has room, downloads
them -- or, on a re-crawl, reuses the stored copy the server says is unchanged -- and hands
each response to the parsers. A failure that may pass is retried later through the frontier
(a fetcher never sleeps on a retry); one that will not is recorded. A redirect is followed in
place on the same host when the scope allows; to another host it goes through the frontier,
whose robots.txt and politeness rules apply there.

The page queue is bounded: when it is full, a response waits in the thread's outbox and the
thread takes no new URL until the parsers take it -- but it never blocks on the queue, which
would stall its downloads in progress into their low-speed limit.
"""

from __future__ import annotations

import logging
import queue
from collections import deque
from collections.abc import Callable

from crawler.config import HttpConfig
from crawler.engine.interfaces import Frontier, NotYet
from crawler.engine.outcomes import Outcomes, QueueItem
from crawler.engine.scope import Scope
from crawler.errors import FetchError
from crawler.history.recrawl import StoredCopies
from crawler.http.curl import IDLE_WAIT
from crawler.http.fetcher import Fetcher, FetchLoop
from crawler.http.policy import Follow, Redirected
from crawler.http.robots import ALLOW_ALL, DISALLOW_ALL, RobotsRules
from crawler.models import CrawlItem, Failure, LinkKind, Page, Response
from crawler.tally import Tally
from crawler.urls import origin_of

log = logging.getLogger(__name__)


def redirect_rule(scope: Scope, frontier: Frontier) -> Callable[[CrawlItem, str], Follow]:
    """The fetcher's answer to each redirect: the scope rules, then one test-and-set in the
    frontier, so that a URL reached through a redirect is never fetched again through a link."""

    def may_follow(item: CrawlItem, target: str) -> Follow:
        if item.kind is LinkKind.ROBOTS:
            return Follow.NOW  # robots.txt may live elsewhere; it is never deduplicated
        rule = scope.rejection(target, item.kind, item.depth, item.chain)
        if rule is not None:
            frontier.skip(target, f"redirect_{rule}")
            return Follow.NO
        if origin_of(target) != origin_of(item.url):
            return Follow.LATER
        return Follow.NOW if frontier.claim(target) else Follow.NO

    return may_follow


class FetchStage:
    def __init__(self, *, frontier: Frontier, fetcher: Fetcher, stored: StoredCopies, outcomes: Outcomes,
                 pages: queue.Queue[QueueItem], scope: Scope, http: HttpConfig, capacity: int,
                 max_connections: int, browser_loaded: Callable[[str], Response | None] | None = None) -> None:
        """`pages`: the parsers' queue; `stored`: the previous crawl's files, for a re-crawl;
        `capacity`: downloads each thread drives at once; `max_connections`: to one host;
        `browser_loaded(url)`: what the browser downloaded for a page it rendered (render.mode)."""
        self._frontier = frontier
        self._fetcher = fetcher
        self._stored = stored
        self._outcomes = outcomes
        self._pages = pages
        self._scope = scope
        self._http = http
        self._capacity = capacity
        self._max_connections = max_connections
        self._browser_loaded = browser_loaded
        self._protocol_known: set[str] = set()  # origins the frontier was told the protocol of

    def run(self, tally: Tally) -> None:
        """One fetcher thread, until the frontier says the crawl is over (or stopped) and its
        downloads are done."""
        tally.slots = self._capacity
        loop = self._fetcher.loop(self._capacity, self._max_connections)
        outbox: deque[Page] = deque()  # responses the full page queue has no room for yet
        over = False
        self._frontier.listen(loop.ring)  # new work wakes the loop waiting on its downloads
        try:
            while not over or len(loop) or outbox:
                self._hand_on(outbox, wait=not len(loop))
                if not over and not outbox:
                    over = self._take(loop, outbox, tally)
                for item, result in loop.step(wants_work=not over and not outbox and loop.has_room()):
                    self._finished(item, result, outbox, loop, tally)
                tally.working_on(len(loop) + len(outbox))
        finally:
            self._frontier.unlisten(loop.ring)
            loop.close()

    def _take(self, loop: FetchLoop, outbox: deque[Page], tally: Tally) -> bool:
        """Start URLs while the thread has room; waits for one only when it has nothing to
        drive. True once the frontier says the crawl is over."""
        while loop.has_room():
            item = self._frontier.get(timeout=0 if len(loop) else IDLE_WAIT)
            if item is None:
                return True
            if isinstance(item, NotYet):
                return False
            try:
                self._start(item, loop, outbox, tally)
            except Exception as exc:  # a bug must not strand the item in flight
                self._frontier.release(item)
                self._outcomes.internal_error(item, exc, tally)
        return False

    def _start(self, item: CrawlItem, loop: FetchLoop, outbox: deque[Page], tally: Tally) -> None:
        """Download `item`; or save what the browser downloaded for a page it rendered; or, on
        a re-crawl, reuse its stored copy without a request while it is still fresh."""
        loaded = self._browser_loaded(item.url) if self._browser_loaded and item.kind is LinkKind.REQUISITE else None
        if loaded is not None:  # the site was asked once for it, by the browser: not again
            self._frontier.release(item)
            self._got(item, loaded, outbox, tally, downloaded=False)
            return
        stored = self._stored.get(item.url)
        if stored is not None and self._stored.fresh(stored):
            reused = self._stored.reuse(stored)
            if reused is not None:
                tally.reused_fresh += 1
                self._frontier.release(item)
                self._got(item, reused, outbox, tally)
                return
            stored = None  # its file is gone: download it
        loop.start(item, stored)

    def _finished(self, item: CrawlItem, result: Response | Redirected | FetchError, outbox: deque[Page],
                  loop: FetchLoop, tally: Tally) -> None:
        """The download of `item` ended with `result`."""
        try:
            if isinstance(result, Response) and result.status == 304:  # only a conditional request gets one
                stored = self._stored.get(item.url)
                reused = self._stored.reuse(stored, result) if stored is not None else None
                if reused is None:  # the stored copy is gone: ask again, without conditions
                    loop.start(item, None)
                    return
                tally.not_modified += 1
                result = reused
            pause = min(result.retry_after or 0.0, self._http.max_retry_after) \
                if isinstance(result, FetchError) else 0.0
            self._frontier.release(item, pause)  # the host may take its next request
            if isinstance(result, FetchError):
                self._failed(self._failed_after_redirects(item, result, tally), result, pause, tally)
            elif isinstance(result, Redirected):
                self._redirected(item, result, tally)
            else:
                self._got(item, result, outbox, tally)
        except Exception as exc:  # a bug must not strand the item in flight
            self._outcomes.internal_error(item, exc, tally)

    def _redirected(self, item: CrawlItem, result: Redirected, tally: Tally) -> None:
        self._outcomes.redirected(result.source, result.target, tally)
        if result.follow is Follow.LATER:  # another host: through the frontier, with its rules
            self._frontier.add(CrawlItem(result.target, item.depth, item.kind, referrer=item.referrer,
                                         chain=item.chain))
        self._frontier.task_done(item)

    def _got(self, item: CrawlItem, result: Response, outbox: deque[Page], tally: Tally,
             downloaded: bool = True) -> None:
        """A response to pass on to the parsers (not `downloaded` by the fetchers: the browser's,
        counted as its requests)."""
        origin = origin_of(result.url)
        if result.headers is not None and origin not in self._protocol_known:  # from the server itself
            self._protocol_known.add(origin)
            self._frontier.multiplexes(origin, result.http_version in ("HTTP/2", "HTTP/3"))
        for source in result.redirects:
            self._outcomes.redirected(source, result.url, tally, followed=True)
        if result.stored is None and downloaded:
            tally.requests_ok += 1
            tally.bytes_downloaded += len(result.body)
        if item.kind is LinkKind.ROBOTS:
            self._robots_answered(item.url, RobotsRules.from_body(result.body, self._http.user_agent))
        outbox.append(Page(item, result))

    def _hand_on(self, outbox: deque[Page], wait: bool) -> None:
        """Put what the outbox holds on the page queue, as far as it has room; with `wait`
        (nothing else to do), waiting a moment for room."""
        while outbox:
            try:
                self._pages.put(outbox[0], block=wait, timeout=IDLE_WAIT if wait else None)
            except queue.Full:
                return
            outbox.popleft()

    def _failed_after_redirects(self, item: CrawlItem, error: FetchError, tally: Tally) -> CrawlItem:
        """The item whose fetch failed. When redirects were followed to it, each URL that
        redirected is recorded as such, and the URL that failed -- claimed when the redirect was
        followed -- becomes an item of its own, in flight: retried, or failed with its own reason.
        Else a failed redirect target would be nowhere: not fetched again (it is "seen"), not
        saved, not failed."""
        if item.kind is LinkKind.ROBOTS:  # never claimed: its host's answer, wherever it lives
            return item
        for source, target in error.hops:
            if source != error.url:  # the URL a loop or too long a chain is reported under
                self._outcomes.redirected(source, target, tally)
        if error.url == item.url:
            return item
        target = CrawlItem(error.url, item.depth, item.kind, referrer=item.referrer, chain=item.chain,
                           guessed=item.guessed)
        self._frontier.adopt(target)  # before `item` leaves: the crawl is never seen idle between
        self._frontier.task_done(item)
        return target

    def _failed(self, item: CrawlItem, error: FetchError, pause: float, tally: Tally) -> None:
        if error.reason == "interrupted":  # cut by a stop: not fetched, not failed
            self._frontier.put_back(item)
            return
        delay = self._fetcher.retry_policy.delay(item.attempt, pause, error.reason) if error.retryable else None
        if delay is not None:
            log.debug("retry %s in %.1f s: %s", item.url, delay, error)
            tally.retries += 1
            self._frontier.retry_later(item, delay)
            return
        if item.kind is LinkKind.ROBOTS:
            # No robots.txt (4xx): all allowed. Server trouble (5xx, no answer): nothing allowed.
            allowed = error.status is not None and 400 <= error.status < 500
            self._robots_answered(item.url, ALLOW_ALL if allowed else DISALLOW_ALL)
            if allowed:
                self._frontier.task_done(item)
                return
            # The server answered, but with no robots.txt. (No answer at all -- refused, DNS,
            # TLS -- is the cause to tell as it is: the host cannot be reached.)
            if error.status is not None:
                error = FetchError(f"robots.txt unavailable, so none of this host is fetched: {error}",
                                   item.url, "robots_unavailable", status=error.status)
        if item.guessed:  # a /sitemap.xml that is not there is no failure of the site
            log.debug("no %s: %s", item.url, error)
            self._frontier.task_done(item)
            return
        self._outcomes.fail(item, Failure(item.url, error.reason, str(error), error.status, item.referrer,
                                          off_site=not self._scope.in_domains(item.url)), tally)

    def _robots_answered(self, url: str, rules: RobotsRules) -> None:
        """Pages already written with links to what the rules keep out get those links fixed
        by the writers now, not at the end of the crawl."""
        self._outcomes.left_out(self._frontier.set_robots(url, rules))
