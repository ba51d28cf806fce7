"""How a worker of a crawl shared through Redis ends its run.

Its stages stopped because the crawl is done (no URL queued, no lease live), or because it
was stopped itself. Stopped (Ctrl-C, a fatal error), it leaves: the crawl goes on with the
other workers, or waits for the next one to start; it writes no manifest and no report, which
belong to the crawl, not to one worker. Done, it tries to claim the finishing: exactly one
worker gets it. The others leave and exit 0. The finisher waits until they have left, then
does what one process does at its end (finish.py) for the whole crawl: its link map learns
every worker's files, the pages other workers wrote are converted again against it (as a
resumed crawl converts an interrupted run's pages), and the manifest, report, changes and
snapshot cover every worker's work.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from crawler.config import Config
from crawler.engine.files import MirrorFiles
from crawler.engine.finish import RunEnd, RunFacts
from crawler.engine.outcomes import Stopping
from crawler.engine.redis_crawl import SharedCrawl
from crawler.engine.redis_frontier import RedisFrontier
from crawler.engine.redis_state import RedisState
from crawler.engine.scope import Scope
from crawler.engine.state import remove_temporary_files
from crawler.history.report import CrawlReport
from crawler.history.snapshot import Layout
from crawler.mirror.paths import TEMP_SUFFIX
from crawler.models import is_css, is_html
from crawler.tally import Tally

if TYPE_CHECKING:
    from crawler.history.warc import WarcArchive

log = logging.getLogger(__name__)


class SharedEnd:
    def __init__(self, config: Config, *, shared: SharedCrawl, state: RedisState, frontier: RedisFrontier,
                 scope: Scope, files: MirrorFiles, layout: Layout, archive: WarcArchive | None,
                 stopping: Stopping) -> None:
        self._config = config
        self._shared = shared
        self._state = state
        self._files = files
        self._layout = layout
        self._archive = archive
        self._stopping = stopping
        self._end = RunEnd(config, state=state, frontier=frontier, scope=scope, files=files, layout=layout,
                           archive=archive, stopping=stopping)

    def finish(self, facts: RunFacts) -> CrawlReport:
        """The crawl's report if this worker finished it; else a report of this worker's part
        (not written anywhere)."""
        here = facts.tally
        stopping = self._stopping
        if stopping.aborted.is_set() or stopping.interrupted.is_set():
            self._shared.leave(here.counters())
            return self._own_report(facts, "aborted" if stopping.aborted.is_set() else "interrupted")
        if not self._shared.claim_finish():
            self._shared.leave(here.counters())
            log.info("the crawl is done; another worker finishes it (links, manifest, report)")
            here.failures = []  # the crawl's report, the finisher's, says what failed
            return self._own_report(facts, "completed")
        log.info("the crawl is done; this worker finishes it, once the others have left")
        self._shared.add_counters(here.counters())
        self._shared.wait_for_others()
        removed = remove_temporary_files(self._files.root, TEMP_SUFFIX)  # what killed workers half-wrote
        if removed:
            log.info("%d half-written files of workers that were killed removed", removed)
        saved = list(self._state.entries())
        self._files.links.restore(saved, self._state.aliases())
        others = [entry for entry in saved if entry.url not in self._state.saved_here
                  and (is_html(entry.content_type) or is_css(entry.content_type))]
        tally = self._crawl_tally(here, files_saved=len(saved))
        return self._end.finish(replace(facts, tally=tally,
                                        converted_earlier=others if self._config.mirror.convert_links else []))

    def _crawl_tally(self, here: Tally, files_saved: int) -> Tally:
        """The tally of the whole crawl: every worker's counters, and the journal's failures
        and redirects."""
        tally = Tally(files_saved=files_saved, html_pages_saved=self._state.counts().get("saved_html", 0),
                      failures=self._state.failures(), aliases=self._state.aliases(),
                      parse_errors=here.parse_errors)
        for name, value in self._state.totals().items():
            if hasattr(tally, name):
                setattr(tally, name, value)
        return tally

    def _own_report(self, facts: RunFacts, outcome: str) -> CrawlReport:
        if self._archive is not None:
            self._archive.close()
        return CrawlReport(
            start_urls=list(self._config.start_urls), output=str(self._config.output_dir), started_at=facts.started,
            finished_at=datetime.now(timezone.utc), outcome=outcome, tally=facts.tally, skipped={},
            not_fetched=[], fatal_error=str(self._stopping.fatal_error) if self._stopping.fatal_error else None,
            resumed_from=facts.resumed_from, snapshot=self._layout.snapshot,
            cpu_seconds=time.process_time() - facts.cpu_at_start, files_this_run=facts.files_this_run,
            slots=facts.stage_slots, stage_busy=facts.stage_busy, worker_part=True)
