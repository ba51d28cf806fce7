"""Link conversion for offline reading, and the "links that work offline" figure.

With mirror.convert_links, every link in saved HTML and CSS becomes the relative path of the
file that holds its target -- following redirects -- or, where the target is not saved, its
absolute URL, so that no link points at a missing local file. Only the bytes of the URLs
change (`markup.py` says where they are); the encoding and everything else stay as served.

Conversion happens as each page is written, while the crawl still runs: a link to a URL not
saved yet gets the path that URL will be saved at if it turns out as expected (a page without
an extension as HTML, `about` -> `about.html`, ...). `LinkMap` remembers which pages link to
which URLs and what was written for them; when the crawl is over, the few pages whose links
were written for an outcome that did not happen (a 404, a redirect elsewhere, a CSS file
served without .css) are fixed up. Pages written by an interrupted run are converted again in
full when the crawl completes, reading their converted links back through the same map.

The figure counts the links meant to work offline -- their target was saved or belongs to a
crawled host, leaving out links the site itself answers 4xx for, targets a scope rule or
robots.txt excluded and pages max_pages left out -- and how many of them open a saved file
under file:// rules.
"""

from __future__ import annotations

import array
import logging
import os
import posixpath
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, unquote

from crawler.errors import UnsafePathError
from crawler.mirror.links import ParsedDocument, parse_document, tokenize
from crawler.mirror.markup import Spot, encode_value, spot_value
from crawler.models import LinkKind, SavedFile, is_css, is_html
from crawler.urls import clean_href

log = logging.getLogger(__name__)

_PATH_SAFE = "!$&'()*+,;=:@~"  # characters a relative URL path may keep unescaped
_NOTHING_TO_ESCAPE = re.compile(r"[A-Za-z0-9_.\-~!$&'()*+,;=:@/]*")  # quote() would leave it as it is
MAX_ALIAS_HOPS = 20
_DYNAMIC = frozenset({"", ".php", ".asp", ".aspx", ".jsp", ".cgi", ".pl", ".cfm", ".shtml", ".xhtml"})


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

    def to_dict(self) -> dict[str, object]:
        worst = sorted(self.missing.items(), key=lambda item: (-item[1], item[0]))[:20]
        return {"ok": self.ok, "total": self.total, "external": self.external,
                "broken_on_site": self.broken_on_site, "excluded_by_scope": self.excluded,
                "left_out_by_max_pages": self.left_out,
                "files_converted_after_crawl": self.files_converted,
                "missing_targets": [{"url": url, "links": count} for url, count in worst]}


@dataclass(frozen=True, slots=True)
class Misplaced:
    """In the page at `page`, links to `url` were written as `wrong` (a file, or "" for the
    URL) and must be `right`."""

    page: str
    content_type: str
    charset: str | None
    url: str
    wrong: str
    right: str


class LinkMap:
    """Where each URL of the crawl is saved, where it redirects, and which converted pages link
    to it with what. Shared by the stages; one lock guards every field."""

    def __init__(self, path_for: Callable[[str, str | None], str]) -> None:
        """`path_for(url, content_type)`: where the writer saves a URL of that type."""
        self._path_for = path_for
        self._lock = threading.Lock()
        self._saved: dict[str, str] = {}  # URL -> its file
        self._aliases: dict[str, str] = {}  # redirecting URL -> where it redirects
        self._unsaved: set[str] = set()  # URLs that will not be saved: failed, or left out
        self._pages: list[str] = []  # page number -> its file (a converted page), "" until saved
        self._page_types: list[tuple[str, str | None]] = []  # page number -> content type, charset
        # target URL -> what links to it were written with (a file, or "" for the URL itself)
        # -> the numbers of the pages written so. Nearly always one way: then a (way, pages)
        # tuple, which takes a third of the memory of a dict (a big site has many targets).
        self._links: dict[str, _Written] = {}
        self._types: dict[tuple[str, str | None], tuple[str, str | None]] = {}  # one tuple per type
        self._moves: dict[str, str] = {}  # old file -> new name, when a folder displaced a file

    # -- what the stages report -----------------------------------------------------------------

    def saved(self, url: str, path: str, page: int | None = None) -> list[Misplaced]:
        """`url` is saved at `path`; `page`: its number, if it is a page plan() converted.
        Returns the links already written for `url` as something else, to fix now."""
        with self._lock:
            while path in self._moves:  # moved aside before its writer thread got here
                path = self._moves[path]
            self._saved[url] = path
            if page is not None:
                self._pages[page] = path
            return self._misplaced(url)

    def restore(self, entries: Iterable[SavedFile], aliases: Iterable[tuple[str, str]]) -> None:
        with self._lock:
            self._saved.update((entry.url, entry.path) for entry in entries)
            self._aliases.update(aliases)

    def moved(self, old: str, new: str) -> None:
        """A saved file was renamed (a folder needed its name). Rare: a scan is fine. Links
        already written to the old name are fixed with the rest after the crawl."""
        with self._lock:
            self._moves[old] = new
            for url, path in self._saved.items():
                if path == old:
                    self._saved[url] = new
            self._pages = [new if path == old else path for path in self._pages]

    def alias(self, source: str, target: str) -> None:
        with self._lock:
            self._aliases[source] = target

    def unsaved(self, url: str) -> list[Misplaced]:
        """`url` failed or was left out: links to it are written as its absolute URL. Returns
        the links already written for it as a file, to fix now."""
        with self._lock:
            self._unsaved.add(url)
            return self._misplaced(url)

    def _misplaced(self, url: str) -> list[Misplaced]:
        """The saved pages with links to `url` written for another outcome than the one now
        known; they are counted as fixed. Caller holds the lock."""
        packed = self._links.get(url)
        if packed is None:
            return []
        written = _buckets(packed)
        right = self._saved.get(self._final_url(url), "")
        if list(written) == [right]:
            return []
        fixes = []
        for value in [value for value in written if value != right]:
            pages = written[value]
            waiting = array.array("I", (n for n in pages if not self._pages[n]))  # not saved yet
            for number in pages:
                if self._pages[number]:
                    content_type, charset = self._page_types[number]
                    fixes.append(Misplaced(self._pages[number], content_type, charset, url, value, right))
            written.setdefault(right, array.array("I")).extend(n for n in pages if self._pages[n])
            if waiting:
                written[value] = waiting
            else:
                del written[value]
        self._links[url] = _pack(written)
        return fixes

    # -- conversion while crawling ---------------------------------------------------------

    def plan(self, content_type: str, charset: str | None,
             targets: list[tuple[str, LinkKind, bool]]) -> tuple[int, list[str | None]]:
        """The file (or None: the absolute URL) each link of a page is written with now, for
        targets given as (URL, kind, crawled: the scope admitted it), and the page's number
        for `saved`. Remembered, so that the page can be fixed up if a target ends elsewhere."""
        with self._lock:
            return self._register(content_type, charset, targets, self._plan(targets))

    def plan_if(self, content_type: str, charset: str | None, targets: list[tuple[str, LinkKind, bool]],
                written: list[str | None]) -> int | None:
        """For a stored page whose links are `written` so: remember it as plan() would, and
        return its number, if that is how they are to be written now -- or may be: a link
        written as its URL to a target not fetched yet is fixed, like any other, if the target
        is saved. Else None, and nothing is remembered: the page is to be converted anew."""
        with self._lock:
            for (url, kind, crawled), then in zip(targets, written, strict=True):
                now = self._expected_path(url, kind, crawled)
                if now != then and not (then is None and not self._settled(url)):
                    return None
            return self._register(content_type, charset, targets, written)[0]

    def _settled(self, url: str) -> bool:
        """Is the outcome of `url` known (saved, or not to be)? Caller holds the lock."""
        final = self._final_url(url)
        return final in self._saved or final in self._unsaved or url in self._unsaved

    def _plan(self, targets: list[tuple[str, LinkKind, bool]]) -> list[str | None]:
        """Caller holds the lock."""
        return [self._expected_path(url, kind, crawled) for url, kind, crawled in targets]

    def _register(self, content_type: str, charset: str | None, targets: list[tuple[str, LinkKind, bool]],
                  plan: list[str | None]) -> tuple[int, list[str | None]]:
        """Caller holds the lock."""
        number = len(self._pages)
        self._pages.append("")  # its file, once saved
        self._page_types.append(self._types.setdefault((content_type, charset), (content_type, charset)))
        for (url, _, _), path in zip(targets, plan, strict=True):
            value = path or ""
            packed = self._links.get(url)
            if packed is None:
                self._links[url] = (value, array.array("I", (number,)))
            elif isinstance(packed, tuple) and packed[0] == value:
                packed[1].append(number)
            else:
                written = _buckets(packed)
                written.setdefault(value, array.array("I")).append(number)
                self._links[url] = written
        return number, plan

    def _expected_path(self, url: str, kind: LinkKind, crawled: bool) -> str | None:
        """Caller holds the lock."""
        final = self._final_url(url)
        saved = self._saved.get(final)
        if saved is not None:
            return saved
        if not crawled or final in self._unsaved or url in self._unsaved:
            return None
        return self._path_for(final, _expected_type(final, kind))

    def _final_url(self, url: str) -> str:
        for _ in range(MAX_ALIAS_HOPS):
            if url in self._saved or url not in self._aliases:
                break
            url = self._aliases[url]
        return url

    # -- after the crawl -------------------------------------------------------------------

    def final_path(self, url: str) -> str | None:
        with self._lock:
            return self._saved.get(self._final_url(url))

    def final_url(self, url: str) -> str:
        with self._lock:
            return self._final_url(url)

    def counts(self) -> dict[str, int]:
        """Target URL -> how many links to it were written."""
        with self._lock:
            return {url: sum(len(pages) for pages in _buckets(packed).values()) for url, packed in self._links.items()}

    def all_misplaced(self) -> list[Misplaced]:
        """After the crawl: every link still written for an outcome that did not happen."""
        with self._lock:
            return [fix for url in list(self._links) for fix in self._misplaced(url)]

    def url_of_file(self) -> dict[str, str]:
        """Every file a written link may name -> its URL (saved files, and expected ones)."""
        with self._lock:
            files = {path: url for url, path in self._saved.items()}
            for url, packed in self._links.items():
                for path in _buckets(packed):
                    if path:
                        files.setdefault(path, url)
            return files


_Written = tuple[str, "array.array[int]"] | dict[str, "array.array[int]"]


def _buckets(packed: _Written) -> dict[str, array.array[int]]:
    return {packed[0]: packed[1]} if isinstance(packed, tuple) else packed


def _pack(written: dict[str, array.array[int]]) -> _Written:
    if len(written) == 1:
        ((value, pages),) = written.items()
        return value, pages
    return written


def _expected_type(url: str, kind: LinkKind) -> str | None:
    """The content type a URL not fetched yet probably has, which decides its file name."""
    path = url.split("?", 1)[0]
    name = path.rsplit("/", 1)[-1]
    extension = os.path.splitext(name)[1].lower()
    if extension in (".html", ".htm"):
        return "text/html"
    if extension == ".css":
        return "text/css"
    if kind is LinkKind.PAGE and extension in _DYNAMIC:
        return "text/html"  # /about, /docs/, page.php?id=3: pages
    return None


# -- rewriting one document ----------------------------------------------------------------------

def convert_document(document: ParsedDocument, page_path: str, files: list[str | None],
                     relative: Callable[[str, str], str]) -> bytes | None:
    """The document with each link spot rewritten to its file (a relative path) or, for
    None, its absolute URL; None if nothing changes. `files[i]` is for the i-th linked spot."""
    folder = posixpath.dirname(page_path)
    replacements: list[tuple[Spot, bytes]] = []
    files_iter = iter(files)
    for spot, target in zip(document.spots, document.targets, strict=True):
        if target is None:
            continue
        file = next(files_iter)
        url, fragment = target
        new = (relative(folder, file) if file is not None else url) + (f"#{fragment}" if fragment else "")
        if new != spot_value(document.view, spot, document.encoding):
            replacements.append((spot, encode_value(new, spot, document.encoding)))
    if replacements and document.base_spot is not None:
        # Links are now relative to the file itself; a <base href> would redirect them.
        replacements.append((document.base_spot, b""))
    if not replacements:
        return None
    return document.back(_splice(document.view, replacements))


@lru_cache(maxsize=16384)  # the same links recur on every page of a folder; bounded, for big sites
def relative_from_folder(folder: str, path: str) -> str:
    return relative_link(folder, path, from_folder=True)


def relative_link(source: str, to_path: str, from_folder: bool = False) -> str:
    """The URL path from the file at `source` (or, with `from_folder`, from the folder
    `source`) to the file at `to_path`, both relative to the output folder, escaped so that a
    browser opens exactly that file."""
    folder = source if from_folder else posixpath.dirname(source)
    relative = _relative_path(to_path, folder)
    if _NOTHING_TO_ESCAPE.fullmatch(relative):  # most paths: no quote() per segment
        link = relative
    else:
        link = "/".join(quote(segment, safe=_PATH_SAFE) for segment in relative.split("/"))
    if ":" in link.split("/", 1)[0]:
        link = "./" + link  # "host:8080/x" would read as a URL with the scheme "host"
    return link


def _relative_path(path: str, folder: str) -> str:
    """posixpath.relpath for two normalized paths relative to the same root, without its
    two os.getcwd() calls (system calls that give the GIL away, once per link)."""
    if not folder:
        return path or "."
    parts, base = path.split("/"), folder.split("/")
    common = 0
    for mine, theirs in zip(parts, base, strict=False):
        if mine != theirs:
            break
        common += 1
    return "/".join([".."] * (len(base) - common) + parts[common:]) or "."


def _splice(body: bytes, replacements: list[tuple[Spot, bytes]]) -> bytes:
    parts, position = [], 0
    for spot, new in sorted(replacements, key=lambda item: item[0].start):
        parts.append(body[position:spot.start])
        parts.append(new)
        position = spot.end
    parts.append(body[position:])
    return b"".join(parts)


# -- after the crawl ----------------------------------------------------------------------------

class LinkFixer:
    """Rewrites the misplaced links of saved pages, one page at a time (writer threads fix
    as outcomes become known; the end of the crawl fixes the rest)."""

    def __init__(self, root: Path, rewrite_file: Callable[[str, bytes], None],
                 on_change: Callable[[str, dict[str, str | None] | None], None] | None = None) -> None:
        """`on_change(page, fixes)`: told after a page's links changed, with {target URL: the
        file its links now name, None for the URL}, or None if it was converted anew."""
        self._root = root
        self._rewrite_file = rewrite_file
        self._on_change = on_change or (lambda page, fixes: None)
        self._relative = relative_from_folder
        # Held while a page is read, fixed and written back, so that two fixes of one page
        # (for two of its links) cannot undo each other.
        self._lock = threading.Lock()

    def fix(self, misplaced: Iterable[Misplaced]) -> int:
        """Rewrite the pages concerned; returns how many files changed."""
        pages: dict[str, list[Misplaced]] = {}
        for item in misplaced:
            pages.setdefault(item.page, []).append(item)
        changed = 0
        for page, items in pages.items():
            folder = posixpath.dirname(page)
            corrections = {  # link as written (without its #fragment) -> as it must be
                self._link(folder, item.wrong, item.url): self._link(folder, item.right, item.url) for item in items}
            with self._lock:
                if self._rewrite(page, items[0].content_type, items[0].charset,
                                 lambda value, fixes=corrections: _corrected(value, fixes)):
                    changed += 1
                    self._on_change(page, {item.url: item.right or None for item in items})
        return changed

    def _link(self, folder: str, file: str, url: str) -> str:
        return self._relative(folder, file) if file else url

    def replace(self, page: str, data: bytes) -> bool:
        """Write a page converted anew; False (logged) if it cannot be."""
        try:
            with self._lock:
                self._rewrite_file(page, data)
                self._on_change(page, None)
        except (OSError, UnsafePathError) as error:  # this file only: disk full is an OutputError
            log.warning("cannot fix the links of %s: %s", page, error)
            return False
        return True

    def _rewrite(self, page: str, content_type: str, charset: str | None,
                 change: Callable[[str], str | None]) -> int:
        """Apply `change` (a link value -> its new value, or None) to every link of a page."""
        try:
            body = (self._root / page).read_bytes()
        except OSError as error:
            log.warning("cannot fix the links of %s: %s", page, error)
            return 0
        tokenized = tokenize(body, content_type, charset)  # no URL resolving: not needed
        if tokenized is None:
            return 0
        view, encoding, back, spots, _ = tokenized
        replacements = []
        for spot in spots:
            new = change(spot_value(view, spot, encoding))
            if new is not None:
                replacements.append((spot, encode_value(new, spot, encoding)))
        if not replacements:
            return 0
        try:
            self._rewrite_file(page, back(_splice(view, replacements)))
        except (OSError, UnsafePathError) as error:  # this file only: disk full is an OutputError
            log.warning("cannot fix the links of %s: %s", page, error)
            return 0
        return 1


class Finisher:
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
        self._in_domains = in_domains
        self._broken = set(broken)
        self._excluded = set(excluded)
        self._left_out = set(left_out)
        self._existing: dict[str, bool] = {}
        self._relative = relative_from_folder

    def finish(self, saved: Iterable[SavedFile], converted_earlier: Iterable[SavedFile],
               fix: bool = True) -> OfflineLinks:
        """Without `fix` (an interrupted crawl, to be resumed), only count: links to pages not
        fetched yet count as not working."""
        result = OfflineLinks()
        if fix:
            result.files_converted += self._fixer.fix(self._links.all_misplaced())
        for url, count in self._links.counts().items():
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
        if path is None:
            if not self._in_domains(final):
                result.external += count
                return
            if final in self._broken or url in self._broken:
                result.broken_on_site += count
                return
            if final in self._excluded or url in self._excluded:
                result.excluded += count
                return
            if final in self._left_out or url in self._left_out:
                result.left_out += count
                return
        result.total += count
        if path is not None and self._exists(path):
            result.ok += count
        else:
            result.missing[final] = result.missing.get(final, 0) + count

    def _exists(self, path: str) -> bool:
        exists = self._existing.get(path)
        if exists is None:
            exists = self._existing[path] = os.path.isfile(self._root / path)
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


def read_converted_links(document: ParsedDocument, page_path: str, url_of_file: dict[str, str]) -> None:
    """Point the targets of a page saved by conversion back at URLs: a relative link names a
    mirror file, whose URL `url_of_file` gives; any other link resolves as usual."""
    folder = posixpath.dirname(page_path)
    for index, (spot, read) in enumerate(zip(document.spots, document.targets, strict=True)):
        if read is not None:
            url = _converted_target(spot_value(document.view, spot, document.encoding), folder, url_of_file)
            if url is not None:
                document.targets[index] = (url, read[1])


def _corrected(value: str, corrections: dict[str, str]) -> str | None:
    link, hash_sign, fragment = value.partition("#")
    right = corrections.get(link)
    return None if right is None else right + hash_sign + fragment


def _converted_target(value: str, folder: str, url_of_file: dict[str, str]) -> str | None:
    """The URL of the mirror file a converted, relative link names; None if it names none."""
    link = clean_href(value).partition("#")[0]
    if not link or link.startswith(("/", "\\")) or ":" in link.split("/", 1)[0]:
        return None  # an absolute URL (or path): not a file of the mirror
    path = posixpath.normpath(posixpath.join(folder, unquote(link.partition("?")[0])))
    return url_of_file.get(path)


def count_unconverted(root: Path, saved: Iterable[SavedFile], *, final_url: Callable[[str], str],
                      path_of: Callable[[str], str | None], in_domains: Callable[[str], bool],
                      broken: Iterable[str], excluded: Iterable[str], left_out: Iterable[str] = ()) -> OfflineLinks:
    """The offline-links figure for a mirror whose links were not converted: each link is
    read as a browser reads it from the saved file."""
    result = OfflineLinks()
    broken_set, excluded_set, left_out_set, existing = set(broken), set(excluded), set(left_out), {}
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
            path = path_of(final)
            if path is None and (not in_domains(final) or final in broken_set or final in excluded_set
                                 or target[0] in broken_set or target[0] in excluded_set
                                 or final in left_out_set or target[0] in left_out_set):
                if not in_domains(final):
                    result.external += 1
                elif final in broken_set or target[0] in broken_set:
                    result.broken_on_site += 1
                elif final in left_out_set or target[0] in left_out_set:
                    result.left_out += 1
                else:
                    result.excluded += 1
                continue
            result.total += 1
            value = spot_value(document.view, spot, document.encoding)
            if _opens_a_file(value, folder, root, existing):
                result.ok += 1
            else:
                result.missing[final] = result.missing.get(final, 0) + 1
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

