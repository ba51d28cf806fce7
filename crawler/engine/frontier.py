"""The frontier: which URLs were seen, which wait, which may go next, under one lock.

URLs wait in one queue per host, and a host hands out its next URL only as its robots.txt
and politeness allow (hosts.py); other hosts are never held up by a slow one. A URL robots.txt
disallows is skipped when its turn comes.

Under max_pages, page URLs are first *held* in a `PageOrder` (ordering.py), which lets them
go to their host's queue closest to the start first, so that a capped crawl saves the same
pages every run.

Page URLs wait in memory up to `max_queued_pages`; beyond that, a host's new page URLs are
*parked* in the crawl state (they are journaled there anyway) and read back, in order, a batch
at a time when the host's queue runs dry -- so a site that links to millions of pages does not
need their queue in memory.

A URL is *in flight* from the moment a fetcher takes it until the pipeline is completely done
with it (fetched, its links added back here, its file written, or its failure recorded).
The crawl is over exactly when nothing is pending, nothing waits for a retry and nothing is in
flight: only then can no new URL appear. `get` returns None from that moment on, which is
what lets every fetcher stop without a timeout or a sleep.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from crawler.engine.hosts import Hosts
from crawler.engine.interfaces import NOT_YET, Listeners, NotYet
from crawler.engine.ordering import INF, START, PageBudget
from crawler.engine.parking import ParkedPages, Parking
from crawler.engine.seen import Journal, NoJournal, SeenUrls
from crawler.engine.waiting import WaitingRoom
from crawler.http.robots import RobotsRules
from crawler.models import CrawlItem, Link, LinkKind
from crawler.urls import origin_of


class Retries:
    """URLs waiting out a retry delay, by when they are due."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, CrawlItem]] = []  # (due, sequence, item)
        self._sequence = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, item: CrawlItem, due: float) -> None:
        heapq.heappush(self._heap, (due, next(self._sequence), item))

    def due(self, now: float) -> list[CrawlItem]:
        """The items due by `now`, taken out."""
        items = []
        while self._heap and self._heap[0][0] <= now:
            items.append(heapq.heappop(self._heap)[2])
        return items

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def items(self) -> list[CrawlItem]:
        return [entry[2] for entry in self._heap]


class _Changed(threading.Condition):
    """The frontier's condition, signalled whenever the answer of `get` may have changed. It
    rings the listeners too: a fetcher thread driving downloads waits on their sockets, not in
    `get`, and would see new work only when one of its downloads stirred (at 50 ms a round
    trip, half the connections of a crawl's start opened a round trip late)."""

    def __init__(self, lock: threading.Lock) -> None:
        super().__init__(lock)
        self.listeners = Listeners()

    def notify(self, n: int = 1) -> None:  # notify_all calls it too
        super().notify(n)
        self.listeners.ring()


class MemoryFrontier:
    def __init__(self, *, max_pages: int | None = None, per_host: int = 1_000_000, per_host_http1: int | None = None,
                 delay: float = 0.0, robots: bool = False, journal: Journal | None = None,
                 parking: Parking | None = None, max_queued_pages: int | None = None) -> None:
        """`per_host`, `delay`: politeness per host (scheme, name and port); `per_host_http1`:
        requests in flight to a host that does not multiplex (None: per_host); `robots`: fetch
        each host's robots.txt first and obey it; `journal`: told of every change worth keeping
        (its calls must be quick: they happen under the lock); `parking`: where page URLs
        beyond `max_queued_pages` (None: MAX_QUEUED_PAGES) wait; None: all in memory."""
        # One lock guards every field below; `_changed` is signalled whenever the answer of
        # `get` may have changed: work added or finished, a host freed, or stop.
        self._lock = threading.Lock()
        self._changed = _Changed(self._lock)
        self._seen = SeenUrls(journal or NoJournal())
        self._hosts = Hosts(per_host=per_host, per_host_http1=per_host if per_host_http1 is None else per_host_http1,
                            delay=delay, robots=robots, on_new_robots=self._seen.admit)
        self._retries = Retries()
        self._in_flight = 0
        self._budget = PageBudget(max_pages)
        self._parked = ParkedPages(parking, max_queued_pages, self._lock)
        self._waiting = WaitingRoom(self._hosts, self._budget, self._parked, self._changed)
        self._stopped = False

    # -- producers -------------------------------------------------------------------------

    def add(self, item: CrawlItem) -> bool:
        """Queue `item` unless its URL was ever seen in this crawl (or robots.txt disallows
        it): True if it was queued. One test-and-set."""
        with self._lock:
            added = self._admit(item, START if item.depth == 0 else INF, 0)
            if added:
                self._added([item])
            return added

    def seen_among(self, urls: Iterable[str]) -> set[str]:
        """Which of `urls` were admitted already (under one lock for all of a page's links)."""
        with self._lock:
            return {url for url in urls if url in self._seen}

    def add_all(self, items: Iterable[CrawlItem], skipped: Iterable[tuple[str, str]] = (), *,
                source: CrawlItem | None = None, links: Sequence[Link] = ()) -> list[str]:
        """Queue each item whose URL is new, under one lock for all of a page's links, and
        record the page's links `skipped` by a scope rule, as (URL, rule). The URLs the known
        robots.txt of their host disallows are returned (and skipped). `source`: the page (or
        sitemap) whose `links`, all of them in order, these items are: under max_pages, where
        a page is linked decides when it goes."""
        added, disallowed = [], []
        with self._lock:
            place_of = self._budget.places(source, links)
            for url, rule in skipped:
                self._seen.skip(url, rule)
            for index, item in enumerate(items):
                if self._admit(item, *place_of(item, index)):
                    added.append(item)
                elif self._seen.skipped.get(item.url, "").startswith("robots"):
                    disallowed.append(item.url)
            self._budget.found_again(source, links)
            if added:
                self._added(added)
        return disallowed

    def restore(self, seen: Iterable[str], pending: Iterable[CrawlItem], skipped: dict[str, str],
                html_pages_saved: int, parked: dict[str, int] | None = None) -> None:
        """Go on with an interrupted crawl: what it saw, what it still had to fetch (`parked`:
        how many page URLs of each host wait in the crawl state)."""
        with self._lock:
            self._seen.restore(seen, skipped)
            self._budget.saved = html_pages_saved
            self._waiting.restore(pending, parked or {}, admit=self._seen.admit)
            self._changed.notify_all()

    def claim(self, url: str) -> bool:
        """Mark `url` seen without queueing it (a redirect target fetched in place, on a host
        whose robots.txt is known): True if it is new and robots.txt allows it."""
        with self._lock:
            if url in self._seen or self._robots_forbid(url):
                return False
            self._seen.admit(url)
            return True

    def adopt(self, item: CrawlItem) -> None:
        """A URL claimed for a redirect followed in place, whose fetch failed, becomes an item
        of its own, in flight from now on (journaled, so a resumed crawl knows it too)."""
        with self._lock:
            self._seen.admit(item.url)
            self._seen.journal.added([item])
            self._take_flight(item)

    def skip(self, url: str, rule: str) -> None:
        """Record that the scope rule `rule` kept `url` out (first rule wins, for the report)."""
        with self._lock:
            self._seen.skip(url, rule)

    # -- consumers -------------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> CrawlItem | NotYet | None:
        """The next URL to fetch; blocks while others may still produce work or a host must
        wait -- at most `timeout` seconds, if given (then NOT_YET). Returns None once the crawl
        is complete or stopped."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                if self._stopped:
                    return None
                now = time.monotonic()
                for retry in self._retries.due(now):
                    self._waiting.enqueue(retry, front=True)  # a retry jumps the queue: it may hold up a page
                item, wake_at, parked_host = self._hosts.take_ready(now, self._budget.left(), self._skip_disallowed)
                if parked_host is not None:
                    self._waiting.unpark(parked_host)
                    continue
                if item is not None:
                    self._take_flight(item)
                    return item
                due = self._retries.next_due()
                if self._in_flight == 0 and due is None and wake_at is None and not self._parked.reading:
                    self._changed.notify_all()  # wake the other fetchers: they stop too
                    return None
                wake_at = min((t for t in (wake_at, due, deadline) if t is not None), default=None)
                if deadline is not None and now >= deadline:
                    return NOT_YET
                self._changed.wait(timeout=None if wake_at is None else max(0.0, wake_at - now))

    def listen(self, ring: Callable[[], None]) -> None:
        """Call `ring()` whenever `get` may have something new, until `unlisten(ring)`: for a
        thread that waits elsewhere than in `get`. It is called under the lock: it must be quick."""
        self._changed.listeners.add(ring)

    def unlisten(self, ring: Callable[[], None]) -> None:
        self._changed.listeners.remove(ring)

    def release(self, item: CrawlItem, pause: float = 0.0) -> None:
        """The request for `item` is over (the response is in, or it failed): its host may send
        the next one. `pause`: seconds the host asked us to wait (Retry-After)."""
        with self._lock:
            if self._hosts.release(origin_of(item.url), time.monotonic(), pause):
                self._changed.notify()  # one more request of this host may go

    def multiplexes(self, origin: str, yes: bool) -> None:
        """The host answered over HTTP/2 (`yes`) or HTTP/1.x: how many requests it may have in
        flight follows."""
        with self._lock:
            if self._hosts.multiplexes(origin, yes):
                self._changed.notify_all()

    def retry_later(self, item: CrawlItem, delay: float) -> None:
        """Take `item` out of flight and hand it out again after `delay` seconds."""
        with self._lock:
            self._leave_flight(item)
            self._retries.push(replace(item, attempt=item.attempt + 1), time.monotonic() + delay)
            self._changed.notify()  # someone must wait for it with a timeout

    def put_back(self, item: CrawlItem) -> None:
        """Take `item` out of flight unfetched (the crawl stopped mid-download): still pending."""
        with self._lock:
            self._leave_flight(item)
            self._waiting.enqueue(item, front=True)
            self._changed.notify()

    def task_done(self, item: CrawlItem, *, saved_html_page: bool = False) -> None:
        """The pipeline is done with `item`; its links, if any, were already added."""
        with self._lock:
            self._leave_flight(item)
            self._budget.saved += saved_html_page
            self._seen.journal.done(item.url)
            self._waiting.done(item.url)
            # Waking every fetcher for every finished page would cost more CPU than the pages:
            # only the end of the crawl concerns all of them, and a page out of flight may free
            # room under max_pages for one more.
            if self._in_flight == 0:
                self._changed.notify_all()
            elif item.kind is LinkKind.PAGE and self._budget.max_pages is not None:
                self._changed.notify()

    def set_robots(self, url: str, rules: RobotsRules) -> list[str]:
        """The answer to robots.txt at `url`: the other URLs of its host may go now. Returns
        the URLs queued for the host that the rules keep out (they are skipped now, so that
        links to them can be written as URLs while the crawl goes on)."""
        with self._lock:
            disallowed = self._hosts.learn_robots(origin_of(url), rules)
            for item in disallowed:
                self._skip_disallowed(item.url, rules)
            self._changed.notify_all()
            return [item.url for item in disallowed]

    def robots_rules(self, origin: str) -> RobotsRules | None:
        """The host's robots.txt rules once it answered (None: not yet, or a host not met)."""
        with self._lock:
            return self._hosts.robots_rules(origin)

    def still_ours(self, item: CrawlItem | None) -> bool:
        """One process holds every URL it took until it is done with it."""
        return True

    def stop(self) -> None:
        """Stop handing out work (Ctrl-C); items already taken finish on their own."""
        with self._lock:
            self._stopped = True
            self._changed.notify_all()

    # -- inspection --------------------------------------------------------------------------

    @property
    def html_pages_saved(self) -> int:
        with self._lock:
            return self._budget.saved

    def seen_count(self) -> int:
        with self._lock:
            return len(self._seen)

    def backlog(self) -> tuple[int, int]:
        """(URLs queued for a fetcher, URLs waiting out a retry delay); not the pages max_pages
        holds back (see page_limit)."""
        with self._lock:
            return self._hosts.waiting(pages=self._budget.left()), len(self._retries)

    def page_limit(self) -> tuple[int, bool]:
        """(pages max_pages holds back, whether it is used up: by pages saved, or in flight)."""
        with self._lock:
            return self._budget.limit(self._hosts.waiting() - self._hosts.waiting(pages=False))

    def skipped(self) -> dict[str, str]:
        with self._lock:
            return dict(self._seen.skipped)

    def pending(self) -> list[CrawlItem]:
        """URLs seen but never handed out (what a stop or max_pages left behind)."""
        with self._lock:
            waiting = self._waiting.in_memory() + self._retries.items()
            parked = self._waiting.parked_hosts()
        return waiting + self._parked.all_of(parked)  # read without the lock, as when unparking

    # -- internals (caller holds the lock) --------------------------------------------------

    def _admit(self, item: CrawlItem, found_by: int = INF, place: int = 0) -> bool:
        if item.url in self._seen or self._robots_forbid(item.url):
            return False
        self._seen.admit(item.url)
        self._waiting.enqueue(item, found_by=found_by, place=place)
        return True

    def _added(self, items: list[CrawlItem]) -> None:
        self._seen.journal.added(items)
        self._parked.store_new()
        self._waiting.release()
        self._changed.notify(len(items))

    def _robots_forbid(self, url: str) -> bool:
        host = self._hosts.known(origin_of(url))
        return host is not None and self._seen.forbidden(url, host.robots)

    def _skip_disallowed(self, url: str, rules: RobotsRules) -> None:
        """A queued URL that robots.txt keeps out: skipped, and no longer pending."""
        self._seen.disallowed(url, rules)
        self._waiting.done(url)

    def _take_flight(self, item: CrawlItem) -> None:
        self._in_flight += 1
        self._budget.in_flight += item.kind is LinkKind.PAGE

    def _leave_flight(self, item: CrawlItem) -> None:
        self._in_flight -= 1
        self._budget.in_flight -= item.kind is LinkKind.PAGE
