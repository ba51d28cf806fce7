"""Where each URL of the crawl is saved, where it redirects, and which converted pages link to
it and how: the map that lets link conversion happen while the crawl runs.

A page is written as soon as it is fetched, so a link to a URL not saved yet is written with
the file that URL will be saved as if it turns out as expected (a page without an extension
as HTML: `about` -> `about.html`). The map remembers what was written for each target; when
an outcome turns out otherwise (a 404, a redirect elsewhere, a CSS file served without .css),
it names the pages to fix (`Misplaced`), which the LinkFixer rewrites.
"""

from __future__ import annotations

import array
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from crawler.models import LinkKind, SavedFile

MAX_ALIAS_HOPS = 20
_DYNAMIC = frozenset({"", ".php", ".asp", ".aspx", ".jsp", ".cgi", ".pl", ".cfm", ".shtml", ".xhtml"})


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
        # Once the target is saved and every link to it names its file, nothing is left to
        # fix: then only how many there are (an int), the smallest record of all.
        self._links: dict[str, _Written | int] = {}
        # (target URL, old file, new file) for settled targets whose file was renamed: their
        # links, in pages not recorded, are fixed in every page after the crawl
        self._renamed: list[tuple[str, str, str]] = []
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
            self._renamed += [(url, old, new) for url, packed in self._links.items()
                              if isinstance(packed, int) and self._saved.get(self._final_url(url)) == new]

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
        if packed is None or isinstance(packed, int):
            return []
        written = _buckets(packed)
        right = self._saved.get(self._final_url(url), "")
        if list(written) == [right]:
            if right:  # settled: saved, and every link names its file
                self._links[url] = len(written[right])
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
        self._links[url] = len(written[right]) if right and list(written) == [right] else _pack(written)
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
        """Caller holds the lock. A page links to most of its targets more than once (API
        docs: 330 links to 130 URLs): each is planned once."""
        planned: dict[str, tuple[LinkKind, bool, str | None]] = {}  # URL -> its kind, crawled, its path
        paths = []
        for url, kind, crawled in targets:
            known = planned.get(url)
            if known is None or known[0] is not kind or known[1] != crawled:
                known = planned[url] = (kind, crawled, self._expected_path(url, kind, crawled))
            paths.append(known[2])
        return paths

    def _register(self, content_type: str, charset: str | None, targets: list[tuple[str, LinkKind, bool]],
                  plan: list[str | None]) -> tuple[int, list[str | None]]:
        """Caller holds the lock."""
        number = len(self._pages)
        self._pages.append("")  # its file, once saved
        self._page_types.append(self._types.setdefault((content_type, charset), (content_type, charset)))
        # Each link counts; a page links to most targets several times, written the same way:
        # each (target, how it is written) is recorded once, with its number of links.
        written_as = Counter(zip([url for url, _, _ in targets], [path or "" for path in plan], strict=True))
        for (url, value), links in written_as.items():
            packed = self._links.get(url)
            if packed is None:
                self._links[url] = (value, array.array("I", (number,) * links))
            elif isinstance(packed, int):  # settled: the link names its file, as all before
                self._links[url] = packed + links
            elif isinstance(packed, tuple) and packed[0] == value:
                packed[1].extend((number,) * links)
            else:
                written = _buckets(packed)
                written.setdefault(value, array.array("I")).extend((number,) * links)
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

    def counts(self) -> Iterator[tuple[str, int]]:
        """Each target URL and how many links to it were written: one at a time, since a
        dict of them all would be the biggest thing in memory at the end of a big crawl."""
        with self._lock:
            targets = list(self._links)
        for url in targets:
            with self._lock:
                packed = self._links[url]
                count = packed if isinstance(packed, int) else sum(len(pages) for pages in _buckets(packed).values())
            yield url, count

    def all_misplaced(self) -> list[Misplaced]:
        """After the crawl: every link still written for an outcome that did not happen."""
        with self._lock:
            fixes = [fix for url in list(self._links) for fix in self._misplaced(url)]
            for url, old, new in self._renamed:  # which pages link to it is not recorded: all may
                fixes += [Misplaced(page, *self._page_types[number], url, old, new)
                          for number, page in enumerate(self._pages) if page]
            return fixes

    def url_of_file(self) -> dict[str, str]:
        """Every file a written link may name -> its URL (saved files, and expected ones)."""
        with self._lock:
            files = {path: url for url, path in self._saved.items()}
            for url, packed in self._links.items():
                for path in _buckets(packed) if not isinstance(packed, int) else ():
                    if path:
                        files.setdefault(path, url)
            for url, old, _ in self._renamed:
                files.setdefault(old, url)
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
    dot = name.rfind(".")
    # os.path.splitext's extension (none when only dots come before the last one), without
    # its cost: this runs for every distinct target of every page
    extension = name[dot:].lower() if dot > 0 and name[:dot].strip(".") else ""
    if extension in (".html", ".htm"):
        return "text/html"
    if extension == ".css":
        return "text/css"
    if kind is LinkKind.PAGE and extension in _DYNAMIC:
        return "text/html"  # /about, /docs/, page.php?id=3: pages
    return None


# -- rewriting one document ----------------------------------------------------------------------
