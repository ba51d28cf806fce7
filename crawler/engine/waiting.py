"""Where an admitted URL waits for a fetcher: in its host's queue (hosts.py); a page URL
under max_pages held back until its turn (ordering.py); a page URL beyond what memory may
hold parked in the crawl state (parking.py). The frontier decides what is admitted and hands
URLs out; this is where they are put meanwhile, and taken back from.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from crawler.engine.hosts import Hosts
from crawler.engine.ordering import INF, START, PageBudget
from crawler.engine.parking import ParkedPages
from crawler.models import CrawlItem, LinkKind
from crawler.urls import origin_of


class WaitingRoom:
    """Not thread-safe: the frontier calls it under its lock, whose condition (`changed`) it
    signals when URLs become ready."""

    def __init__(self, hosts: Hosts, budget: PageBudget, parked: ParkedPages, changed: threading.Condition) -> None:
        self._hosts = hosts
        self._budget = budget
        self._parked = parked
        self._changed = changed

    def enqueue(self, item: CrawlItem, front: bool = False, found_by: int = INF, place: int = 0) -> None:
        origin = origin_of(item.url)
        host = self._hosts.get(origin)  # a new host's robots.txt goes first
        order = self._budget.order
        if item.kind is LinkKind.PAGE and not front:
            if self._parked.park_if_full(host, item, self._hosts.queued_pages):
                return
            if order is not None:  # released to the host's queue in its turn
                self._hosts.queued_pages += 1
                order.hold(item, found_by, place)
                return
        elif item.kind is LinkKind.SITEMAP and order is not None and not front:
            order.producing(item)
        self._hosts.queue(item, origin, front=front)

    def restore(self, pending: Iterable[CrawlItem], parked: dict[str, int], admit: Callable[[str], None]) -> None:
        """What an interrupted crawl still had to fetch, each URL `admit`ted as seen; `parked`:
        how many page URLs of each host wait in the crawl state."""
        for origin, count in parked.items():
            self._hosts.get(origin).parked += count  # before the rest: they were queued earlier
        for item in pending:
            admit(item.url)
            self.enqueue(item, found_by=START if item.depth == 0 else INF)
        self._parked.store_new()
        self.release()

    def unpark(self, origin: str) -> None:
        """Read the next parked page URLs of a host back into its queue (see parking.py)."""
        host = self._hosts.get(origin)
        items = self._parked.read_back(origin, host)
        host.pages.extend(items)
        self._hosts.queued_pages += len(items)
        self._changed.notify_all()

    def done(self, url: str) -> None:
        """Under max_pages, a page done may let the pages it held back go."""
        if self._budget.order is not None and self._budget.order.done(url):
            self.release()

    def release(self) -> None:
        """Move the held pages whose turn it is (see ordering.py) to their hosts' queues."""
        released = self._budget.releasable()
        for item in released:
            self._hosts.get(origin_of(item.url)).pages.append(item)
        if released:
            self._changed.notify(len(released))

    def in_memory(self) -> list[CrawlItem]:
        """Every URL waiting in a host's queue or held back by the page order."""
        held = self._budget.order.held() if self._budget.order is not None else []
        return self._hosts.queued_items() + held

    def parked_hosts(self) -> list[tuple[str, int]]:
        """(origin, where its parked pages start) of each host with pages parked."""
        return [(origin, host.parked_after) for origin, host in self._hosts if host.parked]
