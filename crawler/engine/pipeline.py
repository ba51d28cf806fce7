"""The crawl pipeline: three stages of threads joined by bounded queues.

    0. state       lock the output folder; resume the crawl its state says was interrupted
    1. seed        start URLs -> frontier
    2. fetchers    frontier.get() -> HTTP GET -> page queue            (network-bound)
    3. parsers     page queue -> links -> scope -> frontier.add_all     (CPU-bound)
                              -> write queue
    4. writers     write queue -> links converted -> file -> frontier.task_done  (disk, CPU)
    5. stop        frontier.get() returns None once nothing is pending or in flight:
                   fetchers end, then one sentinel per parser, then one per writer.
    6. finish      links written for an outcome that did not happen fixed; manifest, report.

Every admission, file, failure and skip is journaled to the crawl state (state.py) as it
happens, which is what makes any interruption resumable.

The two queues are bounded, so a slow parser or disk holds the fetchers back instead of
filling memory. The frontier never blocks a producer, so the stages form no cycle of waits
(its page URLs beyond a limit wait in the crawl state, not in memory). A URL stays "in
flight" until its file is written (or its failure recorded), which is what makes "nothing
pending and nothing in flight" mean the crawl is complete.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from hashlib import sha256
from typing import TYPE_CHECKING

from crawler.config import Config
from crawler.engine.frontier import Frontier
from crawler.engine.scope import Scope
from crawler.engine.state import CrawlLock, CrawlState, Resumed, remove_temporary_files
from crawler.errors import CrawlError, FetchError, OutputError
from crawler.history.changes import PREVIOUS_CRAWL, compare
from crawler.history.recrawl import KnownLinks, StoredCopies
from crawler.history.report import ENDING, FIELDS, STAGES, CrawlReport, Stats, Tally
from crawler.history.snapshot import (
    MANIFEST,
    Layout,
    health_problems,
    latest_snapshot,
    layout,
    prune,
    publish,
    snapshot_name,
)
from crawler.http.fetcher import Fetcher, Follow, Redirected
from crawler.http.robots import ALLOW_ALL, DISALLOW_ALL, RobotsRules
from crawler.mirror.converter import (
    Finisher,
    LinkFixer,
    LinkMap,
    Misplaced,
    OfflineLinks,
    convert_document,
    count_unconverted,
    read_converted_links,
    relative_from_folder,
)
from crawler.mirror.links import ParsedDocument, parse_document, sitemap_links
from crawler.mirror.writer import TEMP_SUFFIX, Writer, checked_join
from crawler.models import HTML_TYPES, CrawlItem, Failure, Link, LinkKind, Page, Response, SavedFile, is_html
from crawler.urls import InvalidURLError, canonicalize, origin_of

if TYPE_CHECKING:
    from crawler.history.warc import WarcArchive

log = logging.getLogger(__name__)

MAX_ROBOTS_BYTES = 500 * 1024  # what Google reads of a robots.txt; the rest is ignored


@dataclass(frozen=True)
class _Sentinel:
    """Put on a queue once per consumer thread: "no more items, stop"."""


@dataclass(frozen=True)
class _FixLinks:
    """For the writers: links of saved pages written for an outcome that did not happen."""

    misplaced: list[Misplaced]


STOP = _Sentinel()
QueueItem = Page | _FixLinks | _Sentinel


class Pipeline:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.scope = Scope(config.scope, requisites_anywhere=config.mirror.requisites)
        self.lock = CrawlLock(config.output_dir)
        self.state = CrawlState(config.output_dir, on_error=self._abort)
        politeness = config.politeness
        self.frontier = Frontier(max_pages=config.scope.max_pages, per_host=politeness.per_host,
                                 delay=politeness.delay, robots=politeness.robots, journal=self.state,
                                 parking=self.state)
        self.writer = Writer(config.output_dir, adjust_extension=config.mirror.adjust_extension,
                             on_move=self._file_moved, on_write=self.state.file_written,
                             on_rewrite=self._file_to_change)
        self.links = LinkMap(self.writer.path_for)
        self._fixer = LinkFixer(config.output_dir, self.writer.rewrite, on_change=self._page_links_changed)
        self._converted_earlier: list[SavedFile] = []  # pages an interrupted run converted
        self.fetcher = Fetcher(config.http, in_domains=self.scope.in_domains,
                               may_follow=self._may_follow_redirect,
                               heuristic_freshness=config.mirror.heuristic_freshness)
        self.layout: Layout | None = None  # where this run writes, and the crawl before it
        self.archive: WarcArchive | None = None  # output_formats: warc
        self.pages: queue.Queue[QueueItem] = queue.Queue(maxsize=config.queue_size)
        self.writes: queue.Queue[QueueItem] = queue.Queue(maxsize=config.queue_size)
        self._tallies: list[Tally] = []  # one per worker, filled in before the threads start
        self._earlier = Tally()  # what the interrupted runs of this crawl did, when resuming
        self._resumed_from: str | None = None
        self._fatal_errors: queue.SimpleQueue[CrawlError] = queue.SimpleQueue()
        self._aborted = threading.Event()  # set with the first fatal error (disk full, ...)
        self._interrupted = threading.Event()
        self._cpu_at_start = 0.0
        self._started_at = time.monotonic()
        self.fatal_error: CrawlError | None = None  # read after run()

    # -- running ---------------------------------------------------------------------------

    def run(self) -> CrawlReport:
        """Crawl until done (or stopped), join every thread, and write manifest and report."""
        started = datetime.now(timezone.utc)
        self._cpu_at_start = time.process_time()
        self._started_at = time.monotonic()
        self.writer.prepare()
        self.lock.acquire()
        try:
            output, keep = self.config.output_dir, self.config.snapshots.keep
            new_snapshot = snapshot_name(output, started) if keep else None
            # A plain mirror's previous crawl is the manifest in the folder: the one an
            # interrupted first crawl leaves there is no previous crawl of the resumed one.
            first = not keep and not (output / MANIFEST).is_file()
            resumed = self.state.open(self.config.model_dump_json(), started.isoformat(), new_snapshot,
                                      first_crawl=first)
            self._lay_out(resumed.snapshot if resumed else new_snapshot, resuming=resumed is not None,
                          first_crawl=resumed is not None and resumed.first_crawl)
            self._seed_or_resume(resumed)
            threads = self.config.threads
            fetchers = self._start(threads.fetchers, "fetch", self._fetch_loop)
            parsers = self._start(threads.parsers, "parse", self._parse_loop)
            writers = self._start(threads.writers, "write", self._write_loop)
            self._join_then_stop(fetchers, self.pages, len(parsers))
            self.fetcher.shutdown()
            self._join_then_stop(parsers, self.writes, len(writers))
            self._join_then_stop(writers, None, 0)
            return self._finish(started)
        finally:
            self.state.close()  # if the run broke off before _finish: what it journaled is kept
            self.lock.release()

    def _lay_out(self, snapshot: str | None, resuming: bool = False, first_crawl: bool = False) -> None:
        """This run's mirror folder (a snapshot's, in snapshot mode) and the crawl before it
        (none for the `first_crawl` of the folder, resumed)."""
        self.layout = layout(self.config.output_dir, self.config.snapshots.keep, snapshot, resuming=resuming)
        if first_crawl:
            self.layout.previous = None
        if self.layout.root != self.config.output_dir:
            self.writer = Writer(self.layout.root, adjust_extension=self.config.mirror.adjust_extension,
                                 on_move=self._file_moved, on_write=self.state.file_written,
                                 on_rewrite=self._file_to_change)
            self.writer.prepare()
            self._fixer = LinkFixer(self.layout.root, self.writer.rewrite, on_change=self._page_links_changed)
        self.stored = StoredCopies(self.layout.previous, revalidate=self.config.mirror.revalidate,
                                   outlinks=self.state.known_outlinks)
        if "warc" in self.config.output_formats:
            self.archive = self._open_archive()

    def _open_archive(self) -> WarcArchive:
        """A snapshot's WARC sits in the snapshot; a plain mirror keeps one per run in warc/."""
        from crawler.history.warc import WARC_NAME, WarcArchive  # warcio: only for output_formats: warc

        assert self.layout is not None
        if self.layout.snapshot is not None:
            path = self.layout.root / WARC_NAME
        else:
            (self.layout.output / "warc").mkdir(exist_ok=True)
            path = self.layout.output / "warc" / f"{snapshot_name(self.layout.output)}.warc.gz"
        info = {"start-urls": " ".join(self.config.start_urls), "snapshot": self.layout.snapshot or ""}
        try:
            return WarcArchive(path, secret_headers=self.config.http.headers, info=info)
        except OSError as error:
            raise OutputError(f"cannot write {path}: {error.strerror or error}", str(path)) from None

    def _seed_or_resume(self, resumed: Resumed | None) -> None:
        if resumed is None:
            assert self.layout is not None
            self.layout.start_keeping()
            self.frontier.add_all(self._seeds())
            return
        self._resumed_from = resumed.started_at
        removed = remove_temporary_files(self.writer.root, TEMP_SUFFIX)
        log.warning("resuming the crawl started %s: %d files saved, %d URLs to go%s", resumed.started_at,
                    len(resumed.saved), len(resumed.pending) + sum(resumed.parked.values()),
                    f" ({removed} half-written files removed)" if removed else "")
        self.frontier.restore(resumed.seen, resumed.pending, resumed.skipped, resumed.html_pages_saved,
                              resumed.parked)
        # A crawl killed before its start URLs were journaled left nothing else either: they go
        # in again (those it had are known, so nothing is fetched twice).
        self.frontier.add_all(self._seeds())
        self.writer.restore(resumed.saved)
        self.links.restore(resumed.saved, resumed.aliases)
        self._converted_earlier = [entry for entry in resumed.saved
                                   if self.config.mirror.convert_links and entry.size != entry.file_size]
        earlier = self._earlier
        earlier.failures, earlier.aliases = resumed.failures, resumed.aliases
        earlier.files_saved, earlier.html_pages_saved = len(resumed.saved), resumed.html_pages_saved
        for name, value in resumed.totals.items():
            setattr(earlier, name, value)

    def _seeds(self) -> list[CrawlItem]:
        seeds = [CrawlItem(url, 0, LinkKind.PAGE) for url in self.config.start_urls]
        if self.config.mirror.sitemaps:
            origins = dict.fromkeys(origin_of(url) for url in self.config.start_urls)
            seeds += [CrawlItem(f"{origin}/sitemap.xml", 0, LinkKind.SITEMAP, guessed=True) for origin in origins]
        return seeds

    def stop(self) -> None:
        """Ctrl-C / SIGTERM: take no new URL; what is in flight drains through the stages."""
        self._interrupted.set()
        self.frontier.stop()
        self.fetcher.stop()

    def stats(self) -> Stats:
        """Where the crawl is now, for a progress display: read while it runs, without locks
        but the frontier's (a count read mid-update is off by one at worst)."""
        stages = {name: [tally for tally in self._tallies if tally.stage == name] for name in STAGES}
        tallies = [self._earlier, *self._tallies]
        frontier, retrying = self.frontier.backlog()
        held, page_limit_reached = self.frontier.page_limit()
        return Stats(
            elapsed=time.monotonic() - self._started_at, saved=sum(t.files_saved for t in tallies),
            discovered=self.frontier.seen_count(), bytes=sum(t.bytes_downloaded for t in tallies),
            errors=sum(len(t.failures) for t in tallies),
            busy={name: sum(t.busy for t in members) for name, members in stages.items()},
            threads={name: len(members) for name, members in stages.items()},
            queued={"page queue": self.pages.qsize(), "write queue": self.writes.qsize()},
            queue_size=self.config.queue_size, frontier=frontier, retrying=retrying, held=held,
            page_limit_reached=page_limit_reached)

    def _start(self, count: int, name: str, loop: Callable[[Tally], None]) -> list[threading.Thread]:
        threads = []
        for number in range(count):
            tally = Tally(stage=name)
            self._tallies.append(tally)
            thread = threading.Thread(target=loop, args=(tally,), name=f"{name}-{number}", daemon=True)
            thread.start()
            threads.append(thread)
        return threads

    @staticmethod
    def _join_then_stop(threads: list[threading.Thread], downstream: queue.Queue[QueueItem] | None,
                        consumers: int) -> None:
        for thread in threads:
            thread.join()
        if downstream is not None:
            for _ in range(consumers):
                downstream.put(STOP)

    def _finish(self, started: datetime) -> CrawlReport:
        tally = Tally()
        for part in [self._earlier, *self._tallies]:
            tally.merge(part)
        offline_links = None
        not_fetched = [item.url for item in self.frontier.pending()]
        if not self._aborted.is_set():
            try:
                offline_links = self._finish_links(tally, not_fetched)
            except OutputError as error:
                self._abort(error)
        outcome = "aborted" if self._aborted.is_set() else "interrupted" if self._interrupted.is_set() \
            else "completed"
        if self._aborted.is_set():
            self.fatal_error = self._fatal_errors.get()
        report = CrawlReport(
            start_urls=list(self.config.start_urls), output=str(self.config.output_dir),
            started_at=started, finished_at=datetime.now(timezone.utc), outcome=outcome,
            tally=tally, skipped=self.frontier.skipped(), not_fetched=not_fetched,
            fatal_error=str(self.fatal_error) if self.fatal_error else None, offline_links=offline_links,
            resumed_from=self._resumed_from, snapshot=self.layout.snapshot if self.layout else None,
            cpu_seconds=time.process_time() - self._cpu_at_start,
            files_this_run=sum(part.files_saved for part in self._tallies))
        if outcome == "completed" and report.unreachable():  # no page to compare or publish
            report.outcome = outcome = "unreachable"
        try:
            self.state.flush()  # the saved files' entries come from the state, streamed
            if outcome == "completed":
                self._compare(report, tally, not_fetched)
            self.writer.write_json_lines("manifest.jsonl", map(_manifest_record, self.state.entries()))
            self.writer.write_metadata("report.json", report.to_json())
            if report.changes is not None:
                self.writer.write_json("changes.json", report.changes.to_dict())
            if outcome == "completed":
                self._publish(report)
        except (OSError, OutputError) as exc:
            self.fatal_error = exc if isinstance(exc, OutputError) else OutputError(
                f"cannot write the manifest or report: {exc}")
            report.fatal_error = str(self.fatal_error)
        finally:
            if self.archive is not None:
                self.archive.close()
            # Only now: a crawl that stops before this point resumes, and finishes, next time.
            # An unreachable site has nothing to resume: the next run starts anew.
            self.state.finish(completed=outcome in ("completed", "unreachable") and self.fatal_error is None,
                              totals=tally.counters())
        return report

    def _compare(self, report: CrawlReport, tally: Tally, not_fetched: list[str]) -> None:
        """changes.json: what changed since the crawl before; in a plain mirror with
        mirror.delete_removed, the files of removed pages go."""
        previous = self.layout.previous if self.layout else None
        # A plain mirror's pages were replaced in place: their earlier text is in the copies kept.
        earlier_root = (self.layout.kept or previous.root) if self.layout and previous else None
        report.changes = compare(
            previous.entries.values() if previous else (), earlier_root,
            self.state.entries(),
            self.writer.root, ignore=self.config.snapshots.ignore, failures=tally.failures,
            not_checked=not_fetched,
            earlier_name=(previous.snapshot or PREVIOUS_CRAWL) if previous else None,
            later_again=self.state.entries)
        if self.config.snapshots.keep == 0 and self.config.mirror.delete_removed:
            for removed in report.changes.removed:
                path = str(removed["path"])
                if not self.state.count("WHERE path = ?", (path,)):  # no URL of this crawl shares it
                    with contextlib.suppress(OSError, CrawlError):
                        os.unlink(checked_join(self.writer.root, path))

    def _publish(self, report: CrawlReport) -> None:
        """Snapshot mode: `latest` moves to this snapshot if it is healthy; then the oldest
        snapshots beyond snapshots.keep go (never `latest`)."""
        if self.layout is None or self.layout.snapshot is None:
            return
        previous = self.layout.previous
        previous_pages = sum(is_html(e.content_type) for e in previous.entries.values()) if previous else None
        report.health_problems = health_problems(
            self.config.snapshots.health, report, start_urls=self.config.start_urls,
            pages=self.state.count(f"WHERE content_type IN ({', '.join('?' * len(HTML_TYPES))})",
                                   tuple(HTML_TYPES)),
            final_path=self.links.final_path, previous_pages=previous_pages)
        if not report.health_problems:
            publish(self.config.output_dir, self.layout.snapshot)
            report.published = True
        else:
            log.error("snapshot %s failed its health checks: %s", self.layout.snapshot,
                      "; ".join(report.health_problems), extra={ENDING: True})
            report.published = False
        self.writer.write_metadata("report.json", report.to_json())
        latest = latest_snapshot(self.config.output_dir)
        prune(self.config.output_dir, self.config.snapshots.keep, protect={self.layout.snapshot, latest or ""})

    def _finish_links(self, tally: Tally, not_fetched: list[str]) -> OfflineLinks:
        """Fix up the links converted during the crawl once every outcome is known (not for an
        interrupted crawl: resuming it does that), and count the links that work offline
        (those to pages max_pages left out are not meant to)."""
        broken = [failure.url for failure in tally.failures if failure.is_client_error]
        excluded = self.frontier.skipped()
        left_out = () if self._interrupted.is_set() else not_fetched  # interrupted: to be fetched yet
        self.state.flush()
        if not self.config.mirror.convert_links:
            return count_unconverted(self.writer.root, self.state.entries(), final_url=self.links.final_url,
                                     path_of=self.links.final_path, in_domains=self.scope.in_domains,
                                     broken=broken, excluded=excluded, left_out=left_out)
        finisher = Finisher(self.writer.root, self.links, self._fixer, in_domains=self.scope.in_domains,
                            broken=broken, excluded=excluded, left_out=left_out,
                            recorded_targets=self._recorded_targets)
        return finisher.finish(self.state.entries(), self._converted_earlier, fix=not self._interrupted.is_set())

    def _recorded_targets(self, entry: SavedFile) -> list[str] | None:
        """The target URLs of a saved page's links, in order, as the crawl state recorded them
        when the page was written (None: not recorded for this very file and content)."""
        recorded = self.state.known_outlinks(entry.url)
        if recorded is None or recorded[0] != entry.path or recorded[1] != entry.sha256:
            return None
        known = KnownLinks.decode(recorded[2])
        return [url for url, _ in known.targets] if known is not None else None

    def _page_links_changed(self, path: str, fixes: dict[str, str | None] | None) -> None:
        """LinkFixer rewrote links of a saved page: its recorded outlinks follow."""
        if fixes is None:
            self.state.outlinks_changed(path)
        else:
            self.state.outlinks_changed(path, lambda text: _fixed_links(text, fixes))

    def _file_to_change(self, path: str, size: int) -> None:
        """A saved page is about to be rewritten with its links fixed: its new size goes on
        record first (beside the old one), so that a resumed crawl takes the file, of either
        size, as whole instead of downloading it again."""
        self.state.file_written(path, size)
        self.state.flush()

    def _file_moved(self, old: str, new: str) -> None:
        """The writer moved a saved file aside for a folder of the same name (under its lock)."""
        self.state.moved(old, new)
        self.links.moved(old, new)

    # -- stage 1: fetch --------------------------------------------------------------------

    def _fetch_loop(self, tally: Tally) -> None:
        try:
            while (item := self.frontier.get()) is not None:
                tally.busy = True
                try:
                    self._fetch_one(item, tally)
                except Exception as exc:  # a bug must not strand the item in flight
                    self._internal_error(item, exc, tally)
                tally.busy = False
        finally:
            self.fetcher.close()

    def _fetch_one(self, item: CrawlItem, tally: Tally) -> None:
        pause = 0.0
        try:
            result = self._fetch_or_reuse(item, tally)
        except FetchError as error:
            pause = min(error.retry_after or 0.0, self.config.http.max_retry_after)
            self._fetch_failed(self._failed_after_redirects(item, error, tally), error, pause, tally)
            return
        finally:
            self.frontier.release(item, pause)  # the host may take its next request
        if isinstance(result, Redirected):
            self._redirected(result.source, result.target, tally)
            if result.follow is Follow.LATER:  # another host: through the frontier, with its rules
                self.frontier.add(CrawlItem(result.target, item.depth, item.kind, referrer=item.referrer,
                                            chain=item.chain))
            self.frontier.task_done(item)
            return
        for source in result.redirects:
            tally.aliases.append((source, result.url))
            self.state.aliased(source, result.url)
            self.links.alias(source, result.url)
        if result.stored is None:
            tally.requests_ok += 1
            tally.bytes_downloaded += len(result.body)
        if item.kind is LinkKind.ROBOTS:
            text = result.body[:MAX_ROBOTS_BYTES].decode("utf-8", "replace")
            self._robots_answered(item.url, RobotsRules.parse(text, self.config.http.user_agent))
        self.pages.put(Page(item, result))

    def _redirected(self, source: str, target: str, tally: Tally) -> None:
        """`source` redirects to `target`, which is fetched (or skipped) as a URL of its own."""
        tally.redirects += 1
        tally.aliases.append((source, target))
        self.state.aliased(source, target)
        self.links.alias(source, target)

    def _failed_after_redirects(self, item: CrawlItem, error: FetchError, tally: Tally) -> CrawlItem:
        """The item whose fetch failed. When redirects were followed to it, each URL that
        redirected is recorded as such, and the URL that failed -- claimed when the redirect was
        followed -- becomes an item of its own, in flight: retried, or failed with its own reason.
        Else a failed redirect target would be nowhere: not fetched again (it is "seen"), not
        saved, not failed."""
        if item.kind is LinkKind.ROBOTS:  # never claimed: its host's answer, wherever it lives
            return item
        for source, target in error.hops:
            if source != error.url:  # the URL a loop or too long a chain is reported under
                self._redirected(source, target, tally)
        if error.url == item.url:
            return item
        target = CrawlItem(error.url, item.depth, item.kind, referrer=item.referrer, chain=item.chain,
                           guessed=item.guessed)
        self.frontier.adopt(target)  # before `item` leaves: the crawl is never seen idle between
        self.frontier.task_done(item)
        return target

    def _robots_answered(self, url: str, rules: RobotsRules) -> None:
        """Pages already written with links to what the rules keep out get those links fixed
        by the writers now, not at the end of the crawl."""
        for disallowed in self.frontier.set_robots(url, rules):
            misplaced = self.links.unsaved(disallowed)
            if misplaced:
                self.writes.put(_FixLinks(misplaced))

    def _fetch_or_reuse(self, item: CrawlItem, tally: Tally) -> Response | Redirected:
        """A download; or, on a re-crawl, the stored copy: without a request while it is still
        fresh, after a 304 answer to a conditional request otherwise."""
        stored = self.stored.get(item.url)
        if stored is not None and self.stored.fresh(stored):
            reused = self.stored.reuse(stored)
            if reused is not None:
                tally.reused_fresh += 1
                return reused
            stored = None  # its file is gone: download it
        result = self.fetcher.fetch(item, stored)
        if isinstance(result, Response) and result.status == 304:
            reused = self.stored.reuse(stored, result) if stored is not None else None
            if reused is None:
                return self.fetcher.fetch(item)
            tally.not_modified += 1
            return reused
        return result

    def _fetch_failed(self, item: CrawlItem, error: FetchError, pause: float, tally: Tally) -> None:
        if error.reason == "interrupted":  # cut by a stop: not fetched, not failed
            self.frontier.put_back(item)
            return
        delay = self.fetcher.retry_policy.delay(item.attempt, pause, error.reason) if error.retryable else None
        if delay is not None:
            log.debug("retry %s in %.1f s: %s", item.url, delay, error)
            tally.retries += 1
            self.frontier.retry_later(item, delay)
            return
        if item.kind is LinkKind.ROBOTS:
            # No robots.txt (4xx): all allowed. Server trouble (5xx, no answer): nothing allowed.
            allowed = error.status is not None and 400 <= error.status < 500
            self._robots_answered(item.url, ALLOW_ALL if allowed else DISALLOW_ALL)
            if allowed:
                self.frontier.task_done(item)
                return
            # The server answered, but with no robots.txt. (No answer at all -- refused, DNS,
            # TLS -- is the cause to tell as it is: the host cannot be reached.)
            if error.status is not None:
                error = FetchError(f"robots.txt unavailable, so none of this host is fetched: {error}",
                                   item.url, "robots_unavailable", status=error.status)
        if item.guessed:  # a /sitemap.xml that is not there is no failure of the site
            log.debug("no %s: %s", item.url, error)
            self.frontier.task_done(item)
            return
        self._fail(item, Failure(item.url, error.reason, str(error), error.status, item.referrer,
                                 off_site=not self.scope.in_domains(item.url)), tally)

    def _may_follow_redirect(self, item: CrawlItem, target: str) -> Follow:
        if item.kind is LinkKind.ROBOTS:
            return Follow.NOW  # robots.txt may live elsewhere; it is never deduplicated
        rule = self.scope.rejection(target, item.kind, item.depth, item.chain)
        if rule is not None:
            self.frontier.skip(target, f"redirect_{rule}")
            return Follow.NO
        if origin_of(target) != origin_of(item.url):
            return Follow.LATER
        return Follow.NOW if self.frontier.claim(target) else Follow.NO

    # -- stage 2: parse --------------------------------------------------------------------

    def _parse_loop(self, tally: Tally) -> None:
        while not isinstance(page := self.pages.get(), _Sentinel):
            tally.busy = True
            try:
                self._parse_one(page, tally)
            except Exception as exc:
                self._internal_error(page.item, exc, tally)
            tally.busy = False

    def _parse_one(self, page: Page, tally: Tally) -> None:
        response, item = page.response, page.item
        page.is_html = is_html(response.content_type)
        try:
            if item.kind is LinkKind.SITEMAP:
                page.links = sitemap_links(response.body, response.url)
            elif item.kind is LinkKind.ROBOTS:
                page.links = self._robots_sitemaps(response.body)
            elif (known := self._known_links(response)) is not None:  # an unchanged page: not parsed
                page.known_links = known
                page.links = known.links()
            else:
                page.document = self._parsed(response)
                page.links = page.document.links() if page.document is not None else []
        except Exception as exc:  # a page that breaks the parser is still saved
            log.warning("cannot parse %s: %s", response.url, exc)
            tally.parse_errors.append(Failure(response.url, "parse_error", str(exc)[:300]))
            page.document = None
        admitted, rejected = [], []
        # Most links of a page lead where the crawl has been already (menus, footers): their
        # URLs are admitted, to be saved, and need no scope rules asked again.
        seen = self.frontier.seen_among(link.url for link in page.links)
        for link in page.links:
            if link.url in seen:
                continue
            # Pages restart the requisite chain; requisites extend it.
            depth = self.scope.link_depth(link.kind, item.depth)
            chain = 0 if link.kind is LinkKind.PAGE else item.chain + 1
            rule = self.scope.rejection(link.url, link.kind, depth, chain)
            if rule is None:
                admitted.append(CrawlItem(link.url, depth, link.kind, referrer=response.url, chain=chain))
            else:
                rejected.append((link.url, rule))
                page.left_out.add(link.url)
        # robots.txt, where already known, is asked now, so that this page's links to what it
        # disallows are written as URLs at once.
        page.left_out.update(self.frontier.add_all(admitted, skipped=rejected, source=item, links=page.links))
        self.writes.put(page)

    def _parsed(self, response: Response) -> ParsedDocument | None:
        document = parse_document(response.body, response.url, response.content_type, response.charset)
        if document is not None and response.stored is not None:  # a saved, converted copy
            read_converted_links(document, response.stored.path, self.stored.url_of_file)
        return document

    def _known_links(self, response: Response) -> KnownLinks | None:
        if response.stored is None or not self.config.mirror.convert_links:
            return None
        return self.stored.known_links(response.stored)

    def _robots_sitemaps(self, body: bytes) -> list[Link]:
        if not self.config.mirror.sitemaps:
            return []
        rules = RobotsRules.parse(body[:MAX_ROBOTS_BYTES].decode("utf-8", "replace"), self.config.http.user_agent)
        links = []
        for url in rules.sitemaps:
            try:
                links.append(Link(canonicalize(url), LinkKind.SITEMAP))
            except InvalidURLError:
                continue
        return links

    # -- stage 3: write --------------------------------------------------------------------

    def _write_loop(self, tally: Tally) -> None:
        while not isinstance(page := self.writes.get(), _Sentinel):
            tally.busy = True
            if isinstance(page, _FixLinks):
                self._fixer.fix(page.misplaced)
            else:
                try:
                    self._write_one(page, tally)
                except Exception as exc:
                    self._internal_error(page.item, exc, tally)
            tally.busy = False

    def _write_one(self, page: Page, tally: Tally) -> None:
        if self._aborted.is_set():  # the disk is gone: drain the queue, keep the URL pending
            self.frontier.put_back(page.item)
            return
        response = page.response
        entry, unchanged = self._entry(response)
        try:
            saved = self.writer.shared(response.url, entry)
            page_number, written_links = None, None
            if saved is None:
                if unchanged is None and self.layout is not None:
                    self.layout.keep_replaced(response.url)
                data, page_number, written_links = self._converted(page)
                # An unchanged file is a hard link to the previous snapshot's (or, in a plain
                # mirror, left alone) when its bytes are the same after conversion too.
                reuse = str(self.stored.path(unchanged)) if unchanged is not None else None
                # A copy reused from disk was read just now: its bytes are known.
                known = response.stored is not None and unchanged is not None \
                    and unchanged.path == response.stored.path
                saved = self.writer.save(response.url, data, entry, reuse=reuse,
                                         reuse_holds=data == response.body if known else None)
        except OutputError as error:
            self._abort(error)
            self.frontier.put_back(page.item)  # still to be fetched when the crawl resumes
            return
        except CrawlError as error:
            self._fail(page.item, Failure(response.url, "unsafe_path", str(error)), tally, fix_now=True)
            return
        # Before links.saved(): no fix of this page comes earlier.
        self.state.saved(saved, written_links.encode() if written_links is not None else None)
        if self.archive is not None:
            try:
                self.archive.record(response, saved, revisit_of=unchanged)
            except OSError as error:
                self._abort(OutputError(f"cannot write {self.archive.path}: {error.strerror or error}"))
        self._fixer.fix(self.links.saved(response.url, saved.path, page_number))
        html_page = page.is_html and page.item.kind is LinkKind.PAGE
        tally.files_saved += 1
        tally.html_pages_saved += html_page
        self.frontier.task_done(page.item, saved_html_page=html_page)

    def _entry(self, response: Response) -> tuple[SavedFile, SavedFile | None]:
        """The manifest entry of a response, and the previous crawl's entry if the content is
        the same as then (a 304, a fresh copy, or a 200 with the same SHA-256)."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        if response.stored is not None:  # the body is the stored file: keep what described it
            stored = response.stored
            entry = replace(stored, path="", etag=response.etag, last_modified=response.last_modified,
                            fresh_until=response.fresh_until, file_size=-1)
            return entry, stored
        entry = SavedFile(url=response.url, path="", status=response.status,
                          content_type=response.content_type, size=len(response.body),
                          sha256=sha256(response.body).hexdigest(), etag=response.etag,
                          last_modified=response.last_modified, fetched_at=response.fetched_at,
                          charset=response.charset, checked_at=now, fresh_until=response.fresh_until)
        previous = self.stored.get(response.url)
        return entry, previous if previous is not None and previous.sha256 == entry.sha256 else None

    def _converted(self, page: Page) -> tuple[bytes, int | None, KnownLinks | None]:
        """The page's bytes with links converted for offline reading (mirror.convert_links),
        its number in the link map, and its links as written (for the next crawl); the body as
        served otherwise."""
        response = page.response
        if not self.config.mirror.convert_links:
            return response.body, None, None
        known = page.known_links
        if known is not None:
            targets = [(url, kind, url not in page.left_out) for url, kind in known.targets]
            number = self.links.plan_if(response.content_type, response.charset, targets, known.files)
            if number is not None:
                return response.body, number, None  # a stored copy whose links stay as written
            try:  # some are to be written otherwise now
                page.document = self._parsed(response)
            except Exception as exc:  # it parsed when it was saved; if not now, it stays as it is
                log.warning("cannot parse %s: %s", response.url, exc)
                return response.body, None, None
        document = page.document
        if document is None:
            return response.body, None, None
        targets = [(target[0], spot.kind, target[0] not in page.left_out)
                   for spot, target in zip(document.spots, document.targets, strict=True) if target is not None]
        number, files = self.links.plan(response.content_type, response.charset, targets)
        page_path = self.writer.path_for(response.url, response.content_type)
        data = convert_document(document, page_path, files, relative_from_folder)
        written = KnownLinks([(url, kind) for url, kind, _ in targets], files)
        return (data if data is not None else response.body), number, written

    # -- failures --------------------------------------------------------------------------

    def _fail(self, item: CrawlItem, failure: Failure, tally: Tally, fix_now: bool = False) -> None:
        """Record a failed URL. Pages already written with a link to the file it will not be
        get fixed: by the writers, or at once (`fix_now`) where waiting on their queue could
        block the thread that empties it."""
        log.info("failed %s: %s", failure.url, failure.message,
                 extra={FIELDS: {"url": failure.url, "reason": failure.reason, "status": failure.status}})
        tally.failures.append(failure)
        self.state.failed(failure)
        misplaced = self.links.unsaved(failure.url)
        if misplaced and fix_now:
            self._fixer.fix(misplaced)
        elif misplaced:
            self.writes.put(_FixLinks(misplaced))
        self.frontier.task_done(item)

    def _abort(self, error: CrawlError) -> None:
        """A fatal error (disk full, state unwritable): stop everything, keep what is pending."""
        if not self._aborted.is_set():
            log.error("%s", error, extra={ENDING: True})
            self._fatal_errors.put(error)
            self._aborted.set()
        self.frontier.stop()
        self.fetcher.stop()

    def _internal_error(self, item: CrawlItem, exc: Exception, tally: Tally) -> None:
        log.exception("internal error on %s", item.url)
        self._fail(item, Failure(item.url, "internal_error", f"{type(exc).__name__}: {exc}"), tally, fix_now=True)


def _fixed_links(encoded: str, fixes: dict[str, str | None]) -> str | None:
    known = KnownLinks.decode(encoded)
    return known.fixed(fixes).encode() if known is not None else None


def _manifest_record(entry: SavedFile) -> dict[str, object]:
    return {
        "url": entry.url, "path": entry.path, "status": entry.status,
        "content_type": entry.content_type, "size": entry.size, "sha256": entry.sha256,
        "etag": entry.etag, "last_modified": entry.last_modified, "fetched_at": entry.fetched_at,
        "charset": entry.charset, "checked_at": entry.checked_at, "fresh_until": entry.fresh_until,
    }
