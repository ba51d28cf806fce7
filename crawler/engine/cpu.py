"""The crawl's threads on one CPU (`threads.one_cpu`).

Python runs one thread at a time (its interpreter lock), and the stages hand the lock over
thousands of times a second: each time one waits for the network, the disk or SQLite. Handed
to a thread on another CPU, every turn wakes that CPU (an interrupt between processors, and
in a virtual machine an exit to the hypervisor): measured on 2 cores, 180,000 context switches
in a crawl of the Rust docs and a sixth of its CPU in the kernel's wake-ups. With the threads
on one CPU the turns are taken in place: the same crawl took 14% less CPU, and the HTTPS
benchmark 28% less, neither slower (docs/performance.md).

Linux only (elsewhere, and where the crawl may use one CPU anyway, nothing changes). The CPU
is the one the crawl starts on: the system put it there, beside whatever else runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


@contextmanager
def on_one_cpu(enabled: bool) -> Iterator[int | None]:
    """Keep the calling thread, and every thread it starts meanwhile (they inherit it), on
    the CPU it runs on now; yields that CPU (None: left as it was). The calling thread's CPUs
    are as before afterwards."""
    allowed = _allowed_cpus() if enabled else None
    cpu = _current_cpu() if allowed is not None and len(allowed) > 1 else None
    if allowed is None or cpu not in allowed:
        yield None
        return
    os.sched_setaffinity(0, {cpu})
    log.debug("the crawl's threads run on CPU %d", cpu)
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, allowed)


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
