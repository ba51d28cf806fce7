"""Cutting a response off: at its deadline (http.max_time) or at once when the crawl stops.

Socket timeouts only bound the *silence* between two reads, so a server that trickles one
byte every few seconds (slowloris) would hold a fetcher forever, and a stop would wait for
every slow response. The watchdog knows the socket each fetcher thread is reading from (the
connection classes below report it) and shuts that socket down when its time is up: the
blocked read returns at once, in the fetcher's own thread, and becomes a FetchError there.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()  # .watchdog: the Watchdog guarding this thread's request


class Watchdog:
    def __init__(self) -> None:
        # Guards the three dicts and `_closed`; `_changed` wakes the watchdog thread when a
        # deadline is added or it must stop.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._deadlines: dict[int, float] = {}  # thread id -> time.monotonic() deadline
        self._sockets: dict[int, socket.socket] = {}  # thread id -> socket it reads from
        self._fired: dict[int, str] = {}  # thread id -> why its socket was shut down
        self._stopping = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self._thread.start()

    @contextmanager
    def guard(self, seconds: float) -> Iterator[dict[str, str]]:
        """Run one request under a deadline. The yielded dict gets a "cut" entry ("max_time"
        or "stopped") if the watchdog shut the socket down."""
        thread = threading.get_ident()
        outcome: dict[str, str] = {}
        deadline = time.monotonic() + seconds
        with self._lock:
            if self._stopping:
                outcome["cut"] = "stopped"
            if not self._deadlines or deadline < min(self._deadlines.values()):
                self._changed.notify()  # the watchdog thread waits for an earlier deadline
            self._deadlines[thread] = deadline
        _current.watchdog = self
        try:
            yield outcome
        finally:
            _current.watchdog = None
            with self._lock:
                self._deadlines.pop(thread, None)
                self._sockets.pop(thread, None)
                reason = self._fired.pop(thread, None)
            if reason is not None:
                outcome["cut"] = reason

    def bind(self, sock: socket.socket | None) -> None:
        """The calling thread now reads from `sock` (called by the connection classes)."""
        if sock is None:
            return
        thread = threading.get_ident()
        with self._lock:
            if thread in self._deadlines:
                self._sockets[thread] = sock
                if self._stopping or thread in self._fired:  # cut while still connecting
                    self._cut(thread, "stopped" if self._stopping else "max_time")

    def stop_all(self) -> None:
        """The crawl stops: cut every request in flight now, and every one that starts."""
        with self._lock:
            self._stopping = True
            for thread in list(self._sockets):
                self._cut(thread, "stopped")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._changed.notify()
        self._thread.join()

    def _run(self) -> None:
        with self._lock:
            while not self._closed:
                now = time.monotonic()
                for thread, deadline in list(self._deadlines.items()):
                    if deadline <= now and thread not in self._fired:
                        self._cut(thread, "max_time")
                upcoming = [d for t, d in self._deadlines.items() if t not in self._fired]
                self._changed.wait(timeout=max(0.0, min(upcoming) - now) if upcoming else None)

    def _cut(self, thread: int, reason: str) -> None:
        """Caller holds the lock."""
        self._fired.setdefault(thread, reason)
        sock = self._sockets.get(thread)
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)


def _report_socket(connection: HTTPConnection) -> None:
    watchdog = getattr(_current, "watchdog", None)
    if watchdog is not None:
        watchdog.bind(connection.sock)


class _WatchedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:  # connects first if needed
        super().request(*args, **kwargs)
        _report_socket(self)


class _WatchedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        super().request(*args, **kwargs)
        _report_socket(self)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class WatchedAdapter(HTTPAdapter):
    """A requests adapter whose connections tell the watchdog which socket they read from."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
