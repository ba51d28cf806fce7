"""The frontier's hosts: one queue per host, and the politeness that decides when a host may
send its next request. Not thread-safe on its own: the frontier holds its lock around every
call.

A host hands out its next URL only when its robots.txt is known (its robots.txt request goes
first), fewer than its limit of requests are in flight (politeness.per_host over HTTP/2, where
they share a connection; no more than the fetchers' connections over HTTP/1.1, and until the
host's protocol is known), and its `delay` (or its
robots.txt Crawl-delay, if longer) has passed since its last request started. Hosts take
turns, round robin, so a slow host never holds up another. Page URLs beyond what memory may
hold wait in the crawl state (*parked*) and come back, in order, when the host's queue runs
dry; the frontier reads them back, since that needs its lock let go.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from crawler.http.robots import ALLOW_ALL, RobotsRules
from crawler.models import CrawlItem, LinkKind


@dataclass
class Host:
    """One host's queues and politeness state."""

    requisites: deque[CrawlItem] = field(default_factory=deque)  # robots.txt, then requisites
    pages: deque[CrawlItem] = field(default_factory=deque)
    in_flight: int = 0  # requests, not pipeline work: released when the response is in
    not_before: float = 0.0  # time.monotonic() before which no request may start
    last_start: float = 0.0  # time.monotonic() of the latest request start
    robots: RobotsRules | None = None  # None until its robots.txt was answered
    parked: int = 0  # page URLs waiting in the crawl state, queued after `pages`
    parked_after: int = 0  # the parking position of the last one read back
    unparking: bool = False  # a fetcher is reading some back (without the lock)
    limit: int = 1  # requests in flight at most (politeness.per_host; fewer over HTTP/1.1)

    def has_work(self) -> bool:
        return bool(self.requisites or self.pages or self.parked)


Disallowed = Callable[[str, RobotsRules], None]  # told of a queued URL robots.txt keeps out


class Hosts:
    def __init__(self, *, per_host: int, per_host_http1: int, delay: float, robots: bool,
                 on_new_robots: Callable[[str], None]) -> None:
        """`per_host`: requests in flight to a host at most; `per_host_http1`: to a host that
        does not multiplex (HTTP/1.1: a connection each), or whose protocol is not known yet;
        `robots`: each new host's robots.txt goes first (`on_new_robots(url)` is told of it, to
        be marked seen); otherwise every host allows everything."""
        self._hosts: dict[str, Host] = {}  # in round-robin order: served hosts move to the end
        self._per_host = per_host
        self._per_host_http1 = min(per_host, per_host_http1)
        self._delay = delay
        self._robots = robots
        self._on_new_robots = on_new_robots
        self.queued_pages = 0  # in the hosts' `pages` queues

    def __iter__(self) -> Iterator[tuple[str, Host]]:
        return iter(self._hosts.items())

    def get(self, origin: str) -> Host:
        """The host of `origin`, new if need be (its robots.txt queued first)."""
        host = self._hosts.get(origin)
        if host is None:
            host = self._hosts[origin] = Host(robots=None if self._robots else ALLOW_ALL, limit=self._per_host_http1)
            if self._robots:
                robots_url = origin + "/robots.txt"
                self._on_new_robots(robots_url)
                host.requisites.append(CrawlItem(robots_url, 0, LinkKind.ROBOTS))
        return host

    def known(self, origin: str) -> Host | None:
        return self._hosts.get(origin)

    def queue(self, item: CrawlItem, origin: str, *, front: bool = False) -> None:
        """Queue `item` for its host: a page to its pages, anything else to its requisites."""
        host = self.get(origin)
        queue = host.pages if item.kind is LinkKind.PAGE else host.requisites
        self.queued_pages += item.kind is LinkKind.PAGE
        if front:
            queue.appendleft(item)
        else:
            queue.append(item)

    def take_ready(self, now: float, pages_allowed: bool, disallowed: Disallowed
                   ) -> tuple[CrawlItem | None, float | None, str | None]:
        """The next URL some host may send now, in round-robin order; else the earliest time a
        host becomes free (None: only in-flight work can change things); or the origin of a
        host whose next URLs must first be read back from the parking."""
        wake_at: float | None = None
        for origin in list(self._hosts):
            host = self._hosts[origin]
            if not host.has_work() or host.in_flight >= host.limit:
                continue
            if host.not_before > now:
                wake_at = host.not_before if wake_at is None else min(wake_at, host.not_before)
                continue
            item = self._next_of(host, pages_allowed, disallowed)
            if item is None:
                if host.parked and not host.pages and not host.unparking and host.robots is not None \
                        and pages_allowed:
                    return None, None, origin
                continue
            host.in_flight += 1
            host.last_start = now
            host.not_before = now + self._delay_of(host)
            self._hosts[origin] = self._hosts.pop(origin)  # to the end of the round
            return item, None, None
        return None, wake_at, None

    def _next_of(self, host: Host, pages_allowed: bool, disallowed: Disallowed) -> CrawlItem | None:
        """The host's next URL that may go: robots.txt before anything else, requisites before
        pages, pages only when allowed (max_pages). Disallowed URLs are dropped here."""
        while host.requisites or (host.pages and pages_allowed):
            if host.robots is None:  # robots.txt unanswered: only its own request may go
                head = host.requisites[0] if host.requisites else None
                return host.requisites.popleft() if head and head.kind is LinkKind.ROBOTS else None
            if host.requisites and not _start_url_first(host, pages_allowed):
                item = host.requisites.popleft()
            else:
                item = host.pages.popleft()
                self.queued_pages -= 1
            if item.kind is LinkKind.ROBOTS or host.robots.allows(item.url):
                return item
            disallowed(item.url, host.robots)
        return None

    def multiplexes(self, origin: str, yes: bool) -> bool:
        """The host answered over HTTP/2 (`yes`: its requests may share a connection) or not.
        True if it may take more requests in flight now."""
        host = self.get(origin)
        before = host.limit
        host.limit = self._per_host if yes else self._per_host_http1
        return host.limit > before

    def release(self, origin: str, now: float, pause: float = 0.0) -> bool:
        """A request of the host is over; `pause`: seconds it asked us to wait (Retry-After).
        True if the host has more to send."""
        host = self._hosts[origin]
        host.in_flight -= 1
        if pause:
            host.not_before = max(host.not_before, now + pause)
        return host.has_work()

    def robots_rules(self, origin: str) -> RobotsRules | None:
        """The host's rules, if it answered (a host not met is not made)."""
        host = self._hosts.get(origin)
        return host.robots if host is not None else None

    def learn_robots(self, origin: str, rules: RobotsRules) -> list[CrawlItem]:
        """The host's robots.txt answered: its rules apply from now on. Returns the URLs
        queued for it that the rules keep out, taken out of its queues."""
        host = self.get(origin)
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
            self.queued_pages -= pages - len(host.pages)
        return disallowed

    def waiting(self, pages: bool = True) -> int:
        """URLs queued (with `pages`, page URLs too, parked ones included)."""
        return sum(len(host.requisites) + (len(host.pages) + host.parked if pages else 0)
                   for host in self._hosts.values())

    def queued_items(self) -> list[CrawlItem]:
        return [item for host in self._hosts.values() for item in (*host.requisites, *host.pages)]

    def _delay_of(self, host: Host) -> float:
        crawl_delay = host.robots.crawl_delay if host.robots is not None else None
        return max(self._delay, crawl_delay or 0.0)


def _start_url_first(host: Host, pages_allowed: bool) -> bool:
    """A start URL goes before a sitemap: it takes the connection robots.txt warmed up (the
    sitemap, maybe megabytes, a new one), and its links start the crawl."""
    return pages_allowed and bool(host.pages) and host.pages[0].depth == 0 \
        and host.requisites[0].kind is LinkKind.SITEMAP
