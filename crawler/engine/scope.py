"""Which discovered URLs the crawl follows, and which rule said no.

Each rule has a name, so a skipped URL can be reported (and explained) by the rule that
rejected it. Rules are checked cheapest first.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from functools import lru_cache

from crawler.config import Config, ScopeConfig
from crawler.mirror.links import ParsedDocument
from crawler.mirror.markup import Context
from crawler.models import LinkKind
from crawler.urls import host_of

# Requisites of requisites: page -> frame -> stylesheet -> imported stylesheet -> font is 4.
# A deeper chain is a frame or stylesheet generator, not a page's decoration.
MAX_REQUISITE_CHAIN = 5
# What ends a session, in a URL's path or query or in a link's text: log out, logout, log-off,
# sign_out, Sign Out... as words (not "blog-outline", "catalog-offers").
LOGOUT = re.compile(r"(?<![a-z])(?:log|sign)[-_ ]?(?:out|off)(?![a-z])", re.IGNORECASE)
_TAGS = re.compile(rb"<[^>]*>")
_ANCHOR = re.compile(rb"<a[\s/]", re.IGNORECASE)
MAX_LINK_TEXT = 2000  # bytes of an <a> element read for its text


def logged_in(config: Config) -> bool:
    """Does the crawl carry a session (a login, or cookies from a file) that a logout link
    would end?"""
    return config.login is not None or config.http.cookies_file is not None


class Scope:
    def __init__(self, config: ScopeConfig, requisites_anywhere: bool = True, logged_in: bool = False) -> None:
        """`requisites_anywhere`: fetch a saved page's requisites whatever their host and depth
        (mirror.requisites); otherwise they follow the rules of pages. `logged_in`: URLs that
        would log out are not fetched."""
        self._exact_hosts = frozenset(d for d in config.domains if not d.startswith("*."))
        self._host_suffixes = tuple(d[1:] for d in config.domains if d.startswith("*."))
        self._wildcard_roots = frozenset(d[2:] for d in config.domains if d.startswith("*."))
        self._include = [re.compile(p) for p in config.include]
        self._exclude = [re.compile(p) for p in config.exclude]
        self._max_depth = config.max_depth
        self._max_url_length = config.max_url_length
        self._max_repeats = config.max_repeats
        self._requisites_anywhere = requisites_anywhere
        self.logged_in = logged_in

    def in_domains(self, url: str) -> bool:
        host = host_of(url)
        return (host in self._exact_hosts or host in self._wildcard_roots
                or (bool(self._host_suffixes) and host.endswith(self._host_suffixes)))

    def link_depth(self, kind: LinkKind, page_depth: int) -> int:
        """The depth of a link found on a page `page_depth` hops from a start URL. A page link
        is one hop more; so is a requisite when requisites follow the rules of pages
        (mirror.requisites: false), while one fetched whatever the depth stays at its page's,
        as does a sitemap named by another sitemap or robots.txt."""
        if kind is LinkKind.PAGE or (kind is LinkKind.REQUISITE and not self._requisites_anywhere):
            return page_depth + 1
        return page_depth

    def rejection(self, url: str, kind: LinkKind, depth: int, chain: int = 0) -> str | None:
        """The name of the first rule that keeps `url` out of the crawl, or None to crawl it.

        `url` is canonical; `depth` is the number of page hops it would be from a start URL,
        `chain` the number of requisite hops since the last page. (Asked for every link of
        every page: no words built here, see `explain`.)
        """
        if len(url) > self._max_url_length:
            return "max_url_length"
        if self.logged_in and LOGOUT.search(url, url.find("/", url.find("//") + 2)):
            return "logout"
        if self._max_repeats and repeats_segments(url, self._max_repeats):
            return "repeated_segments"
        for pattern in self._exclude:
            if pattern.search(url):
                return "exclude"
        if kind is LinkKind.REQUISITE and self._requisites_anywhere:
            return "requisite_chain" if chain > MAX_REQUISITE_CHAIN else None
        if not self.in_domains(url):
            return "domain"
        if kind is LinkKind.SITEMAP:
            return None
        if self._include and not any(pattern.search(url) for pattern in self._include):
            return "include"
        if self._max_depth is not None and depth > self._max_depth:
            return "max_depth"
        return None

    def explain(self, url: str, kind: LinkKind, depth: int, chain: int = 0) -> tuple[str | None, str]:
        """(the rule that keeps `url` out, or None; why, in words)."""
        rule = self.rejection(url, kind, depth, chain)
        if rule == "max_url_length":
            return rule, f"longer than scope.max_url_length ({self._max_url_length})"
        if rule == "logout":
            return rule, "looks like a link that logs out (log out, sign out...): not followed while logged in"
        if rule == "repeated_segments":
            return rule, f"its path repeats segments {self._max_repeats} times (a trap)"
        if rule == "exclude":
            pattern = next(pattern for pattern in self._exclude if pattern.search(url))
            return rule, f"matches scope.exclude {pattern.pattern!r}"
        if rule == "requisite_chain":
            return rule, f"more than {MAX_REQUISITE_CHAIN} requisites of requisites"
        if rule is None and kind is LinkKind.REQUISITE and self._requisites_anywhere:
            return None, "a requisite of a saved page: fetched whatever its host and depth"
        if rule == "domain":
            return rule, f"host {host_of(url)} is not in scope.domains"
        if rule is None and kind is LinkKind.SITEMAP:
            return None, "a sitemap of a crawled host"
        if rule == "include":
            return rule, "matches none of scope.include"
        if rule == "max_depth":
            return rule, f"{depth} link hops from a start URL, more than scope.max_depth ({self._max_depth})"
        return None, f"host {host_of(url)} is in scope.domains"


def repeats_segments(url: str, times: int) -> bool:
    """Does the URL's path repeat a run of segments `times` times in a row, as the links of a
    site that keeps appending to the relative path do (/a/b/a/b/a/b/)?"""
    path = url.split("?", 1)[0]
    return path.count("/") > times and _repeats(path, times)


@lru_cache(maxsize=4096)  # the same links recur on every page; bounded, for big sites
def _repeats(url_path: str, times: int) -> bool:
    path = url_path.split("/")[3:]
    count = len(path)
    if count < times:
        return False
    for start in range(count):
        for length in range(1, (count - start) // times + 1):
            run = path[start:start + length]
            if all(path[start + length * n:start + length * (n + 1)] == run for n in range(1, times)):
                return True
    return False


def session_enders(document: ParsedDocument) -> set[str]:
    """The URLs of the document's <a> links whose text says they log out ("Sign out")."""
    return {url for url, text in _anchor_texts(document) if LOGOUT.search(text)}


def _anchor_texts(document: ParsedDocument) -> Iterator[tuple[str, str]]:
    """(URL, text) of each <a href> link of an HTML document: its text up to </a>, tags dropped."""
    view = document.view
    for spot, target in zip(document.spots, document.targets, strict=True):
        if target is None or spot.kind is not LinkKind.PAGE or spot.context is not Context.ATTRIBUTE:
            continue
        start = view.rfind(b"<", 0, spot.start)
        if not _ANCHOR.match(view, start):
            continue
        close = view.find(b"</a", spot.end, spot.end + MAX_LINK_TEXT)
        opened = view.find(b">", spot.end, close)
        if close < 0 or opened < 0 or _ANCHOR.search(view, opened, close):
            continue
        text = _TAGS.sub(b" ", view[opened + 1:close]).decode(document.encoding, "replace")
        yield target[0], html.unescape(" ".join(text.split()))
