"""Link conversion for offline reading: every link in saved HTML and CSS becomes the relative
path of the file that holds its target -- following redirects -- or, where the target is not
saved, its absolute URL, so that no link points at a missing local file. Only the bytes of
the URLs change (`markup.py` says where they are); the encoding and everything else stay as
served.

Pages are converted as they are written (linkmap.py says what each link is written as); the
`LinkFixer` rewrites the links of a saved page that were written for an outcome that did not
happen. A page saved converted can be read back: `read_converted_links` turns its relative
links into the URLs they stand for.
"""

from __future__ import annotations

import logging
import posixpath
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from urllib.parse import quote, unquote

from crawler.errors import UnsafePathError
from crawler.mirror.lazy import lazy_replacements
from crawler.mirror.linkmap import Misplaced
from crawler.mirror.links import ParsedDocument, tokenize
from crawler.mirror.markup import Spot, encode_value, reads_ascii_as_ascii, spot_value
from crawler.urls import clean_href

log = logging.getLogger(__name__)

_PATH_SAFE = "!$&'()*+,;=:@~"  # characters a relative URL path may keep unescaped
_NOTHING_TO_ESCAPE = re.compile(r"[A-Za-z0-9_.\-~!$&'()*+,;=:@/]*")  # quote() would leave it as it is


def convert_document(document: ParsedDocument, page_path: str, files: list[str | None],
                     relative: RelativeLinks) -> bytes | None:
    """The document with each link spot rewritten to its file (a relative path) or, for
    None, its absolute URL; None if nothing changes. `files[i]` is for the i-th linked spot."""
    links = relative.from_folder(posixpath.dirname(page_path))
    replacements: list[tuple[Spot, bytes]] = []
    files_iter = iter(files)
    view, encoding = document.view, document.encoding
    ascii_as_ascii = reads_ascii_as_ascii(encoding)
    for spot, target in zip(document.spots, document.targets, strict=True):
        if target is None:
            continue
        file = next(files_iter)
        url, fragment = target
        new = (links[file] if file is not None else url) + (f"#{fragment}" if fragment else "")
        # Most links are written already as they are to be: when the bytes are the new link's
        # own -- printable ASCII without "&" or spaces around it, which reads as itself -- they
        # stay, without reading them (a page has hundreds of links).
        if ascii_as_ascii and new.isascii() and new.isprintable() and "&" not in new and \
                new.strip() == new and view[spot.start:spot.end] == new.encode("ascii"):
            continue
        if new != spot_value(view, spot, encoding):
            replacements.append((spot, encode_value(new, spot, encoding)))
    if document.lazy:
        replacements = lazy_replacements(document.view, document.encoding, document.lazy, replacements)
    if replacements and document.base_spot is not None:
        # Links are now relative to the file itself; a <base href> would redirect them.
        replacements.append((document.base_spot, b""))
    if not replacements:
        return None
    return document.back(_splice(document.view, replacements))


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


class RelativeLinks:
    """The relative link from a folder to a file, remembered per folder: the pages of a folder
    link to the same files (menus, sidebars), and a page has hundreds of links -- looking one
    up is a dict lookup, a third of the cost of a cached call with both paths. Bounded, for
    big sites: the folders used least recently are forgotten first. Shared by the writer
    threads (`from_folder` takes a lock once a page; a lookup takes none)."""

    def __init__(self, link: Callable[[str, str], str] | None = None, max_links: int = 16_384) -> None:
        """`link(folder, path)`: the link, computed (by default relative_link from the folder)."""
        self._link = link or _link_from_folder
        self._max_links = max_links
        self._lock = threading.Lock()
        self._folders: dict[str, _FolderLinks] = {}  # least recently used first
        self._remembered = 0

    def from_folder(self, folder: str) -> Mapping[str, str]:
        """{path: the link from `folder` to it}, for a page in `folder`."""
        with self._lock:
            links = self._folders.pop(folder, None)
            if links is None:
                links = _FolderLinks(folder, self)
            self._folders[folder] = links  # now the most recently used
            return links

    def __call__(self, folder: str, path: str) -> str:
        return self.from_folder(folder)[path]

    def _computed(self, links: _FolderLinks, path: str) -> str:
        link = self._link(links.folder, path)
        with self._lock:
            links[path] = link
            if self._folders.get(links.folder) is links:  # not forgotten meanwhile
                self._remembered += 1
                if self._remembered > self._max_links:
                    self._forget(keep=links)
        return link

    def _forget(self, keep: _FolderLinks) -> None:
        """Forget folders, least recently used first, until half the bound is left (the
        folder in use last, if it alone is over). Caller holds the lock."""
        for folder in list(self._folders):
            if self._remembered <= self._max_links // 2:
                break
            links = self._folders[folder]
            if links is not keep or len(links) > self._max_links // 2:
                del self._folders[folder]
                self._remembered -= len(links)


class _FolderLinks(dict[str, str]):
    """{path: link} from one folder; a path not asked before is computed by its RelativeLinks."""

    __slots__ = ("_owner", "folder")

    def __init__(self, folder: str, owner: RelativeLinks) -> None:
        super().__init__()
        self.folder = folder
        self._owner = owner

    def __missing__(self, path: str) -> str:
        return self._owner._computed(self, path)


def _link_from_folder(folder: str, path: str) -> str:
    return relative_link(folder, path, from_folder=True)


relative_from_folder = RelativeLinks()  # the crawl's: links from the folder of each page written


def _splice(body: bytes, replacements: list[tuple[Spot, bytes]]) -> bytes:
    parts, position = [], 0
    for spot, new in sorted(replacements, key=lambda item: item[0].start):
        parts.append(body[position:spot.start])
        parts.append(new)
        position = spot.end
    parts.append(body[position:])
    return b"".join(parts)


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
