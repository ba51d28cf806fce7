"""One run of a config, from start to finish:

    lock the output folder -> open the crawl state (resume an interrupted crawl, or begin a
    new one) -> lay out where this run writes and what it compares with (the mirror, or a new
    snapshot) -> seed the frontier -> the pipeline (pipeline.py) -> finish (finish.py)

`CrawlRun(config).run()` is what `crawl CONFIG` does; `stop()` (Ctrl-C) and `stats()` (the
progress display) may be called from other threads meanwhile.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from crawler.config import Config
from crawler.engine.cpu import OneCpu
from crawler.engine.fetch_stage import redirect_rule
from crawler.engine.files import MirrorFiles
from crawler.engine.finish import RunEnd, RunFacts
from crawler.engine.frontier import MemoryFrontier
from crawler.engine.interfaces import CrawlState, Frontier
from crawler.engine.lock import CrawlLock
from crawler.engine.outcomes import Stopping
from crawler.engine.pipeline import Pipeline, measure
from crawler.engine.redis_crawl import SharedCrawl
from crawler.engine.redis_finish import SharedEnd
from crawler.engine.redis_frontier import RedisFrontier
from crawler.engine.redis_state import RedisOwners, RedisState
from crawler.engine.scope import Scope, logged_in
from crawler.engine.state import Resumed, SqliteState, remove_temporary_files
from crawler.errors import CrawlError, OutputError
from crawler.history.recrawl import StoredCopies
from crawler.history.report import CrawlReport
from crawler.history.snapshot import Layout, layout, snapshot_name
from crawler.http.fetcher import Fetcher
from crawler.http.tls import VERIFY_OFF_WARNING
from crawler.mirror.paths import TEMP_SUFFIX
from crawler.mirror.writer import prepare_folder
from crawler.models import CrawlItem, LinkKind, SavedFile
from crawler.output_folder import MANIFEST, WARC_DIR, WARC_NAME
from crawler.tally import Stats, Tally
from crawler.urls import origin_of

if TYPE_CHECKING:
    from crawler.history.warc import WarcArchive

log = logging.getLogger(__name__)


class CrawlRun:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.scope = Scope(config.scope, requisites_anywhere=config.mirror.requisites, logged_in=logged_in(config))
        self._lock = CrawlLock(config.output_dir)
        self._stopping = Stopping(self._stop_work)
        self.shared: SharedCrawl | None = None  # state.backend: redis -- one crawl, several workers
        self.state: CrawlState
        self.frontier: Frontier
        politeness = config.politeness
        if config.state.backend == "redis":
            self.shared = SharedCrawl(config)
            self.state = RedisState(self.shared, config.output_dir)
            self.frontier = RedisFrontier(self.shared, max_pages=config.scope.max_pages, per_host=politeness.per_host,
                                          per_host_http1=config.threads.fetchers, delay=politeness.delay,
                                          robots=politeness.robots, user_agent=config.http.user_agent)
        else:
            self.state = state = SqliteState(config.output_dir, on_error=self._stopping.abort)
            self.frontier = MemoryFrontier(max_pages=config.scope.max_pages, per_host=politeness.per_host,
                                           per_host_http1=config.threads.fetchers, delay=politeness.delay,
                                           robots=politeness.robots, journal=state, parking=state)
        self.fetcher = Fetcher(config.http, in_domains=self.scope.in_domains,
                               may_follow=redirect_rule(self.scope, self.frontier),
                               heuristic_freshness=config.mirror.heuristic_freshness,
                               record_requests="warc" in config.output_formats)
        self.layout: Layout | None = None  # where this run writes, and the crawl before it
        self.pipeline: Pipeline | None = None  # the stages, once the run has started them
        self._earlier = Tally()  # what the interrupted runs of this crawl did, when resuming
        self._resumed_from: str | None = None
        self._converted_earlier: list[SavedFile] = []  # pages an interrupted run converted
        self._started_at = time.monotonic()
        self._warnings = [] if config.http.verify else [VERIFY_OFF_WARNING]

    @property
    def fatal_error(self) -> CrawlError | None:
        """Read after run(): the error that stopped the crawl or kept its report from being written."""
        return self._stopping.fatal_error

    def run(self) -> CrawlReport:
        """Crawl until done (or stopped), join every thread, and write manifest and report."""
        started = datetime.now(timezone.utc)
        cpu_at_start = time.process_time()
        self._started_at = time.monotonic()
        for warning in self._warnings:
            log.warning("%s", warning)
        prepare_folder(self.config.output_dir)
        if self.shared is None:  # a shared crawl's workers all write here: Redis keeps them apart
            self._lock.acquire()
        try:
            with _fewer_collections, OneCpu(self.config.threads.one_cpu and self.config.render.mode == "never"):
                return self._crawl(started, cpu_at_start)
        finally:
            self.state.close()  # if the run broke off before it finished: what it journaled is kept
            self._lock.release()

    def _crawl(self, started: datetime, cpu_at_start: float) -> CrawlReport:
        """Log in, open the crawl state, run the pipeline and finish; the caller holds the lock."""
        self._log_in()
        resumed = self._open(started)
        assert self.layout is not None
        files = self._files(self.layout)
        files.writer.prepare()
        stored = StoredCopies(self.layout.previous, revalidate=self.config.mirror.revalidate,
                              outlinks=self.state.known_outlinks)
        archive = self._open_archive(self.layout) if "warc" in self.config.output_formats else None
        self._seed_or_resume(resumed, files)
        self.pipeline = Pipeline(self.config, frontier=self.frontier, state=self.state, fetcher=self.fetcher,
                                  scope=self.scope, stored=stored, files=files, layout=self.layout,
                                  archive=archive, abort=self._stopping.abort, aborted=self._stopping.aborted)
        tallies = self.pipeline.run()
        tally = Tally()
        for part in [self._earlier, *tallies]:
            tally.merge(part)
        end = self._end(files, archive)
        return end.finish(RunFacts(started=started, cpu_at_start=cpu_at_start, tally=tally,
                                   files_this_run=sum(part.files_saved for part in tallies),
                                   resumed_from=self._resumed_from, converted_earlier=self._converted_earlier,
                                   stage_busy=_busy_seconds(tallies), stage_slots=_slots(tallies),
                                   warnings=self._warnings))

    def _files(self, layout: Layout) -> MirrorFiles:
        """The mirror this run writes (a shared crawl's workers share who owns which file)."""
        shared = self.shared
        if shared is None:
            return MirrorFiles(layout.root, adjust_extension=self.config.mirror.adjust_extension, state=self.state)
        return MirrorFiles(layout.root, adjust_extension=self.config.mirror.adjust_extension, state=self.state,
                           owners=RedisOwners(shared), may_rewrite=shared.may_rewrite)

    def _end(self, files: MirrorFiles, archive: WarcArchive | None) -> RunEnd | SharedEnd:
        assert self.layout is not None
        if self.shared is not None:
            assert isinstance(self.state, RedisState) and isinstance(self.frontier, RedisFrontier)
            return SharedEnd(self.config, shared=self.shared, state=self.state, frontier=self.frontier,
                             scope=self.scope, files=files, layout=self.layout, archive=archive,
                             stopping=self._stopping)
        return RunEnd(self.config, state=self.state, frontier=self.frontier, scope=self.scope, files=files,
                      layout=self.layout, archive=archive, stopping=self._stopping)

    def stop(self) -> None:
        """Ctrl-C / SIGTERM: take no new URL; what is in flight drains through the stages."""
        self._stopping.interrupt()

    def stats(self) -> Stats:
        """Where the crawl is now, for a progress display (callable from any thread)."""
        elapsed = time.monotonic() - self._started_at
        if self.pipeline is None:
            return measure(self.frontier, [self._earlier], elapsed, queued={}, queue_size=self.config.queue_size)
        return self.pipeline.stats(self._earlier, elapsed)

    def _stop_work(self) -> None:
        self.frontier.stop()
        self.fetcher.stop()

    # -- opening -----------------------------------------------------------------------------

    def _log_in(self) -> None:
        """The login: before the crawl state is opened, so that a failed one leaves no crawl to
        resume. Raises LoginError."""
        if self.config.login is None:
            return
        from crawler.http.login import Login  # bs4: only crawls behind a login

        login = Login(self.config.login, self.fetcher)
        login.log_in()
        self.fetcher.session = login

    def _open(self, started: datetime) -> Resumed | None:
        """Open the crawl state (what an interrupted crawl left, if any) and lay out the run."""
        output, keep = self.config.output_dir, self.config.snapshots.keep
        new_snapshot = snapshot_name(output, started) if keep else None
        # A plain mirror's previous crawl is the manifest in the folder: the one an interrupted
        # first crawl leaves there is no previous crawl of the resumed one.
        first = not keep and not (output / MANIFEST).is_file()
        resumed = self.state.open(self.config.model_dump_json(), started.isoformat(), new_snapshot,
                                  first_crawl=first)
        self.layout = layout(output, keep, resumed.snapshot if resumed else new_snapshot,
                             resuming=resumed is not None)
        if resumed is not None and resumed.first_crawl:
            self.layout.previous = None
        return resumed

    def _open_archive(self, layout: Layout) -> WarcArchive:
        """A snapshot's WARC sits in the snapshot; a plain mirror keeps one per run in warc/."""
        from crawler.history.warc import WarcArchive  # warcio: only for output_formats: warc

        # Each worker of a shared crawl writes a WARC of its own.
        worker = f"-{self.shared.worker.replace('/', '-')}" if self.shared is not None else ""
        if layout.snapshot is not None:
            path = layout.root / (WARC_NAME.replace(".warc.gz", f"{worker}.warc.gz"))
        else:
            (layout.output / WARC_DIR).mkdir(exist_ok=True)
            path = layout.output / WARC_DIR / f"{snapshot_name(layout.output)}{worker}.warc.gz"
        info = {"start-urls": " ".join(self.config.start_urls), "snapshot": layout.snapshot or ""}
        try:
            return WarcArchive(path, secret_headers=self.config.http.headers, info=info)
        except OSError as error:
            raise OutputError(f"cannot write {path}: {error.strerror or error}", str(path)) from None

    # -- 1. seed ------------------------------------------------------------------------------

    def _seed_or_resume(self, resumed: Resumed | None, files: MirrorFiles) -> None:
        if resumed is None:
            assert self.layout is not None
            self.layout.start_keeping()
            self.frontier.add_all(self._seeds())
            return
        self._resumed_from = resumed.started_at
        if self.shared is not None:
            self._join(resumed, files)
            return
        removed = remove_temporary_files(files.root, TEMP_SUFFIX)
        log.warning("resuming the crawl started %s: %d files saved, %d URLs to go%s", resumed.started_at,
                    len(resumed.saved), len(resumed.pending) + sum(resumed.parked.values()),
                    f" ({removed} half-written files removed)" if removed else "")
        self.frontier.restore(resumed.seen, resumed.pending, resumed.skipped, resumed.html_pages_saved,
                              resumed.parked)
        # A crawl killed before its start URLs were journaled left nothing else either: they go
        # in again (those it had are known, so nothing is fetched twice).
        self.frontier.add_all(self._seeds())
        files.writer.restore(resumed.saved)
        files.links.restore(resumed.saved, resumed.aliases)
        self._converted_earlier = [entry for entry in resumed.saved
                                   if self.config.mirror.convert_links and entry.size != entry.file_size]
        earlier = self._earlier
        earlier.failures, earlier.aliases = resumed.failures, resumed.aliases
        earlier.files_saved, earlier.html_pages_saved = len(resumed.saved), resumed.html_pages_saved
        for name, value in resumed.totals.items():
            setattr(earlier, name, value)

    def _join(self, resumed: Resumed, files: MirrorFiles) -> None:
        """Join a shared crawl under way: the files saved so far go in this worker's link map.
        Half-written files are removed only when no other worker is writing."""
        assert isinstance(self.state, RedisState)
        others = self.state.others_at_start
        removed = 0 if others else remove_temporary_files(files.root, TEMP_SUFFIX)
        log.warning("joining the crawl started %s: %d files saved so far, %d other workers%s", resumed.started_at,
                    len(resumed.saved), others, f" ({removed} half-written files removed)" if removed else "")
        self.frontier.add_all(self._seeds())  # a crawl killed before its seeds were in gets them now
        files.links.restore(resumed.saved, resumed.aliases)

    def _seeds(self) -> list[CrawlItem]:
        seeds = [CrawlItem(url, 0, LinkKind.PAGE) for url in self.config.start_urls]
        if self.config.mirror.sitemaps:
            origins = dict.fromkeys(origin_of(url) for url in self.config.start_urls)
            seeds += [CrawlItem(f"{origin}/sitemap.xml", 0, LinkKind.SITEMAP, guessed=True) for origin in origins]
        return seeds


class _FewerCollections:
    """Python's cycle collector, run far less often during a crawl: it ran 5,000 times in a
    crawl of 22,000 pages, each time walking young objects that were nearly all alive, and
    found ~1,000 cycles in all -- 10% of the crawl's CPU (Rust docs, bench/docsite.py). What was
    there before the crawl (modules, config) is set aside for good; cycles are still collected.
    The first crawl of a process (tests and workers run several) to start slows it, the last
    to end restores it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._crawls = 0
        self._default = gc.get_threshold()

    def __enter__(self) -> None:
        with self._lock:
            if not self._crawls:
                gc.freeze()
                young, *older = self._default
                gc.set_threshold(max(young, 50_000), *older)
            self._crawls += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._crawls -= 1
            if not self._crawls:
                gc.set_threshold(*self._default)
                gc.unfreeze()


_fewer_collections = _FewerCollections()


def _busy_seconds(tallies: list[Tally]) -> dict[str, float]:
    """Each stage's item-seconds of work, added up (what report.html says the run was bound by)."""
    busy: dict[str, float] = {}
    for tally in tallies:
        busy[tally.stage] = busy.get(tally.stage, 0.0) + tally.busy_seconds
    return busy


def _slots(tallies: list[Tally]) -> dict[str, int]:
    """The items each stage's threads can work on at once, added up."""
    slots: dict[str, int] = {}
    for tally in tallies:
        slots[tally.stage] = slots.get(tally.stage, 0) + tally.slots
    return slots
