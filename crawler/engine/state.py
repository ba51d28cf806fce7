"""Durable crawl state in the output folder: `.crawl/state.sqlite` and `.crawl/lock`.

Every URL the frontier admits, every file saved, every failure, skip and redirect is
journaled to SQLite (WAL mode), so a crawl stopped in any way -- Ctrl-C, kill -9, a power
cut -- resumes where it was: what was saved is not downloaded again, what was pending is.
Journal calls only put an event on a queue; one thread applies the events in order, many
per transaction (group commit), so recording costs the pipeline almost nothing and a page's
links are always on disk no later than the page's own "done".

`CrawlLock` keeps two crawls from sharing an output folder: an flock the kernel releases
when its process dies, even by kill -9, with the holder's pid written inside.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import queue
import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from crawler.errors import OutputError
from crawler.models import CrawlItem, Failure, LinkKind, SavedFile
from crawler.urls import origin_of

log = logging.getLogger(__name__)

STATE_DIR = ".crawl"
STATE_FILE = "state.sqlite"  # in STATE_DIR
LOCK_FILE = "lock"  # in STATE_DIR: the pid of the crawl that holds it
GROUP_COMMIT_SECONDS = 0.05  # the most a journaled event waits for its transaction
SCHEMA_VERSION = 3
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS urls (
    url TEXT PRIMARY KEY, kind TEXT NOT NULL, depth INTEGER NOT NULL, chain INTEGER NOT NULL,
    referrer TEXT, guessed INTEGER NOT NULL, done INTEGER NOT NULL DEFAULT 0,
    parked TEXT);  -- the URL's origin if it waited here rather than in the frontier's memory
CREATE TABLE IF NOT EXISTS saved (
    url TEXT PRIMARY KEY, path TEXT NOT NULL, status INTEGER NOT NULL, content_type TEXT NOT NULL,
    size INTEGER NOT NULL, sha256 TEXT NOT NULL, etag TEXT, last_modified TEXT, fetched_at TEXT NOT NULL,
    charset TEXT, checked_at TEXT, fresh_until TEXT, file_size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS failures (
    url TEXT PRIMARY KEY, reason TEXT NOT NULL, message TEXT NOT NULL, status INTEGER, referrer TEXT,
    off_site INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS skipped (url TEXT PRIMARY KEY, rule TEXT NOT NULL);
-- the size of each file as saved, then as rewritten with links fixed (`before`: the size it had)
CREATE TABLE IF NOT EXISTS file_sizes (path TEXT PRIMARY KEY, bytes INTEGER NOT NULL, before INTEGER);
CREATE INDEX IF NOT EXISTS saved_by_path ON saved (path);
CREATE TABLE IF NOT EXISTS aliases (source TEXT PRIMARY KEY, target TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outlinks (
    url TEXT PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT NOT NULL, links BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS outlinks_by_path ON outlinks (path);
"""
# After _SCHEMA: a state written before `parked` existed gets the column first.
_PARKED_INDEX = "CREATE INDEX IF NOT EXISTS urls_parked ON urls (parked) WHERE parked IS NOT NULL"  # rowid follows
# outlinks outlives a crawl (it is not in _TABLES): the next crawl reads each unchanged page's
# links from it instead of parsing the page again (see Pipeline._parse_one). Its links are
# zlib-compressed: as text they took half as much room as the mirror itself on a site of API
# docs (~50 links of ~150 bytes per page), compressed a tenth of that, for ~30 us per page.
_TABLES = ("urls", "saved", "failures", "skipped", "aliases", "file_sizes")
_SAVED_COLUMNS = ("url, path, status, content_type, size, sha256, etag, last_modified, fetched_at, charset, "
                  "checked_at, fresh_until, file_size")  # the order of SavedFile's fields
_SAVED_FIELDS = tuple(f.name for f in fields(SavedFile))


@dataclass
class Resumed:
    """What an unfinished crawl left: enough to go on exactly where it stopped."""

    started_at: str
    seen: set[str]
    pending: list[CrawlItem]
    saved: list[SavedFile]
    html_pages_saved: int
    failures: list[Failure]
    skipped: dict[str, str]
    aliases: list[tuple[str, str]]
    parked: dict[str, int] = field(default_factory=dict)  # origin -> page URLs parked (not in `pending`)
    totals: dict[str, int] = field(default_factory=dict)  # counters of the earlier runs
    snapshot: str | None = None  # the snapshot it writes into (snapshot mode)
    first_crawl: bool = False  # no crawl had completed before it: it has nothing to compare with


class CrawlLock:
    """One crawl per output folder at a time."""

    def __init__(self, output: Path) -> None:
        self.path = output / STATE_DIR / LOCK_FILE
        self._handle: Any = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+")  # noqa: SIM115 - held open for the whole crawl
        except OSError as exc:
            raise OutputError(f"cannot create {self.path}: {exc.strerror or exc}", str(self.path)) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise OutputError(f"another crawl (pid {holder}) is already writing to {self.path.parent.parent}; "
                              "wait for it to finish or stop it first", str(self.path)) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self._handle.close()  # closing drops the flock
            self._handle = None


_FLUSH = object()
_CLOSE = object()


class CrawlState:
    """The journal of one output folder's crawl (see the module docstring)."""

    def __init__(self, output: Path, on_error: Callable[[OutputError], None]) -> None:
        self.path = output / STATE_DIR / STATE_FILE
        self._on_error = on_error
        self._events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._hurry = threading.Event()  # set when a caller waits for the journal to be written
        self._thread: threading.Thread | None = None
        self._failed = False
        self._moves: dict[str, str] = {}  # old file -> new name; only the journal thread uses it
        self._reader: sqlite3.Connection | None = None  # for known_outlinks(), under _reading
        self._reading = threading.Lock()

    # -- opening ---------------------------------------------------------------------------

    def open(self, config_json: str, started_at: str, snapshot: str | None = None,
             first_crawl: bool = False) -> Resumed | None:
        """Open the state; returns what an unfinished crawl left, or None for a fresh start
        (no state yet, or the last crawl completed: a new crawl begins, into `snapshot`; it is
        the `first_crawl` of the output folder if none completed before). An unfinished crawl
        of the other mode (plain mirror / snapshots) is not resumed."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.executescript(_SCHEMA)
                if "parked" not in {column[1] for column in db.execute("PRAGMA table_info(urls)")}:
                    db.execute("ALTER TABLE urls ADD COLUMN parked TEXT")
                db.execute(_PARKED_INDEX)
                meta = dict(db.execute("SELECT key, value FROM meta"))
                if meta.get("schema", str(SCHEMA_VERSION)) != str(SCHEMA_VERSION):
                    log.warning("the crawl state was written by another version of crawl: starting a new crawl")
                    for table in (*_TABLES, "meta"):
                        db.execute(f"DROP TABLE {table}")
                    db.executescript(_SCHEMA)
                    db.execute(_PARKED_INDEX)
                    meta = {}
                same_mode = bool(meta.get("snapshot")) == bool(snapshot)
                resumed = self._load(db, meta.get("snapshot") or None) \
                    if meta.get("status") == "running" and same_mode else None
                if resumed is None:
                    for table in _TABLES:
                        db.execute(f"DELETE FROM {table}")
                    db.execute("DELETE FROM meta")
                    self._set_meta(db, status="running", started_at=started_at, config=config_json,
                                   schema=str(SCHEMA_VERSION), totals="{}", snapshot=snapshot or "",
                                   first_crawl="1" if first_crawl else "")
                else:
                    resumed.started_at = meta.get("started_at", started_at)
                    resumed.totals = json.loads(meta.get("totals", "{}"))
                    resumed.snapshot = meta.get("snapshot") or None
                    resumed.first_crawl = bool(meta.get("first_crawl"))
                    if meta.get("config") != config_json:
                        log.warning("the config changed since the interrupted crawl; resuming with the new one")
                    self._set_meta(db, config=config_json)
        except sqlite3.Error as exc:
            raise OutputError(f"crawl state {self.path} is unusable: {exc}", str(self.path)) from None
        self._thread = threading.Thread(target=self._apply_events, name="state", daemon=True)
        self._thread.start()
        return resumed

    def _load(self, db: sqlite3.Connection, snapshot: str | None) -> Resumed:
        saved, redo = [], []
        output = self.path.parent.parent
        root = output / "snapshots" / snapshot if snapshot else output
        # Link fixing changes a file's size after its entry is saved: file_sizes has its size
        # now, and the one before in case the crawl stopped just as it was rewritten (states
        # from before file_sizes have only the entry's).
        for *row, written, before in db.execute(f"SELECT {_SAVED_COLUMNS}, file_sizes.bytes, file_sizes.before "
                                                "FROM saved LEFT JOIN file_sizes USING (path)"):
            entry = SavedFile(*row)
            size = _file_size(root / entry.path)
            whole = {written, before} if written is not None else \
                {entry.file_size if entry.file_size >= 0 else entry.size}
            if size is not None and size in whole:
                saved.append(replace(entry, file_size=size))
            else:  # lost in a power cut, or cut short: fetch again
                redo.append(entry.url)
        for url in redo:
            db.execute("DELETE FROM saved WHERE url = ?", (url,))
            db.execute("UPDATE urls SET done = 0 WHERE url = ?", (url,))
        # A file saved whole is done, even if the crawl stopped before its "done" was journaled
        # (its links were journaled before it was saved): it is not downloaded again.
        db.execute("UPDATE urls SET done = 1 WHERE done = 0 AND url IN (SELECT url FROM saved)")
        pending = [CrawlItem(url, depth, LinkKind(kind), referrer, chain=chain, guessed=bool(guessed))
                   for url, kind, depth, chain, referrer, guessed in db.execute(
                       "SELECT url, kind, depth, chain, referrer, guessed FROM urls WHERE done = 0 AND parked IS NULL")]
        parked = dict(db.execute("SELECT parked, COUNT(*) FROM urls WHERE done = 0 AND parked IS NOT NULL "
                                 "GROUP BY parked"))
        html_pages = db.execute(
            "SELECT COUNT(*) FROM saved JOIN urls USING (url) WHERE urls.kind = 'page' "
            "AND saved.content_type IN ('text/html', 'application/xhtml+xml')").fetchone()[0]
        seen = {url for (url,) in db.execute("SELECT url FROM urls")} | {entry.url for entry in saved}
        failures = [Failure(url, reason, message, status, referrer, bool(off_site)) for
                    url, reason, message, status, referrer, off_site in db.execute(
                        "SELECT url, reason, message, status, referrer, off_site FROM failures")]
        # A URL skipped once (too deep as a page) may have been admitted later (as a requisite).
        skipped = {url: rule for url, rule in db.execute("SELECT url, rule FROM skipped") if url not in seen}
        return Resumed(started_at="", seen=seen, pending=pending, saved=saved, html_pages_saved=html_pages,
                       failures=failures, skipped=skipped,
                       aliases=list(db.execute("SELECT source, target FROM aliases")), parked=parked)

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
        """`links`: the page's outlinks (see there), in the same event: a crawl resumed with
        the entry has them too, to convert the page again (Finisher)."""
        self._events.put(("saved", entry, links))

    def failed(self, failure: Failure) -> None:
        self._events.put(("failed", failure))

    def aliased(self, source: str, target: str) -> None:
        self._events.put(("aliased", source, target))

    def outlinks(self, url: str, path: str, sha256: str, links: str) -> None:
        """The links of the page saved at `path` for `url` (whose body as served has this
        SHA-256), and how they are written there, encoded by the pipeline."""
        self._events.put(("outlinks", url, path, sha256, links))

    def outlinks_changed(self, path: str, change: Callable[[str], str | None] | None = None) -> None:
        """The links of the page at `path` were rewritten: `change` turns what outlinks says
        of it into what holds now (None: it is void)."""
        self._events.put(("outlinks_changed", path, change))

    def known_outlinks(self, url: str) -> tuple[str, str, str] | None:
        """(path, sha256, links) recorded for `url` by this crawl or the one before."""
        with self._reading:
            try:
                if self._reader is None:
                    self._reader = self._connect()
                row = self._reader.execute("SELECT path, sha256, links FROM outlinks WHERE url = ?",
                                           (url,)).fetchone()
            except sqlite3.Error as exc:
                log.warning("cannot read the crawl state: %s", exc)
                return None
        if row is None:
            return None
        try:
            return row[0], row[1], _unpack(row[2])
        except (zlib.error, UnicodeDecodeError):  # damaged: the page is parsed again
            return None

    def unpark(self, origin: str, after: int, limit: int | None) -> list[tuple[int, CrawlItem]]:
        """The next `limit` (None: all) URLs of `origin` parked after position `after`, in the
        order they were parked, each with its position. Commits what is journaled first."""
        self.flush()
        with self._reading:
            try:
                if self._reader is None:
                    self._reader = self._connect()
                rows = self._reader.execute(
                    "SELECT rowid, url, kind, depth, chain, referrer, guessed FROM urls "
                    "WHERE parked = ? AND rowid > ? AND done = 0 ORDER BY rowid LIMIT ?",
                    (origin, after, -1 if limit is None else limit)).fetchall()
            except sqlite3.Error as exc:
                self._fail(exc)
                return []
        return [(rowid, CrawlItem(url, depth, LinkKind(kind), referrer, chain=chain, guessed=bool(guessed)))
                for rowid, url, kind, depth, chain, referrer, guessed in rows]

    def file_written(self, path: str, size: int) -> None:
        """The file at `path` holds `size` bytes: saved so, or about to be rewritten so (the
        size it had is kept beside it). Told in the order the writes happen."""
        self._events.put(("file", path, size))

    def moved(self, old_path: str, new_path: str) -> None:
        """A saved file was renamed (a folder needed its name): every URL saved as it follows."""
        self._events.put(("moved", old_path, new_path))

    # -- reading back (after flush) --------------------------------------------------------

    def entries(self, where: str = "", parameters: tuple[object, ...] = ()) -> Iterator[SavedFile]:
        """The saved files, sorted by URL, one row at a time: a big crawl's entries are never
        all in memory. `where`: an SQL condition on the saved table's columns."""
        try:
            db = self._connect()
            try:
                rows = db.execute(f"SELECT {_SAVED_COLUMNS} FROM saved {where} ORDER BY url", parameters)
                for row in rows:
                    yield SavedFile(*row)
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise OutputError(f"cannot read the crawl state {self.path}: {exc}") from None

    def count(self, where: str = "", parameters: tuple[object, ...] = ()) -> int:
        try:
            db = self._connect()
            try:
                return int(db.execute(f"SELECT COUNT(*) FROM saved {where}", parameters).fetchone()[0])
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise OutputError(f"cannot read the crawl state {self.path}: {exc}") from None

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
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    # -- the journal thread ---------------------------------------------------------------

    def _apply_events(self) -> None:
        db = self._connect()
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
                            self._apply(db, event)
            except sqlite3.Error as exc:
                self._fail(exc)
            except Exception as exc:  # a bug: the crawl stops with it, rather than hang on a dead journal
                log.exception("the crawl state journal failed")
                self._fail(exc)
            for waiter in flushes:
                waiter.set()
        db.close()

    def _apply(self, db: sqlite3.Connection, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind == "added":
            db.executemany("INSERT OR IGNORE INTO urls (url, kind, depth, chain, referrer, guessed) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           [(i.url, i.kind.value, i.depth, i.chain, i.referrer, int(i.guessed)) for i in event[1]])
        elif kind == "parked":
            db.executemany("UPDATE urls SET parked = ? WHERE url = ?", event[1])
        elif kind == "done":
            db.execute("UPDATE urls SET done = 1 WHERE url = ?", (event[1],))
        elif kind == "saved":
            entry = {name: getattr(event[1], name) for name in _SAVED_FIELDS}  # asdict() deep-copies
            while entry["path"] in self._moves:  # its writer thread journaled it after the move
                entry["path"] = self._moves[entry["path"]]
            db.execute(f"INSERT OR REPLACE INTO saved ({', '.join(entry)}) "
                       f"VALUES ({', '.join('?' * len(entry))})", tuple(entry.values()))
            if event[2] is not None:
                db.execute("INSERT OR REPLACE INTO outlinks VALUES (?, ?, ?, ?)",
                           (entry["url"], entry["path"], entry["sha256"], _pack(event[2])))
        elif kind == "failed":
            failure: Failure = event[1]
            db.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?, ?)",
                       (failure.url, failure.reason, failure.message, failure.status, failure.referrer,
                        int(failure.off_site)))
        elif kind == "skipped":
            db.execute("INSERT OR IGNORE INTO skipped VALUES (?, ?)", event[1:])
        elif kind == "aliased":
            db.execute("INSERT OR REPLACE INTO aliases VALUES (?, ?)", event[1:])
        elif kind == "moved":
            self._moves[event[1]] = event[2]
            db.execute("UPDATE saved SET path = ? WHERE path = ?", (event[2], event[1]))
            db.execute("UPDATE outlinks SET path = ? WHERE path = ?", (event[2], event[1]))
            db.execute("UPDATE OR REPLACE file_sizes SET path = ? WHERE path = ?", (event[2], event[1]))
        elif kind == "file":
            db.execute("INSERT INTO file_sizes (path, bytes) VALUES (?, ?) "
                       "ON CONFLICT (path) DO UPDATE SET before = bytes, bytes = excluded.bytes", event[1:])
        elif kind == "outlinks":
            url, path, sha256, links = event[1:]
            while path in self._moves:
                path = self._moves[path]
            db.execute("INSERT OR REPLACE INTO outlinks VALUES (?, ?, ?, ?)", (url, path, sha256, _pack(links)))
        elif kind == "outlinks_changed":
            path, change = event[1:]
            row = db.execute("SELECT links FROM outlinks WHERE path = ?", (path,)).fetchone() if change else None
            try:
                links = change(_unpack(row[0])) if row is not None and change is not None else None
            except (zlib.error, UnicodeDecodeError):  # damaged: void, the page is parsed next time
                links = None
            if links is None:
                db.execute("DELETE FROM outlinks WHERE path = ?", (path,))
            else:
                db.execute("UPDATE outlinks SET links = ? WHERE path = ?", (_pack(links), path))
        elif kind == "finish":
            self._set_meta(db, status="completed" if event[1] else "running", totals=json.dumps(event[2]))
            if event[1]:  # only the pages of this crawl can be the next one's stored copies
                db.execute("DELETE FROM outlinks WHERE url NOT IN (SELECT url FROM saved)")

    def _fail(self, exc: Exception) -> None:
        if not self._failed:
            self._failed = True
            self._on_error(OutputError(f"cannot record the crawl state in {self.path}: {exc}", str(self.path)))

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    @staticmethod
    def _set_meta(db: sqlite3.Connection, **values: str) -> None:
        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values.items())


def _pack(links: str) -> bytes:
    return zlib.compress(links.encode(), 1)  # level 1: nearly all the gain, a fraction of the time


def _unpack(links: bytes | str) -> str:
    return links if isinstance(links, str) else zlib.decompress(links).decode()  # str: stored uncompressed


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


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
