"""Under scope.max_pages: the order pages go in, so that a capped crawl saves the same pages
every run.

Without a cap, the order pages are fetched in does not matter: all of them are. Under one, the
first N decide what the mirror holds, and first-come order -- which page a fetcher happened to
finish first -- would give each run of an unchanged site a different N. So pages go breadth
first, closest to a start URL first, and at one depth in the order of the links that found them:
by the rank of the page that links to them (the order pages went in), then by the link's place
in that page, then by URL. A page found again through an earlier link takes that link's place.

A page *held* here goes (is *released* to its host's queue) only when
- no held page of its host comes before it,
- no page of its host that could still be found would come before it: every page of the host
  ranked before the page that found it is done (its links are in), and so is every sitemap of
  the host at the depths above,
- and the budget allows: pages saved plus pages released and not done stay under max_pages.
A released page takes the next rank. A page waits only for the pages that come before it, not
for a whole depth to end, and only for pages of its own host: a slow host never holds up
another. (The price: with several hosts, which host's pages take the last places under the cap
can vary between runs. One host -- the usual case -- is always the same.)

Pages found otherwise than through the links of pages -- the start URLs, sitemaps' pages,
redirects to another host, a resumed crawl's pages -- go after the linked pages of their depth
(rank INF). A frame's links, or a sitemap that a host's robots.txt names mid-crawl, may join
their depth after pages behind them went, which can vary between runs; so can the pages of a
frontier too big for memory (parking.py: parked pages bypass this order).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from crawler.models import CrawlItem, Link, LinkKind
from crawler.urls import origin_of

INF = 2**62  # the rank of what is not a ranked page: after every ranked page
START = -1  # the "rank" of what found the start URLs: before every page
FEW_HOSTS = 4  # up to this many hosts, a held page is looked for in each (PageOrder._holder)

Key = tuple[int, int, int, str]  # depth, rank of the page that found it, place of the link there, URL


@dataclass
class _Host:
    """One host's held pages, and its released pages and sitemaps not done yet."""

    held: list[Key] = field(default_factory=list)  # a heap; a key the page no longer has is skipped
    items: dict[str, tuple[Key, CrawlItem]] = field(default_factory=dict)  # held URL -> its key now, the page
    open: list[int] = field(default_factory=list)  # ranks of released pages not done (a heap; done ones leave lazily)
    closed: set[int] = field(default_factory=set)  # ranks done but still in `open`
    open_at: Counter[int] = field(default_factory=Counter)  # depth -> released pages not done there
    producing: Counter[int] = field(default_factory=Counter)  # depth -> sitemaps not done there

    def may_go(self, key: Key) -> bool:
        """Can no page still to be found come before `key`?"""
        depth, found_by, _, _ = key
        last_producing = depth - 1 if found_by == INF else depth - 2
        if any(count for at, count in self.producing.items() if at <= last_producing):
            return False
        if found_by == INF:  # after every linked page of its depth: the depths above are done
            return not any(count for at, count in self.open_at.items() if at < depth)
        # Pages ranked before the one that found it may find pages that go before it.
        return not self.open or self.open[0] >= found_by

    def next_key(self) -> Key | None:
        """The first held page's key (dropping the keys pages no longer have)."""
        while self.held:
            key = self.held[0]
            item = self.items.get(key[3])
            if item is not None and item[0] == key:
                return key
            heapq.heappop(self.held)
        return None


class PageOrder:
    """The held pages and the ranks of released ones, host by host. Not thread-safe: the
    frontier calls it under its lock."""

    def __init__(self) -> None:
        self._hosts: dict[str, _Host] = {}
        self._ranks: dict[str, tuple[int, int]] = {}  # released page not done yet -> its rank, its depth
        self._producers: dict[str, int] = {}  # sitemap not done yet -> its depth
        self._held = 0
        self._next_rank = 0

    def __len__(self) -> int:
        return self._held

    def held(self) -> list[CrawlItem]:
        return [item for host in self._hosts.values() for _, item in host.items.values()]

    def open_pages(self) -> int:
        """Released pages not done yet: each may still become a saved page."""
        return len(self._ranks)

    def rank(self, url: str) -> int:
        return self._ranks.get(url, (INF, 0))[0]

    def hold(self, item: CrawlItem, found_by: int, place: int) -> None:
        """A new page, found by the page of rank `found_by` in the link at `place`."""
        host = self._host(item.url)
        key = (item.depth, found_by, place, item.url)
        host.items[item.url] = (key, item)
        heapq.heappush(host.held, key)
        self._held += 1

    def relink(self, url: str, depth: int, found_by: int, place: int, referrer: str) -> None:
        """A held page found again: an earlier link gives it an earlier place (and depth)."""
        host = self._holder(url)
        if host is None:  # nearly every link of a page: not held
            return
        held = host.items[url]
        key = (depth, found_by, place, url)
        if key < held[0]:
            host.items[url] = (key, replace(held[1], depth=depth, referrer=referrer))
            heapq.heappush(host.held, key)

    def _holder(self, url: str) -> _Host | None:
        """The host holding `url`, if it is held. Asked for every page link of every page
        parsed: with a few hosts, looking in each one's held pages is cheaper than working out
        the URL's origin (a URL is only ever held by its own host)."""
        if len(self._hosts) <= FEW_HOSTS:
            for host in self._hosts.values():
                if url in host.items:
                    return host
            return None
        host = self._hosts.get(origin_of(url))
        return host if host is not None and url in host.items else None

    def producing(self, item: CrawlItem) -> None:
        """A sitemap: the pages it lists may come before pages of the depths below."""
        if item.url not in self._producers:
            self._producers[item.url] = item.depth
            self._host(item.url).producing[item.depth] += 1

    def done(self, url: str) -> bool:
        """`url` is done (its links are in): True if that may let held pages go."""
        ranked = self._ranks.pop(url, None)
        if ranked is not None:
            rank, depth = ranked
            host = self._host(url)
            host.open_at[depth] -= 1
            host.closed.add(rank)
            while host.open and host.open[0] in host.closed:
                host.closed.discard(heapq.heappop(host.open))
            return True
        depth = self._producers.pop(url, None)
        if depth is not None:
            self._host(url).producing[depth] -= 1
            return True
        return False

    def release(self, budget: int) -> list[CrawlItem]:
        """Up to `budget` held pages that may go now, each given its rank: host by host, each
        host's in order."""
        released: list[CrawlItem] = []
        for host in self._hosts.values():
            while len(released) < budget and (key := host.next_key()) is not None and host.may_go(key):
                heapq.heappop(host.held)
                _, item = host.items.pop(key[3])
                self._held -= 1
                self._ranks[item.url] = (self._next_rank, item.depth)
                heapq.heappush(host.open, self._next_rank)
                host.open_at[item.depth] += 1
                self._next_rank += 1
                released.append(item)
        return released

    def _host(self, url: str) -> _Host:
        origin = origin_of(url)
        host = self._hosts.get(origin)
        if host is None:
            host = self._hosts[origin] = _Host()
        return host


class PageBudget:
    """scope.max_pages: whether a page may still be fetched, and under the cap which page goes
    next (PageOrder). Not thread-safe: the frontier calls it under its lock."""

    def __init__(self, max_pages: int | None) -> None:
        self.max_pages = max_pages
        self.saved = 0  # HTML pages saved
        self.in_flight = 0  # page URLs handed out and not done
        self.order = PageOrder() if max_pages is not None else None  # which held page goes next

    def left(self) -> bool:
        """max_pages counts saved HTML pages; pages in flight may still turn out to be HTML."""
        return self.max_pages is None or self.saved + self.in_flight < self.max_pages

    def releasable(self) -> list[CrawlItem]:
        """The held pages whose turn it is, within the budget: taken out of the order."""
        if self.order is None or self.max_pages is None:
            return []
        return self.order.release(self.max_pages - self.saved - self.order.open_pages())

    def places(self, source: CrawlItem | None, links: Sequence[Link]) -> Callable[[CrawlItem, int], tuple[int, int]]:
        """Where each new URL of `source`'s `links` (all of them, in order) takes its place in
        the order: (the rank of what found it, its place there), given the item and its index
        among those added."""
        if self.order is None:
            return lambda item, index: (INF, index)
        found_by = self.order.rank(source.url) if source is not None else INF
        places = {link.url: place for place, link in enumerate(links)}

        def place_of(item: CrawlItem, index: int) -> tuple[int, int]:
            by = found_by if source is not None else START if item.depth == 0 else INF
            return by, places.get(item.url, index)
        return place_of

    def found_again(self, source: CrawlItem | None, links: Sequence[Link]) -> None:
        """Pages held since an earlier link found them take the place of an earlier one."""
        if self.order is None or source is None or not len(self.order):  # none held
            return
        found_by = self.order.rank(source.url)
        for place, link in enumerate(links):
            if link.kind is LinkKind.PAGE:
                self.order.relink(link.url, source.depth + 1, found_by, place, source.url)

    def limit(self, queued_pages: int) -> tuple[int, bool]:
        """(pages held back, whether max_pages is used up: by pages saved, or in flight);
        `queued_pages`: page URLs in the hosts' queues, held back too once it is."""
        held = len(self.order) if self.order is not None else 0
        if self.max_pages is None:
            return held, False
        in_play = self.order.open_pages() if self.order is not None else self.in_flight
        reached = self.saved + max(in_play, self.in_flight) >= self.max_pages
        return held + (queued_pages if reached else 0), reached
