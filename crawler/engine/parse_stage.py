"""Stage 3, the parsers: page queue -> links -> scope -> frontier, and on to the writers
(CPU-bound).

Each parser thread finds the links of a page (HTML, CSS, a sitemap, robots.txt's sitemaps),
asks the scope rules about the new ones, adds those admitted to the frontier in one locked
test-and-add, and passes the page on to be written, with the links the crawl leaves out (so
they are written as URLs at once). An unchanged page of a re-crawl is not parsed again: its
links, and how they are written, come from the crawl state.
"""

from __future__ import annotations

import logging
import queue
import re

from crawler.config import MirrorConfig
from crawler.engine.interfaces import Frontier
from crawler.engine.outcomes import Outcomes, QueueItem, Sentinel
from crawler.engine.scope import Scope, session_enders
from crawler.history.recrawl import KnownLinks, StoredCopies
from crawler.http.robots import RobotsRules, nofollow
from crawler.mirror.converter import read_converted_links
from crawler.mirror.links import ParsedDocument, parse_document, sitemap_links
from crawler.models import CrawlItem, Failure, Link, LinkKind, Page, Response, distinct_links, is_html
from crawler.tally import Tally
from crawler.urls import InvalidURLError, canonicalize

log = logging.getLogger(__name__)

# A stored page that may hold a robots meta tag is parsed again rather than read from the
# crawl state, which keeps its links but not what the page says of them. Only a <meta> tag
# naming robots counts: the word in a page's text (a page about crawlers) does not.
_ROBOTS = re.compile(rb"<meta\b[^>]*robots", re.IGNORECASE)


def parse_response(response: Response, stored: StoredCopies) -> ParsedDocument | None:
    """The links of an HTML or CSS response, where they sit in its bytes. A stored copy was
    saved with its links converted: they are read back to the URLs they stand for."""
    document = parse_document(response.body, response.url, response.content_type, response.charset)
    if document is not None and response.stored is not None:
        read_converted_links(document, response.stored.path, stored.url_of_file)
    return document


class ParseStage:
    def __init__(self, *, frontier: Frontier, scope: Scope, stored: StoredCopies, outcomes: Outcomes,
                 pages: queue.Queue[QueueItem], writes: queue.Queue[QueueItem], mirror: MirrorConfig,
                 user_agent: str, robots: bool = True) -> None:
        """`pages`: where the fetchers put responses; `writes`: the writers' queue; `robots`:
        obey robots meta tags and X-Robots-Tag (politeness.robots)."""
        self._frontier = frontier
        self._scope = scope
        self._stored = stored
        self._outcomes = outcomes
        self._pages = pages
        self._writes = writes
        self._mirror = mirror
        self._user_agent = user_agent
        self._robots = robots

    def run(self, tally: Tally) -> None:
        """One parser thread, until the fetchers are all done (a sentinel comes)."""
        while not isinstance(page := self._pages.get(), Sentinel):
            assert isinstance(page, Page)
            tally.working_on(1)
            try:
                self._parse_one(page, tally)
            except Exception as exc:
                self._outcomes.internal_error(page.item, exc, tally)
            tally.working_on(0)

    def _parse_one(self, page: Page, tally: Tally) -> None:
        page.is_html = is_html(page.response.content_type)
        try:
            page.links = self._links(page)
        except Exception as exc:  # a page that breaks the parser is still saved
            log.warning("cannot parse %s: %s", page.response.url, exc)
            tally.parse_errors.append(Failure(page.response.url, "parse_error", str(exc)[:300]))
            page.document = None
        if page.requested:  # rendered: what the browser loaded for it is the page's too
            page.links = distinct_links((link.url, link.kind) for link in [*page.links, *page.requested])
        self._admit(page)
        self._writes.put(page)

    def _links(self, page: Page) -> list[Link]:
        response, item = page.response, page.item
        if item.kind is LinkKind.SITEMAP:
            return sitemap_links(response.body, response.url)
        if item.kind is LinkKind.ROBOTS:
            return self._robots_sitemaps(response.body)
        known = self._known_links(response)
        if known is not None and not (self._robots and _ROBOTS.search(response.body)):  # unchanged: not parsed
            page.known_links = known
            return known.links()
        page.document = parse_response(response, self._stored)
        return page.document.links() if page.document is not None else []

    def _admit(self, page: Page) -> None:
        """The page's new links that the scope admits go to the frontier; those it rejects,
        and those robots.txt is known to disallow, are the page's `left_out`."""
        item = page.item
        admitted, rejected = [], []
        unfollowed = self._robots and page.is_html and self._says_nofollow(page)
        # While logged in, a link whose text says it logs out is not followed either.
        enders = session_enders(page.document) if self._scope.logged_in and page.document is not None else ()
        # Most links of a page lead where the crawl has been already (menus, footers): their
        # URLs are admitted, to be saved, and need no scope rules asked again.
        seen = self._frontier.seen_among(link.url for link in page.links)
        for link in page.links:
            if link.url in seen:
                continue
            # Pages restart the requisite chain; requisites extend it.
            depth = self._scope.link_depth(link.kind, item.depth)
            chain = 0 if link.kind is LinkKind.PAGE else item.chain + 1
            rule = self._scope.rejection(link.url, link.kind, depth, chain)
            if rule is None and unfollowed and link.kind is LinkKind.PAGE:
                rule = "robots_meta_nofollow"  # the page and its requisites are saved, its links not followed
            if rule is None and link.url in enders:
                rule = "logout"
            if rule is None:
                admitted.append(CrawlItem(link.url, depth, link.kind, referrer=page.response.url, chain=chain))
            else:
                rejected.append((link.url, rule))
                page.left_out.add(link.url)
        # robots.txt, where already known, is asked now, so that this page's links to what it
        # disallows are written as URLs at once.
        page.left_out.update(self._frontier.add_all(admitted, skipped=rejected, source=item, links=page.links))

    def _says_nofollow(self, page: Page) -> bool:
        """<meta name="robots" content="nofollow"> or X-Robots-Tag: nofollow."""
        document, headers = page.document, page.response.headers or {}
        metas = [content.decode("latin-1") for content in document.robots] if document is not None else []
        return nofollow(metas, headers.get("X-Robots-Tag"), self._user_agent)

    def _known_links(self, response: Response) -> KnownLinks | None:
        if response.stored is None or not self._mirror.convert_links:
            return None
        return self._stored.known_links(response.stored)

    def _robots_sitemaps(self, body: bytes) -> list[Link]:
        if not self._mirror.sitemaps:
            return []
        links = []
        for url in RobotsRules.from_body(body, self._user_agent).sitemaps:
            try:
                links.append(Link(canonicalize(url), LinkKind.SITEMAP))
            except InvalidURLError:
                continue
        return links
