"""What a re-crawl reuses from the crawl before it.

Every URL the previous crawl saved is asked for again with a conditional request
(If-None-Match, If-Modified-Since); a 304 means the stored file is still right, so it is kept
and read back for its links -- the crawl still reaches the whole site without downloading
unchanged bodies. With mirror.revalidate: auto, a stored copy that is still fresh (by its
HTTP caching headers, see fetcher.fresh_until) is reused without asking at all.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from crawler.models import Response, SavedFile
from crawler.snapshot import Previous

log = logging.getLogger(__name__)


class StoredCopies:
    """The files of the previous crawl (read-only: shared by every thread)."""

    def __init__(self, previous: Previous | None, revalidate: str = "auto") -> None:
        self.previous = previous
        self._entries = previous.entries if previous is not None else {}
        self._revalidate = revalidate
        # previous file -> its URL: what a converted link in a stored page names
        self.url_of_file = {entry.path: entry.url for entry in self._entries.values()}

    def get(self, url: str) -> SavedFile | None:
        return self._entries.get(url)

    def path(self, entry: SavedFile) -> Path:
        assert self.previous is not None
        return self.previous.root / entry.path

    def fresh(self, entry: SavedFile, now: datetime | None = None) -> bool:
        """May `entry` be reused without asking the server (mirror.revalidate: auto)?"""
        if self._revalidate != "auto" or not entry.fresh_until:
            return False
        try:
            until = datetime.fromisoformat(entry.fresh_until)
        except ValueError:
            return False
        return (now or datetime.now(timezone.utc)) < until

    def reuse(self, entry: SavedFile, not_modified: Response | None = None) -> Response | None:
        """A Response made of the stored copy (None if its file is gone): after a 304, or
        without a request when it is still fresh."""
        try:
            body = self.path(entry).read_bytes()
        except OSError as error:
            log.info("stored copy of %s unusable (%s): downloading it again", entry.url, error)
            return None
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        answer = not_modified
        return Response(
            url=entry.url, status=entry.status, content_type=entry.content_type, charset=entry.charset,
            body=body, etag=(answer.etag if answer and answer.etag else entry.etag),
            last_modified=(answer.last_modified if answer and answer.last_modified else entry.last_modified),
            fetched_at=entry.fetched_at, fresh_until=answer.fresh_until if answer else entry.fresh_until,
            stored=replace(entry, checked_at=now if answer else entry.checked_at),
            headers=answer.headers if answer else None,
            request_headers=answer.request_headers if answer else None)
