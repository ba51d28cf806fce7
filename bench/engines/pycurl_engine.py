#!/usr/bin/env python3
"""pycurl engine: a few fetcher threads, each driving many transfers through libcurl's multi
interface.

TLS, HTTP/1.1 and HTTP/2 framing (nghttp2), connection reuse and the timers run in libcurl
with the GIL released (`CurlMulti.perform` and `select` drop it). Python runs only for the
per-request set-up, the callbacks (a body chunk, a header line) and the completed transfer.

How each guarantee of crawl's fetcher maps onto libcurl is written next to the code that
keeps it; `test_pycurl_engine.py` shows each one against a misbehaving local server.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment

import certifi
import pycurl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Consumer, Outcome, Request, common_arguments, main_guard, run_engine

# CURLINFO_HTTP_VERSION answers with these
_HTTP_VERSIONS = {pycurl.CURL_HTTP_VERSION_1_0: "HTTP/1.0", pycurl.CURL_HTTP_VERSION_1_1: "HTTP/1.1",
                  pycurl.CURL_HTTP_VERSION_2_0: "HTTP/2", pycurl.CURL_HTTP_VERSION_3: "HTTP/3"}

# libcurl errors -> crawl's failure words. A failure not listed is a connection_error.
_TLS_ERRORS = frozenset({pycurl.E_SSL_CONNECT_ERROR, pycurl.E_PEER_FAILED_VERIFICATION, pycurl.E_SSL_CERTPROBLEM,
                         pycurl.E_SSL_CIPHER, pycurl.E_SSL_CACERT_BADFILE, pycurl.E_SSL_ISSUER_ERROR,
                         pycurl.E_SSL_PINNEDPUBKEYNOTMATCH, pycurl.E_SSL_INVALIDCERTSTATUS,
                         pycurl.E_SSL_ENGINE_INITFAILED, pycurl.E_USE_SSL_FAILED})
# the body was cut: the framing (Content-Length, chunked, HTTP/2 stream) says it is incomplete
_CUT_ERRORS = frozenset({pycurl.E_PARTIAL_FILE, pycurl.E_RECV_ERROR, pycurl.E_HTTP2, 92})  # 92: HTTP2_STREAM
_INVALID_URL = frozenset({pycurl.E_URL_MALFORMAT, pycurl.E_UNSUPPORTED_PROTOCOL})
RETRYABLE = frozenset({"connection_error", "dns_error", "timeout", "too_slow", "incomplete_body"})

IDLE_WAIT = 0.05  # seconds a loop sleeps in select() at most: how soon it sees new work or a stop


@dataclass(frozen=True)
class EngineConfig:
    """The http.* settings of crawl that the engine enforces, plus its shape."""

    timeout: float = 30.0          # http.timeout: to connect, and of silence while reading
    max_time: float = 300.0        # http.max_time: one response, headers and body
    min_rate: int = 1000           # http.min_rate: bytes/s over any `timeout`-long stretch
    max_bytes: int = 50_000_000    # http.max_bytes, counted after decompression
    user_agent: str = "crawl-engine-bench/0.1"
    headers: dict[str, str] = field(default_factory=dict)  # http.headers: in-scope hosts only
    auth: tuple[str, str] | None = None                    # http.auth (basic): in-scope hosts only
    per_host: int = 64             # politeness.per_host: requests in flight to a host, all threads
    threads: int = 2               # fetcher threads, each with its own CurlMulti
    # connections to one host, all threads together (None: as many as per_host). HTTP/2 needs
    # one per thread whatever this says (PIPEWAIT); HTTP/1.1 needs one per request in flight,
    # so this is what keeps an HTTP/1.1 server from getting per_host sockets
    max_connections: int | None = None
    ca_file: str | None = None     # else REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, else certifi
    http2: bool = True             # offer h2 by ALPN on https (h2c is never tried on plain http)
    header_callback: bool = True   # False only to measure what the ~9 header-line calls cost (no ETag then)


class HostSlots:
    """politeness.per_host across every fetcher thread: it counts requests in flight, whatever
    connection (or HTTP/2 stream) carries them.

    A host gets one request in flight until its first response says whether it multiplexes:
    then per_host for HTTP/2, and no more than its connections for HTTP/1.1. libcurl would
    otherwise queue the surplus as "pending" with their timers already running, and they
    time out waiting for a connection (seen with a slow HTTP/1.1 server)."""

    def __init__(self, limit: int, http1_limit: int | None = None) -> None:
        self._limit = limit
        self._http1_limit = min(limit, http1_limit or limit)
        self._lock = threading.Lock()
        self._busy: dict[str, int] = {}
        self._limits: dict[str, int] = {}  # hosts whose protocol is known

    def try_acquire(self, host: str) -> bool:
        with self._lock:
            n = self._busy.get(host, 0)
            if n >= self._limits.get(host, 1):
                return False
            self._busy[host] = n + 1
            return True

    def learn(self, host: str, http_version: str) -> None:
        """The host answered with `http_version` ("HTTP/2", "HTTP/1.1", ...)."""
        if host not in self._limits:
            multiplexed = http_version in ("HTTP/2", "HTTP/3")
            with self._lock:
                self._limits[host] = self._limit if multiplexed else self._http1_limit

    def release(self, host: str) -> None:
        with self._lock:
            self._busy[host] -= 1

    def in_flight(self, host: str) -> int:
        return self._busy.get(host, 0)


class _Decoder:
    """Content-Encoding decoded here rather than by libcurl: libcurl (8.23) accepts a gzip
    stream cut short inside intact HTTP framing as complete; zlib tells us (`eof`)."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._gzip = coding in ("gzip", "x-gzip")
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS if self._gzip else zlib.MAX_WBITS)
        self._first = True

    def feed(self, data: bytes, room: int) -> bytes:
        """Up to `room` decoded bytes (one more means the limit is crossed)."""
        try:
            out = self._z.decompress(data, room)
        except zlib.error:
            if not (self._first and not self._gzip):
                raise
            # "deflate" is zlib-wrapped by the RFC, raw deflate by some servers
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._z.decompress(data, room)
        self._first = False
        # concatenated gzip members are one body
        while self._gzip and self._z.eof and self._z.unused_data and len(out) < room:
            rest = self._z.unused_data
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += self._z.decompress(rest, room - len(out))
        return out

    @property
    def complete(self) -> bool:
        return self._z.eof


class Transfer:
    """One request in flight: its easy handle's callbacks land here."""

    __slots__ = ("callback_s", "chunks", "decoder", "handle", "header_lines", "host", "last_data",
                 "limit", "reason", "request", "size", "started", "writes")

    def __init__(self, handle: pycurl.Curl, limit: int, header_callback: bool = True) -> None:
        self.handle = handle
        self.limit = limit
        self.header_lines: list[bytes] = []
        self.chunks: list[bytes] = []
        self.request: Request | None = None
        self.host = ""
        self.size = 0
        self.decoder: _Decoder | None = None
        self.reason: str | None = None
        self.started = self.last_data = 0.0
        self.callback_s = 0.0  # time in write(): Python run with the GIL held, for the figures
        self.writes = 0
        # set once per handle: the bound methods stay valid while the handle is reused
        handle.setopt(pycurl.WRITEFUNCTION, self.write)
        if header_callback:  # one call per header line, each taking the GIL (no bytecode: list.append)
            handle.setopt(pycurl.HEADERFUNCTION, self.header_lines.append)

    def reset(self, request: Request, host: str) -> None:
        self.request, self.host = request, host
        self.header_lines.clear()
        self.chunks = []
        self.size = 0
        self.decoder = None
        self.reason = None
        self.started = self.last_data = time.monotonic()
        self.callback_s = 0.0
        self.writes = 0

    def write(self, data: bytes) -> int | None:
        """libcurl's write callback. Returning 0 (not len(data)) aborts the transfer with
        CURLE_WRITE_ERROR: that is how http.max_bytes stops a body as it arrives."""
        t0 = time.perf_counter()
        self.writes += 1
        self.last_data = time.monotonic()
        if self.writes == 1:
            coding = _content_encoding(self.header_lines)
            if coding in ("gzip", "x-gzip", "deflate"):
                self.decoder = _Decoder(coding)
            elif coding not in ("", "identity"):
                self.reason = "decode_error"
                return 0
        if self.decoder is not None:
            try:
                data = self.decoder.feed(data, self.limit - self.size + 1)
            except zlib.error:
                self.reason = "decode_error"
                return 0
        self.size += len(data)
        if self.size > self.limit:  # decoded bytes: a gzip bomb stops at the limit, not after
            self.reason = "too_large"
            return 0
        self.chunks.append(data)
        self.callback_s += time.perf_counter() - t0
        return None


def _content_encoding(lines: list[bytes]) -> str:
    coding = ""
    for line in lines:
        if line[:1] in b"Cc" and line[:17].lower() == b"content-encoding:":
            coding = line[17:].strip().decode("latin-1").lower()
        elif line.startswith(b"HTTP/"):  # a new response (after a 1xx or a proxy's CONNECT reply)
            coding = ""
    return coding


def parse_headers(lines: list[bytes]) -> dict[str, str]:
    """The final response's headers (after 1xx and a proxy's CONNECT reply), names lower case.
    Repeated headers are joined with ", "; Set-Cookie is libcurl's business (the shared jar)."""
    start = 0
    for i, line in enumerate(lines):
        if line.startswith(b"HTTP/"):
            start = i + 1
    headers: dict[str, str] = {}
    for line in lines[start:]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        key = name.strip().lower().decode("latin-1")
        val = value.strip().decode("latin-1")
        headers[key] = f"{headers[key]}, {val}" if key in headers else val
    return headers


@lru_cache(maxsize=1024)
def proxy_for(origin: str) -> str:
    """HTTP(S)_PROXY / NO_PROXY as requests reads them (upper or lower case), decided per origin.
    "" tells libcurl to use no proxy, whatever its own reading of the environment would be
    (it ignores upper-case HTTP_PROXY, for instance)."""
    parts = urlsplit(origin)
    if parts.hostname and proxy_bypass_environment(parts.hostname):
        return ""
    proxies = getproxies_environment()
    return proxies.get(parts.scheme) or proxies.get("all") or ""


class CurlEngine:
    """Fetch requests from `take` with `config.threads` threads; each Outcome goes to `give`
    (which returns False when the next stage is full: the engine then admits no new request
    until it takes the outcome). One instance per crawl: the cookie jar, DNS cache and TLS
    sessions are shared by all its threads through one CurlShare."""

    def __init__(self, config: EngineConfig, in_scope: Callable[[str], bool] = lambda url: True) -> None:
        self.config = config
        self.in_scope = in_scope
        self.slots = HostSlots(config.per_host, config.max_connections)
        self._stopping = threading.Event()
        self.share = pycurl.CurlShare()
        # One cookie jar for every fetcher thread (pycurl locks the share for libcurl)
        self.share.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_COOKIE)
        self.share.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_DNS)
        self.share.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_SSL_SESSION)
        # requests' order. certifi last, not libcurl's own default: the PyPI wheel's libcurl
        # looks for /etc/pki/tls/certs/ca-bundle.crt (Red Hat's path), absent on Debian
        self.ca_file = (config.ca_file or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
                        or certifi.where())
        self.loops: list[_Loop] = []

    def run(self, take: Callable[[HostSlots], Request | None], give: Callable[[Outcome], bool],
            more: Callable[[], bool]) -> dict[str, float]:
        """Until `more()` is False and nothing is in flight (or stop()). `take(slots)` returns the
        next request whose host has a free slot (already acquired), or None for now."""
        lock = threading.Lock()

        def locked_take() -> Request | None:
            with lock:  # the frontier's lock in crawl
                return take(self.slots)

        self.loops = [_Loop(self, locked_take, give, more) for _ in range(self.config.threads)]
        threads = [threading.Thread(target=loop.run, name=f"curl-{i}") for i, loop in enumerate(self.loops)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        totals: dict[str, float] = {}
        for loop in self.loops:
            for k, v in loop.figures.items():
                totals[k] = totals.get(k, 0) + v
        return totals

    def stop(self) -> None:
        """Ctrl-C: every loop drops all its transfers within IDLE_WAIT; each becomes 'interrupted'."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def new_handle(self) -> pycurl.Curl:
        c, cfg = pycurl.Curl(), self.config
        c.setopt(pycurl.NOSIGNAL, 1)  # threads: no SIGALRM for timeouts
        c.setopt(pycurl.SHARE, self.share)
        c.setopt(pycurl.COOKIEFILE, "")  # turns the cookie engine on (the jar is the share's)
        c.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        c.setopt(pycurl.FOLLOWLOCATION, 0)  # redirects are ours: one hop at a time, scope-checked
        c.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_2TLS if cfg.http2 else pycurl.CURL_HTTP_VERSION_1_1)
        c.setopt(pycurl.PIPEWAIT, 1)  # wait for the first connection to say whether it multiplexes
        # Advertise gzip/deflate, decode in Transfer.write (see _Decoder for why not libcurl's)
        c.setopt(pycurl.ACCEPT_ENCODING, "gzip, deflate")
        c.setopt(pycurl.HTTP_CONTENT_DECODING, 0)
        c.setopt(pycurl.USERAGENT, cfg.user_agent)
        c.setopt(pycurl.CONNECTTIMEOUT_MS, int(cfg.timeout * 1000))
        # http.timeout (silence) and http.min_rate in one: less than LIMIT bytes/s for TIME seconds
        c.setopt(pycurl.LOW_SPEED_LIMIT, max(1, cfg.min_rate))
        c.setopt(pycurl.LOW_SPEED_TIME, max(1, round(cfg.timeout)))
        c.setopt(pycurl.TIMEOUT_MS, int(cfg.max_time * 1000))  # http.max_time, headers and body
        # a declared Content-Length over the limit fails before the body (raw bytes; the decoded
        # count in Transfer.write is the one that holds for compressed bodies)
        c.setopt(pycurl.MAXFILESIZE_LARGE, cfg.max_bytes)
        c.setopt(pycurl.CAINFO, self.ca_file)
        return c


class _Loop:
    """One fetcher thread: a CurlMulti and the transfers it drives."""

    def __init__(self, engine: CurlEngine, take: Callable[[], Request | None], give: Callable[[Outcome], bool],
                 more: Callable[[], bool]) -> None:
        self.engine = engine
        self.take, self.give, self.more = take, give, more
        cfg = engine.config
        self.capacity = max(1, -(-cfg.per_host // cfg.threads))  # this loop's share of in-flight requests
        self.multi = pycurl.CurlMulti()
        self.multi.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)
        # HTTP/1.1 needs a connection per request in flight; HTTP/2 (PIPEWAIT) stays on one
        connections = self.capacity if cfg.max_connections is None else -(-cfg.max_connections // cfg.threads)
        self.multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, max(1, connections))
        self.free: list[Transfer] = []
        self.active: dict[pycurl.Curl, Transfer] = {}
        self.outbox: deque[Outcome] = deque()
        self.figures = {"transfers": 0, "loop_cpu_s": 0.0, "curl_cpu_s": 0.0, "callback_s": 0.0,
                        "write_callbacks": 0, "header_callbacks": 0, "iterations": 0}

    def run(self) -> None:
        t_start = time.thread_time()
        curl_cpu = 0.0
        try:
            while True:
                if self.engine.stopping:
                    self._drop_all()
                    break
                self._flush()
                if not self.outbox:  # the next stage has room: admit new requests
                    while len(self.active) < self.capacity and (req := self.take()) is not None:
                        self._start(req)
                if not self.active and not self.outbox and not self.more():
                    break
                # perform() and select() run libcurl with the GIL released, except in callbacks
                c0 = time.thread_time()
                self.multi.perform()
                curl_cpu += time.thread_time() - c0
                if self._collect() and self.more():
                    # slots came free: fill them before waiting, or the new requests would wait
                    # in select() for the slowest transfer still running (an RTT lost per round)
                    continue
                if self.active:
                    timeout = self.multi.timeout()
                    c0 = time.thread_time()
                    self.multi.select(IDLE_WAIT if timeout < 0 else min(IDLE_WAIT, timeout / 1000))
                    curl_cpu += time.thread_time() - c0
                else:
                    time.sleep(0.005 if self.outbox else IDLE_WAIT / 5)  # nothing to drive: wait for work
                self.figures["iterations"] += 1
        finally:
            self._flush(block=True)
            for t in self.free:
                t.handle.close()
            self.multi.close()
            self.figures["loop_cpu_s"] = time.thread_time() - t_start
            self.figures["curl_cpu_s"] = curl_cpu

    def _start(self, req: Request) -> None:
        engine, cfg = self.engine, self.engine.config
        t = self.free.pop() if self.free else Transfer(engine.new_handle(), cfg.max_bytes, cfg.header_callback)
        parts = urlsplit(req.url)
        t.reset(req, parts.hostname or "")
        c = t.handle
        c.setopt(pycurl.URL, req.url)
        trusted = engine.in_scope(req.url)
        headers = [f"{k}: {v}" for k, v in cfg.headers.items()] if trusted else []
        if req.validators:
            headers += [f"{k}: {v}" for k, v in req.validators.items()]
        if headers:
            c.setopt(pycurl.HTTPHEADER, headers)
        else:
            c.unsetopt(pycurl.HTTPHEADER)  # a reused handle must not carry the last request's
        if trusted and cfg.auth:
            c.setopt(pycurl.HTTPAUTH, pycurl.HTTPAUTH_BASIC)
            c.setopt(pycurl.USERPWD, f"{cfg.auth[0]}:{cfg.auth[1]}")
        else:
            c.unsetopt(pycurl.USERPWD)
        c.setopt(pycurl.PROXY, proxy_for(f"{parts.scheme}://{parts.netloc}"))
        self.multi.add_handle(c)
        self.active[c] = t

    def _collect(self) -> int:
        """Hand over the finished transfers; how many there were."""
        done = 0
        while True:
            queued, ok, failed = self.multi.info_read()
            for c in ok:
                self._finish(c, 0, "")
            for c, errno, message in failed:
                self._finish(c, errno, message)
            done += len(ok) + len(failed)
            if queued == 0:
                return done

    def _finish(self, c: pycurl.Curl, errno: int, message: str) -> None:
        t = self.active.pop(c)
        self.multi.remove_handle(c)
        outcome = self._outcome(t, errno, message)
        if outcome.http_version:
            self.engine.slots.learn(t.host, outcome.http_version)
        self.engine.slots.release(t.host)
        self.outbox.append(outcome)
        self._retire(t)

    def _retire(self, t: Transfer) -> None:
        f = self.figures
        f["transfers"] += 1
        f["callback_s"] += t.callback_s
        f["write_callbacks"] += t.writes
        f["header_callbacks"] += len(t.header_lines)
        t.chunks = []
        self.free.append(t)

    def _outcome(self, t: Transfer, errno: int, message: str) -> Outcome:
        c, req = t.handle, t.request
        assert req is not None
        status = c.getinfo(pycurl.RESPONSE_CODE)
        if errno == 0 and t.decoder is not None and not t.decoder.complete:
            errno, message = pycurl.E_PARTIAL_FILE, f"{t.decoder.coding} stream ends before its end"
        if errno:
            reason = t.reason or _reason(errno, message, status, t, self.engine.config)
            return Outcome(req.url, status=status, reason=reason, detail=f"curl {errno}: {message}")
        h = parse_headers(t.header_lines)
        location = c.getinfo(pycurl.REDIRECT_URL) if 300 <= status < 400 else None
        return Outcome(req.url, status=status, body=b"".join(t.chunks), etag=h.get("etag"),
                       last_modified=h.get("last-modified"), content_type=h.get("content-type"),
                       location=location, retry_after=h.get("retry-after"),
                       http_version=_HTTP_VERSIONS.get(c.getinfo(pycurl.INFO_HTTP_VERSION), "?"))

    def _flush(self, block: bool = False) -> None:
        while self.outbox:
            if not self.give(self.outbox[0]):
                if not block:
                    return
                time.sleep(0.005)
                continue
            self.outbox.popleft()

    def _drop_all(self) -> None:
        """Cut every transfer at once: removing a handle from the multi closes its stream (and
        its connection, if HTTP/1.1 with a response still coming)."""
        for c, t in list(self.active.items()):
            self.multi.remove_handle(c)
            self.engine.slots.release(t.host)
            assert t.request is not None
            self.outbox.append(Outcome(t.request.url, reason="interrupted",
                                       detail="the crawl stopped during the download"))
            c.close()
        self.active.clear()


def _reason(errno: int, message: str, status: int, t: Transfer, cfg: EngineConfig) -> str:
    """A libcurl error in crawl's words."""
    if errno == pycurl.E_OPERATION_TIMEDOUT:
        lowered = message.lower()
        if lowered.startswith("operation too slow"):  # LOW_SPEED_LIMIT/TIME
            # no byte for (at least half) the window is silence, http.timeout; bytes that kept
            # coming, too few of them, are http.min_rate
            return "timeout" if time.monotonic() - t.last_data >= cfg.timeout / 2 else "too_slow"
        if lowered.startswith("operation timed out") and time.monotonic() - t.started >= cfg.max_time - 0.5:
            return "too_slow"  # TIMEOUT_MS: http.max_time
        return "timeout"  # connecting (or resolving, or waiting for a connection) outlasted http.timeout
    if errno == pycurl.E_COULDNT_RESOLVE_HOST:
        return "dns_error"
    if errno in _TLS_ERRORS:
        return "tls_error"
    if errno == pycurl.E_FILESIZE_EXCEEDED:
        return "too_large"
    if errno == pycurl.E_BAD_CONTENT_ENCODING:
        return "decode_error"
    if errno == pycurl.E_UNSUPPORTED_PROTOCOL and "HTTP/0.9" in message:
        return "connection_error"  # the server answered with something that is not HTTP
    if errno in _INVALID_URL:
        return "invalid_url"
    if errno in _CUT_ERRORS and status:  # the status line came, the body did not
        return "incomplete_body"
    if errno == pycurl.E_ABORTED_BY_CALLBACK:
        return "interrupted"
    return "connection_error"  # refused, reset, empty reply, not HTTP, proxy unreachable


# ------------------------------------------------------------------ drivers
def taker(todo: deque[Request]) -> Callable[[HostSlots], Request | None]:
    """The frontier's part, for a fixed list: the next request if its host has a free slot."""
    def take(slots: HostSlots) -> Request | None:
        if not todo:
            return None
        host = urlsplit(todo[0].url).hostname or ""
        return todo.popleft() if slots.try_acquire(host) else None
    return take


def fetch_list(engine: CurlEngine, requests: list[Request]) -> dict[str, Outcome]:
    """Every request's outcome, by URL (the tests' driver)."""
    todo = deque(requests)
    outcomes: dict[str, Outcome] = {}

    def give(outcome: Outcome) -> bool:
        outcomes[outcome.url] = outcome
        return True

    engine.run(taker(todo), give, more=lambda: bool(todo))
    return outcomes


def fetch_all(requests: list[Request], consumer: Consumer, config: EngineConfig) -> dict:
    """The benchmark's driver: outcomes go to the shared consumer's bounded queue."""
    engine = CurlEngine(config)
    todo = deque(requests)
    take = taker(todo)

    def give(outcome: Outcome) -> bool:
        try:
            consumer.queue.put_nowait(outcome)
        except Exception:  # queue.Full: the consumer is behind; the loop keeps it and retries
            return False
        return True

    try:
        figures = engine.run(take, give, more=lambda: bool(todo))
    except KeyboardInterrupt:
        engine.stop()
        raise
    n = max(1, figures.get("transfers", 0))
    with contextlib.suppress(KeyError):
        # GIL held by the fetcher threads per request: their CPU outside libcurl's C code, plus
        # the write callbacks inside it (the header callback is list.append: no bytecode)
        gil = figures["loop_cpu_s"] - figures["curl_cpu_s"] + figures["callback_s"]
        figures["gil_us_per_request"] = round(1e6 * gil / n, 1)
        figures["fetch_thread_cpu_us_per_request"] = round(1e6 * figures["loop_cpu_s"] / n, 1)
        figures["callbacks_per_request"] = round((figures["write_callbacks"] + figures["header_callbacks"]) / n, 2)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items()}


def main() -> int:
    parser: argparse.ArgumentParser = common_arguments(__doc__ or "")
    parser.add_argument("--threads", type=int, default=2, help="fetcher threads, each with a CurlMulti")
    parser.add_argument("--http1", action="store_true", help="do not offer HTTP/2")
    parser.add_argument("--no-header-callback", action="store_true",
                        help="diagnostic: read no headers (no ETag, no Content-Encoding), to price their callbacks")
    args = parser.parse_args()
    config = EngineConfig(per_host=args.per_host, threads=args.threads, http2=not args.http1,
                          header_callback=not args.no_header_callback)
    settings = {"threads": args.threads, "per_host": args.per_host, "http2": not args.http1,
                "header_callback": not args.no_header_callback, "libcurl": pycurl.version}
    return run_engine("pycurl", args, lambda reqs, consumer: fetch_all(reqs, consumer, config), settings)


if __name__ == "__main__":
    main_guard(main)
