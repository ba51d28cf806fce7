"""The frontier of a crawl shared through Redis: the seen-set, one queue per host, politeness,
leases, retries and max_pages live in Redis, and every change is one Lua script
(crawler/engine/lua/), so several workers on several machines hand out each URL once.

Keys, under "crawl:<id>:<generation>:":
  seen (set), skipped (hash URL -> rule)       every URL admitted; those a rule kept out
  rq:<origin>, pq:<origin> (lists)              a host's queued requisites (robots.txt first), pages
  hosts (zset origin -> ms)                      hosts with queued URLs, by when they may go next
  h:<origin> (hash)                              robots ('0' pending, 'k' known), cd (Crawl-delay),
                                                 nb (not before), ls (last start), mux (HTTP/2)
  slots:<origin> (hash token -> worker)          requests in flight to the host (per_host)
  leases (hash URL -> [item, worker, token, origin]), wl:<worker> (set)   URLs in flight
  workers (zset worker -> expiry ms)             live workers (renewed by each one's heartbeat)
  retries (zset URL -> due), retry_items         URLs waiting out a retry delay
  counts (hash)                                  nreq, npage (queued), pif (pages in flight),
                                                 saved_html (for max_pages)
  robots (hash origin -> rules)                  each host's robots.txt, fetched once per crawl

Politeness is global: a host's `per_host` request slots, its `delay` (or Crawl-delay) and a
Retry-After pause hold for all workers together, timed by the Redis server's clock.

Under scope.max_pages the cap is exact -- pages saved plus pages in flight never pass it --
but pages go first come, first served, each host's in the order they were found: which pages
make a capped crawl can vary from run to run (in one process, ordering.py makes it the same).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from crawler.engine.interfaces import NOT_YET, Listeners, NotYet
from crawler.engine.redis_crawl import SharedCrawl
from crawler.engine.redis_robots import SharedRobots, robots_rule
from crawler.http.robots import ALLOW_ALL, RobotsRules
from crawler.models import CrawlItem, Link, LinkKind
from crawler.urls import origin_of

POLL_SECONDS = 0.05  # how often a waiting fetcher asks again (other workers' changes are not signalled)


def encode(item: CrawlItem) -> str:
    return json.dumps([item.url, item.depth, item.kind.value, item.referrer, item.attempt, item.chain,
                       item.guessed], separators=(",", ":"), ensure_ascii=False)


def decode(text: str) -> CrawlItem:
    url, depth, kind, referrer, attempt, chain, guessed = json.loads(text)
    return CrawlItem(url, depth, LinkKind(kind), referrer, attempt=attempt, chain=chain, guessed=bool(guessed))


class _Changed(threading.Event):
    """Set when something changed here (work added or finished by this worker): it rings the
    listeners too -- fetcher threads driving downloads wait on their sockets, not in `get`."""

    def __init__(self) -> None:
        super().__init__()
        self.listeners = Listeners()

    def set(self) -> None:
        super().set()
        self.listeners.ring()


class RedisFrontier:
    def __init__(self, shared: SharedCrawl, *, max_pages: int | None, per_host: int, per_host_http1: int,
                 delay: float, robots: bool, user_agent: str) -> None:
        """As MemoryFrontier's; `user_agent`: whose robots.txt rules apply."""
        self._shared = shared
        self._max_pages = max_pages or 0
        self._per_host, self._per_host_http1 = per_host, min(per_host, per_host_http1)
        self._delay_ms = int(delay * 1000)
        self._robots = SharedRobots(shared, robots, user_agent)
        self._obey_robots = robots
        self._lock = threading.Lock()  # guards the lease tokens of the URLs this worker holds, and _takes
        # The lease token of each item this worker took, by the item object: a URL taken again
        # after its lease lapsed is another item, with its own token -- the stale one's steps
        # (release, task_done, the fence) never touch the new lease.
        self._tokens: dict[int, tuple[CrawlItem, str]] = {}
        self._stopped = False
        self._changed = _Changed()  # something here changed: a waiting fetcher looks again
        self._takes = [0, 0]  # takes under way, takes begun: guarded by _lock (see reconcile)
        shared.on_beat.append(self.reconcile)

    # -- producers -------------------------------------------------------------------------

    def add(self, item: CrawlItem) -> bool:
        return self._admit([item])[0] == [item.url]

    def add_all(self, items: Iterable[CrawlItem], skipped: Iterable[tuple[str, str]] = (), *,
                source: CrawlItem | None = None, links: Sequence[Link] = ()) -> list[str]:
        """Admit the new URLs (one script for all of a page's links); record those a scope rule
        kept out. Returns the URLs robots.txt keeps out."""
        _, disallowed = self._admit(list(items), list(skipped))
        return disallowed

    def seen_among(self, urls: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(urls))
        if not wanted:
            return set()
        answers = self._shared.client.smismember(self._key("seen"), wanted)
        return {url for url, seen in zip(wanted, answers, strict=True) if seen}

    def claim(self, url: str) -> bool:
        rules = self._robots.known(origin_of(url))
        if rules is not None and not rules.allows(url):
            return False
        return self._shared.call("claim", url) == 1

    def adopt(self, item: CrawlItem) -> None:
        token = self._shared.call("adopt", self._shared.worker, item.url, origin_of(item.url), encode(item),
                                  item.kind.value)
        with self._lock:
            self._tokens[id(item)] = (item, token)

    def skip(self, url: str, rule: str) -> None:
        self._shared.call("skip", url, rule)

    # -- consumers -------------------------------------------------------------------------

    def listen(self, ring: Callable[[], None]) -> None:
        """As MemoryFrontier's (rung for this worker's own changes; other workers' are seen
        when `get` polls)."""
        self._changed.listeners.add(ring)

    def unlisten(self, ring: Callable[[], None]) -> None:
        self._changed.listeners.remove(ring)

    def get(self, timeout: float | None = None) -> CrawlItem | NotYet | None:
        """The next URL some host may send now, leased to this worker; waits (polling Redis)
        at most `timeout` seconds. None once the crawl is done, finishing, or stopped here."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._stopped or self._shared.over.is_set():
                return None
            answer, taken = self._take()
            if taken is not None:
                item = self._allowed(taken)
                if item is not None:
                    return item
                continue
            if answer[0] in ("done", "over"):
                return None
            if answer[0] == "lost":
                self._shared.beat()  # registered anew
                continue
            wait = POLL_SECONDS if int(answer[1]) < 0 else min(POLL_SECONDS, int(answer[1]) / 1000)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return NOT_YET
                wait = min(wait, left)
            self._changed.wait(wait)
            self._changed.clear()

    def release(self, item: CrawlItem, pause: float = 0.0) -> None:
        token = self._token(item)
        if token is not None:
            self._shared.call("release", origin_of(item.url), token, int(pause * 1000))
            self._changed.set()

    def multiplexes(self, origin: str, yes: bool) -> None:
        self._shared.client.hset(self._key(f"h:{origin}"), "mux", "1" if yes else "0")

    def retry_later(self, item: CrawlItem, delay: float) -> None:
        self._settle(item, "retry", int(delay * 1000), encode(replace(item, attempt=item.attempt + 1)))

    def put_back(self, item: CrawlItem) -> None:
        self._settle(item, "back")

    def task_done(self, item: CrawlItem, *, saved_html_page: bool = False) -> None:
        self._settle(item, "done", "1" if saved_html_page else "0")

    def set_robots(self, url: str, rules: RobotsRules) -> list[str]:
        """The host's robots.txt answered: stored for every worker; the URLs queued for the host
        that it keeps out are dropped (and returned)."""
        origin = origin_of(url)
        self._robots.learn(origin, rules, self._delay_ms)
        client = self._shared.client
        queued = client.lrange(self._key(f"rq:{origin}"), 0, -1) + client.lrange(self._key(f"pq:{origin}"), 0, -1)
        out = [entry for entry in queued if _keeps_out(rules, entry)]
        self._changed.set()
        return list(self._shared.call("drop", origin, robots_rule(rules), *out)) if out else []

    def robots_rules(self, origin: str) -> RobotsRules | None:
        return self._robots.known(origin)

    def still_ours(self, item: CrawlItem | None) -> bool:
        if item is None:
            return self._shared.may_rewrite()
        token = self._token(item)
        return token is not None and self._shared.holds(item.url, token)

    def stop(self) -> None:
        self._stopped = True
        self._changed.set()

    # -- what a resumed crawl and the report read ----------------------------------------------

    def restore(self, seen: Iterable[str], pending: Iterable[CrawlItem], skipped: dict[str, str],
                html_pages_saved: int, parked: dict[str, int] | None = None) -> None:
        """Nothing to do: the shared frontier is in Redis, as the workers before left it."""

    def seen_count(self) -> int:
        if self._shared.client is None:  # the progress display asks before the worker joined
            return 0
        return int(self._shared.client.scard(self._key("seen")))

    def backlog(self) -> tuple[int, int]:
        if self._shared.client is None:
            return 0, 0
        counts = self._shared.client.hmget(self._key("counts"), "nreq", "npage")
        return sum(int(count or 0) for count in counts), int(self._shared.client.zcard(self._key("retries")))

    def page_limit(self) -> tuple[int, bool]:
        if not self._max_pages or self._shared.client is None:
            return 0, False
        pages, saved, in_flight = (int(n or 0) for n in self._shared.client.hmget(
            self._key("counts"), "npage", "saved_html", "pif"))
        reached = saved + in_flight >= self._max_pages
        return (pages if reached else 0), reached

    def skipped(self) -> dict[str, str]:
        return dict(self._shared.client.hgetall(self._key("skipped")))

    def pending(self) -> list[CrawlItem]:
        """URLs queued or waiting for a retry (what max_pages or a stop left behind)."""
        client = self._shared.client
        items = []
        for origin in client.zrange(self._key("hosts"), 0, -1):
            items += client.lrange(self._key(f"rq:{origin}"), 0, -1) + client.lrange(self._key(f"pq:{origin}"), 0, -1)
        items += [json.loads(retry)[1] for retry in client.hvals(self._key("retry_items"))]
        return [decode(item) for item in items]

    def reconcile(self) -> None:
        """Leases Redis says this worker holds that it does not know of -- a take whose answer
        was lost with the connection (a Redis restart), then retried -- go back to the queue:
        held by a live worker, they would never lapse, and the crawl would never be done."""
        with self._lock:
            under_way, begun = self._takes
        if under_way:
            return
        held = self._shared.client.smembers(self._key(f"wl:{self._shared.worker}"))
        with self._lock:
            if self._takes != [0, begun]:  # a take ran meanwhile: its lease may not be known yet
                return
            known = {item.url for item, _ in self._tokens.values()}
            unknown = [url for url in held if url not in known]
        for url in unknown:
            raw = self._shared.client.hget(self._key("leases"), url)
            if raw is not None and json.loads(raw)[1] == self._shared.worker:
                self._shared.call("settle", url, json.loads(raw)[2], "back")

    # -- internals -------------------------------------------------------------------------------

    def _take(self) -> tuple[list[str], CrawlItem | None]:
        """take.lua's answer, and the item it leased (known here before the take is over)."""
        with self._lock:
            self._takes[0] += 1
            self._takes[1] += 1
        answer: list[str] = []
        item = None
        try:
            answer = list(self._shared.call("take", self._shared.worker, self._max_pages, self._per_host,
                                            self._per_host_http1, self._delay_ms))
        finally:
            with self._lock:
                self._takes[0] -= 1
                if answer and answer[0] == "item":  # see reconcile
                    item = decode(answer[1])
                    self._tokens[id(item)] = (item, answer[2])
        return answer, item

    def _key(self, name: str) -> str:
        return self._shared.keys + name

    def _token(self, item: CrawlItem) -> str | None:
        with self._lock:
            entry = self._tokens.get(id(item))
        return entry[1] if entry is not None and entry[0] is item else None

    def _settle(self, item: CrawlItem, how: str, *args: object) -> None:
        with self._lock:
            entry = self._tokens.get(id(item))
            token = entry[1] if entry is not None and entry[0] is item else None
            if token is not None:
                del self._tokens[id(item)]
        if token is not None:
            self._shared.call("settle", item.url, token, how, *args)
            self._changed.set()

    def _allowed(self, item: CrawlItem) -> CrawlItem | None:
        """A URL taken: this worker's now -- unless its host's robots.txt keeps it out (it was
        queued before the rules were known), then it is skipped here."""
        if item.kind is LinkKind.ROBOTS:
            return item
        rules = self._robots.known(origin_of(item.url))
        if rules is None or rules.allows(item.url):
            return item
        self.release(item)
        self._shared.client.hset(self._key("skipped"), item.url, robots_rule(rules))
        self.task_done(item)
        return None

    def _admit(self, items: list[CrawlItem], skipped: list[tuple[str, str]] | None = None
               ) -> tuple[list[str], list[str]]:
        """(URLs admitted, URLs robots.txt keeps out). A URL checked against a host's rules not
        known yet, while another worker learned them, is checked again (admit.lua says so)."""
        skips = list(skipped or [])
        admitted: list[str] = []
        disallowed: list[str] = []
        for _ in range(3):
            allowed, args = [], []
            for item in items:
                origin = origin_of(item.url)
                rules = self._robots.known(origin) if item.kind is not LinkKind.ROBOTS else ALLOW_ALL
                if rules is not None and not rules.allows(item.url):
                    disallowed.append(item.url)
                    skips.append((item.url, robots_rule(rules)))
                    continue
                allowed.append(item)
                args += [item.url, origin, item.kind.value, encode(item), "0" if rules is None else "1"]
            answers = self._shared.call("admit", "1" if self._obey_robots else "0", *args) if args else []
            admitted += [item.url for item, answer in zip(allowed, answers, strict=True) if answer == 1]
            items = [item for item, answer in zip(allowed, answers, strict=True) if answer == 2]
            if not items:
                break
        if skips:
            self._shared.call("skip", *(part for pair in skips for part in pair))
        if admitted:
            self._changed.set()
        return admitted, disallowed


def _keeps_out(rules: RobotsRules, entry: str) -> bool:
    item = decode(entry)
    return item.kind is not LinkKind.ROBOTS and not rules.allows(item.url)
