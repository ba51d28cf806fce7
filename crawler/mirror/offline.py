"""The "links that work offline" figure, and the last pass over the links once the crawl is
over.

The figure counts the links meant to work offline -- their target was saved or belongs to a
crawled host, leaving out links the site itself answers 4xx for, targets a scope rule or
robots.txt excluded and pages max_pages left out -- and how many of them open a saved file
under file:// rules. The `LinkFinisher` also fixes the links still written for an outcome
that did not happen, and converts again in full the pages an interrupted run converted.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from crawler.mirror.converter import LinkFixer, convert_document, read_converted_links, relative_from_folder
from crawler.mirror.linkmap import LinkMap
from crawler.mirror.links import ParsedDocument, parse_document
from crawler.mirror.markup import spot_value
from crawler.models import SavedFile, is_css, is_html

log = logging.getLogger(__name__)


@dataclass
class OfflineLinks:
    """What the links of the saved HTML and CSS point at, counted once per occurrence."""

    ok: int = 0  # counted, and open a saved file from disk
    total: int = 0  # meant to work offline: the target was saved or belongs to a crawled host
    external: int = 0  # to hosts not crawled
    broken_on_site: int = 0  # the site answered 4xx for the target
    excluded: int = 0  # a scope rule (or robots.txt) kept the target out on purpose
    left_out: int = 0  # the target is a page max_pages left out
    files_converted: int = 0  # pages fixed up or converted after the crawl
    missing: dict[str, int] = field(default_factory=dict)  # target URL -> links to it that fail

    def count(self, final: str, excused: str | None, opens: bool, links: int = 1) -> None:
        """`links` links to the URL `final`: not meant to work offline for the reason
        `excused` (a field: external, broken_on_site, excluded, left_out), or meant to, and
        they `opens` a saved file or not."""
        if excused is not None:
            setattr(self, excused, getattr(self, excused) + links)
            return
        self.total += links
        if opens:
            self.ok += links
        else:
            self.missing[final] = self.missing.get(final, 0) + links

    def to_dict(self) -> dict[str, object]:
        worst = sorted(self.missing.items(), key=lambda item: (-item[1], item[0]))[:20]
        return {"ok": self.ok, "total": self.total, "external": self.external,
                "broken_on_site": self.broken_on_site, "excluded_by_scope": self.excluded,
                "left_out_by_max_pages": self.left_out,
                "files_converted_after_crawl": self.files_converted,
                "missing_targets": [{"url": url, "links": count} for url, count in worst]}


@dataclass(frozen=True)
class Excuses:
    """Why a link whose target was not saved is not meant to work offline: another host's, a
    target the site answered 4xx for, one a scope rule or robots.txt kept out, or a page
    max_pages left out."""

    in_domains: Callable[[str], bool]
    broken: frozenset[str] = frozenset()
    excluded: frozenset[str] = frozenset()
    left_out: frozenset[str] = frozenset()

    @classmethod
    def of(cls, in_domains: Callable[[str], bool], broken: Iterable[str], excluded: Iterable[str],
           left_out: Iterable[str]) -> Excuses:
        return cls(in_domains, frozenset(broken), frozenset(excluded), frozenset(left_out))

    def of_target(self, url: str, final: str) -> str | None:
        """The OfflineLinks field the links to `url` (which ends at `final`, not saved) count
        in, or None if they are meant to work."""
        if not self.in_domains(final):
            return "external"
        for field_name, urls in (("broken_on_site", self.broken), ("excluded", self.excluded),
                                 ("left_out", self.left_out)):
            if final in urls or url in urls:
                return field_name
        return None


class LinkFinisher:
    """Once every outcome is known: fixes the links that are still misplaced, converts again
    the pages an interrupted run converted, and counts the offline links."""

    def __init__(self, root: Path, links: LinkMap, fixer: LinkFixer, *, in_domains: Callable[[str], bool],
                 broken: Iterable[str], excluded: Iterable[str], left_out: Iterable[str] = (),
                 recorded_targets: Callable[[SavedFile], list[str] | None] = lambda entry: None,
                 ) -> None:
        """`recorded_targets(entry)`: the target URLs of a page's links, in order, as recorded
        when it was converted (None if they were not)."""
        self._root = root
        self._recorded_targets = recorded_targets
        self._links = links
        self._fixer = fixer
        self._excuses = Excuses.of(in_domains, broken, excluded, left_out)
        self._existing: dict[str, bool] = {}
        self._relative = relative_from_folder

    def finish(self, saved: Iterable[SavedFile], converted_earlier: Iterable[SavedFile],
               fix: bool = True) -> OfflineLinks:
        """Without `fix` (an interrupted crawl, to be resumed), only count: links to pages not
        fetched yet count as not working."""
        result = OfflineLinks()
        if fix:
            result.files_converted += self._fixer.fix(self._links.all_misplaced())
        for url, count in self._links.counts():
            self._count(url, self._links.final_path(url), count, result)
        if fix:
            earlier = {entry.path for entry in converted_earlier}  # not in the map: read back
            if earlier:
                by_path = {entry.path: entry for entry in saved if entry.path in earlier}
                url_of_file = self._links.url_of_file()
                for path in sorted(by_path):
                    self._reconvert(by_path[path], url_of_file, result)
        return result

    def _count(self, url: str, path: str | None, count: int, result: OfflineLinks) -> None:
        final = self._links.final_url(url)
        excused = self._excuses.of_target(url, final) if path is None else None
        result.count(final, excused, path is not None and self._exists(path), count)

    def _exists(self, path: str) -> bool:
        exists = self._existing.get(path)
        if exists is None:
            exists = self._existing[path] = os.path.isfile(os.path.join(self._root, path))  # no Path per file
        return exists

    def _reconvert(self, entry: SavedFile, url_of_file: dict[str, str], result: OfflineLinks) -> None:
        """Convert again, and count, a page an interrupted run converted: a relative link names
        a file, whose URL the map gives; an absolute one is its URL."""
        try:
            body = (self._root / entry.path).read_bytes()
        except OSError as error:
            log.warning("cannot fix the links of %s: %s", entry.path, error)
            return
        document = parse_document(body, entry.url, entry.content_type, entry.charset)
        if document is None:
            return
        self._read_targets(document, entry, url_of_file)
        files: list[str | None] = []
        for target in document.targets:
            if target is None:
                continue
            path = self._links.final_path(target[0])
            files.append(path)
            self._count(target[0], path, 1, result)
        data = convert_document(document, entry.path, files, self._relative)
        if data is not None and self._fixer.replace(entry.path, data):
            result.files_converted += 1

    def _read_targets(self, document: ParsedDocument, entry: SavedFile, url_of_file: dict[str, str]) -> None:
        """The URLs a converted page's links stand for: as recorded when it was converted;
        else read back from the file names (a link written as a file that never came to be,
        such as a redirect's, then reads as a URL of its own)."""
        recorded = self._recorded_targets(entry)
        spots = [index for index, target in enumerate(document.targets) if target is not None]
        if recorded is None or len(recorded) != len(spots):
            read_converted_links(document, entry.path, url_of_file)
            return
        for index, url in zip(spots, recorded, strict=True):
            _, fragment = document.targets[index] or ("", "")  # a spot with a link: never None
            document.targets[index] = (url, fragment)


def count_unconverted(root: Path, saved: Iterable[SavedFile], *, final_url: Callable[[str], str],
                      path_of: Callable[[str], str | None], in_domains: Callable[[str], bool],
                      broken: Iterable[str], excluded: Iterable[str], left_out: Iterable[str] = ()) -> OfflineLinks:
    """The offline-links figure for a mirror whose links were not converted: each link is
    read as a browser reads it from the saved file."""
    result = OfflineLinks()
    excuses = Excuses.of(in_domains, broken, excluded, left_out)
    existing: dict[str, bool] = {}
    done: set[str] = set()
    for entry in saved:
        if entry.path in done or not (is_html(entry.content_type) or is_css(entry.content_type)):
            continue
        done.add(entry.path)
        try:
            body = (root / entry.path).read_bytes()
        except OSError:
            continue
        document = parse_document(body, entry.url, entry.content_type, entry.charset)
        if document is None:
            continue
        folder = posixpath.dirname(entry.path)
        for spot, target in zip(document.spots, document.targets, strict=True):
            if target is None:
                continue
            final = final_url(target[0])
            excused = excuses.of_target(target[0], final) if path_of(final) is None else None
            opens = excused is None and _opens_a_file(spot_value(document.view, spot, document.encoding),
                                                       folder, root, existing)
            result.count(final, excused, opens)
    return result


def _opens_a_file(link: str, folder: str, root: Path, existing: dict[str, bool]) -> bool:
    """Does `link`, in a file in `folder`, open a saved file under file:// rules?"""
    if link.startswith(("/", "\\")) or ":" in link.split("/", 1)[0]:
        return False  # absolute: a URL, or a path from the filesystem root
    path = unquote(link.partition("#")[0].partition("?")[0])
    if not path:
        return True  # "?x" or "#x" alone: this same file
    target = posixpath.normpath(posixpath.join(folder, path))
    if target.startswith("../") or target == "..":
        return False
    if target not in existing:
        existing[target] = os.path.isfile(root / target)
    return existing[target]

