"""Stage 4, the writers: write queue -> links converted -> file -> frontier.task_done (disk
and CPU).

Each writer thread converts a page's links for offline reading (only the bytes of each URL
change), saves it atomically, journals it, and only then tells the frontier the URL is done:
a URL is in flight until its file is on disk. A file unchanged since the previous crawl is a
hard link to the previous copy (a snapshot) or left alone (a plain mirror). The writers also
fix the links of pages written earlier for an outcome that did not happen (FixLinks).
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import replace
from datetime import datetime, timezone
from hashlib import sha256
from typing import TYPE_CHECKING

from crawler.engine.interfaces import CrawlState, Frontier
from crawler.engine.outcomes import FixLinks, Outcomes, QueueItem, Sentinel
from crawler.engine.parse_stage import parse_response
from crawler.errors import CrawlError, LeaseLostError, OutputError
from crawler.history.recrawl import KnownLinks, StoredCopies
from crawler.history.snapshot import Layout
from crawler.mirror.converter import LinkFixer, convert_document, relative_from_folder
from crawler.mirror.linkmap import LinkMap
from crawler.mirror.writer import Writer
from crawler.models import Failure, LinkKind, Page, Response, SavedFile
from crawler.tally import Tally

if TYPE_CHECKING:
    from crawler.history.warc import WarcArchive  # warcio: imported only for output_formats: warc

log = logging.getLogger(__name__)


class WriteStage:
    def __init__(self, *, frontier: Frontier, state: CrawlState, writer: Writer, links: LinkMap, fixer: LinkFixer,
                 stored: StoredCopies, layout: Layout, archive: WarcArchive | None, outcomes: Outcomes,
                 writes: queue.Queue[QueueItem], convert_links: bool, aborted: threading.Event) -> None:
        """`layout`: where this run writes, and keeps what it replaces; `archive`: the WARC, if
        one is written; `aborted`: set once a fatal error stops the crawl."""
        self._frontier = frontier
        self._state = state
        self._writer = writer
        self._links = links
        self._fixer = fixer
        self._stored = stored
        self._layout = layout
        self._archive = archive
        self._outcomes = outcomes
        self._writes = writes
        self._convert_links = convert_links
        self._aborted = aborted

    def run(self, tally: Tally) -> None:
        """One writer thread, until the parsers are all done (a sentinel comes)."""
        while not isinstance(page := self._writes.get(), Sentinel):
            tally.working_on(1)
            if isinstance(page, FixLinks):
                self._fixer.fix(page.misplaced)
            else:
                try:
                    self._write_one(page, tally)
                except Exception as exc:
                    self._outcomes.internal_error(page.item, exc, tally)
            tally.working_on(0)

    def _write_one(self, page: Page, tally: Tally) -> None:
        if self._aborted.is_set():  # the disk is gone: drain the queue, keep the URL pending
            self._frontier.put_back(page.item)
            return
        response = page.response
        entry, unchanged = self._entry(response, page.rendered)
        try:
            saved, page_number, written_links = self._save(page, entry, unchanged)
        except LeaseLostError as lost:  # a shared crawl's worker stopped past its lease: another wrote it
            log.warning("not saving %s", lost)
            self._frontier.task_done(page.item)  # not this worker's: changes nothing but its own records
            return
        except OutputError as error:
            self._outcomes.abort(error)
            self._frontier.put_back(page.item)  # still to be fetched when the crawl resumes
            return
        except CrawlError as error:
            self._outcomes.fail(page.item, Failure(response.url, "unsafe_path", str(error)), tally, fix_now=True)
            return
        # Before links.saved(): no fix of this page comes earlier.
        self._state.saved(saved, written_links.encode() if written_links is not None else None)
        if self._archive is not None:
            try:
                self._archive.record(*_as_served(page, saved, unchanged))
            except OSError as error:
                self._outcomes.abort(OutputError(f"cannot write {self._archive.path}: {error.strerror or error}"))
        self._fixer.fix(self._links.saved(response.url, saved.path, page_number))
        html_page = page.is_html and page.item.kind is LinkKind.PAGE
        tally.files_saved += 1
        tally.html_pages_saved += html_page
        self._frontier.task_done(page.item, saved_html_page=html_page)

    def _save(self, page: Page, entry: SavedFile, unchanged: SavedFile | None
              ) -> tuple[SavedFile, int | None, KnownLinks | None]:
        """The file written (or shared with another URL of the same content), the page's number
        in the link map, and its links as written."""
        response = page.response
        shared = self._writer.shared(response.url, entry)
        if shared is not None:
            if not self._frontier.still_ours(page.item):
                raise LeaseLostError(f"{response.url}: another worker holds it now")
            return shared, None, None
        if unchanged is None:
            self._layout.keep_replaced(response.url)
        data, page_number, written_links = self._converted(page)
        # An unchanged file is a hard link to the previous snapshot's (or, in a plain mirror,
        # left alone) when its bytes are the same after conversion too.
        reuse = str(self._stored.path(unchanged)) if unchanged is not None else None
        # A copy reused from disk was read just now: its bytes are known.
        known = response.stored is not None and unchanged is not None and unchanged.path == response.stored.path
        saved = self._writer.save(response.url, data, entry, reuse=reuse,
                                  reuse_holds=data == response.body if known else None,
                                  fence=lambda: self._frontier.still_ours(page.item))
        return saved, page_number, written_links

    def _entry(self, response: Response, rendered: bool) -> tuple[SavedFile, SavedFile | None]:
        """The manifest entry of a response, and the previous crawl's entry if the content is
        the same as then (a 304, a fresh copy, or a 200 with the same SHA-256). A `rendered`
        page's SHA-256 and size are of its DOM as rendered."""
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
                          charset=response.charset, checked_at=now, fresh_until=response.fresh_until,
                          rendered=rendered)
        previous = self._stored.get(response.url)
        return entry, previous if previous is not None and previous.sha256 == entry.sha256 else None

    def _converted(self, page: Page) -> tuple[bytes, int | None, KnownLinks | None]:
        """The page's bytes with links converted for offline reading (mirror.convert_links),
        its number in the link map, and its links as written (for the next crawl); the body as
        served otherwise."""
        response = page.response
        if not self._convert_links:
            return response.body, None, None
        known = page.known_links
        if known is not None:
            targets = [(url, kind, url not in page.left_out) for url, kind in known.targets]
            number = self._links.plan_if(response.content_type, response.charset, targets, known.files)
            if number is not None:
                return response.body, number, None  # a stored copy whose links stay as written
            try:  # some are to be written otherwise now
                page.document = parse_response(response, self._stored)
            except Exception as exc:  # it parsed when it was saved; if not now, it stays as it is
                log.warning("cannot parse %s: %s", response.url, exc)
                return response.body, None, None
        document = page.document
        if document is None:
            return response.body, None, None
        targets = [(target[0], spot.kind, target[0] not in page.left_out)
                   for spot, target in zip(document.spots, document.targets, strict=True) if target is not None]
        number, files = self._links.plan(response.content_type, response.charset, targets)
        page_path = self._writer.path_for(response.url, response.content_type)
        data = convert_document(document, page_path, files, relative_from_folder)
        written = KnownLinks([(url, kind) for url, kind, _ in targets], files)
        return (data if data is not None else response.body), number, written


def _as_served(page: Page, saved: SavedFile, unchanged: SavedFile | None
               ) -> tuple[Response, SavedFile, SavedFile | None]:
    """What the WARC records of a page: the response as the server sent it -- for a rendered
    page, the HTML it served, not the DOM saved (whose digest the entry has) -- and the earlier
    capture it revisits, if any."""
    if page.served is None:
        return page.response, saved, unchanged
    served = page.served
    return served, replace(saved, sha256=sha256(served.body).hexdigest(), size=len(served.body)), None
