"""The frontier: which URLs were seen, which wait, which may go next, under one lock.

URLs wait in one queue per host. A host hands out its next URL only when its robots.txt is
known (its robots.txt request goes first), fewer than `per_host` of its requests are in
flight, and its `delay` since the last request start has passed; other hosts are never held
up by a slow one. A URL robots.txt disallows is skipped when its turn comes.

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
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from crawler.engine.ordering import INF, START, PageOrder
from crawler.http.robots import ALLOW_ALL, RobotsRules
from crawler.models import CrawlItem, Link, LinkKind
from crawler.urls import origin_of


class Journal(Protocol):
    """Where the frontier records what it admits, skips and finishes (crawl state)."""

    def added(self, items: list[CrawlItem]) -> None: ...
    def skipped(self, url: str, rule: str) -> None: ...
    def done(self, url: str) -> None: ...


class Parking(Protocol):
    """Where page URLs wait when too many are queued (the crawl state)."""

    def park(self, items: list[CrawlItem]) -> None: ...
    def unpark(self, origin: str, after: int, limit: int | None) -> list[tuple[int, CrawlItem]]: ...


MAX_QUEUED_PAGES = 100_000  # page URLs queued in memory (~200 bytes each); the rest are parked
UNPARK_BATCH = 5_000  # page URLs read back at a time


class NoJournal:
    def added(self, items: list[CrawlItem]) -> None:
        pass

    def skipped(self, url: str, rule: str) -> None:
        pass

    def done(self, url: str) -> None:
        pass


@dataclass
class _Host:
    """One host's queue and politeness state. Only touched under the frontier's lock."""

    requisites: deque[CrawlItem] = field(default_factory=deque)  # robots.txt, then requisites
    pages: deque[CrawlItem] = field(default_factory=deque)
    in_flight: int = 0  # requests, not pipeline work: released when the response is in
    not_before: float = 0.0  # time.monotonic() before which no request may start
    last_start: float = 0.0  # time.monotonic() of the latest request start
    robots: RobotsRules | None = None  # None until its robots.txt was answered
    parked: int = 0  # page URLs waiting in the crawl state, queued after `pages`
    parked_after: int = 0  # the parking position of the last one read back
    unparking: bool = False  # a fetcher is reading some back (without the lock)

    def has_work(self) -> bool:
        return bool(self.requisites or self.pages or self.parked)


class MemoryFrontier:
    def __init__(self, *, max_pages: int | None = None, per_host: int = 1_000_000, delay: float = 0.0,
                 robots: bool = False, journal: Journal | None = None, parking: Parking | None = None,
                 max_queued_pages: int | None = None) -> None:
        """`per_host`, `delay`: politeness per host (scheme, name and port); `robots`: fetch
        each host's robots.txt first and obey it; `journal`: told of every change worth keeping
        (its calls must be quick: they happen under the lock); `parking`: where page URLs
        beyond `max_queued_pages` (None: MAX_QUEUED_PAGES) wait; None: all in memory."""
        # One lock guards every field below; `_changed` is signalled whenever the answer of
        # `get` may have changed: work added or finished, a host freed, or stop.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._seen: set[str] = set()
        self._skipped: dict[str, str] = {}  # URL -> the rule that kept it out
        self._hosts: dict[str, _Host] = {}  # in round-robin order: served hosts move to the end
        self._delayed: list[tuple[float, int, CrawlItem]] = []  # retries: heap of (due, seq, item)
        self._sequence = itertools.count()
        self._in_flight = 0
        self._pages_in_flight = 0
        self._html_pages_saved = 0
        self._max_pages = max_pages
        self._order = PageOrder() if max_pages is not None else None  # which held page goes next
        self._per_host = per_host
        self._delay = delay
        self._robots = robots
        self._journal: Journal = journal or NoJournal()
        self._parking = parking
        self._max_queued_pages = MAX_QUEUED_PAGES if max_queued_pages is None else max_queued_pages
        self._queued_pages = 0  # in the hosts' `pages` queues
        self._to_park: list[CrawlItem] = []  # parked by _enqueue, for the journal after `added`
        self._unparking = 0  # hosts being read back: the crawl is not over while any is
        self._stopped = False

    # -- producers -------------------------------------------------------------------------

    def add(self, item: CrawlItem) -> bool:
        """Queue `item` unless its URL was ever seen in this crawl (or robots.txt disallows
        it): True if it was queued. One test-and-set."""
        with self._lock:
            added = self._admit(item, START if item.depth == 0 else INF, 0)
            if added:
                self._journal.added([item])
                self._park_new()
                self._release()
                self._changed.notify()
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
            found_by = self._order.rank(source.url) if self._order is not None and source is not None else INF
            places = {link.url: place for place, link in enumerate(links)} if self._order is not None else {}
            for url, rule in skipped:
                self._skip(url, rule)
            for index, item in enumerate(items):
                by = found_by if source is not None else START if item.depth == 0 else INF
                if self._admit(item, by, places.get(item.url, index)):
                    added.append(item)
                elif item.url in self._skipped and self._skipped[item.url].startswith("robots"):
                    disallowed.append(item.url)
            if self._order is not None and source is not None:
                for place, link in enumerate(links):  # pages held since an earlier link found them again
                    if link.kind is LinkKind.PAGE:
                        self._order.relink(link.url, source.depth + 1, found_by, place, source.url)
            if added:
                self._journal.added(added)
                self._park_new()
                self._release()
                self._changed.notify(len(added))
        return disallowed

    def _admit(self, item: CrawlItem, found_by: int = INF, place: int = 0) -> bool:
        """Caller holds the lock."""
        if item.url in self._seen:
            return False
        host = self._hosts.get(origin_of(item.url))
        if host is not None and host.robots is not None and not host.robots.allows(item.url):
            if item.url not in self._skipped:
                rule = "robots_unavailable" if host.robots.disallow_all else "robots"
                self._skipped[item.url] = rule
                self._journal.skipped(item.url, rule)
            return False
        self._seen.add(item.url)
        self._skipped.pop(item.url, None)
        self._enqueue(item, found_by=found_by, place=place)
        return True

    def restore(self, seen: Iterable[str], pending: Iterable[CrawlItem], skipped: dict[str, str],
                html_pages_saved: int, parked: dict[str, int] | None = None) -> None:
        """Go on with an interrupted crawl: what it saw, what it still had to fetch (`parked`:
        how many page URLs of each host wait in the crawl state)."""
        with self._lock:
            self._seen.update(seen)
            self._skipped.update(skipped)
            self._html_pages_saved = html_pages_saved
            for origin, count in (parked or {}).items():
                self._host(origin).parked += count  # before the rest: they were queued earlier
            for item in pending:
                self._seen.add(item.url)
                self._enqueue(item, found_by=START if item.depth == 0 else INF)
            self._park_new()
            self._release()
            self._changed.notify_all()

    def claim(self, url: str) -> bool:
        """Mark `url` seen without queueing it (a redirect target fetched in place, on a host
        whose robots.txt is known): True if it is new and robots.txt allows it."""
        with self._lock:
            if url in self._seen:
                return False
            host = self._hosts.get(origin_of(url))
            if host is not None and host.robots is not None and not host.robots.allows(url):
                if url not in self._skipped:
                    self._skipped[url] = "robots"
                    self._journal.skipped(url, "robots")
                return False
            self._seen.add(url)
            self._skipped.pop(url, None)
            return True

    def adopt(self, item: CrawlItem) -> None:
        """A URL claimed for a redirect followed in place, whose fetch failed, becomes an item
        of its own, in flight from now on (journaled, so a resumed crawl knows it too)."""
        with self._lock:
            self._seen.add(item.url)
            self._journal.added([item])
            self._in_flight += 1
            if item.kind is LinkKind.PAGE:
                self._pages_in_flight += 1

    def skip(self, url: str, rule: str) -> None:
        """Record that the scope rule `rule` kept `url` out (first rule wins, for the report)."""
        with self._lock:
            self._skip(url, rule)

    def _skip(self, url: str, rule: str) -> None:
        """Caller holds the lock."""
        if url not in self._seen and url not in self._skipped:
            self._skipped[url] = rule
            self._journal.skipped(url, rule)

    # -- consumers -------------------------------------------------------------------------

    def get(self) -> CrawlItem | None:
        """The next URL to fetch; blocks while others may still produce work or a host must
        wait. Returns None once the crawl is complete or stopped."""
        with self._changed:
            while True:
                if self._stopped:
                    return None
                now = time.monotonic()
                self._promote_due_retries(now)
                item, wake_at, parked_host = self._take_ready(now)
                if parked_host is not None:
                    self._unpark(parked_host)
                    continue
                if item is not None:
                    self._in_flight += 1
                    if item.kind is LinkKind.PAGE:
                        self._pages_in_flight += 1
                    return item
                if self._in_flight == 0 and not self._delayed and wake_at is None and not self._unparking:
                    self._changed.notify_all()  # wake the other fetchers: they stop too
                    return None
                if self._delayed:
                    due = self._delayed[0][0]
                    wake_at = due if wake_at is None else min(wake_at, due)
                self._changed.wait(timeout=None if wake_at is None else max(0.0, wake_at - now))

    def release(self, item: CrawlItem, pause: float = 0.0) -> None:
        """The request for `item` is over (the response is in, or it failed): its host may send
        the next one. `pause`: seconds the host asked us to wait (Retry-After)."""
        with self._lock:
            host = self._hosts[origin_of(item.url)]
            host.in_flight -= 1
            if pause:
                host.not_before = max(host.not_before, time.monotonic() + pause)
            if host.has_work():
                self._changed.notify()  # one more request of this host may go

    def retry_later(self, item: CrawlItem, delay: float) -> None:
        """Take `item` out of flight and hand it out again after `delay` seconds."""
        with self._lock:
            self._leave_flight(item)
            retry = replace(item, attempt=item.attempt + 1)
            heapq.heappush(self._delayed, (time.monotonic() + delay, next(self._sequence), retry))
            self._changed.notify()  # someone must wait for it with a timeout

    def put_back(self, item: CrawlItem) -> None:
        """Take `item` out of flight unfetched (the crawl stopped mid-download): still pending."""
        with self._lock:
            self._leave_flight(item)
            self._enqueue(item, front=True)
            self._changed.notify()

    def task_done(self, item: CrawlItem, *, saved_html_page: bool = False) -> None:
        """The pipeline is done with `item`; its links, if any, were already added."""
        with self._lock:
            self._leave_flight(item)
            if saved_html_page:
                self._html_pages_saved += 1
            self._journal.done(item.url)
            if self._order is not None and self._order.done(item.url):
                self._release()
            # Waking every fetcher for every finished page would cost more CPU than the pages:
            # only the end of the crawl concerns all of them, and a page out of flight may free
            # room under max_pages for one more.
            if self._in_flight == 0:
                self._changed.notify_all()
            elif item.kind is LinkKind.PAGE and self._max_pages is not None:
                self._changed.notify()

    def set_robots(self, url: str, rules: RobotsRules) -> list[str]:
        """The answer to robots.txt at `url`: the other URLs of its host may go now. Returns
        the URLs queued for the host that the rules keep out (they are skipped now, so that
        links to them can be written as URLs while the crawl goes on)."""
        with self._lock:
            host = self._host(origin_of(url))
            host.robots = rules
            # Its Crawl-delay counts from the robots.txt request itself.
            host.not_before = max(host.not_before, host.last_start + self._delay_of(host))
            disallowed = [item for queue in (host.requisites, host.pages) for item in queue
                          if item.kind is not LinkKind.ROBOTS and not rules.allows(item.url)]
            if disallowed:
                out = {item.url for item in disallowed}
                host.requisites = deque(item for item in host.requisites if item.url not in out)
                pages = len(host.pages)
                host.pages = deque(item for item in host.pages if item.url not in out)
                self._queued_pages -= pages - len(host.pages)
                for item in disallowed:
                    self._skip_disallowed(item.url, rules)
            self._changed.notify_all()
            return [item.url for item in disallowed]

    def stop(self) -> None:
        """Stop handing out work (Ctrl-C); items already taken finish on their own."""
        with self._lock:
            self._stopped = True
            self._changed.notify_all()

    # -- inspection --------------------------------------------------------------------------

    @property
    def html_pages_saved(self) -> int:
        with self._lock:
            return self._html_pages_saved

    def seen_count(self) -> int:
        with self._lock:
            return len(self._seen)

    def backlog(self) -> tuple[int, int]:
        """(URLs queued for a fetcher, URLs waiting out a retry delay); not the pages max_pages
        holds back (see page_limit)."""
        with self._lock:
            pages = self._page_budget_left()
            queued = sum(len(host.requisites) + (len(host.pages) + host.parked if pages else 0)
                         for host in self._hosts.values())
            return queued, len(self._delayed)

    def page_limit(self) -> tuple[int, bool]:
        """(pages max_pages holds back, whether it is used up: by pages saved, or in flight)."""
        with self._lock:
            held = len(self._order) if self._order is not None else 0
            if self._max_pages is None:
                return held, False
            in_play = self._order.open_pages() if self._order is not None else self._pages_in_flight
            reached = self._html_pages_saved + max(in_play, self._pages_in_flight) >= self._max_pages
            if reached:
                held += sum(len(host.pages) + host.parked for host in self._hosts.values())
            return held, reached

    def skipped(self) -> dict[str, str]:
        with self._lock:
            return dict(self._skipped)

    def pending(self) -> list[CrawlItem]:
        """URLs seen but never handed out (what a stop or max_pages left behind)."""
        with self._lock:
            waiting = [item for host in self._hosts.values() for item in (*host.requisites, *host.pages)]
            waiting += [entry[2] for entry in self._delayed]
            waiting += self._order.held() if self._order is not None else []
            parked = [(origin, host.parked_after) for origin, host in self._hosts.items() if host.parked]
        for origin, after in parked:  # read without the lock, as in _unpark
            assert self._parking is not None
            waiting += [item for _, item in self._parking.unpark(origin, after, None)]
        return waiting

    # -- internals (caller holds the lock) --------------------------------------------------

    def _host(self, origin: str) -> _Host:
        host = self._hosts.get(origin)
        if host is None:
            host = self._hosts[origin] = _Host(robots=None if self._robots else ALLOW_ALL)
            if self._robots:  # a new host: its robots.txt goes before anything else
                robots_url = origin + "/robots.txt"
                self._seen.add(robots_url)
                host.requisites.append(CrawlItem(robots_url, 0, LinkKind.ROBOTS))
        return host

    def _enqueue(self, item: CrawlItem, front: bool = False, found_by: int = INF, place: int = 0) -> None:
        host = self._host(origin_of(item.url))
        queue = host.requisites
        if item.kind is LinkKind.PAGE:
            full = self._queued_pages >= self._max_queued_pages
            if self._parking is not None and not front and (host.parked or full):
                host.parked += 1  # after those parked before it: the host's order holds
                self._to_park.append(item)
                return
            self._queued_pages += 1
            if self._order is not None and not front:  # released to host.pages in its turn
                self._order.hold(item, found_by, place)
                return
            queue = host.pages
        elif item.kind is LinkKind.SITEMAP and self._order is not None and not front:
            self._order.producing(item)
        if front:
            queue.appendleft(item)
        else:
            queue.append(item)

    def _take_ready(self, now: float) -> tuple[CrawlItem | None, float | None, str | None]:
        """The next URL some host may send now, in round-robin order over hosts; else the
        earliest time a host becomes free (None: only in-flight work can change things); or
        a host whose next URLs must first be read back from the parking."""
        wake_at: float | None = None
        for key in list(self._hosts):
            host = self._hosts[key]
            if not host.has_work() or host.in_flight >= self._per_host:
                continue
            if host.not_before > now:
                wake_at = host.not_before if wake_at is None else min(wake_at, host.not_before)
                continue
            item = self._next_of(host)
            if item is None:
                if host.parked and not host.pages and not host.unparking and host.robots is not None \
                        and self._page_budget_left():
                    return None, None, key
                continue
            host.in_flight += 1
            host.last_start = now
            host.not_before = now + self._delay_of(host)
            self._hosts[key] = self._hosts.pop(key)  # to the end of the round
            return item, None, None
        return None, wake_at, None

    def _next_of(self, host: _Host) -> CrawlItem | None:
        """The host's next URL that may go: robots.txt before anything else, requisites before
        pages, pages only within max_pages. Disallowed URLs are skipped here."""
        while host.requisites or (host.pages and self._page_budget_left()):
            if host.robots is None:  # robots.txt unanswered: only its own request may go
                head = host.requisites[0] if host.requisites else None
                return host.requisites.popleft() if head and head.kind is LinkKind.ROBOTS else None
            if host.requisites:
                item = host.requisites.popleft()
            else:
                item = host.pages.popleft()
                self._queued_pages -= 1
            if item.kind is LinkKind.ROBOTS or host.robots.allows(item.url):
                return item
            self._skip_disallowed(item.url, host.robots)
        return None

    def _park_new(self) -> None:
        """Journal the page URLs _enqueue parked (after their `added`, which creates them)."""
        if self._to_park:
            assert self._parking is not None
            self._parking.park(self._to_park)
            self._to_park = []

    def _unpark(self, origin: str) -> None:
        """Read the next parked page URLs of a host back into its queue. The lock is let go
        meanwhile: the crawl state may have to commit them first, and must never wait for a
        thread that waits for the frontier."""
        assert self._parking is not None
        host = self._hosts[origin]
        host.unparking = True
        self._unparking += 1
        self._lock.release()
        try:
            rows = self._parking.unpark(origin, host.parked_after, min(UNPARK_BATCH, self._max_queued_pages))
        finally:
            self._lock.acquire()
            host.unparking = False
            self._unparking -= 1
        if rows:
            host.parked -= len(rows)
            host.parked_after = rows[-1][0]
            host.pages.extend(item for _, item in rows)
            self._queued_pages += len(rows)
        else:  # the crawl state has none left (it failed: that stops the crawl)
            host.parked = 0
        self._changed.notify_all()

    def _skip_disallowed(self, url: str, rules: RobotsRules) -> None:
        """A queued URL that robots.txt keeps out: skipped, and no longer pending."""
        rule = "robots_unavailable" if rules.disallow_all else "robots"
        self._skipped[url] = rule
        self._journal.skipped(url, rule)
        self._journal.done(url)
        if self._order is not None and self._order.done(url):
            self._release()

    def _release(self) -> None:
        """Move the held pages whose turn it is (see ordering.py) to their hosts' queues."""
        if self._order is None or self._max_pages is None:
            return
        budget = self._max_pages - self._html_pages_saved - self._order.open_pages()
        released = self._order.release(budget)
        for item in released:
            self._host(origin_of(item.url)).pages.append(item)
        if released:
            self._changed.notify(len(released))

    def _delay_of(self, host: _Host) -> float:
        crawl_delay = host.robots.crawl_delay if host.robots is not None else None
        return max(self._delay, crawl_delay or 0.0)

    def _page_budget_left(self) -> bool:
        """max_pages counts saved HTML pages; pages in flight may still turn out to be HTML."""
        if self._max_pages is None:
            return True
        return self._html_pages_saved + self._pages_in_flight < self._max_pages

    def _promote_due_retries(self, now: float) -> None:
        while self._delayed and self._delayed[0][0] <= now:
            item = heapq.heappop(self._delayed)[2]
            self._enqueue(item, front=True)  # a retry jumps the queue: it may hold up a page

    def _leave_flight(self, item: CrawlItem) -> None:
        self._in_flight -= 1
        if item.kind is LinkKind.PAGE:
            self._pages_in_flight -= 1
