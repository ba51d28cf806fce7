"""Reading crawl's files once per version of them.

`crawl serve` asks the same report.json, changes.json and manifests again on every page it
shows, and a history keeps dozens of each -- while a crawl may be replacing them (atomically:
a new file, so a new modification time). Remembering what was read for as long as the file's
modification time and size are the same makes a page cost a few stat() calls.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def while_unchanged(maxsize: int, missing: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorate `read(path, *args)`: its answers are remembered (the `maxsize` last ones)
    until the file at `path` changes; a file that cannot be found answers `missing`. The
    answer is shared: callers must not change it."""

    def decorate(read: Callable[..., T]) -> Callable[..., T]:
        @functools.lru_cache(maxsize=maxsize)
        def remembered(path: str, mtime_ns: int, size: int, *args: Any) -> T:
            return read(Path(path), *args)

        @functools.wraps(read)
        def reader(path: Path, *args: Any) -> T:
            try:
                stat = os.stat(path)
            except OSError:
                return missing  # type: ignore[no-any-return]
            return remembered(str(path), stat.st_mtime_ns, stat.st_size, *args)

        return reader

    return decorate
