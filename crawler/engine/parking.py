"""Page URLs beyond what memory may hold wait in the crawl state, not in the frontier: they
are *parked* (they are journaled there anyway) and read back, in order, a batch at a time when
their host's queue runs dry -- so a site that links to millions of pages does not need their
queue in memory.
"""

from __future__ import annotations

import threading
from typing import Protocol

from crawler.engine.hosts import Host
from crawler.models import CrawlItem

MAX_QUEUED_PAGES = 20_000  # page URLs queued in memory (~200 bytes each); the rest are parked
UNPARK_BATCH = 5_000  # page URLs read back at a time


class Parking(Protocol):
    """Where page URLs wait when too many are queued (the crawl state)."""

    def park(self, items: list[CrawlItem]) -> None: ...
    def unpark(self, origin: str, after: int, limit: int | None) -> list[tuple[int, CrawlItem]]: ...


class ParkedPages:
    """The frontier's side of parking. Not thread-safe: the frontier calls it under its lock,
    which `read_back` lets go while it reads."""

    def __init__(self, store: Parking | None, max_queued: int | None, lock: threading.Lock) -> None:
        """`store`: where pages are parked (None: all stay in memory); `max_queued`: page URLs
        queued in memory at most (None: MAX_QUEUED_PAGES)."""
        self._store = store
        self._max_queued = MAX_QUEUED_PAGES if max_queued is None else max_queued
        self._lock = lock
        self._new: list[CrawlItem] = []  # parked, for the store once they are journaled as added
        self.reading = 0  # hosts being read back: the crawl is not over while any is

    def park_if_full(self, host: Host, item: CrawlItem, queued_pages: int) -> bool:
        """Park the page `item` if memory is full, or if its host has pages parked already
        (they go first: the host's order holds). True if it was parked."""
        if self._store is None or not (host.parked or queued_pages >= self._max_queued):
            return False
        host.parked += 1
        self._new.append(item)
        return True

    def store_new(self) -> None:
        """Give the store the pages parked since (after their `added`, which creates them)."""
        if self._new:
            assert self._store is not None
            self._store.park(self._new)
            self._new = []

    def read_back(self, origin: str, host: Host) -> list[CrawlItem]:
        """The next parked pages of a host, taken off its count. The caller's lock is let go
        meanwhile: the crawl state may have to commit them first, and must never wait for a
        thread that waits for the frontier."""
        assert self._store is not None
        host.unparking = True
        self.reading += 1
        self._lock.release()
        try:
            rows = self._store.unpark(origin, host.parked_after, min(UNPARK_BATCH, self._max_queued))
        finally:
            self._lock.acquire()
            host.unparking = False
            self.reading -= 1
        if not rows:  # the crawl state has none left (it failed: that stops the crawl)
            host.parked = 0
            return []
        host.parked -= len(rows)
        host.parked_after = rows[-1][0]
        return [item for _, item in rows]

    def all_of(self, parked: list[tuple[str, int]]) -> list[CrawlItem]:
        """Every page still parked, for hosts given as (origin, position read so far); called
        without the lock."""
        if self._store is None:
            return []
        return [item for origin, after in parked for _, item in self._store.unpark(origin, after, None)]
