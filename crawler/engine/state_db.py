"""The SQLite side of the crawl state: the schema, what an interrupted crawl left (read back to
resume it), and the SQL each journaled event becomes.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from crawler.models import CrawlItem, Failure, LinkKind, SavedFile

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
    charset TEXT, checked_at TEXT, fresh_until TEXT, rendered INTEGER NOT NULL DEFAULT 0, file_size INTEGER NOT NULL);
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
# links from it instead of parsing the page again (see the parse stage). Its links are
# zlib-compressed: as text they took half as much room as the mirror itself on a site of API
# docs (~50 links of ~150 bytes per page), compressed a tenth of that, for ~30 us per page.
_TABLES = ("urls", "saved", "failures", "skipped", "aliases", "file_sizes")
SAVED_COLUMNS = ("url, path, status, content_type, size, sha256, etag, last_modified, fetched_at, charset, "
                  "checked_at, fresh_until, rendered, file_size")  # the order of SavedFile's fields
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


def connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def set_meta(db: sqlite3.Connection, **values: str) -> None:
    db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values.items())


def prepare(db: sqlite3.Connection) -> dict[str, str] | None:
    """Create or upgrade the tables; the meta of the crawl they hold (None: another version of
    crawl wrote them, and they were emptied)."""
    db.executescript(_SCHEMA)
    if "parked" not in {column[1] for column in db.execute("PRAGMA table_info(urls)")}:
        db.execute("ALTER TABLE urls ADD COLUMN parked TEXT")
    if "rendered" not in {column[1] for column in db.execute("PRAGMA table_info(saved)")}:
        db.execute("ALTER TABLE saved ADD COLUMN rendered INTEGER NOT NULL DEFAULT 0")
    db.execute(_PARKED_INDEX)
    meta = dict(db.execute("SELECT key, value FROM meta"))
    if meta.get("schema", str(SCHEMA_VERSION)) == str(SCHEMA_VERSION):
        return meta
    for table in (*_TABLES, "meta"):
        db.execute(f"DROP TABLE {table}")
    db.executescript(_SCHEMA)
    db.execute(_PARKED_INDEX)
    return None


def start_anew(db: sqlite3.Connection, **meta: str) -> None:
    """Forget the crawl the tables hold (its outlinks stay: the next crawl reads them)."""
    for table in _TABLES:
        db.execute(f"DELETE FROM {table}")
    db.execute("DELETE FROM meta")
    set_meta(db, schema=str(SCHEMA_VERSION), **meta)


def load_resumed(db: sqlite3.Connection, root: Path) -> Resumed:
    """What an interrupted crawl whose mirror is in `root` left, with every saved file checked
    against the size on record: one that is not whole is to be fetched again."""
    saved, redo = [], []
    # Link fixing changes a file's size after its entry is saved: file_sizes has its size
    # now, and the one before in case the crawl stopped just as it was rewritten (states
    # from before file_sizes have only the entry's).
    for *row, written, before in db.execute(f"SELECT {SAVED_COLUMNS}, file_sizes.bytes, file_sizes.before "
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



class EventWriter:
    """Applies journaled events in the order they were journaled (one thread: the journal's)."""

    def __init__(self) -> None:
        self._moves: dict[str, str] = {}  # old file -> new name

    def apply(self, db: sqlite3.Connection, event: tuple[Any, ...]) -> None:
        """Write one journaled event (its transaction is the caller's)."""
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
                           (entry["url"], entry["path"], entry["sha256"], pack(event[2])))
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
        elif kind == "outlinks_changed":
            path, change = event[1:]
            row = db.execute("SELECT links FROM outlinks WHERE path = ?", (path,)).fetchone() if change else None
            try:
                links = change(unpack(row[0])) if row is not None and change is not None else None
            except (zlib.error, UnicodeDecodeError):  # damaged: void, the page is parsed next time
                links = None
            if links is None:
                db.execute("DELETE FROM outlinks WHERE path = ?", (path,))
            else:
                db.execute("UPDATE outlinks SET links = ? WHERE path = ?", (pack(links), path))
        elif kind == "finish":
            set_meta(db, status="completed" if event[1] else "running", totals=json.dumps(event[2]))
            if event[1]:  # only the pages of this crawl can be the next one's stored copies
                db.execute("DELETE FROM outlinks WHERE url NOT IN (SELECT url FROM saved)")


def pack(links: str) -> bytes:
    return zlib.compress(links.encode(), 1)  # level 1: nearly all the gain, a fraction of the time


def unpack(links: bytes | str) -> str:
    return links if isinstance(links, str) else zlib.decompress(links).decode()  # str: stored uncompressed


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None
