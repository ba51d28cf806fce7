"""The mirror a run writes, bound to its crawl state.

Three collaborators work on the same files: the `Writer` (atomic files under safe names), the
`LinkMap` (where each URL is saved, which pages link to it and how), and the `LinkFixer`
(rewrites the links of a saved page written for an outcome that did not happen). Every change
they make to a file is journaled here, so that a crawl resumed after a kill knows each file,
its size and its links exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from crawler.engine.interfaces import CrawlState
from crawler.history.recrawl import KnownLinks
from crawler.mirror.converter import LinkFixer
from crawler.mirror.linkmap import LinkMap
from crawler.mirror.owners import PathOwners
from crawler.mirror.writer import Writer
from crawler.models import SavedFile


class MirrorFiles:
    def __init__(self, root: Path, *, adjust_extension: bool, state: CrawlState, owners: PathOwners | None = None,
                 may_rewrite: Callable[[], bool] | None = None) -> None:
        """`owners`, `may_rewrite`: for workers sharing one mirror (see Writer)."""
        self._state = state
        self.writer = Writer(root, adjust_extension=adjust_extension, on_move=self._moved,
                             on_write=state.file_written, on_rewrite=self._to_be_rewritten, owners=owners,
                             may_rewrite=may_rewrite)
        self.links = LinkMap(self.writer.path_for)
        self.fixer = LinkFixer(root, self.writer.rewrite, on_change=self._links_changed)

    @property
    def root(self) -> Path:
        return self.writer.root

    def recorded_targets(self, entry: SavedFile) -> list[str] | None:
        """The target URLs of a saved page's links, in order, as the crawl state recorded them
        when the page was written (None: not recorded for this very file and content)."""
        recorded = self._state.known_outlinks(entry.url)
        if recorded is None or recorded[0] != entry.path or recorded[1] != entry.sha256:
            return None
        known = KnownLinks.decode(recorded[2])
        return [url for url, _ in known.targets] if known is not None else None

    def _links_changed(self, path: str, fixes: dict[str, str | None] | None) -> None:
        """The fixer rewrote links of a saved page: its recorded outlinks follow."""
        if fixes is None:
            self._state.outlinks_changed(path)
        else:
            self._state.outlinks_changed(path, lambda text: _fixed_links(text, fixes))

    def _to_be_rewritten(self, path: str, size: int) -> None:
        """A saved page is about to be rewritten with its links fixed: its new size goes on
        record first (beside the old one), so that a resumed crawl takes the file, of either
        size, as whole instead of downloading it again."""
        self._state.file_written(path, size)
        self._state.flush()

    def _moved(self, old: str, new: str) -> None:
        """The writer moved a saved file aside for a folder of the same name (under its lock)."""
        self._state.moved(old, new)
        self.links.moved(old, new)


def _fixed_links(encoded: str, fixes: dict[str, str | None]) -> str | None:
    known = KnownLinks.decode(encoded)
    return known.fixed(fixes).encode() if known is not None else None
