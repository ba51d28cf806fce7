"""Watching a crawl: a live display on a terminal, a progress line in the log otherwise.

The display shows what is done (pages saved and discovered, bytes, rate, errors) and where
the crawl is bound: for each stage, how many of its threads are busy, and how full the queue
after it is. Fetchers all busy and queues empty: the network is the limit; the page queue
full: the parsers are; the write queue full: the writers are (converting links, saving
files); the render queue full (render.mode auto or always): the browser is; fetchers idle
while URLs wait in the frontier: politeness holds them back (or, under max_pages, the order
pages go in, or the limit itself). `bound_by` says which, in words. The render stage is shown
only when there is one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from crawler.tally import STAGES, Stats

log = logging.getLogger("crawler.cli.progress")

QUEUE_AFTER = {"fetch": "page queue", "render": "page queue", "parse": "write queue"}


def queue_after(stage: str, stats: Stats) -> str | None:
    """The queue a stage feeds: the fetchers', the render queue when there is a render stage."""
    if stage == "fetch" and "render queue" in stats.queued:
        return "render queue"
    return QUEUE_AFTER.get(stage)


def shown_stages(stats: Stats) -> list[str]:
    """The stages this crawl has (the render stage only with render.mode auto or always)."""
    return [stage for stage in STAGES if stage != "render" or stats.threads.get(stage)]


def bound_by(stats: Stats) -> str:
    """What the crawl waits on now, read from the stages' busy threads and queues."""
    fetch_busy, fetchers = stats.busy.get("fetch", 0), stats.threads.get("fetch", 0)
    if stats.queued.get("write queue", 0) >= stats.queue_size:
        return "writing: link conversion and files (the write queue is full)"
    if stats.queued.get("page queue", 0) >= stats.queue_size:
        return "parsing (the page queue is full)"
    if stats.queued.get("render queue", 0) >= stats.queue_size:
        return "rendering pages in the browser (the render queue is full)"
    if fetch_busy >= fetchers:
        return "the network (every fetcher waits on a response)"
    if stats.frontier:
        return "politeness (URLs wait for their host's turn: robots.txt, per_host, delay, Crawl-delay)"
    if stats.retrying:
        return "retries (URLs wait out their retry delay)"
    if stats.page_limit_reached:
        return f"max_pages reached (finishing what is in flight; {stats.held:,} pages left out)"
    if stats.held:
        return "max_pages order (pages wait for the links of the pages before them)"
    if fetch_busy == 0 and (any(stats.busy.get(stage, 0) for stage in ("render", "parse", "write"))
                            or any(stats.queued.values())):
        return "finishing (the last pages are parsed and written)"
    return "discovery (new links come as pages are parsed)"


def render(stats: Stats, rate: float) -> Group:
    """One frame of the live display."""
    head = Text.assemble(
        ("crawl ", "bold"), (f"{stats.saved:,} saved", "green"), f" / {stats.discovered:,} found   ",
        f"{stats.bytes / 1e6:,.1f} MB   ", (f"{rate:,.1f} pages/s", "cyan"), "   ",
        (f"{stats.errors:,} errors", "red" if stats.errors else "dim"), f"   {_clock(stats.elapsed)}")
    backlog = Text.assemble(
        f"{stats.frontier:,} URLs waiting" + (f", {stats.retrying:,} to retry" if stats.retrying else "")
        + (f", {stats.held:,} pages held back by max_pages" if stats.held else ""),
        "   bound by ", (bound_by(stats), "bold"))
    table = Table.grid(padding=(0, 2))
    for _ in range(4):
        table.add_column()
    for stage in shown_stages(stats):
        busy, threads = stats.busy.get(stage, 0), stats.threads.get(stage, 0)
        queue = queue_after(stage, stats)
        waiting = stats.queued.get(queue, 0) if queue else 0
        table.add_row(
            # A full bar is "all busy", not "finished": same colour (rich's "finished" green
            # turns grey, like an empty bar, on 16-colour terminals).
            Text(stage, style="bold"), ProgressBar(total=max(threads, 1), completed=busy, width=20,
                                                   finished_style="bar.complete"),
            f"{busy}/{threads} busy",
            f"-> {queue} {waiting}/{stats.queue_size}" if queue else "")
    return Group(head, backlog, table)


def line(stats: Stats, rate: float) -> str:
    """The same, as one log line."""
    stages = ", ".join(f"{stage} {stats.busy.get(stage, 0)}/{stats.threads.get(stage, 0)} busy"
                       for stage in shown_stages(stats))
    queues = ", ".join(f"{queue} {count}/{stats.queue_size}" for queue, count in stats.queued.items())
    return (f"progress: {stats.saved} saved / {stats.discovered} found, {stats.bytes / 1e6:.1f} MB, "
            f"{rate:.1f} pages/s, {stats.errors} errors, {_clock(stats.elapsed)}; {stages}; {queues}; "
            f"{stats.frontier} URLs waiting, {stats.retrying} to retry; bound by {bound_by(stats)}")


class ProgressReporter:
    """While a crawl runs: refresh a live display (`live`), or log a line every `every`
    seconds. A context manager; the crawl runs inside it."""

    def __init__(self, stats: Callable[[], Stats], *, live: bool, every: float = 5.0,
                 console: Console | None = None) -> None:
        self._stats = stats
        self._live = live
        self._every = 0.5 if live else every
        self._console = console or Console(stderr=True)
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: tuple[float, int] = (0.0, 0)

    def __enter__(self) -> ProgressReporter:
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()

    def _rate(self, stats: Stats) -> float:
        """Pages per second since the previous frame."""
        elapsed, saved = self._last
        self._last = (stats.elapsed, stats.saved)
        return (stats.saved - saved) / (stats.elapsed - elapsed) if stats.elapsed > elapsed else 0.0

    def _run(self) -> None:
        if self._live:
            with Live(console=self._console, auto_refresh=False, transient=True) as live:
                while not self._done.wait(self._every):
                    stats = self._stats()
                    live.update(render(stats, self._rate(stats)), refresh=True)
        else:
            while not self._done.wait(self._every):
                stats = self._stats()
                log.info("%s", line(stats, self._rate(stats)))


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"
