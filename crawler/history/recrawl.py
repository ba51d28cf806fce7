"""What a re-crawl reuses from the crawl before it.

Every URL the previous crawl saved is asked for again with a conditional request
(If-None-Match, If-Modified-Since); a 304 means the stored file is still right, so it is kept
and read back for its links -- the crawl still reaches the whole site without downloading
unchanged bodies. With mirror.revalidate: auto, a stored copy that is still fresh (by its
HTTP caching headers, see fetcher.fresh_until) is reused without asking at all.

Each saved page's links, and how they were written, are kept in the crawl state (outlinks):
an unchanged page whose links would be written the same way again is neither parsed nor
converted, which is most of what a re-crawl of an unchanged site would cost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from crawler.history.snapshot import Previous
from crawler.models import Link, LinkKind, Response, SavedFile, distinct_links

log = logging.getLogger(__name__)


class StoredCopies:
    """The files of the previous crawl (read-only: shared by every thread)."""

    def __init__(self, previous: Previous | None, revalidate: str = "auto",
                 outlinks: Callable[[str], tuple[str, str, str] | None] = lambda url: None) -> None:
        """`outlinks(url)`: the (path, sha256, encoded links) the state recorded for a page."""
        self.previous = previous
        self._outlinks = outlinks
        self._entries = previous.entries if previous is not None else {}
        self._revalidate = revalidate
        # previous file -> its URL: what a converted link in a stored page names
        self.url_of_file = {entry.path: entry.url for entry in self._entries.values()}

    def get(self, url: str) -> SavedFile | None:
        return self._entries.get(url)

    def known_links(self, entry: SavedFile) -> KnownLinks | None:
        """The links of a stored page as recorded when it was saved, if recorded for this very
        file and content (and not rewritten since)."""
        recorded = self._outlinks(entry.url)
        if recorded is None or recorded[0] != entry.path or recorded[1] != entry.sha256:
            return None
        return KnownLinks.decode(recorded[2])

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
            request_headers=answer.request_headers if answer else None,
            **({"http_version": answer.http_version, "reason": answer.reason} if answer else {}))


@dataclass(frozen=True, slots=True)
class KnownLinks:
    """A page's link targets, one per link in the page (in order), and the file each is
    written as (None: its absolute URL)."""

    targets: list[tuple[str, LinkKind]]
    files: list[str | None]

    def links(self) -> list[Link]:
        """Each distinct target once; a requisite wins over a page (as ParsedDocument.links)."""
        return distinct_links(self.targets)

    def fixed(self, files: dict[str, str | None]) -> KnownLinks:
        """As written after the links to some targets were fixed: {target URL: its file now}."""
        return KnownLinks(self.targets, [files.get(url, file) for (url, _), file in
                                         zip(self.targets, self.files, strict=True)])

    def encode(self) -> str:
        """One line per link: URL, kind and file, tab-separated (neither a canonical URL nor a
        mirror path holds a tab or a line break). A fifth of the cost of JSON, on a page of a
        few hundred links."""
        kinds = _KIND_LETTERS
        return _FORMAT + "\n".join(f"{url}\t{kinds[kind]}\t{file or ''}"
                                    for (url, kind), file in zip(self.targets, self.files, strict=True))

    @classmethod
    def decode(cls, text: str) -> KnownLinks | None:
        """The links `encode` wrote (or an earlier version's JSON); None if the text is neither
        (damaged: the page is parsed again)."""
        if not text.startswith(_FORMAT):
            return cls._decode_json(text)
        body = text[len(_FORMAT):]
        # Split once, not line by line: a re-crawl decodes every unchanged page's links.
        cells = body.replace("\n", "\t").split("\t") if body else []
        if len(cells) % 3:
            return None
        try:
            kinds = [_LETTER_KINDS[letter] for letter in cells[1::3]]
        except KeyError:
            return None
        return cls(list(zip(cells[0::3], kinds, strict=True)), [file or None for file in cells[2::3]])

    @classmethod
    def _decode_json(cls, text: str) -> KnownLinks | None:
        try:
            rows = json.loads(text)
            return cls([(str(url), LinkKind(kind)) for url, kind, _ in rows],
                       [None if file is None else str(file) for _, _, file in rows])
        except (ValueError, TypeError):
            return None


_FORMAT = "\x02"  # marks KnownLinks.encode's format; JSON (an earlier version's) starts with "["
_KIND_LETTERS = {LinkKind.PAGE: "p", LinkKind.REQUISITE: "r", LinkKind.SITEMAP: "s", LinkKind.ROBOTS: "b"}
_LETTER_KINDS = {letter: kind for kind, letter in _KIND_LETTERS.items()}
