"""The records that travel through the pipeline. Leaves: no stage imports another stage's types."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
CSS_TYPES = frozenset({"text/css"})


def is_html(content_type: str) -> bool:
    return content_type in HTML_TYPES


def is_css(content_type: str) -> bool:
    return content_type in CSS_TYPES


class LinkKind(enum.Enum):
    """Why a URL is wanted: pages are followed (and count hops), requisites are embedded in a
    page (images, stylesheets, scripts, frames), sitemaps list pages."""

    PAGE = "page"
    REQUISITE = "requisite"
    SITEMAP = "sitemap"
    ROBOTS = "robots"  # a host's robots.txt, fetched before its other URLs

    # Each member is its only instance (equal means identical): the identity's hash, in C,
    # instead of Enum's, a Python call -- kinds key a dict once per link of every page saved.
    __hash__ = object.__hash__


class Link(NamedTuple):
    """A page's link to a URL. A tuple: a page of API documentation has hundreds, and a frozen
    dataclass takes three times as long to make."""

    url: str
    kind: LinkKind


def distinct_links(targets: Iterable[tuple[str, LinkKind]]) -> list[Link]:
    """Each URL of (URL, kind) pairs once, in order. A URL linked both as a page and as a
    requisite is a requisite: it is saved whatever the depth."""
    pairs = targets if isinstance(targets, list) else list(targets)
    kinds = dict(pairs)  # each URL's last kind, in the order URLs first appear
    requisite = LinkKind.REQUISITE
    kinds.update([(url, kind) for url, kind in pairs if kind is requisite])
    new = tuple.__new__  # Link(...) runs the Python __new__ that NamedTuple generates
    return [new(Link, pair) for pair in kinds.items()]


@dataclass(frozen=True, slots=True)
class CrawlItem:
    """A URL admitted by the frontier. `depth` is the number of page hops from a start URL;
    `chain` the number of requisite hops since the last page (a frame's stylesheet's font: 3)."""

    url: str
    depth: int
    kind: LinkKind
    referrer: str | None = None
    attempt: int = 0  # 0 for the first try, n for the n-th retry
    chain: int = 0
    guessed: bool = False  # not linked from anywhere (a /sitemap.xml we try): absence is no failure


@dataclass(slots=True)
class Response:
    """A complete, successful download."""

    url: str  # after redirects
    status: int
    content_type: str  # media type only, lower case, e.g. "text/html"
    charset: str | None
    body: bytes
    etag: str | None
    last_modified: str | None
    fetched_at: str  # ISO 8601, UTC
    redirects: tuple[str, ...] = ()  # the URLs that redirected here, in order
    fresh_until: str | None = None  # ISO 8601: until when it may be reused without asking again
    stored: SavedFile | None = None  # not modified since this earlier copy, whose bytes `body` holds
    headers: dict[str, str] | None = None  # as received (for the WARC record)
    request_headers: dict[str, str] | None = None  # as sent (for the WARC record)
    http_version: str = "HTTP/1.1"
    reason: str = "OK"


@dataclass(slots=True)
class Page:
    """What travels fetch -> parse -> write for one CrawlItem."""

    item: CrawlItem
    response: Response
    links: list[Link] = field(default_factory=list)
    is_html: bool = False
    document: Any = None  # parser.ParsedDocument of an HTML or CSS page: its links, for conversion
    left_out: set[str] = field(default_factory=set)  # linked URLs the scope (or robots.txt) keeps out
    known_links: Any = None  # recrawl.KnownLinks of a stored page not parsed again
    rendered: bool = False  # `response` is the page as a browser rendered it (render.mode)
    served: Response | None = None  # a rendered page: the response as served (for the WARC)
    requested: list[Link] = field(default_factory=list)  # a rendered page: what the browser asked for


@dataclass(frozen=True, slots=True)
class Failure:
    url: str
    reason: str  # a short tag for grouping: "timeout", "http_404", "too_large", ...
    message: str
    status: int | None = None
    referrer: str | None = None
    off_site: bool = False  # the URL is outside scope.domains (a requisite on another host)

    @property
    def is_client_error(self) -> bool:
        """A 4xx other than 429: a broken link on the site, not a failure of the crawl."""
        return self.status is not None and 400 <= self.status < 500 and self.status != 429

    @property
    def is_serious(self) -> bool:
        """Makes the exit code 1: neither a broken link nor a third-party resource."""
        return not self.is_client_error and not self.off_site


@dataclass(frozen=True, slots=True)
class SavedFile:
    """One line of manifest.jsonl."""

    url: str
    path: str  # relative to the output folder, with "/" separators
    status: int
    content_type: str
    size: int
    sha256: str  # of the body as served
    etag: str | None
    last_modified: str | None
    fetched_at: str
    charset: str | None = None  # from the Content-Type header
    checked_at: str | None = None  # ISO 8601: when the server last confirmed this content
    fresh_until: str | None = None  # ISO 8601: reusable without asking the server until then
    rendered: bool = False  # saved as a browser rendered it (render.mode): the DOM after its scripts ran
    file_size: int = -1  # on disk, after link conversion (-1: as `size`); not in the manifest
