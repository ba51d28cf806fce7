"""The pycurl engine keeps every guarantee of crawl's fetcher, shown against servers on
127.0.0.1 that misbehave on purpose.

    .venv/bin/pytest bench/engines/test_pycurl_engine.py

Each server route writes raw bytes to the socket, so it can send what no well-behaved
server library would: a short body, broken chunking, a cut gzip stream, a trickle.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pycurl
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Outcome, Request
from pycurl_engine import RETRYABLE, CurlEngine, EngineConfig, _reason, fetch_list, proxy_for

from crawler.fetcher import parse_retry_after

# ------------------------------------------------------------------ the misbehaving server


@dataclass
class Seen:
    """One request as the server read it."""

    path: str
    target: str  # as on the request line: a proxy gets the absolute URL
    headers: dict[str, str]
    port: int  # the server's


Route = Callable[[socket.socket, Seen], None]


@dataclass
class Server:
    routes: dict[str, Route]
    tls: ssl.SSLContext | None = None
    seen: list[Seen] = field(default_factory=list)
    active: int = 0
    most_active: int = 0
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def handle(self, sock: socket.socket) -> None:
        with self.lock:
            self.connections += 1
        if self.tls:
            # the listening socket's connection, wrapped: closed by socketserver through `sock`
            with contextlib.closing(self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)) as tls:
                tls.do_handshake()
                self._serve(tls)
        else:
            self._serve(sock)

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(30)
        buf = b""
        while True:  # keep-alive: one request after another on the connection
            while b"\r\n\r\n" not in buf:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            line, *lines = head.decode("latin-1").split("\r\n")
            target = line.split()[1]
            path = target.split("://", 1)[1].split("/", 1)[1] if "://" in target else target.lstrip("/")
            seen = Seen("/" + path.split("?")[0], target,
                        {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)},
                        self.port)
            with self.lock:
                self.seen.append(seen)
                self.active += 1
                self.most_active = max(self.most_active, self.active)
            try:
                route = self.routes.get(seen.path) or self.routes.get("*") or status(404)
                route(sock, seen)
            finally:
                with self.lock:
                    self.active -= 1

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[socketserver.ThreadingTCPServer] = []

    def start(routes: dict[str, Route], tls: ssl.SSLContext | None = None) -> Server:
        server = Server(routes, tls)

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with contextlib.suppress(OSError):  # the client hung up (a cut transfer)
                    server.handle(self.request)

        tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        tcp.daemon_threads = True
        server.port = tcp.server_address[1]
        threading.Thread(target=tcp.serve_forever, daemon=True).start()
        servers.append(tcp)
        return server

    yield start
    for tcp in servers:
        tcp.shutdown()
        tcp.server_close()


def response(code: int, body: bytes = b"", headers: dict[str, str] | None = None, length: int | None = None) -> bytes:
    lines = [f"HTTP/1.1 {code} X", f"Content-Length: {len(body) if length is None else length}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def send(data: bytes, close: bool = False) -> Route:
    def route(sock: socket.socket, seen: Seen) -> None:
        sock.sendall(data)
        if close:
            sock.shutdown(socket.SHUT_RDWR)
    return route


def status(code: int, body: bytes = b"", **headers: str) -> Route:
    return send(response(code, body, {k.replace("_", "-"): v for k, v in headers.items()}))


def trickle(head: bytes, piece: bytes, interval: float, count: int = 10_000) -> Route:
    def route(sock: socket.socket, seen: Seen) -> None:
        sock.sendall(head)
        for _ in range(count):
            time.sleep(interval)
            sock.sendall(piece)
    return route


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/html\r\n\r\n"


def fetch(urls: list[str | Request], **config: object) -> dict[str, Outcome]:
    in_scope = config.pop("in_scope", lambda url: True)
    engine = CurlEngine(EngineConfig(**{"timeout": 5.0, **config}), in_scope=in_scope)  # type: ignore[arg-type]
    return fetch_list(engine, [u if isinstance(u, Request) else Request(u) for u in urls])


def one(url: str | Request, **config: object) -> Outcome:
    return fetch([url], **config)[url.url if isinstance(url, Request) else url]


# ------------------------------------------------------------------ redirects, 304, Retry-After


def test_redirects_come_back_one_hop_at_a_time_for_the_caller_to_decide(serve) -> None:
    srv = serve({"/a": status(302, Location="/b"), "/b": status(301, Location="http://localhost:1/c"),
                 "/c": status(200, b"c")})
    first = one(srv.url + "/a")
    assert (first.status, first.location) == (302, srv.url + "/b")  # resolved, not followed
    assert srv.paths() == ["/a"]
    second = one(first.location)
    assert (second.status, second.location) == (301, "http://localhost:1/c")  # another host: the scope decides
    assert srv.paths() == ["/a", "/b"]


def test_conditional_requests_send_the_validators_and_a_304_has_no_body(serve) -> None:
    def route(sock: socket.socket, seen: Seen) -> None:
        if seen.headers.get("if-none-match") == '"v1"':
            sock.sendall(b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n')
        else:
            sock.sendall(response(200, b"page", {"ETag": '"v1"', "Last-Modified": "Tue, 01 Dec 2026 10:00:00 GMT"}))

    srv = serve({"/p": route})
    first = one(srv.url + "/p")
    assert (first.status, first.body, first.etag) == (200, b"page", '"v1"')
    again = one(Request(srv.url + "/p", {"If-None-Match": first.etag,  # type: ignore[arg-type]
                                         "If-Modified-Since": first.last_modified or ""}))
    assert (again.status, again.body, again.reason) == (304, b"", None)
    assert srv.seen[1].headers["if-modified-since"] == "Tue, 01 Dec 2026 10:00:00 GMT"


def test_retry_after_comes_back_with_the_status(serve) -> None:
    srv = serve({"/busy": status(503, Retry_After="7"),
                 "/slow-down": status(429, Retry_After="Wed, 21 Oct 2099 07:28:00 GMT")})
    got = fetch([srv.url + "/busy", srv.url + "/slow-down"])
    busy, limited = got[srv.url + "/busy"], got[srv.url + "/slow-down"]
    assert (busy.status, parse_retry_after(busy.retry_after)) == (503, 7.0)
    assert limited.status == 429
    assert (parse_retry_after(limited.retry_after) or 0) > 3600


# ------------------------------------------------------------------ timeout, min_rate, max_time


def test_silence_longer_than_timeout_is_a_timeout(serve) -> None:
    srv = serve({"/mute": trickle(response(200, length=100), b"", 10, 1)})
    t0 = time.monotonic()
    got = one(srv.url + "/mute", timeout=1.0)
    assert got.reason == "timeout" and got.reason in RETRYABLE
    assert time.monotonic() - t0 < 4


def test_a_body_slower_than_min_rate_is_too_slow(serve) -> None:
    srv = serve({"/drip": trickle(CHUNKED, b"64\r\n" + b"x" * 100 + b"\r\n", 0.1)})  # 1,000 bytes/s
    t0 = time.monotonic()
    got = one(srv.url + "/drip", timeout=1.0, min_rate=5000)
    assert got.reason == "too_slow"
    assert time.monotonic() - t0 < 4


def test_a_steady_trickle_is_cut_at_max_time(serve) -> None:
    srv = serve({"/drip": trickle(CHUNKED, b"1\r\nx\r\n", 0.05)})  # 20 bytes/s: never silent
    t0 = time.monotonic()
    got = one(srv.url + "/drip", timeout=2.0, min_rate=0, max_time=3.0)
    assert got.reason == "too_slow", got.detail
    assert 2.9 < time.monotonic() - t0 < 5


# ------------------------------------------------------------------ max_bytes, gzip bombs


def test_an_endless_body_stops_at_max_bytes(serve) -> None:
    chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
    srv = serve({"/endless": trickle(CHUNKED, chunk, 0)})
    assert one(srv.url + "/endless", max_bytes=1_000_000).reason == "too_large"


def test_a_declared_length_over_max_bytes_fails_before_the_body(serve) -> None:
    srv = serve({"/big": send(response(200, length=5_000_000))})
    assert one(srv.url + "/big", max_bytes=1_000_000).reason == "too_large"


def test_a_gzip_bomb_is_stopped_at_max_bytes_counted_after_decompression(serve) -> None:
    bomb = gzip.compress(b"\0" * 50_000_000, 9)  # about 50 KB on the wire
    srv = serve({"/bomb": send(response(200, bomb, {"Content-Encoding": "gzip"}))})
    got = one(srv.url + "/bomb", max_bytes=1_000_000)
    assert got.reason == "too_large"
    assert srv.seen[0].headers["accept-encoding"] == "gzip, deflate"


def test_gzip_and_deflate_bodies_are_decoded(serve) -> None:
    page = b"<html>" + b"hello " * 5000 + b"</html>"
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    srv = serve({"/gz": send(response(200, gzip.compress(page), {"Content-Encoding": "gzip"})),
                 "/zlib": send(response(200, zlib.compress(page), {"Content-Encoding": "deflate"})),
                 "/raw": send(response(200, raw_deflate.compress(page) + raw_deflate.flush(),
                                       {"Content-Encoding": "deflate"}))})
    got = fetch([srv.url + p for p in ("/gz", "/zlib", "/raw")])
    assert {o.body for o in got.values()} == {page}


# ------------------------------------------------------------------ bodies that end too soon


@pytest.mark.parametrize(("name", "route"), [
    ("short Content-Length", send(response(200, b"x" * 500, length=1000), close=True)),
    ("broken chunking", send(CHUNKED + b"5\r\nhello\r\nZZ\r\nxx", close=True)),
    ("chunked without its last chunk", send(CHUNKED + b"5\r\nhello\r\n", close=True)),
    ("gzip cut inside intact framing", send(response(200, gzip.compress(os.urandom(5000))[:2000],
                                                     {"Content-Encoding": "gzip"}))),
    ("gzip without its trailer", send(response(200, gzip.compress(b"a" * 5000)[:-8], {"Content-Encoding": "gzip"}))),
    ("gzip cut, connection closed", send(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n"
                                         + gzip.compress(os.urandom(5000))[:2000], close=True)),
])
def test_a_truncated_body_is_never_complete(serve, name: str, route: Route) -> None:
    srv = serve({"/t": route})
    got = one(srv.url + "/t")
    assert got.reason == "incomplete_body", name
    assert got.body == b""


# ------------------------------------------------------------------ cookies, scope, proxies


def test_one_cookie_jar_for_every_fetcher_thread_and_only_for_its_site(serve) -> None:
    srv = serve({"/login": status(200, b"ok", Set_Cookie="session=abc; Path=/"), "*": status(200, b"page")})
    engine = CurlEngine(EngineConfig(threads=3, per_host=6))
    fetch_list(engine, [Request(srv.url + "/login")])
    later = [Request(f"{srv.url}/p{i}") for i in range(12)] + [Request(f"http://localhost:{srv.port}/other")]
    fetch_list(engine, later)  # new loops (new CurlMulti, new handles): the jar is the engine's
    cookies = {s.path: s.headers.get("cookie") for s in srv.seen}
    assert all(cookies[f"/p{i}"] == "session=abc" for i in range(12))
    assert cookies["/other"] is None  # localhost is another host for cookies


def test_headers_and_credentials_go_only_to_in_scope_hosts(serve) -> None:
    srv = serve({"*": status(200, b"page")})
    urls = [f"{srv.url}/in1", f"http://localhost:{srv.port}/out", f"{srv.url}/in2"]
    # one thread, one request at a time: the out-of-scope request reuses the handle that
    # carried the credentials just before
    fetch(urls, threads=1, per_host=1, headers={"X-Token": "secret"}, auth=("user", "pw"),
          in_scope=lambda url: "//127.0.0.1:" in url)
    by_path = {s.path: s.headers for s in srv.seen}
    for path in ("/in1", "/in2"):
        assert by_path[path]["x-token"] == "secret"
        assert by_path[path]["authorization"].startswith("Basic ")
    assert "x-token" not in by_path["/out"]
    assert "authorization" not in by_path["/out"]


def test_proxies_come_from_the_environment(serve, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = serve({"*": status(200, b"via proxy")})
    site = serve({"*": status(200, b"direct")})
    proxy_for.cache_clear()
    monkeypatch.setenv("HTTP_PROXY", proxy.url)  # upper case: libcurl alone would ignore it
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.setenv("NO_PROXY", "localhost")
    monkeypatch.delenv("no_proxy", raising=False)
    got = fetch([site.url + "/x", f"http://localhost:{site.port}/y"])
    proxy_for.cache_clear()
    assert got[site.url + "/x"].body == b"via proxy"
    assert proxy.seen[0].target == site.url + "/x"  # absolute form: a proxy request
    assert got[f"http://localhost:{site.port}/y"].body == b"direct"  # NO_PROXY


# ------------------------------------------------------------------ politeness, stop


def test_per_host_counts_requests_in_flight_across_threads(serve) -> None:
    slow = trickle(response(200, b"x" * 10, length=10), b"", 0, 0)

    def route(sock: socket.socket, seen: Seen) -> None:
        time.sleep(0.1)
        slow(sock, seen)

    srv = serve({"*": route})
    got = fetch([f"{srv.url}/{i}" for i in range(24)], threads=2, per_host=3)
    assert all(o.status == 200 for o in got.values())
    assert srv.most_active <= 3


def test_max_connections_caps_http1_sockets_below_requests_in_flight(serve) -> None:
    def route(sock: socket.socket, seen: Seen) -> None:
        time.sleep(0.4)
        sock.sendall(response(200, b"page"))

    srv = serve({"*": route})
    # requests queued inside libcurl for a connection would time out (their timers run while
    # they wait): the engine admits no more requests than an HTTP/1.1 host has connections
    got = fetch([f"{srv.url}/{i}" for i in range(8)], threads=2, per_host=8, max_connections=2, timeout=1.0)
    assert {o.status for o in got.values()} == {200}
    assert srv.connections <= 2
    assert srv.most_active <= 2


def test_stop_cuts_every_transfer_at_once(serve) -> None:
    srv = serve({"*": trickle(response(200, length=1000), b"x", 1.0)})
    engine = CurlEngine(EngineConfig(threads=2, per_host=8))
    threading.Timer(0.5, engine.stop).start()
    t0 = time.monotonic()
    got = fetch_list(engine, [Request(f"{srv.url}/{i}") for i in range(8)])
    assert time.monotonic() - t0 < 1.0
    assert {o.reason for o in got.values()} == {"interrupted"}


def test_a_full_next_stage_holds_new_requests_back(serve) -> None:
    srv = serve({"*": status(200, b"page")})
    engine = CurlEngine(EngineConfig(threads=1, per_host=4))
    todo = [Request(f"{srv.url}/{i}") for i in range(10)]
    taken: list[Request] = []
    outcomes: list[Outcome] = []
    refusals = [0]

    def take(slots: object) -> Request | None:
        if not todo:
            return None
        req = todo.pop(0)
        slots.try_acquire("127.0.0.1")  # type: ignore[attr-defined]
        taken.append(req)
        return req

    def give(o: Outcome) -> bool:
        # full for the first 20 offers: no request may start meanwhile
        if refusals[0] < 20:
            refusals[0] += 1
            assert len(taken) <= 4
            return False
        outcomes.append(o)
        return True

    engine.run(take, give, more=lambda: bool(todo))
    assert len(outcomes) == 10


# ------------------------------------------------------------------ failure reasons


def test_failures_are_named(serve, tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused = f"http://127.0.0.1:{closed.getsockname()[1]}/"
    closed.close()
    srv = serve({"/empty": send(b"", close=True), "/garbage": send(b"SSH-2.0-OpenSSH\r\n\r\n", close=True),
                 "/reset": send(response(200, length=100_000) + b"x" * 1000, close=True)})
    got = fetch([refused, srv.url + "/empty", srv.url + "/garbage", srv.url + "/reset", "ftp://127.0.0.1/x"])
    assert got[refused].reason == "connection_error"
    assert got[srv.url + "/empty"].reason == "connection_error"
    assert got[srv.url + "/garbage"].reason == "connection_error"
    assert got[srv.url + "/reset"].reason == "incomplete_body"
    assert got["ftp://127.0.0.1/x"].reason == "invalid_url"
    # no resolver is asked in tests: the mapping itself
    assert _reason(pycurl.E_COULDNT_RESOLVE_HOST, "Could not resolve host: x", 0, None, EngineConfig()) == "dns_error"  # type: ignore[arg-type]


def test_an_untrusted_certificate_is_a_tls_error(serve, tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv = serve({"*": status(200, b"secret")}, tls=context)
    untrusted = one(srv.url + "/", ca_file=None)  # certifi's CAs do not know it
    assert untrusted.reason == "tls_error"
    assert untrusted.detail.startswith(f"curl {pycurl.E_PEER_FAILED_VERIFICATION}:")
    trusted = one(srv.url + "/", ca_file=str(cert))
    assert (trusted.status, trusted.body, trusted.http_version) == (200, b"secret", "HTTP/1.1")
