"""libcurl's multi interface (pycurl): each fetcher thread drives many transfers at once.

TLS, HTTP/1.1 and HTTP/2 framing (nghttp2), connection reuse and the timers run in libcurl
with the GIL released (`CurlMulti.perform` and `select` drop it); Python runs only to set up a
request, in the body callback and when a transfer ends. Over HTTP/2 the requests to a host
share one connection per thread (PIPEWAIT), as streams: many requests in flight, few sockets.

The guarantees the crawler's fetching keeps, and where libcurl keeps them:
- redirects are ours, one hop at a time (FOLLOWLOCATION off): each is a new request;
- http.timeout: to connect (CONNECTTIMEOUT), and, with http.min_rate, the low-speed limit:
  less than `min_rate` bytes per second for `timeout` seconds ends the transfer;
- http.max_time: the whole response (TIMEOUT);
- http.max_bytes: a declared Content-Length over it fails before the body (MAXFILESIZE); the
  decoded body is counted as it arrives (transfer.py);
- one cookie jar for every thread (a CurlShare, which also shares DNS and TLS sessions), into
  which http.cookies_file is read once, at the start (were every handle told the file, each
  new one would read it again over the cookies the site has set since); libcurl sends a
  cookie marked Secure over HTTPS only;
- http.headers and credentials only to the requests the fetcher trusts (hosts in scope, and
  never in clear to a host that answered over HTTPS: fetcher.py), set anew for every request
  (the handles are reused);
- proxies from the environment as requests reads them (HTTP(S)_PROXY, NO_PROXY, either case):
  libcurl alone ignores an upper-case HTTP_PROXY;
- TLS: the CAs trusted, http.verify, http.client_cert (tls.py);
- a stop cuts every transfer at once (`CurlLoop.drop_all`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment

import pycurl

from crawler.config import HttpConfig
from crawler.http.failures import low_speed_window
from crawler.http.tls import TlsOptions
from crawler.http.transfer import ENCODINGS, Exchange, Transfer

log = logging.getLogger(__name__)

IDLE_WAIT = 0.05  # seconds a loop waits on its sockets at most: how soon it sees a stop (new work rings)


@dataclass(frozen=True)
class Request:
    url: str
    trusted: bool  # in scope: http.headers and credentials go with it
    headers: tuple[str, ...] = ()  # "Name: value" lines beyond the configured ones (validators)
    form: bytes | None = None  # a form to POST (application/x-www-form-urlencoded); None: a GET


class CurlEngine:
    """The libcurl side shared by every fetcher thread of a crawl."""

    def __init__(self, config: HttpConfig, *, record_requests: bool = False) -> None:
        """`record_requests`: keep each request's headers as sent (for the WARC)."""
        self._config = config
        self._record_requests = record_requests
        self._share = pycurl.CurlShare()
        self._share.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_COOKIE)
        self._share.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_DNS)
        self._share.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_SSL_SESSION)
        self.tls = TlsOptions(config)
        if config.cookies_file is not None:
            self._load_cookies(str(config.cookies_file))
        self._auth = config.auth.credentials() if config.auth else None
        self._headers = tuple(f"{name}: {value}" for name, value in config.headers.items())
        self.stopping = threading.Event()

    def loop(self, capacity: int, max_connections: int) -> CurlLoop:
        """A CurlMulti for one fetcher thread: `capacity` transfers at most, and at most
        `max_connections` to one host (HTTP/1.1 needs one per request in flight)."""
        return CurlLoop(self, capacity, max_connections)

    def new_transfer(self) -> Transfer:
        handle, config = pycurl.Curl(), self._config
        handle.setopt(pycurl.NOSIGNAL, 1)  # threads: no SIGALRM for timeouts
        handle.setopt(pycurl.SHARE, self._share)
        handle.setopt(pycurl.COOKIEFILE, "")  # the cookie engine on; the jar is the share's
        handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        handle.setopt(pycurl.FOLLOWLOCATION, 0)
        handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_2TLS)
        handle.setopt(pycurl.ACCEPT_ENCODING, ENCODINGS)
        handle.setopt(pycurl.HTTP_CONTENT_DECODING, 0)  # decoded in Transfer.write, see transfer.py
        handle.setopt(pycurl.USERAGENT, config.user_agent)
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, int(config.timeout * 1000))
        # http.timeout (silence) and http.min_rate in one rule: less than LIMIT bytes a second
        # for TIME seconds ends the transfer (a silence is 0 bytes a second).
        handle.setopt(pycurl.LOW_SPEED_LIMIT, max(1, config.min_rate))
        handle.setopt(pycurl.LOW_SPEED_TIME, low_speed_window(config))
        handle.setopt(pycurl.TIMEOUT_MS, int(config.max_time * 1000))
        handle.setopt(pycurl.MAXFILESIZE_LARGE, config.max_bytes)
        self.tls.apply(handle)
        return Transfer(handle, config.max_bytes, record_request=self._record_requests)

    def prepare(self, transfer: Transfer, request: Request) -> None:
        """Set a (reused) handle up for `request`."""
        handle = transfer.handle
        handle.setopt(pycurl.URL, request.url)
        headers = [*(self._headers if request.trusted else ()), *request.headers]
        if headers:
            handle.setopt(pycurl.HTTPHEADER, headers)
        else:
            handle.unsetopt(pycurl.HTTPHEADER)  # not the previous request's
        if request.trusted and self._auth is not None:
            handle.setopt(pycurl.HTTPAUTH, pycurl.HTTPAUTH_BASIC)
            handle.setopt(pycurl.USERPWD, f"{self._auth[0]}:{self._auth[1]}")
        else:
            handle.unsetopt(pycurl.USERPWD)
        if request.form is not None:
            handle.setopt(pycurl.POSTFIELDS, request.form)
            transfer.posted = True
        elif transfer.posted:  # back to GET (a login's handle; a crawl's never POSTs)
            handle.setopt(pycurl.HTTPGET, 1)
            transfer.posted = False
        parts = urlsplit(request.url)
        handle.setopt(pycurl.PROXY, proxy_for(f"{parts.scheme}://{parts.netloc}"))
        # Over TLS, wait for a connection that may multiplex (HTTP/2, by ALPN) rather than open
        # another. Plain HTTP is HTTP/1.1 here: a request would wait behind a busy connection,
        # its timers running, instead of opening one of its own.
        handle.setopt(pycurl.PIPEWAIT, 1 if parts.scheme == "https" else 0)

    def cookie_count(self) -> int:
        """Cookies in the jar now (their names and values stay there: they are secrets)."""
        handle = pycurl.Curl()
        try:
            handle.setopt(pycurl.SHARE, self._share)
            return len(handle.getinfo(pycurl.INFO_COOKIELIST))
        finally:
            handle.close()

    def _load_cookies(self, path: str) -> None:
        """Read a cookies.txt into the shared jar, once (see the module's docstring)."""
        handle = pycurl.Curl()
        try:
            handle.setopt(pycurl.SHARE, self._share)
            handle.setopt(pycurl.COOKIEFILE, path)
            handle.setopt(pycurl.COOKIELIST, "RELOAD")  # now, not at this handle's first transfer
        finally:
            handle.close()
        count = self.cookie_count()
        if count:
            log.info("%d cookies read from %s", count, path)
        else:
            log.warning("no cookies read from %s: is it a Netscape cookies.txt (tab-separated, 7 fields a line)?", path)


class Doorbell:
    """Wakes a thread waiting on its sockets, from any thread: a pipe it polls as well.
    Rung many times before it is heard, it writes once."""

    def __init__(self) -> None:
        self.fd, self._write = os.pipe()
        os.set_blocking(self.fd, False)
        os.set_blocking(self._write, False)
        self._rung = False

    def ring(self) -> None:
        if not self._rung:
            self._rung = True
            os.write(self._write, b"!")

    def heard(self) -> None:
        """The listener woke: the next ring writes again. (Read, then reset: a ring in between
        writes nothing, and the listener looks for work next anyway.)"""
        with contextlib.suppress(BlockingIOError):
            os.read(self.fd, 64)
        self._rung = False

    def close(self) -> None:
        os.close(self.fd)
        os.close(self._write)


class CurlLoop:
    """One fetcher thread's CurlMulti and the transfers it drives. Not thread-safe: one
    thread calls it (but `CurlEngine.stopping`, which any thread may set, and `ring`)."""

    def __init__(self, engine: CurlEngine, capacity: int, max_connections: int) -> None:
        self._engine = engine
        self.capacity = capacity
        self._multi = pycurl.CurlMulti()
        self._multi.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)
        self._multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, max(1, max_connections))
        self._free: list[Transfer] = []
        self._active: dict[pycurl.Curl, Transfer] = {}
        self._doorbell = Doorbell()
        self.ring = self._doorbell.ring  # any thread: wakes a `step` waiting for new work

    def __len__(self) -> int:
        return len(self._active)

    def has_room(self) -> bool:
        return len(self._active) < self.capacity

    def start(self, request: Request, tag: object) -> None:
        """Start `request`; `tag` comes back with its Exchange."""
        transfer = self._free.pop() if self._free else self._engine.new_transfer()
        transfer.reset(tag)
        self._engine.prepare(transfer, request)
        self._multi.add_handle(transfer.handle)
        self._active[transfer.handle] = transfer

    def step(self, idle: float = IDLE_WAIT, *, wants_work: bool = False) -> list[tuple[object, Exchange]]:
        """Drive the transfers (libcurl runs without the GIL) and return those that ended, with
        their tags. Waits up to `idle` seconds for something to happen, less if libcurl has a
        timer due sooner, not at all if a transfer ended; `wants_work`: or until `ring`."""
        self._multi.perform()
        ended = self._collect()
        if ended or not self._active:
            return ended
        timeout = self._multi.timeout()
        wait = idle if timeout < 0 else min(idle, timeout / 1000)
        if wants_work:
            self._wait_or_ring(wait)
        else:
            self._multi.select(wait)  # in C: a little cheaper
        self._multi.perform()
        return self._collect()

    def _wait_or_ring(self, wait: float) -> None:
        """libcurl's sockets and the doorbell, polled (no limit on descriptor numbers, unlike
        select())."""
        read, write, error = self._multi.fdset()
        events = dict.fromkeys(read, select.POLLIN)
        for fd in write:
            events[fd] = events.get(fd, 0) | select.POLLOUT
        for fd in error:
            events[fd] = events.get(fd, 0) | select.POLLPRI
        events[self._doorbell.fd] = select.POLLIN
        poller = select.poll()
        for fd, mask in events.items():
            poller.register(fd, mask)
        if any(fd == self._doorbell.fd for fd, _ in poller.poll(wait * 1000)):
            self._doorbell.heard()

    def drop_all(self) -> list[object]:
        """Cut every transfer at once (the crawl stops); their tags."""
        tags = []
        for handle, transfer in list(self._active.items()):
            self._multi.remove_handle(handle)
            tags.append(transfer.tag)
            handle.close()  # its connection may have a response still coming: not reused
        self._active.clear()
        return tags

    def close(self) -> None:
        self.drop_all()
        for transfer in self._free:
            transfer.handle.close()
        self._free.clear()
        self._multi.close()
        self._doorbell.close()

    def _collect(self) -> list[tuple[object, Exchange]]:
        ended = []
        while True:
            queued, succeeded, failed = self._multi.info_read()
            ended += [self._end(handle, 0, "") for handle in succeeded]
            ended += [self._end(handle, code, message) for handle, code, message in failed]
            if queued == 0:
                return ended

    def _end(self, handle: pycurl.Curl, error: int, message: str) -> tuple[object, Exchange]:
        transfer = self._active.pop(handle)
        self._multi.remove_handle(handle)
        exchange = transfer.exchange(error, message)
        tag = transfer.tag
        transfer.chunks = []
        transfer.tag = None
        self._free.append(transfer)
        return tag, exchange


@lru_cache(maxsize=1024)
def proxy_for(origin: str) -> str:
    """The proxy for an origin, from HTTP(S)_PROXY / ALL_PROXY / NO_PROXY as requests reads
    them (either case); "" for none, which libcurl then takes literally."""
    parts = urlsplit(origin)
    if parts.hostname and proxy_bypass_environment(parts.hostname):
        return ""
    proxies = getproxies_environment()
    return proxies.get(parts.scheme) or proxies.get("all") or ""

