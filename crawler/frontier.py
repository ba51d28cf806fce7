"""The frontier: which URLs were seen, which wait, and how many are in flight, under one lock.

A URL is *in flight* from the moment a fetcher takes it until the pipeline is completely done
with it (fetched, its links added back here, its file written, or its failure recorded).
The crawl is over exactly when nothing is pending, nothing waits for a retry, and nothing
is in flight: only then can no new URL appear. `get` returns None from that moment on, which
is what lets every fetcher stop without a timeout or a sleep.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import replace

from crawler.models import CrawlItem, LinkKind


class Frontier:
    def __init__(self, max_pages: int | None = None) -> None:
        # One lock guards every field below; `_changed` is signalled whenever the answer of
        # `get` may have changed: work added, work finished, a retry came due, or stop.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._seen: set[str] = set()
        self._skipped: dict[str, str] = {}  # URL -> the scope rule that kept it out
        # Requisites go first: they complete pages already saved, and they add no new links.
        self._requisites: deque[CrawlItem] = deque()
        self._pages: deque[CrawlItem] = deque()
        self._delayed: list[tuple[float, int, CrawlItem]] = []  # heap of (due, seq, item)
        self._sequence = itertools.count()
        self._in_flight = 0
        self._pages_in_flight = 0
        self._html_pages_saved = 0
        self._max_pages = max_pages
        self._stopped = False

    # -- producers -------------------------------------------------------------------------

    def add(self, item: CrawlItem) -> bool:
        """Queue `item` unless its URL was ever seen in this crawl. One test-and-set."""
        return self.add_all((item,)) == 1

    def add_all(self, items: Iterable[CrawlItem]) -> int:
        """Queue each item whose URL is new (one lock for a page's links); returns how many."""
        added = 0
        with self._lock:
            for item in items:
                if item.url in self._seen:
                    continue
                self._seen.add(item.url)
                self._skipped.pop(item.url, None)
                (self._pages if item.kind is LinkKind.PAGE else self._requisites).append(item)
                added += 1
            if added:
                self._changed.notify(added)
        return added

    def claim(self, url: str) -> bool:
        """Mark `url` seen without queueing it (a redirect target fetched in place): True if new."""
        with self._lock:
            if url in self._seen:
                return False
            self._seen.add(url)
            self._skipped.pop(url, None)
            return True

    def skip(self, url: str, rule: str) -> None:
        """Record that the scope rule `rule` kept `url` out (first rule wins, for the report)."""
        with self._lock:
            if url not in self._seen:
                self._skipped.setdefault(url, rule)

    # -- consumers -------------------------------------------------------------------------

    def get(self) -> CrawlItem | None:
        """The next URL to fetch; blocks while others may still produce work.

        Returns None once the crawl is complete or stopped.
        """
        with self._changed:
            while True:
                if self._stopped:
                    return None
                self._promote_due_retries()
                item = self._take_ready()
                if item is not None:
                    self._in_flight += 1
                    if item.kind is LinkKind.PAGE:
                        self._pages_in_flight += 1
                    return item
                if self._in_flight == 0 and not self._delayed:
                    self._changed.notify_all()  # wake the other fetchers: they stop too
                    return None
                due = self._delayed[0][0] - time.monotonic() if self._delayed else None
                self._changed.wait(timeout=due)

    def retry_later(self, item: CrawlItem, delay: float) -> None:
        """Take `item` out of flight and hand it out again after `delay` seconds."""
        with self._lock:
            self._leave_flight(item)
            retry = replace(item, attempt=item.attempt + 1)
            heapq.heappush(self._delayed, (time.monotonic() + delay, next(self._sequence), retry))
            self._changed.notify_all()

    def task_done(self, item: CrawlItem, *, saved_html_page: bool = False) -> None:
        """The pipeline is done with `item`; its links, if any, were already added."""
        with self._lock:
            self._leave_flight(item)
            if saved_html_page:
                self._html_pages_saved += 1
            self._changed.notify_all()

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

    def skipped(self) -> dict[str, str]:
        with self._lock:
            return dict(self._skipped)

    def pending(self) -> list[CrawlItem]:
        """URLs seen but never handed out (what a stop or max_pages left behind)."""
        with self._lock:
            return [*self._requisites, *self._pages, *(entry[2] for entry in self._delayed)]

    # -- internals (caller holds the lock) --------------------------------------------------

    def _take_ready(self) -> CrawlItem | None:
        if self._requisites:
            return self._requisites.popleft()
        if self._pages and self._page_budget_left():
            return self._pages.popleft()
        return None

    def _page_budget_left(self) -> bool:
        """max_pages counts saved HTML pages; pages in flight may still turn out to be HTML."""
        if self._max_pages is None:
            return True
        return self._html_pages_saved + self._pages_in_flight < self._max_pages

    def _promote_due_retries(self) -> None:
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            item = heapq.heappop(self._delayed)[2]
            # A retry jumps the queue: it was admitted long ago and may hold up a page.
            (self._pages if item.kind is LinkKind.PAGE else self._requisites).appendleft(item)

    def _leave_flight(self, item: CrawlItem) -> None:
        self._in_flight -= 1
        if item.kind is LinkKind.PAGE:
            self._pages_in_flight -= 1
