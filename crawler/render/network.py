"""What the browser may reach, and how it gets there: through the crawl's own fetcher.

Every request a rendered page makes is answered by the route handler (page.py) with what this
module fetches -- with the crawl's cookies (a login's session), headers, credentials, TLS
settings and size limits, as the crawl would fetch it -- or refused. Only what the crawl itself
may fetch is fetched: GET requests (page.py), to URLs the page's scope admits as its requisites,
that robots.txt allows. The browser has no other way out (it is started with a proxy that
leads nowhere: browser.py), so a page cannot reach past the crawl's rules.

Politeness: the browser's requests are downloads of their own, apart from the fetchers': at
most politeness.per_host of them at once (all hosts together, so never more to one host), each
host's starts politeness.delay apart (or its robots.txt Crawl-delay). What a page loads is kept
(ResponseCache): the script bundle every page of an app shares is fetched once for the browser,
and the fetchers save what the browser loaded from there rather than download it again.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from crawler.errors import FetchError
from crawler.http.fetcher import Fetcher, Result
from crawler.http.policy import Follow, Redirected
from crawler.http.robots import ALLOW_ALL, RobotsRules, answered_rules
from crawler.models import CrawlItem, LinkKind, Response
from crawler.urls import origin_of

log = logging.getLogger(__name__)

CACHE_BYTES = 64_000_000  # responses kept for the browser's next pages
STEP = 0.01  # seconds the download thread waits for news while downloads run: a new request's latency at most


@dataclass(frozen=True)
class Blocked:
    """A request the crawl would not make: the scope rule or "robots" that says no."""

    rule: str


Answer = Response | FetchError | Blocked
Refusal = Callable[[str], str | None]  # URL -> the scope rule that keeps it out, or None


class BrowserNetwork:
    """The browser's way to the network, used from the browser's event loop only."""

    def __init__(self, fetcher: Fetcher, *, user_agent: str, robots: bool, per_host: int, delay: float,
                 max_redirects: int, known_rules: Callable[[str], RobotsRules | None] = lambda origin: None) -> None:
        """`fetcher`: the crawl's (its engine: cookie jar, connections, TLS settings);
        `known_rules(origin)`: a host's robots.txt rules as the crawl got them, if it did."""
        self._downloads = Downloads(fetcher.following(_redirects_for_robots_only), capacity=per_host)
        self._user_agent = user_agent
        self._robots = robots
        self._known_rules = known_rules
        self._delay = delay
        self._max_redirects = max_redirects
        self.cache = ResponseCache(CACHE_BYTES)  # the fetchers take what the browser loaded from it
        self._fetching: dict[str, asyncio.Future[Result]] = {}  # URL -> its download, shared by every page asking
        self._rules: dict[str, asyncio.Future[RobotsRules]] = {}  # origin -> its robots.txt rules
        self._next_start: dict[str, float] = {}  # origin -> loop time its next download may start
        self._tasks: set[asyncio.Task[None]] = set()
        self.downloads = 0  # requests the browser's pages cost the sites (robots.txt included)
        self.downloaded_bytes = 0

    async def get(self, url: str, refusal: Refusal) -> Answer:
        """`url` as the crawl fetches it, redirects followed (each target asked about too)."""
        for _ in range(self._max_redirects + 1):
            rule = refusal(url)
            if rule is None and self._robots and not (await self.robots(origin_of(url))).allows(url):
                rule = "robots"
            if rule is not None:
                return Blocked(rule)
            result = await self._fetch(url)
            if not isinstance(result, Redirected):
                return result
            url = result.target
        return FetchError(f"more than {self._max_redirects} redirects", url, "too_many_redirects")

    async def robots(self, origin: str) -> RobotsRules:
        """The origin's robots.txt rules, fetched once."""
        if not self._robots:
            return ALLOW_ALL
        known = self._rules.get(origin)
        if known is None:
            known = self._rules[origin] = asyncio.get_running_loop().create_future()
            rules = self._known_rules(origin)
            if rules is not None:  # the crawl's own answer: the host is not asked twice
                known.set_result(rules)
            else:
                self._start(self._download(origin + "/robots.txt", LinkKind.ROBOTS, known, pace=False))
        return await asyncio.shield(known)

    def close(self) -> None:
        """Cut the downloads in flight and end the thread (from the event loop's thread, whose
        tasks are cancelled after)."""
        self._downloads.close()

    async def _fetch(self, url: str) -> Result:
        cached = self.cache.get(url)
        if cached is not None:
            return cached
        download = self._fetching.get(url)
        if download is None:
            download = self._fetching[url] = asyncio.get_running_loop().create_future()
            download.add_done_callback(lambda done: self._settled(url, done))
            self._start(self._download(url, LinkKind.REQUISITE, download, pace=True))
        # Shielded: a page that gives up (its timeout) leaves the download to the pages still waiting.
        return await asyncio.shield(download)

    async def _download(self, url: str, kind: LinkKind, into: asyncio.Future[Any], pace: bool) -> None:
        """Wait for the host's turn, download, and settle `into` (robots.txt: with its rules)."""
        result: Result
        try:
            if pace:
                await self._wait_turn(origin_of(url))
            loop = asyncio.get_running_loop()
            answered: asyncio.Future[Result] = loop.create_future()
            self._downloads.fetch(CrawlItem(url, 0, kind),
                                  lambda result: loop.call_soon_threadsafe(_settle, answered, result))
            result = await answered
            self.downloads += 1
            self.downloaded_bytes += len(result.body) if isinstance(result, Response) else 0
        except Exception as exc:  # a bug: the pages waiting for it must not wait for ever
            log.exception("browser download of %s", url)
            result = FetchError(f"{type(exc).__name__}: {exc}", url, "internal_error")
        if kind is LinkKind.ROBOTS:
            answer = result if isinstance(result, Response | FetchError) else \
                FetchError("robots.txt redirects nowhere", url, "bad_redirect")
            _settle(into, answered_rules(answer, self._user_agent))
        else:
            _settle(into, result)

    async def _wait_turn(self, origin: str) -> None:
        """politeness.delay (or a longer Crawl-delay) between the starts of two downloads from
        one host."""
        delay = max(self._delay, (await self.robots(origin)).crawl_delay or 0.0)
        if not delay:
            return
        now = asyncio.get_running_loop().time()
        start = max(now, self._next_start.get(origin, now))
        self._next_start[origin] = start + delay
        await asyncio.sleep(start - now)

    def _settled(self, url: str, download: asyncio.Future[Result]) -> None:
        self._fetching.pop(url, None)
        if not download.cancelled():
            self.cache.put(url, download.result())

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)  # held until done: the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)


class Downloads:
    """A thread driving the browser's downloads through one FetchLoop of the crawl's fetcher:
    requests come in from the event loop, each result goes out to its callback."""

    def __init__(self, fetcher: Fetcher, capacity: int) -> None:
        self._fetcher = fetcher
        self._capacity = capacity
        self._requests: queue.SimpleQueue[tuple[CrawlItem, Callable[[Result], None]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="browser-downloads", daemon=True)
        self._thread.start()

    def fetch(self, item: CrawlItem, done: Callable[[Result], None]) -> None:
        """Download `item`; `done(result)` is called from this thread."""
        self._requests.put((item, done))

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join()

    def _run(self) -> None:
        loop = self._fetcher.loop(self._capacity, self._capacity)
        waiting: dict[CrawlItem, list[Callable[[Result], None]]] = {}
        try:
            while self._take(loop, waiting):
                for item, result in loop.step(STEP):
                    for done in waiting.pop(item, []):
                        done(result)
        finally:
            loop.close()
            for item, callbacks in waiting.items():
                for done in callbacks:
                    done(FetchError("the crawl stopped during the download", item.url, "interrupted"))

    def _take(self, loop: Any, waiting: dict[CrawlItem, list[Callable[[Result], None]]]) -> bool:
        """Start the requests that came in, while there is room; waits for one when nothing
        runs. False once closed."""
        while loop.has_room():
            try:
                request = self._requests.get(block=not len(loop))
            except queue.Empty:
                return True
            if request is None:
                return False
            item, done = request
            if item not in waiting:
                loop.start(item)
            waiting.setdefault(item, []).append(done)
        return True


class ResponseCache:
    """The latest answers the browser got, up to a number of bytes (bodies): successes, and
    4xx errors (a missing image is missing for the next page too). The browser's event loop
    keeps it; the fetchers read it too (`loaded`), from their threads."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._used = 0
        self._answers: OrderedDict[str, Response | FetchError] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, url: str) -> Response | FetchError | None:
        with self._lock:
            answer = self._answers.get(url)
            if answer is not None:
                self._answers.move_to_end(url)
            return answer

    def loaded(self, url: str) -> Response | None:
        """The body the browser downloaded from `url` itself (no redirect), if it still holds it."""
        with self._lock:
            answer = self._answers.get(url)
        return answer if isinstance(answer, Response) and answer.url == url and not answer.redirects else None

    def put(self, url: str, result: Result) -> None:
        if isinstance(result, Redirected):
            return
        if isinstance(result, FetchError) and not (result.status is not None and 400 <= result.status < 500):
            return  # it may pass: asked again next time
        size = len(result.body) if isinstance(result, Response) else 0
        if size > self._budget // 8:
            return
        with self._lock:
            if url in self._answers:
                return
            self._answers[url] = result
            self._used += size
            while self._used > self._budget:
                _, dropped = self._answers.popitem(last=False)
                self._used -= len(dropped.body) if isinstance(dropped, Response) else 0


def _redirects_for_robots_only(item: CrawlItem, target: str) -> Follow:
    """The browser's requests come back as Redirected, each target asked about (get); a
    robots.txt is followed wherever it leads, as the crawl does."""
    return Follow.NOW if item.kind is LinkKind.ROBOTS else Follow.NO


def _settle(future: asyncio.Future[Any], value: object) -> None:
    if not future.done():
        future.set_result(value)
