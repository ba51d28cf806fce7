"""Which URL each file of the mirror was first saved for: what decides whether another URL may
share a file (same content) or needs a name of its own. In one process a dict; several
workers writing one mirror share it (the Redis crawl state), so that two of them never give
one name to different content.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from crawler.models import SavedFile


@dataclass(frozen=True, slots=True)
class Owner:
    """The URL a file was first saved for, and its content: a URL with the same content may
    share the file; one with other content gets a name of its own."""

    url: str
    sha256: str
    file_size: int


class PathOwners(Protocol):
    """The owners of the mirror's files, by relative path. The Writer calls them under its lock."""

    def get(self, path: str) -> Owner | None: ...
    def claim(self, path: str, owner: Owner) -> Owner: ...
    def move(self, old: str, new: str) -> bool: ...
    def resize(self, path: str, size: int) -> None: ...
    def restore(self, entries: Iterable[SavedFile]) -> None: ...


class LocalOwners:
    """The owners of one process's mirror (not thread-safe: the Writer holds its lock).

    One entry per saved file, so kept small: a tuple, the SHA-256 as its 32 bytes (not 64 hex
    characters); an Owner is made only when asked for."""

    def __init__(self) -> None:
        self._owners: dict[str, tuple[str, bytes, int]] = {}  # path -> (URL, SHA-256, file size)

    def get(self, path: str) -> Owner | None:
        packed = self._owners.get(path)
        return _unpacked(packed) if packed is not None else None

    def claim(self, path: str, owner: Owner) -> Owner:
        """The owner of `path` now: `owner` if it had none."""
        packed = self._owners.setdefault(path, _packed(owner))
        return owner if packed[0] is owner.url else _unpacked(packed)

    def move(self, old: str, new: str) -> bool:
        """The file at `old` was renamed `new`: True if it had an owner."""
        packed = self._owners.pop(old, None)
        if packed is not None:
            self._owners[new] = packed
        return packed is not None

    def resize(self, path: str, size: int) -> None:
        packed = self._owners.get(path)
        if packed is not None:  # a URL that shares the file from now on gets its size
            self._owners[path] = (packed[0], packed[1], size)

    def restore(self, entries: Iterable[SavedFile]) -> None:
        """The files an interrupted run of this crawl saved."""
        for entry in entries:
            self._owners.setdefault(entry.path, _packed(Owner(entry.url, entry.sha256, entry.file_size)))


def _packed(owner: Owner) -> tuple[str, bytes, int]:
    return owner.url, bytes.fromhex(owner.sha256), owner.file_size


def _unpacked(packed: tuple[str, bytes, int]) -> Owner:
    return Owner(packed[0], packed[1].hex(), packed[2])
