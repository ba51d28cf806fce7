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
from urllib.parse import quote, unquote

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
        self._existing: dict[str, bool] = {}  # relative path -> is a file
        self._relative_links: dict[tuple[str, str], str] = {}  # (folder, path) -> link

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
        folder = posixpath.dirname(entry.path)
        for spot in spots:
            value = spot_value(body, spot, encoding)
            new_value = self._link(value, base, folder, convert, result)
            if new_value is not None and new_value != value:
                replacements.append((spot, encode_value(new_value, spot, encoding)))
        if convert and base_spot is not None and replacements:
            # Links are now relative to the file itself; a <base href> would redirect them.
            replacements.append((base_spot, b""))
        if replacements:
            self._rewrite_file(entry.path, back(_splice(body, replacements)))
            result.files_converted += 1

    def _link(self, value: str, base: str, folder: str, convert: bool, result: OfflineLinks) -> str | None:
        """Count one link and return what it becomes (None: leave it as it is)."""
        if not value or value.startswith(NOT_FETCHABLE):
            return None
        href, _, fragment = clean_href(value).partition("#")
        try:
            target = resolve(base, href)
        except (InvalidURLError, ValueError):
            return None
        final = self.final_url(target)
        path = self._path_of.get(final)
        suffix = f"#{fragment}" if fragment else ""
        if path is None and not self._counts(target, final, result):
            return target + suffix if convert else None
        result.total += 1
        if convert:
            # A link to a saved file becomes the relative path to it; one to anything else the
            # absolute URL, so that no link points at a missing local file.
            new = self._relative(folder, path) + suffix if path is not None else target + suffix
            works = path is not None and self._exists(path)
        else:
            new, works = None, self._works_offline(value, folder)
        if works:
            result.ok += 1
        else:
            result.missing[final] = result.missing.get(final, 0) + 1
        return new

    def _counts(self, target: str, final: str, result: OfflineLinks) -> bool:
        """Should a link to a target that was not saved count as one meant to work offline?"""
        if not self._in_domains(final):
            result.external += 1
        elif final in self._broken or target in self._broken:
            result.broken_on_site += 1
        elif final in self._excluded or target in self._excluded:
            result.excluded += 1
        else:
            return True  # failed after retries, or never fetched: it should have worked
        return False

    def _relative(self, folder: str, path: str) -> str:
        key = (folder, path)
        link = self._relative_links.get(key)
        if link is None:
            link = self._relative_links[key] = relative_link(folder, path, from_folder=True)
        return link

    def _exists(self, path: str) -> bool:
        exists = self._existing.get(path)
        if exists is None:
            exists = self._existing[path] = os.path.isfile(self._root / path)
        return exists

    def _works_offline(self, link: str, folder: str) -> bool:
        """Does `link`, in a file in `folder`, open a saved file under file:// rules?"""
        if link.startswith(("/", "\\")) or ":" in link.split("/", 1)[0]:
            return False  # absolute: a URL, or a path from the filesystem root
        path = unquote(link.partition("#")[0].partition("?")[0])
        if not path:
            return True  # "?x" or "#x" alone: this same file
        target = posixpath.normpath(posixpath.join(folder, path))
        return not (target.startswith("../") or target == "..") and self._exists(target)


def relative_link(source: str, to_path: str, from_folder: bool = False) -> str:
    """The URL path from the file at `source` (or, with `from_folder`, from the folder
    `source`) to the file at `to_path`, both relative to the output folder, escaped so that a
    browser opens exactly that file."""
    folder = source if from_folder else posixpath.dirname(source)
    relative = posixpath.relpath(to_path, folder or ".")
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

