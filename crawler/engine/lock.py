"""One crawl per output folder at a time: an flock on .crawl/lock, which the kernel releases
when its process dies, even by kill -9, with the holder's pid written inside (for the
message a second crawl gets, and for `crawl status`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Any

from crawler.errors import OutputError
from crawler.output_folder import LOCK_FILE, STATE_DIR


class CrawlLock:
    """One crawl per output folder at a time."""

    def __init__(self, output: Path) -> None:
        self.path = output / STATE_DIR / LOCK_FILE
        self._handle: Any = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+")  # noqa: SIM115 - held open for the whole crawl
        except OSError as exc:
            raise OutputError(f"cannot create {self.path}: {exc.strerror or exc}", str(self.path)) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise OutputError(f"another crawl (pid {holder}) is already writing to {self.path.parent.parent}; "
                              "wait for it to finish or stop it first", str(self.path)) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self._handle.close()  # closing drops the flock
            self._handle = None
