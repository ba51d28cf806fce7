"""The crawl pipeline: three stages of threads joined by bounded queues (four when rendering).

    1. seed        start URLs -> frontier                      (run.py; on resume, the crawl state)
    2. fetchers    frontier.get() -> HTTP GETs (many at once) -> page queue  fetch_stage.py  (network)
       renderers   render.mode auto|always only: the fetchers' responses go to the render queue
                   instead; app shells (or every HTML page) rendered in a browser
                   -> page queue                                         render_stage.py  (browser)
    3. parsers     page queue -> links -> scope -> frontier.add_all      parse_stage.py  (CPU)
                              -> write queue
    4. writers     write queue -> links converted -> file -> frontier.task_done
                                                                         write_stage.py  (disk, CPU)
    5. stop        frontier.get() returns None once nothing is pending or in flight:
                   the fetchers end, then one sentinel per renderer (its browser closed after),
                   then one per parser, then one per writer.
    6. finish      links written for an outcome that did not happen fixed; manifest, report,
                   changes; a healthy snapshot published                 finish.py

Every admission, file, failure and skip is journaled to the crawl state as it happens, which
is what makes any interruption resumable. What becomes of a URL that is not saved (a failure,
a redirect) is the same for every stage: outcomes.py.

The queues are bounded, so a slow parser, browser or disk holds the fetchers back instead of
filling memory. The frontier never blocks a producer, so the stages form no cycle of waits
(its page URLs beyond a limit wait in the crawl state, not in memory). A URL stays "in
flight" until its file is written (or its failure recorded), which is what makes "nothing
pending and nothing in flight" mean the crawl is complete.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from crawler.config import Config
from crawler.engine.fetch_stage import FetchStage
from crawler.engine.files import MirrorFiles
from crawler.engine.interfaces import CrawlState, Frontier
from crawler.engine.outcomes import STOP, Outcomes, QueueItem
from crawler.engine.parse_stage import ParseStage
from crawler.engine.render_stage import RenderStage
from crawler.engine.scope import Scope
from crawler.engine.write_stage import WriteStage
from crawler.errors import CrawlError
from crawler.history.recrawl import StoredCopies
from crawler.history.snapshot import Layout
from crawler.http.fetcher import Fetcher
from crawler.tally import STAGES, Stats, Tally

if TYPE_CHECKING:
    from crawler.history.warc import WarcArchive

# Threads driving the downloads. One, beside one parser and one writer: a second added 9-17% of
# CPU (twice the wake-ups, smaller batches per turn of the loop) and no speed at 50 ms
# (docs/performance.md). Two beside more parsers or writers: a lone loop thread waits whenever
# one of them holds the GIL, and its transfers with it (bench/engines: 3x slower beside two
# busy Python parsers). More add CPU and connections (HTTP/2: one each).
MAX_FETCH_THREADS = 2


class Pipeline:
    def __init__(self, config: Config, *, frontier: Frontier, state: CrawlState, fetcher: Fetcher, scope: Scope,
                 stored: StoredCopies, files: MirrorFiles, layout: Layout, archive: WarcArchive | None,
                 abort: Callable[[CrawlError], None], aborted: threading.Event) -> None:
        """`files`: the mirror this run writes; `stored`: the previous crawl's; `abort(error)`:
        stop the crawl for good (a full disk), which sets `aborted`."""
        self._config = config
        self._frontier = frontier
        self._fetcher = fetcher
        self.pages: queue.Queue[QueueItem] = queue.Queue(maxsize=config.queue_size)
        self.writes: queue.Queue[QueueItem] = queue.Queue(maxsize=config.queue_size)
        # render.mode never: no render queue, no render threads -- the fetchers feed the parsers.
        self.renders: queue.Queue[QueueItem] | None = \
            queue.Queue(maxsize=config.queue_size) if config.render.mode != "never" else None
        # One per thread, filled in before the threads start; and the browser's, once it closed.
        self.tallies: list[Tally] = []
        outcomes = Outcomes(frontier=frontier, state=state, links=files.links, fixer=files.fixer,
                            writes=self.writes, abort=abort)
        self._fetch_threads, capacity = fetch_threads(config)
        self.render_stage = RenderStage(config, frontier=frontier, fetcher=fetcher, scope=scope,
                                        renders=self.renders, pages=self.pages) if self.renders is not None else None
        self._fetch = FetchStage(frontier=frontier, fetcher=fetcher, stored=stored, outcomes=outcomes,
                                 pages=self.renders or self.pages, scope=scope, http=config.http, capacity=capacity,
                                 max_connections=config.threads.fetchers,
                                 browser_loaded=self.render_stage.loaded if self.render_stage is not None else None)
        self._parse = ParseStage(frontier=frontier, scope=scope, stored=stored, outcomes=outcomes,
                                 pages=self.pages, writes=self.writes, mirror=config.mirror,
                                 user_agent=config.http.user_agent, robots=config.politeness.robots)
        self._write = WriteStage(frontier=frontier, state=state, writer=files.writer, links=files.links,
                                 fixer=files.fixer, stored=stored, layout=layout, archive=archive,
                                 outcomes=outcomes, writes=self.writes,
                                 convert_links=config.mirror.convert_links, aborted=aborted)

    def run(self) -> list[Tally]:
        """2-5: run the stages until the frontier has nothing left (or the crawl stops); every
        thread is joined. Returns the threads' tallies."""
        threads = self._config.threads
        fetchers = self._start(self._fetch_threads, "fetch", self._fetch.run)
        rendering = self.render_stage
        renderers = self._start(self._config.render.parallel, "render", rendering.run) if rendering else []
        parsers = self._start(threads.parsers, "parse", self._parse.run)
        writers = self._start(threads.writers, "write", self._write.run)
        if rendering is not None:
            _join_then_stop(fetchers, self.renders, len(renderers))
        _join_then_stop(renderers or fetchers, self.pages, len(parsers))  # the stage that feeds the parsers
        if rendering is not None:
            self.tallies.append(rendering.close())  # the browser, after its last page
        _join_then_stop(parsers, self.writes, len(writers))
        _join_then_stop(writers, None, 0)
        return self.tallies

    def stats(self, earlier: Tally, elapsed: float) -> Stats:
        """Where the crawl is now, for a progress display: read while it runs, without locks
        but the frontier's (a count read mid-update is off by one at worst). `earlier`: what
        the interrupted runs of this crawl did."""
        queued = {"render queue": self.renders.qsize()} if self.renders is not None else {}
        queued |= {"page queue": self.pages.qsize(), "write queue": self.writes.qsize()}
        return measure(self._frontier, [earlier, *self.tallies], elapsed, queued=queued,
                       queue_size=self._config.queue_size)

    def _start(self, count: int, name: str, loop: Callable[[Tally], None]) -> list[threading.Thread]:
        threads = []
        for number in range(count):
            tally = Tally(stage=name)
            self.tallies.append(tally)
            thread = threading.Thread(target=loop, args=(tally,), name=f"{name}-{number}", daemon=True)
            thread.start()
            threads.append(thread)
        return threads


def fetch_threads(config: Config) -> tuple[int, int]:
    """(fetcher threads, downloads each drives at once). threads.fetchers connections, each
    carrying one download over HTTP/1.1 -- and over HTTP/2 as many as politeness.per_host allows
    a host, as streams of one connection -- driven by one thread, or MAX_FETCH_THREADS beside
    more than one parser or writer: one thread drives many downloads."""
    others = config.threads.parsers + config.threads.writers
    threads = max(1, min(config.threads.fetchers, MAX_FETCH_THREADS if others > 2 else 1))
    downloads = max(config.threads.fetchers, config.politeness.per_host)
    return threads, -(-downloads // threads)


def _join_then_stop(threads: list[threading.Thread], downstream: queue.Queue[QueueItem] | None,
                    consumers: int) -> None:
    """Wait for a stage's threads to end, then tell each thread of the next stage to stop once
    it has emptied its queue."""
    for thread in threads:
        thread.join()
    if downstream is not None:
        for _ in range(consumers):
            downstream.put(STOP)


def measure(frontier: Frontier, tallies: list[Tally], elapsed: float, *, queued: dict[str, int],
            queue_size: int) -> Stats:
    """The Stats of a crawl from its tallies (the first one: earlier runs, with no stage)."""
    stages = {name: [tally for tally in tallies if tally.stage == name] for name in STAGES}
    backlog, retrying = frontier.backlog()
    held, page_limit_reached = frontier.page_limit()
    return Stats(
        elapsed=elapsed, saved=sum(t.files_saved for t in tallies), discovered=frontier.seen_count(),
        bytes=sum(t.bytes_downloaded for t in tallies), errors=sum(len(t.failures) for t in tallies),
        busy={name: sum(t.busy for t in members) for name, members in stages.items()},
        threads={name: sum(t.slots for t in members) for name, members in stages.items()},
        queued=queued, queue_size=queue_size, frontier=backlog, retrying=retrying, held=held,
        page_limit_reached=page_limit_reached)
