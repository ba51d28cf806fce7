"""6. finish: what a run does once its stages stopped.

Links written during the crawl for an outcome that did not happen are fixed (not for an
interrupted crawl: resuming it does that), the links that work offline are counted; then
come the report, what changed since the crawl before (changes.json), the manifest, and in
snapshot mode the health checks that decide whether the snapshot becomes `latest`. Only once
all of that is written does the crawl state say the crawl completed: a run stopped before
then resumes, and finishes, next time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from crawler.config import Config
from crawler.engine.files import MirrorFiles
from crawler.engine.interfaces import CrawlState, Frontier
from crawler.engine.outcomes import Stopping
from crawler.engine.scope import Scope
from crawler.errors import CrawlError, OutputError
from crawler.history import report_html
from crawler.history.changes import PREVIOUS_CRAWL, compare
from crawler.history.manifest import manifest_record
from crawler.history.report import CrawlReport
from crawler.history.snapshot import Layout, doomed, health_problems, latest_snapshot, prune, publish
from crawler.logs import ENDING
from crawler.mirror.offline import LinkFinisher, OfflineLinks, count_unconverted
from crawler.mirror.paths import checked_join
from crawler.models import SavedFile, is_html
from crawler.output_folder import CHANGES, MANIFEST, REPORT, REPORT_HTML
from crawler.tally import Tally

if TYPE_CHECKING:
    from crawler.history.warc import WarcArchive

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunFacts:
    """What the run knows of itself when its stages stopped."""

    started: datetime
    cpu_at_start: float  # time.process_time() when it started
    tally: Tally  # this run's and the interrupted runs' before it, added up
    files_this_run: int
    resumed_from: str | None  # when the crawl this run resumed started
    converted_earlier: list[SavedFile]  # pages an interrupted run wrote with links converted
    stage_busy: dict[str, float]  # stage -> item-seconds its threads worked, this run
    stage_slots: dict[str, int]  # stage -> items its threads can work on at once


class RunEnd:
    def __init__(self, config: Config, *, state: CrawlState, frontier: Frontier, scope: Scope, files: MirrorFiles,
                 layout: Layout, archive: WarcArchive | None, stopping: Stopping) -> None:
        self._config = config
        self._state = state
        self._frontier = frontier
        self._scope = scope
        self._files = files
        self._layout = layout
        self._archive = archive
        self._stopping = stopping

    def finish(self, facts: RunFacts) -> CrawlReport:
        """The run's report, after every file it describes is written."""
        stopping = self._stopping
        not_fetched = [item.url for item in self._frontier.pending()]
        offline_links = None
        if not stopping.aborted.is_set():
            try:
                offline_links = self._finish_links(facts, not_fetched)
            except OutputError as error:
                stopping.abort(error)
        outcome = "aborted" if stopping.aborted.is_set() else \
            "interrupted" if stopping.interrupted.is_set() else "completed"
        report = CrawlReport(
            start_urls=list(self._config.start_urls), output=str(self._config.output_dir),
            started_at=facts.started, finished_at=datetime.now(timezone.utc), outcome=outcome,
            tally=facts.tally, skipped=self._frontier.skipped(), not_fetched=not_fetched,
            fatal_error=str(stopping.fatal_error) if stopping.fatal_error else None, offline_links=offline_links,
            resumed_from=facts.resumed_from, snapshot=self._layout.snapshot,
            cpu_seconds=time.process_time() - facts.cpu_at_start, files_this_run=facts.files_this_run,
            slots=facts.stage_slots, stage_busy=facts.stage_busy)
        if outcome == "completed" and report.unreachable():  # no page to compare or publish
            report.outcome = "unreachable"
        self._write(report, not_fetched)
        return report

    def _write(self, report: CrawlReport, not_fetched: list[str]) -> None:
        writer = self._files.writer
        try:
            self._state.flush()  # the saved files' entries come from the state, streamed
            if report.outcome == "completed":
                self._compare(report, not_fetched)
            shown = self._look_at_files(report)
            writer.write_json_lines(MANIFEST, map(manifest_record, self._state.entries()))
            writer.write_metadata(REPORT, report.to_json())
            if report.changes is not None:
                writer.write_json(CHANGES, report.changes.to_dict())
            if report.outcome == "completed":
                self._publish(report)
            self._write_html(report, shown)
            if report.outcome == "completed" and self._layout.snapshot is not None:
                prune(self._config.output_dir, self._config.snapshots.keep, protect=self._protected())
        except (OSError, OutputError) as exc:
            error = exc if isinstance(exc, OutputError) else OutputError(f"cannot write the manifest or report: {exc}")
            self._stopping.fatal_error = error
            report.fatal_error = str(error)
        finally:
            if self._archive is not None:
                self._archive.close()
            # Only now: a crawl that stops before this point resumes, and finishes, next time.
            # An unreachable site has nothing to resume: the next run starts anew.
            completed = report.outcome in ("completed", "unreachable") and self._stopping.fatal_error is None
            self._state.finish(completed=completed, totals=report.tally.counters())

    def _finish_links(self, facts: RunFacts, not_fetched: list[str]) -> OfflineLinks:
        """Fix up the links converted during the crawl once every outcome is known (not for an
        interrupted crawl: resuming it does that), and count the links that work offline
        (those to pages max_pages left out are not meant to)."""
        interrupted = self._stopping.interrupted.is_set()
        broken = [failure.url for failure in facts.tally.failures if failure.is_client_error]
        excluded = self._frontier.skipped()
        left_out = () if interrupted else not_fetched  # interrupted: to be fetched yet
        links = self._files.links
        self._state.flush()
        if not self._config.mirror.convert_links:
            return count_unconverted(self._files.root, self._state.entries(), final_url=links.final_url,
                                     path_of=links.final_path, in_domains=self._scope.in_domains,
                                     broken=broken, excluded=excluded, left_out=left_out)
        finisher = LinkFinisher(self._files.root, links, self._files.fixer, in_domains=self._scope.in_domains,
                                broken=broken, excluded=excluded, left_out=left_out,
                                recorded_targets=self._files.recorded_targets)
        return finisher.finish(self._state.entries(), facts.converted_earlier, fix=not interrupted)

    def _compare(self, report: CrawlReport, not_fetched: list[str]) -> None:
        """changes.json: what changed since the crawl before; in a plain mirror with
        mirror.delete_removed, the files of removed pages go."""
        previous = self._layout.previous
        # A plain mirror's pages were replaced in place: their earlier text is in the copies kept.
        earlier_root = (self._layout.kept or previous.root) if previous else None
        report.changes = compare(
            previous.entries.values() if previous else (), earlier_root, self._state.entries(), self._files.root,
            ignore=self._config.snapshots.ignore, failures=report.tally.failures, not_checked=not_fetched,
            earlier_name=(previous.snapshot or PREVIOUS_CRAWL) if previous else None,
            later_again=self._state.entries)
        if self._config.snapshots.keep == 0 and self._config.mirror.delete_removed:
            for removed in report.changes.removed:
                path = str(removed["path"])
                if not self._state.files_at(path):  # no URL of this crawl shares it
                    with contextlib.suppress(OSError, CrawlError):
                        os.unlink(checked_join(self._files.root, path))

    def _publish(self, report: CrawlReport) -> None:
        """Snapshot mode: `latest` moves to this snapshot if it is healthy; then the oldest
        snapshots beyond snapshots.keep go (never `latest`)."""
        snapshot, output = self._layout.snapshot, self._config.output_dir
        if snapshot is None:
            return
        previous = self._layout.previous
        previous_pages = sum(is_html(e.content_type) for e in previous.entries.values()) if previous else None
        tally = report.tally
        report.health_problems = health_problems(
            self._config.snapshots.health, start_urls=self._config.start_urls,
            pages=self._state.html_pages(),
            final_path=self._files.links.final_path, previous_pages=previous_pages,
            attempted=tally.requests_ok + tally.not_modified + tally.reused_fresh + len(tally.failures),
            failed=len(report.serious_failures))
        if not report.health_problems:
            publish(output, snapshot)
            report.published = True
        else:
            log.error("snapshot %s failed its health checks: %s", snapshot, "; ".join(report.health_problems),
                      extra={ENDING: True})
            report.published = False
        self._files.writer.write_metadata(REPORT, report.to_json())

    def _protected(self) -> set[str]:
        """The snapshots pruning must leave: this run's, and `latest`."""
        return {self._layout.snapshot or "", latest_snapshot(self._config.output_dir) or ""}

    def _look_at_files(self, report: CrawlReport) -> dict[str, SavedFile]:
        """One pass over the saved files: files and bytes by content type for the report, and
        the entries of the pages report.html shows (their title, their text diff)."""
        shown = set(report_html.shown_urls(report.changes)) if report.changes is not None else set()
        entries: dict[str, SavedFile] = {}
        kinds: dict[str, list[int]] = {}
        for entry in self._state.entries():
            counts = kinds.setdefault(entry.content_type or "unknown", [0, 0])
            counts[0] += 1
            counts[1] += entry.size
            if entry.url in shown:
                entries[entry.url] = entry
        report.content_types = kinds
        return entries

    def _write_html(self, report: CrawlReport, shown: dict[str, SavedFile]) -> None:
        """report.html beside report.json: after publishing (it says whether the snapshot is
        `latest`), before pruning (the earlier snapshot's pages are still there to compare)."""
        previous, layout = self._layout.previous, self._layout
        earlier = None
        if previous is not None:
            lasting = previous.snapshot is None or previous.snapshot not in doomed(
                self._config.output_dir, self._config.snapshots.keep, self._protected())
            earlier = report_html.Earlier(entries=previous.entries, replaced=layout.kept or previous.root,
                                          removed=previous.root, lasting=lasting)
        try:
            page = report_html.render(report, self._files.root, later=shown, earlier=earlier,
                                      ignore=self._config.snapshots.ignore, path_of=self._files.links.final_path)
        except Exception:  # a bug in the report page must not cost the run its outcome
            log.exception("cannot render %s", REPORT_HTML)
            return
        self._files.writer.write_metadata(REPORT_HTML, page.encode())
