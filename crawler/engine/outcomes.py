"""What becomes of a URL that is not simply saved, for every stage alike (a failure, a
redirect, a bug caught in a worker), and how a run stops early (Ctrl-C, or a fatal error).

A failure is data, not a crash: it goes to the run's tally, the crawl state and the report,
and the pages already written with a link to the file it will never be get that link fixed.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from crawler.engine.interfaces import CrawlState, Frontier
from crawler.errors import CrawlError
from crawler.logs import ENDING, FIELDS
from crawler.mirror.converter import LinkFixer
from crawler.mirror.linkmap import LinkMap, Misplaced
from crawler.models import CrawlItem, Failure, Page
from crawler.tally import Tally

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sentinel:
    """Put on a queue once per consumer thread: "no more items, stop"."""


@dataclass(frozen=True)
class FixLinks:
    """For the writers: links of saved pages written for an outcome that did not happen."""

    misplaced: list[Misplaced]


STOP = Sentinel()
QueueItem = Page | FixLinks | Sentinel


class Outcomes:
    def __init__(self, *, frontier: Frontier, state: CrawlState, links: LinkMap, fixer: LinkFixer,
                 writes: queue.Queue[QueueItem], abort: Callable[[CrawlError], None]) -> None:
        """`writes`: the writers' queue, where links to fix go; `abort(error)`: stop the crawl."""
        self._frontier = frontier
        self._state = state
        self._links = links
        self._fixer = fixer
        self._writes = writes
        self.abort = abort

    def fail(self, item: CrawlItem, failure: Failure, tally: Tally, fix_now: bool = False) -> None:
        """Record a failed URL. Pages already written with a link to the file it will not be
        get fixed: by the writers, or at once (`fix_now`) where waiting on their queue could
        block the thread that empties it."""
        log.info("failed %s: %s", failure.url, failure.message,
                 extra={FIELDS: {"url": failure.url, "reason": failure.reason, "status": failure.status}})
        tally.failures.append(failure)
        self._state.failed(failure)
        misplaced = self._links.unsaved(failure.url)
        if misplaced and fix_now:
            self._fixer.fix(misplaced)
        elif misplaced:
            self._writes.put(FixLinks(misplaced))
        self._frontier.task_done(item)

    def redirected(self, source: str, target: str, tally: Tally, followed: bool = False) -> None:
        """`source` redirects to `target`, which is fetched (or skipped) as a URL of its own;
        or, `followed` in place, whose response this is (then not counted as a redirect: the
        report's count is of URLs that were not themselves saved)."""
        tally.redirects += not followed
        tally.aliases.append((source, target))
        self._state.aliased(source, target)
        self._links.alias(source, target)

    def left_out(self, urls: list[str]) -> None:
        """These URLs will not be saved (robots.txt keeps them out): the pages already written
        with links to them get those links fixed by the writers now."""
        for url in urls:
            misplaced = self._links.unsaved(url)
            if misplaced:
                self._writes.put(FixLinks(misplaced))

    def internal_error(self, item: CrawlItem, exc: Exception, tally: Tally) -> None:
        """A bug met while handling `item`: the item fails (the thread goes on with the next)."""
        log.exception("internal error on %s", item.url)
        self.fail(item, Failure(item.url, "internal_error", f"{type(exc).__name__}: {exc}"), tally, fix_now=True)


class Stopping:
    """How a run ends early: interrupted (Ctrl-C, SIGTERM: what is in flight drains, the crawl
    resumes next time), or aborted by a fatal error (a full disk, an unwritable crawl state)."""

    def __init__(self, stop_work: Callable[[], None]) -> None:
        """`stop_work()`: let no new URL start, and cut the downloads in progress."""
        self._stop_work = stop_work
        self.interrupted = threading.Event()
        self.aborted = threading.Event()
        # Guards fatal_error: any thread may abort; the first error is the one to report.
        self._lock = threading.Lock()
        self.fatal_error: CrawlError | None = None

    def interrupt(self) -> None:
        self.interrupted.set()
        self._stop_work()

    def abort(self, error: CrawlError) -> None:
        """A fatal error: stop everything, keep what is pending (the crawl resumes later)."""
        with self._lock:
            first = self.fatal_error is None
            if first:
                self.fatal_error = error
                self.aborted.set()
        if first:
            log.error("%s", error, extra={ENDING: True})
        self._stop_work()
