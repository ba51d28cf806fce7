"""Durable crawl state in the output folder: `.crawl/state.sqlite`.

Every URL the frontier admits, every file saved, every failure, skip and redirect is
journaled to SQLite (WAL mode), so a crawl stopped in any way -- Ctrl-C, kill -9, a power
cut -- resumes where it was: what was saved is not downloaded again, what was pending is.
Journal calls only put an event on a queue; one thread applies the events in order, many
per transaction (group commit), so recording costs the pipeline almost nothing and a page's
links are always on disk no later than the page's own "done". (The tables and the SQL of
each event: state_db.py.)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from crawler.engine.state_db import (
    SAVED_COLUMNS,
    EventWriter,
    Resumed,
    connect,
    load_resumed,
    prepare,
    set_meta,
    start_anew,
    unpack,
)
from crawler.errors import OutputError
from crawler.models import HTML_TYPES, CrawlItem, Failure, LinkKind, SavedFile
from crawler.output_folder import SNAPSHOTS, STATE_DIR, STATE_FILE
from crawler.urls import origin_of

log = logging.getLogger(__name__)

GROUP_COMMIT_SECONDS = 0.05  # the most a journaled event waits for its transaction
_FLUSH = object()
_CLOSE = object()


class SqliteState:
    """The journal of one output folder's crawl (see the module docstring)."""

    def __init__(self, output: Path, on_error: Callable[[OutputError], None]) -> None:
        """`on_error(error)`: the state cannot be written; the crawl must stop."""
        self.path = output / STATE_DIR / STATE_FILE
        self._on_error = on_error
        self._events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._hurry = threading.Event()  # set when a caller waits for the journal to be written
        self._thread: threading.Thread | None = None
        self._failed = False
        # Connections for known_outlinks() and unpark(), one per thread reading at once: the
        # parsers of a re-crawl read a page's links each, and SQLite reads without the GIL.
        self._readers: list[sqlite3.Connection] = []  # idle ones, under _reading
        self._reading = threading.Lock()

    def open(self, config_json: str, started_at: str, snapshot: str | None = None,
             first_crawl: bool = False) -> Resumed | None:
        """Open the state; returns what an unfinished crawl left, or None for a fresh start
        (no state yet, or the last crawl completed: a new crawl begins, into `snapshot`; it is
        the `first_crawl` of the output folder if none completed before). An unfinished crawl
        of the other mode (plain mirror / snapshots) is not resumed."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with connect(self.path) as db:
                meta = prepare(db)
                if meta is None:
                    log.warning("the crawl state was written by another version of crawl: starting a new crawl")
                    meta = {}
                resumed = self._resumed(db, meta, snapshot, config_json, started_at)
                if resumed is None:
                    start_anew(db, status="running", started_at=started_at, config=config_json, totals="{}",
                               snapshot=snapshot or "", first_crawl="1" if first_crawl else "")
        except sqlite3.Error as exc:
            raise OutputError(f"crawl state {self.path} is unusable: {exc}", str(self.path)) from None
        self._thread = threading.Thread(target=self._apply_events, name="state", daemon=True)
        self._thread.start()
        return resumed

    def _resumed(self, db: sqlite3.Connection, meta: dict[str, str], snapshot: str | None,
                 config_json: str, started_at: str) -> Resumed | None:
        """The interrupted crawl of the same mode the state holds, if any."""
        resumable = meta.get("status") == "running" and bool(meta.get("snapshot")) == bool(snapshot)
        if not resumable:
            return None
        output = self.path.parent.parent
        resumed = load_resumed(db, output / SNAPSHOTS / meta["snapshot"] if meta.get("snapshot") else output)
        resumed.started_at = meta.get("started_at", started_at)
        resumed.totals = json.loads(meta.get("totals", "{}"))
        resumed.snapshot = meta.get("snapshot") or None
        resumed.first_crawl = bool(meta.get("first_crawl"))
        if meta.get("config") != config_json:
            log.warning("the config changed since the interrupted crawl; resuming with the new one")
        set_meta(db, config=config_json)
        return resumed

    # -- journal (cheap: each call only queues an event) ------------------------------------

    def added(self, items: list[CrawlItem]) -> None:
        self._events.put(("added", items))

    def skipped(self, url: str, rule: str) -> None:
        self._events.put(("skipped", url, rule))

    def park(self, items: list[CrawlItem]) -> None:
        """These page URLs (already `added`) wait here, not in memory, until `unpark`."""
        self._events.put(("parked", [(origin_of(item.url), item.url) for item in items]))

    def done(self, url: str) -> None:
        self._events.put(("done", url))

    def saved(self, entry: SavedFile, links: str | None = None) -> None:
        """`links`: the page's links and how they are written in it (encoded KnownLinks), in
        the same event: a crawl resumed with the entry has them too, to convert the page
        again, and the next crawl reads them instead of parsing the page if it is unchanged."""
        self._events.put(("saved", entry, links))

    def failed(self, failure: Failure) -> None:
        self._events.put(("failed", failure))

    def aliased(self, source: str, target: str) -> None:
        self._events.put(("aliased", source, target))

    def outlinks_changed(self, path: str, change: Callable[[str], str | None] | None = None) -> None:
        """The links of the page at `path` were rewritten: `change` turns what outlinks says
        of it into what holds now (None: it is void)."""
        self._events.put(("outlinks_changed", path, change))

    def file_written(self, path: str, size: int) -> None:
        """The file at `path` holds `size` bytes: saved so, or about to be rewritten so (the
        size it had is kept beside it). Told in the order the writes happen."""
        self._events.put(("file", path, size))

    def moved(self, old_path: str, new_path: str) -> None:
        """A saved file was renamed (a folder needed its name): every URL saved as it follows."""
        self._events.put(("moved", old_path, new_path))

    # -- reading (while the crawl runs) ----------------------------------------------------

    def known_outlinks(self, url: str) -> tuple[str, str, str] | None:
        """(path, sha256, links) recorded for `url` by this crawl or the one before."""
        try:
            row = self._read("SELECT path, sha256, links FROM outlinks WHERE url = ?", (url,))
        except sqlite3.Error as exc:
            log.warning("cannot read the crawl state: %s", exc)
            return None
        if not row:
            return None
        try:
            return row[0][0], row[0][1], unpack(row[0][2])
        except (zlib.error, UnicodeDecodeError):  # damaged: the page is parsed again
            return None

    def unpark(self, origin: str, after: int, limit: int | None) -> list[tuple[int, CrawlItem]]:
        """The next `limit` (None: all) URLs of `origin` parked after position `after`, in the
        order they were parked, each with its position. Commits what is journaled first."""
        self.flush()
        try:
            rows = self._read("SELECT rowid, url, kind, depth, chain, referrer, guessed FROM urls "
                              "WHERE parked = ? AND rowid > ? AND done = 0 ORDER BY rowid LIMIT ?",
                              (origin, after, -1 if limit is None else limit))
        except sqlite3.Error as exc:
            self._fail(exc)
            return []
        return [(rowid, CrawlItem(url, depth, LinkKind(kind), referrer, chain=chain, guessed=bool(guessed)))
                for rowid, url, kind, depth, chain, referrer, guessed in rows]

    def _read(self, sql: str, parameters: tuple[object, ...]) -> list[Any]:
        with self._reading:
            reader = self._readers.pop() if self._readers else None
        if reader is None:
            reader = connect(self.path)
        try:
            return reader.execute(sql, parameters).fetchall()
        finally:
            with self._reading:
                self._readers.append(reader)

    # -- reading back (after flush) --------------------------------------------------------

    def entries(self) -> Iterator[SavedFile]:
        """The saved files, sorted by URL, one row at a time: a big crawl's entries are never
        all in memory."""
        try:
            db = connect(self.path)
            try:
                for row in db.execute(f"SELECT {SAVED_COLUMNS} FROM saved ORDER BY url"):
                    yield SavedFile(*row)
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise OutputError(f"cannot read the crawl state {self.path}: {exc}") from None

    def files_at(self, path: str) -> int:
        """How many saved URLs have their file at `path`."""
        return self._count("WHERE path = ?", (path,))

    def html_pages(self) -> int:
        """How many saved files are HTML pages."""
        return self._count(f"WHERE content_type IN ({', '.join('?' * len(HTML_TYPES))})", tuple(HTML_TYPES))

    def _count(self, where: str, parameters: tuple[object, ...]) -> int:
        try:
            db = connect(self.path)
            try:
                return int(db.execute(f"SELECT COUNT(*) FROM saved {where}", parameters).fetchone()[0])
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise OutputError(f"cannot read the crawl state {self.path}: {exc}") from None

    # -- the end ---------------------------------------------------------------------------

    def flush(self) -> None:
        """Return once every event journaled so far is committed."""
        if self._thread is None or not self._thread.is_alive():
            return
        done = threading.Event()
        self._events.put((_FLUSH, done))
        self._hurry.set()
        done.wait()

    def finish(self, completed: bool, totals: dict[str, int]) -> None:
        """Record how the run ended, then stop the journal thread. A completed crawl is not
        resumed: the next run begins a new one."""
        self._events.put(("finish", completed, totals))
        self.close()

    def close(self) -> None:
        """Write what is journaled and stop the journal thread (the state stays resumable)."""
        if self._thread is not None and self._thread.is_alive():
            self._events.put((_CLOSE,))
            self._hurry.set()
            self._thread.join()
        with self._reading:
            for reader in self._readers:
                reader.close()
            self._readers.clear()

    # -- the journal thread ---------------------------------------------------------------

    def _apply_events(self) -> None:
        db = connect(self.path)
        writer = EventWriter()
        closing = False
        while not closing:
            batch = [self._events.get()]
            # Let the events of the next few milliseconds join this transaction: waking up
            # and committing for every single event would cost the pipeline more than the I/O.
            self._hurry.wait(GROUP_COMMIT_SECONDS)
            self._hurry.clear()
            while len(batch) < 20000:
                try:
                    batch.append(self._events.get_nowait())
                except queue.Empty:
                    break
            # Read first: whatever happens to the batch, no caller may wait for ever.
            flushes = [event[1] for event in batch if event[0] is _FLUSH]
            closing = any(event[0] is _CLOSE for event in batch)
            try:
                with db:
                    for event in batch:
                        if event[0] is not _FLUSH and event[0] is not _CLOSE and not self._failed:
                            writer.apply(db, event)
            except sqlite3.Error as exc:
                self._fail(exc)
            except Exception as exc:  # a bug: the crawl stops with it, rather than hang on a dead journal
                log.exception("the crawl state journal failed")
                self._fail(exc)
            for waiter in flushes:
                waiter.set()
        db.close()

    def _fail(self, exc: Exception) -> None:
        if not self._failed:
            self._failed = True
            self._on_error(OutputError(f"cannot record the crawl state in {self.path}: {exc}", str(self.path)))


def remove_temporary_files(root: Path, suffix: str, skip: Iterable[str] = (STATE_DIR,)) -> int:
    """Delete what a killed writer left half-written (names ending in `suffix`); returns how many."""
    removed = 0
    skipped = set(skip)
    for folder, folders, files in os.walk(root):
        if Path(folder) == root:
            folders[:] = [name for name in folders if name not in skipped]
        for name in files:
            if name.endswith(suffix):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))
                    removed += 1
    return removed
