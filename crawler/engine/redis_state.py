"""The journal of a crawl shared through Redis: what every worker saved, failed, skipped and
followed, in Redis, so that any worker can finish the crawl and any can resume it.

Keys, under "crawl:<id>:<generation>:" (the frontier's are in redis_frontier.py):
  saved (hash URL -> SavedFile as JSON), at:<path> (set of URLs saved at the path)
  failures (hash URL -> Failure as JSON), aliases (hash URL -> where it redirects)
  moves (hash old path -> new), owners (hash path -> [URL, sha256, size]: who owns each file)
  totals (hash)                       the counters of the workers that left
and "crawl:<id>:outlinks" (hash URL -> [path, sha256, links]), which outlives a crawl: the
next one reads each unchanged page's links from it instead of parsing the page again.

Unlike the SQLite journal, the frontier's events (added, done, parked) need no journal here:
the shared frontier is itself in Redis. Each call is one command or script, done before it
returns: a worker killed at any moment leaves nothing half-recorded, and a URL's entry is in
Redis before its lease ends. Files are renamed into place whole, so a resumed shared crawl
does not check the files on record against the disk (a power cut of the shared filesystem
is the one case that could leave a file on record that is not whole).
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, fields
from pathlib import Path

from crawler.engine.redis_crawl import SharedCrawl
from crawler.engine.state_db import Resumed
from crawler.mirror.owners import Owner
from crawler.models import HTML_TYPES, CrawlItem, Failure, SavedFile

_FIELDS = tuple(field.name for field in fields(SavedFile))


class RedisState:
    """The journal of a shared crawl (see the module docstring)."""

    def __init__(self, shared: SharedCrawl, output: Path) -> None:
        self._shared = shared
        self.path = output  # for messages
        self.saved_here: set[str] = set()  # URLs this process saved: the finisher converts the others' again
        self.others_at_start = 0  # other live workers when this one joined

    def open(self, config_json: str, started_at: str, snapshot: str | None = None,
             first_crawl: bool = False) -> Resumed | None:
        """Join the shared crawl: None if this worker begins a new one; else what the workers
        so far saved (for this worker's link map), and when the crawl started."""
        joined = self._shared.join(started_at, snapshot, first_crawl, config_json)
        self.others_at_start = joined.others
        if joined.new:
            return None
        return Resumed(started_at=joined.started_at, seen=set(), pending=[], saved=list(self.entries()),
                       html_pages_saved=0, failures=[], skipped={}, aliases=self.aliases(),
                       snapshot=joined.snapshot, first_crawl=joined.first_crawl)

    # -- the frontier's journal: the shared frontier is its own ----------------------------------

    def added(self, items: list[CrawlItem]) -> None:
        pass

    def done(self, url: str) -> None:
        pass

    def park(self, items: list[CrawlItem]) -> None:
        pass

    def unpark(self, origin: str, after: int, limit: int | None) -> list[tuple[int, CrawlItem]]:
        return []

    def skipped(self, url: str, rule: str) -> None:
        self._shared.call("skip", url, rule)

    # -- what the stages journal ---------------------------------------------------------------

    def saved(self, entry: SavedFile, links: str | None = None) -> None:
        """The entry (its path following any move journaled before it), and the page's links."""
        record = json.dumps({name: getattr(entry, name) for name in _FIELDS}, ensure_ascii=False)
        path = self._shared.call("saved", entry.url, record, entry.path)
        self.saved_here.add(entry.url)
        if links is not None:
            packed = base64.b64encode(zlib.compress(links.encode(), 1)).decode()
            self._client.hset(self._outlinks, entry.url, json.dumps([path, entry.sha256, packed]))

    def failed(self, failure: Failure) -> None:
        self._client.hset(self._key("failures"), failure.url, json.dumps(asdict(failure), ensure_ascii=False))

    def aliased(self, source: str, target: str) -> None:
        self._client.hset(self._key("aliases"), source, target)

    def outlinks_changed(self, path: str, change: Callable[[str], str | None] | None = None) -> None:
        for url in self._client.smembers(self._key(f"at:{path}")):
            recorded = self.known_outlinks(url)
            links = change(recorded[2]) if recorded is not None and recorded[0] == path and change else None
            if links is None:
                self._client.hdel(self._outlinks, url)
            else:
                packed = base64.b64encode(zlib.compress(links.encode(), 1)).decode()
                self._client.hset(self._outlinks, url, json.dumps([path, recorded[1] if recorded else "", packed]))

    def file_written(self, path: str, size: int) -> None:
        """Not kept: files take their names whole, and a resumed shared crawl trusts them."""

    def moved(self, old_path: str, new_path: str) -> None:
        self._shared.call("moved", old_path, new_path)

    def known_outlinks(self, url: str) -> tuple[str, str, str] | None:
        raw = self._client.hget(self._outlinks, url)
        if raw is None:
            return None
        try:
            path, sha256, packed = json.loads(raw)
            return path, sha256, zlib.decompress(base64.b64decode(packed)).decode()
        except (ValueError, zlib.error, UnicodeDecodeError):  # damaged: the page is parsed again
            return None

    # -- what the end reads ------------------------------------------------------------------------

    def flush(self) -> None:
        """Nothing waits: every call above is in Redis when it returns."""

    def entries(self) -> Iterator[SavedFile]:
        """The saved files of every worker, sorted by URL."""
        records = [json.loads(raw) for _, raw in self._client.hscan_iter(self._key("saved"), count=1000)]
        records.sort(key=lambda record: record["url"])
        return (SavedFile(**{name: record.get(name) for name in _FIELDS}) for record in records)

    def files_at(self, path: str) -> int:
        return int(self._client.scard(self._key(f"at:{path}")))

    def html_pages(self) -> int:
        return sum(entry.content_type in HTML_TYPES for entry in self.entries())

    def failures(self) -> list[Failure]:
        return [Failure(**json.loads(raw)) for _, raw in self._client.hscan_iter(self._key("failures"), count=1000)]

    def aliases(self) -> list[tuple[str, str]]:
        return list(self._client.hscan_iter(self._key("aliases"), count=1000))

    def totals(self) -> dict[str, int]:
        """The counters of every worker that left, and the finisher's."""
        return {name: int(value) for name, value in self._client.hgetall(self._key("totals")).items()}

    def counts(self) -> dict[str, int]:
        return {name: int(value) for name, value in self._client.hgetall(self._key("counts")).items()}

    def finish(self, completed: bool, totals: dict[str, int]) -> None:
        """The finisher records how the crawl ended: a completed crawl is not resumed (the next
        run begins a new one), and only its pages' outlinks stay for the next one."""
        if completed:
            self._prune_outlinks()
            meta = f"{self._shared.prefix}meta"
            with self._client.pipeline() as pipe:
                pipe.hset(meta, "status", "completed")
                pipe.hdel(meta, "finisher")
                pipe.execute()
        self.close()

    def close(self) -> None:
        """Leave the crawl (what this worker still holds goes back to the queue)."""
        if self._shared.client is not None:
            self._shared.leave({})
        self._shared.close()

    # -- internals ---------------------------------------------------------------------------------

    @property
    def _client(self):  # type: ignore[no-untyped-def]  # redis.Redis: imported only for shared crawls
        return self._shared.client

    @property
    def _outlinks(self) -> str:
        return f"{self._shared.prefix}outlinks"

    def _key(self, name: str) -> str:
        return self._shared.keys + name

    def _prune_outlinks(self) -> None:
        saved = self._key("saved")
        urls = [url for url, _ in self._client.hscan_iter(self._outlinks, count=1000)]
        for start in range(0, len(urls), 1000):
            batch = urls[start:start + 1000]
            with self._client.pipeline(transaction=False) as pipe:
                for url in batch:
                    pipe.hexists(saved, url)
                kept = pipe.execute()
            gone = [url for url, keep in zip(batch, kept, strict=True) if not keep]
            if gone:
                self._client.hdel(self._outlinks, *gone)


class RedisOwners:
    """Who owns each file of the shared mirror (see mirror/owners.py), for every worker."""

    def __init__(self, shared: SharedCrawl) -> None:
        self._shared = shared

    def get(self, path: str) -> Owner | None:
        raw = self._shared.client.hget(self._key, path)
        return Owner(*json.loads(raw)) if raw is not None else None

    def claim(self, path: str, owner: Owner) -> Owner:
        with self._shared.client.pipeline() as pipe:  # MULTI: the claim and its answer together
            pipe.hsetnx(self._key, path, json.dumps([owner.url, owner.sha256, owner.file_size]))
            pipe.hget(self._key, path)
            _, raw = pipe.execute()
        return Owner(*json.loads(raw))

    def move(self, old: str, new: str) -> bool:
        raw = self._shared.client.hget(self._key, old)
        if raw is None:
            return False
        with self._shared.client.pipeline() as pipe:
            pipe.hset(self._key, new, raw)
            pipe.hdel(self._key, old)
            pipe.execute()
        return True

    def resize(self, path: str, size: int) -> None:
        owner = self.get(path)
        if owner is not None:
            self._shared.client.hset(self._key, path, json.dumps([owner.url, owner.sha256, size]))

    def restore(self, entries: Iterable[SavedFile]) -> None:
        """Nothing to do: the owners are in Redis already."""

    @property
    def _key(self) -> str:
        return self._shared.keys + "owners"
