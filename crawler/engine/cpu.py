"""The crawl's threads on one CPU while it keeps a CPU busy (`threads.one_cpu`).

Python runs one thread at a time (its interpreter lock), and the stages hand the lock over
thousands of times a second: each time one waits for the network, the disk or SQLite. Handed
to a thread on another CPU, every turn wakes that CPU (an interrupt between processors; in a
virtual machine, an exit to the hypervisor): measured on 2 cores, 180,000 context switches in
a crawl of the Rust docs and 11% of its CPU in the kernel's wake-ups. On one CPU the turns
are taken in place: the same crawl took 14% less CPU, the HTTPS benchmark 28% less, and
neither was slower.

But a crawl that mostly waits for the network (plain HTTP/1.1, 50 ms away) answers each
response later when its fetcher thread must wait for that one CPU, behind a parser: 5% slower
there. So the threads are kept together only while the crawl is CPU-bound -- it used most of
a CPU in the last half second -- and spread again when it is not (docs/performance.md).

Linux only; elsewhere, and where the crawl may use only one CPU anyway, nothing changes. The
CPU is the one the crawl starts on, or when kept together again, the one the watcher wakes on:
the system put it there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from types import TracebackType

log = logging.getLogger(__name__)

LOOK_EVERY = 0.5  # seconds between looks at the CPU the crawl used
TOGETHER_AT = 0.75  # share of one CPU used at which the threads are kept on one
SPREAD_BELOW = 0.45  # and below which they may run anywhere again (kept together, a crawl uses ~20% less)
STAGE_THREADS = ("fetch", "parse", "write", "state")  # thread names: "fetch-0", ...


class OneCpu:
    """Watches the CPU the crawl uses and places its threads -- the caller's (the crawl's
    main thread) and those named in STAGE_THREADS; never a browser's -- accordingly. A
    context manager: a thread of its own looks every LOOK_EVERY seconds; on exit, the caller's
    CPUs are as before."""

    def __init__(self, enabled: bool) -> None:
        self._allowed = _allowed_cpus() if enabled else None
        self._enabled = self._allowed is not None and len(self._allowed) > 1
        self._main = threading.get_native_id()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.cpu: int | None = None  # the CPU the threads are kept on now, if they are

    def __enter__(self) -> OneCpu:
        if self._enabled:
            # Together from the start (a crawl's start is busy: imports done, its first pages
            # parsed): a CPU-bound crawl gains from its first second, one that waits for the
            # network is spread at the first look.
            self._place(_current_cpu())
            self._watcher = threading.Thread(target=self._watch, name="cpu", daemon=True)
            self._watcher.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._watcher is not None:
            self._stop.set()
            self._watcher.join()
            self._place(None)

    def _watch(self) -> None:
        wall, used = time.monotonic(), time.process_time()
        while not self._stop.wait(LOOK_EVERY):
            now, cpu_now = time.monotonic(), time.process_time()
            share = (cpu_now - used) / max(now - wall, 1e-3)
            wall, used = now, cpu_now
            if self.cpu is None and share >= TOGETHER_AT:
                self._place(_current_cpu())
            elif self.cpu is not None and share < SPREAD_BELOW:
                self._place(None)

    def _place(self, cpu: int | None) -> None:
        """Keep the crawl's threads on `cpu`, or (None, or a CPU not allowed) let them run
        anywhere they may."""
        assert self._allowed is not None
        self.cpu = cpu if cpu in self._allowed else None
        cpus = {self.cpu} if self.cpu is not None else self._allowed
        log.debug("the crawl's threads run on %s", f"CPU {self.cpu}" if self.cpu is not None else "any CPU")
        natives = {self._main} | {thread.native_id for thread in threading.enumerate()
                                  if thread.name.split("-")[0] in STAGE_THREADS and thread.native_id}
        for native in natives:
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                os.sched_setaffinity(native, cpus)


def _allowed_cpus() -> set[int] | None:
    """The CPUs the calling thread may run on; None where that cannot be set."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        return set(os.sched_getaffinity(0))
    except OSError:
        return None


def _current_cpu() -> int | None:
    """The CPU the calling thread runs on (the 39th field of its /proc stat line)."""
    try:
        with open("/proc/thread-self/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        return int(fields[36])
    except (OSError, IndexError, ValueError):
        return None
