"""Link conversion after the crawl, and the "links that work offline" figure.

Once every file is saved, each link in saved HTML and CSS is rewritten (mirror.convert_links):
to the relative path of the file that holds its target -- following redirects -- or, where
the target was not saved, to its absolute URL, so that no link points at a missing local
file. Only the bytes of the URLs change (`markup.py` says where they are); the encoding and
everything else stay as served.

Every crawl, converted or not, also counts the links that are meant to work offline and
how many do: a link counts when its target was saved or belongs to a crawled host, unless
the site itself answered 4xx for it (a link broken on the live site too) or a scope rule
excluded it on purpose. A counted link works when, read the way a browser reads a file://
link, it names a file that exists under the output folder.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urljoin

from crawler.errors import UnsafePathError
from crawler.markup import (
    Spot,
    ascii_compatible_view,
    css_encoding,
    css_spots,
    encode_value,
    html_encoding,
    html_spots,
    spot_value,
)
from crawler.models import SavedFile, is_css, is_html
from crawler.parser import NOT_FETCHABLE, document_base
from crawler.urls import InvalidURLError, clean_href, resolve

log = logging.getLogger(__name__)

_PATH_SAFE = "!$&'()*+,;=:@~"  # characters a relative URL path may keep unescaped
MAX_ALIAS_HOPS = 20


@dataclass
class OfflineLinks:
    """What the links of the saved HTML and CSS point at, counted once per occurrence."""

    ok: int = 0  # counted, and resolve to a saved file from disk
    total: int = 0  # meant to work offline: the target was saved or belongs to a crawled host
    external: int = 0  # to hosts not crawled
    broken_on_site: int = 0  # the site answered 4xx for the target
    excluded: int = 0  # a scope rule (or robots.txt) kept the target out on purpose
    files_converted: int = 0
    missing: dict[str, int] = field(default_factory=dict)  # target URL -> links to it that fail

    def to_dict(self) -> dict[str, object]:
        worst = sorted(self.missing.items(), key=lambda item: (-item[1], item[0]))[:20]
        return {"ok": self.ok, "total": self.total, "external": self.external,
                "broken_on_site": self.broken_on_site, "excluded_by_scope": self.excluded,
                "files_converted": self.files_converted,
                "missing_targets": [{"url": url, "links": count} for url, count in worst]}


class LinkConverter:
    def __init__(self, root: Path, saved: Iterable[SavedFile], *, aliases: dict[str, str],
                 in_domains: Callable[[str], bool], broken: Iterable[str], excluded: Iterable[str],
                 rewrite_file: Callable[[str, bytes], None]) -> None:
        """`aliases`: redirecting URL -> where it redirects. `broken`: URLs the site answered
        4xx for. `excluded`: URLs a scope rule kept out. `rewrite_file(path, data)` replaces a
        saved file atomically."""
        self._root = root
        self._saved = list(saved)
        self._path_of = {entry.url: entry.path for entry in self._saved}
        self._aliases = aliases
        self._in_domains = in_domains
        self._broken = set(broken)
        self._excluded = set(excluded)
        self._rewrite_file = rewrite_file
        self._exists: dict[str, bool] = {}

    def run(self, convert: bool) -> OfflineLinks:
        """Convert (if `convert`) and count the links of every saved HTML and CSS file."""
        result = OfflineLinks()
        done: set[str] = set()
        for entry in self._saved:
            if entry.path in done:
                continue  # URLs with the same content share one file: convert it once
            done.add(entry.path)
            if is_html(entry.content_type) or is_css(entry.content_type):
                try:
                    self._one_file(entry, convert, result)
                except (OSError, UnsafePathError) as error:  # this file only: disk full is an OutputError
                    log.warning("cannot convert links in %s: %s", entry.path, error)
        return result

    def final_url(self, url: str) -> str:
        """`url` after following the redirects the crawl saw."""
        for _ in range(MAX_ALIAS_HOPS):
            if url in self._path_of or url not in self._aliases:
                break
            url = self._aliases[url]
        return url

    # -- one file ---------------------------------------------------------------------------

    def _one_file(self, entry: SavedFile, convert: bool, result: OfflineLinks) -> None:
        original = (self._root / entry.path).read_bytes()
        if is_html(entry.content_type):
            encoding = html_encoding(original, entry.charset)
            body, encoding, back = ascii_compatible_view(original, encoding)
            document = html_spots(body)
            spots, base_spot = document.spots, document.base
            base = document_base(body, document, entry.url, encoding)
        else:
            body, encoding, back = ascii_compatible_view(original, css_encoding(original, entry.charset))
            spots, base_spot, base = css_spots(body), None, entry.url
        replacements: list[tuple[Spot, bytes]] = []
        for spot in spots:
            value = spot_value(body, spot, encoding)
            new_value = self._convert(value, base, entry.path) if convert else None
            self._count(value, new_value if new_value is not None else value, base, entry.path, result)
            if new_value is not None and new_value != value:
                replacements.append((spot, encode_value(new_value, spot, encoding)))
        if convert and base_spot is not None and replacements:
            # Links are now relative to the file itself; a <base href> would redirect them.
            replacements.append((base_spot, b""))
        if replacements:
            self._rewrite_file(entry.path, back(_splice(body, replacements)))
            result.files_converted += 1

    def _convert(self, value: str, base: str, from_path: str) -> str | None:
        """The new link for `value`, or None to leave it as it is."""
        if not value or value.startswith(NOT_FETCHABLE):
            return None
        href, _, fragment = clean_href(value).partition("#")
        try:
            target = self.final_url(resolve(base, href))
        except (InvalidURLError, ValueError):
            return None
        path = self._path_of.get(target)
        suffix = f"#{fragment}" if fragment else ""
        if path is not None:
            return relative_link(from_path, path) + suffix
        return urljoin(base, clean_href(value))

    def _count(self, value: str, final: str, base: str, from_path: str, result: OfflineLinks) -> None:
        if not value or value.startswith(NOT_FETCHABLE):
            return
        try:
            target = resolve(base, clean_href(value).partition("#")[0])
        except (InvalidURLError, ValueError):
            return
        final_target = self.final_url(target)
        if final_target not in self._path_of:
            if not self._in_domains(final_target):
                result.external += 1
                return
            if final_target in self._broken or target in self._broken:
                result.broken_on_site += 1
                return
            if final_target in self._excluded or target in self._excluded:
                result.excluded += 1
                return
        result.total += 1
        if self._works_offline(final, from_path):
            result.ok += 1
        else:
            result.missing[final_target] = result.missing.get(final_target, 0) + 1

    def _works_offline(self, link: str, from_path: str) -> bool:
        """Does `link`, in the file at `from_path`, open a saved file under file:// rules?"""
        if link.startswith(("/", "\\")) or ":" in link.split("/", 1)[0]:
            return False  # absolute: a URL, or a path from the filesystem root
        path = unquote(link.partition("#")[0].partition("?")[0])
        if not path:
            return True  # "?x" or "#x" alone: this same file
        target = posixpath.normpath(posixpath.join(posixpath.dirname(from_path), path))
        if target.startswith("../") or target == "..":
            return False
        exists = self._exists.get(target)
        if exists is None:
            exists = self._exists[target] = os.path.isfile(self._root / target)
        return exists


def relative_link(from_path: str, to_path: str) -> str:
    """The URL path from the file at `from_path` to the file at `to_path` (both relative to the
    output folder), escaped so that a browser opens exactly that file."""
    relative = posixpath.relpath(to_path, posixpath.dirname(from_path) or ".")
    link = "/".join(quote(segment, safe=_PATH_SAFE) for segment in relative.split("/"))
    if ":" in link.split("/", 1)[0]:
        link = "./" + link  # "host:8080/x" would read as a URL with the scheme "host"
    return link


def _splice(body: bytes, replacements: list[tuple[Spot, bytes]]) -> bytes:
    parts, position = [], 0
    for spot, new in sorted(replacements, key=lambda item: item[0].start):
        parts.append(body[position:spot.start])
        parts.append(new)
        position = spot.end
    parts.append(body[position:])
    return b"".join(parts)

