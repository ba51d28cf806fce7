"""A seeded site on 127.0.0.1 whose responses misbehave, for the fault-injection test.

Every path has a fixed personality drawn from (seed, path): how its body is encoded (none,
gzip, deflate, br), whether its Content-Type lies, whether it trickles, whether it is broken
for good (two Content-Length headers, corrupt gzip, two Location headers), and how many of its
first requests fail in passing (5xx and 429 with Retry-After, resets mid-body, bodies cut
short, chunked encoding that breaks off, gzip cut short, an unrequested 304, a stall past the
read timeout). The same seed makes the same site whatever order the requests come in, so an
interrupted and resumed crawl can be compared with one that was not.

The server records every path it was asked for and the SHA-256 of every body it sent whole
with a 200: a mirror may hold only those.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import random
import socket
import struct
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote

import brotli

PAGES = 24
IMAGES = 10
STYLESHEETS = 3
READ_TIMEOUT = 0.3  # the crawl's http.timeout: a stall outlasts it
TRANSIENT = ("server_error", "rate_limited", "reset", "short", "broken_chunked", "cut_gzip",
             "unrequested_304", "stall")
PERMANENT = ("conflicting_lengths", "corrupt_gzip")
# What a crawl of this site may report, and nothing else (no internal_error).
REASONS = frozenset({"http_404", "http_500", "http_503", "http_429", "incomplete_body", "connection_error",
                     "timeout", "unexpected_304", "decode_error", "bad_response", "bad_redirect",
                     "redirect_loop", "too_many_redirects"})


@dataclass(frozen=True)
class Resource:
    """What a path is: a body of a content type, a redirect, or nothing (404)."""

    content_type: str = ""
    body: bytes = b""
    location: bytes = b""  # a redirect when set


@dataclass(frozen=True)
class Personality:
    encoding: str  # "identity", "gzip", "deflate", "br"
    lying_type: str | None  # a Content-Type other than the real one
    trickle: bool  # the body in small pieces with pauses (slow, but whole)
    duplicate_headers: bool  # Content-Type and Content-Length twice, each the same
    broken: str | None  # one of PERMANENT (or "conflicting_location" for a redirect): every time
    transient: tuple[str, ...]  # the faults of its first requests, in order


def odd_name(number: int) -> str:
    return f"/p/caf\u00e9 {number}.html"


def page_name(number: int) -> str:
    return odd_name(number) if number % 5 == 3 else f"/p/{number}.html"


def link_forms(path: str, rng: random.Random) -> str:
    """`path` as one of the ways a page may write it: raw UTF-8, escaped in upper or lower case."""
    form = rng.choice(("raw", "upper", "lower"))
    if form == "raw":
        return path
    escaped = quote(path)
    return escaped.lower() if form == "lower" else escaped


class FaultySite:
    """The site's resources and the personality of each path, for one seed."""

    def __init__(self, seed: int, max_transient: int = 4, generation: int = 1) -> None:
        self.seed = seed
        self.max_transient = max_transient  # faults in passing per path, at most
        self.generation = generation  # 2: some pages changed since the first crawl
        self.resources = self._build()

    def _rng(self, *parts: object) -> random.Random:
        return random.Random(":".join(map(str, (self.seed, *parts))))

    def _build(self) -> dict[str, Resource]:
        resources: dict[str, Resource] = {}
        for number in range(IMAGES):
            resources[f"/img/{number}.png"] = Resource("image/png", self._rng("img", number).randbytes(
                200 + 150 * number))
        for number in range(STYLESHEETS):
            resources[f"/css/{number}.css"] = Resource(
                "text/css", f'body {{ background: url("/img/{number}.png") }}\n'.encode())
        for number in range(PAGES):
            resources[page_name(number)] = Resource("text/html; charset=utf-8", self._page(number))
        for number in range(0, PAGES, 4):
            resources[f"/go/{number}"] = Resource(location=quote(page_name(number)).encode())
            resources[f"/go2/{number}"] = Resource(location=f"/go/{number}".encode())
        for number in range(3, PAGES, 5):  # a raw UTF-8 Location, as many servers send it
            resources[f"/u/{number}"] = Resource(location=page_name(number).encode())
        resources["/go/missing"] = Resource(location=b"/p/missing.html")
        resources["/loop/a"] = Resource(location=b"/loop/b")
        resources["/loop/b"] = Resource(location=b"/loop/a")
        return resources

    def _page(self, number: int) -> bytes:
        rng = self._rng("page", number)
        targets = list(range(PAGES)) if number == 0 else rng.sample(range(PAGES), 5)
        links = [link_forms(page_name(target), rng) for target in targets]
        if number == 0:
            links += [*(f"/go/{n}" for n in range(0, PAGES, 4)), *(f"/go2/{n}" for n in range(0, PAGES, 8)),
                      *(f"/u/{n}" for n in range(3, PAGES, 5)), "/go/missing", "/loop/a", "/p/gone.html"]
        images = "".join(f'<img src="/img/{rng.randrange(IMAGES)}.png">' for _ in range(2))
        anchors = "".join(f'<a href="{link}">{link}</a>\n' for link in links)
        changed = self.generation > 1 and rng.random() < 0.3
        text = f"<p>page {number}{' (changed)' if changed else ''}</p>" + "<p>filler text</p>" * rng.randrange(40)
        return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>page {number}</title>'
                f'<link rel="stylesheet" href="/css/{number % STYLESHEETS}.css"></head>'
                f"<body>{text}{images}{anchors}</body></html>").encode()

    def personality(self, path: str) -> Personality:
        rng = self._rng("personality", path)
        resource = self.resources.get(path, Resource())
        encoding = rng.choice(("identity", "identity", "gzip", "deflate", "br"))
        start = path == page_name(0)  # the start page never fails for good: the test needs a site
        lying_type = None
        if not start and rng.random() < 0.1:
            lying_type = "application/octet-stream" if resource.content_type.startswith("text/") else "text/html"
        broken = None
        if not start and rng.random() < 0.08:
            broken = "conflicting_location" if resource.location else rng.choice(PERMANENT)
        faults = rng.choice((0, 0, 0, 1, 1, 2, 3, 4, 5))
        transient = tuple(rng.choice(TRANSIENT) for _ in range(min(faults, self.max_transient, 2 if start else 9)))
        return Personality(encoding, lying_type, rng.random() < 0.1, rng.random() < 0.1, broken, transient)


class FaultyServer(ThreadingHTTPServer):
    """Serves a FaultySite; use as a context manager. `requests` and `whole` are what the
    tests check against."""

    daemon_threads = True

    def __init__(self, site: FaultySite) -> None:
        self.site = site
        # Guards the three records below: handler threads write, the test reads.
        self._lock = threading.Lock()
        self._attempts: Counter[str] = Counter()  # decoded path -> requests so far
        self.paths: list[str] = []  # every request's path as sent (escaped)
        self.whole: dict[str, set[str]] = {}  # decoded path -> SHA-256 of each body sent whole
        self._thread: threading.Thread | None = None
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def attempt(self, raw_path: str, path: str) -> int:
        with self._lock:
            self.paths.append(raw_path)
            number = self._attempts[path]
            self._attempts[path] += 1
            return number

    def sent_whole(self, path: str, body: bytes) -> None:
        with self._lock:
            self.whole.setdefault(path, set()).add(hashlib.sha256(body).hexdigest())

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client gone mid-request (a killed crawl) is part of the game, not a server bug

    def forget_attempts(self) -> None:
        """Each path's faults in passing start again (a second crawl that must see the same site)."""
        with self._lock:
            self._attempts.clear()

    def requested(self) -> list[str]:
        with self._lock:
            return list(self.paths)

    def __enter__(self) -> FaultyServer:
        self._thread = threading.Thread(target=self.serve_forever, name="faulty-site", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultyServer

    def do_GET(self) -> None:
        path = unquote(self.path.split("?", 1)[0])
        attempt = self.server.attempt(self.path, path)
        site = self.server.site
        resource = site.resources.get(path)
        with contextlib.suppress(OSError):
            if resource is None:
                self._send(b"404 Not Found", [("Content-Type", "text/plain")], b"not here")
                return
            who = site.personality(path)
            if attempt < len(who.transient):
                self._transient(who.transient[attempt], resource)
            elif resource.location:
                self._redirect(resource, who)
            else:
                self._content(path, resource, who)

    def log_message(self, format: str, *args: object) -> None:
        pass

    # -- answers ---------------------------------------------------------------------------

    def _send(self, status: bytes, headers: list[tuple[str, str]], body: bytes, length: int | None = None) -> None:
        head = b"HTTP/1.1 " + status + b"\r\n" + b"".join(
            f"{name}: {value}\r\n".encode("latin-1") for name, value in headers)
        head += f"Content-Length: {len(body) if length is None else length}\r\n\r\n".encode()
        self.wfile.write(head + body)
        self.wfile.flush()

    def _hang_up(self, reset: bool = False) -> None:
        if reset:  # RST rather than FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _redirect(self, resource: Resource, who: Personality) -> None:
        locations = [resource.location]
        if who.broken == "conflicting_location":
            locations.append(b"/p/1.html")
        head = b"HTTP/1.1 302 Found\r\n" + b"".join(b"Location: " + loc + b"\r\n" for loc in locations)
        self.wfile.write(head + b"Content-Length: 0\r\n\r\n")
        self.wfile.flush()

    def _content(self, path: str, resource: Resource, who: Personality) -> None:
        etag = '"' + hashlib.sha256(resource.body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self._send(b"304 Not Modified", [("ETag", etag)], b"", length=0)
            return
        data, headers = _encoded(resource.body, who.encoding)
        headers += [("Content-Type", who.lying_type or resource.content_type), ("ETag", etag)]
        if who.duplicate_headers:
            headers += [headers[-2], ("Content-Length", str(len(data)))]
        if who.broken == "conflicting_lengths":
            self._send(b"200 OK", [*headers, ("Content-Length", str(len(data) + 3))], data)
            return
        if who.broken == "corrupt_gzip":
            data = gzip.compress(resource.body)
            data = data[:10] + bytes(b ^ 0x5A for b in data[10:-8]) + data[-8:]
            headers = [(name, value) for name, value in headers if name != "Content-Encoding"]
            headers.append(("Content-Encoding", "gzip"))
        if who.trickle:
            self.wfile.write(b"HTTP/1.1 200 OK\r\n" + b"".join(f"{n}: {v}\r\n".encode() for n, v in headers)
                             + f"Content-Length: {len(data)}\r\n\r\n".encode())
            step = max(1, len(data) // 6)
            for start in range(0, len(data), step):
                self.wfile.write(data[start:start + step])
                self.wfile.flush()
                time.sleep(0.01)  # the server is slow on purpose
        else:
            self._send(b"200 OK", headers, data)
        if who.broken is None:
            self.server.sent_whole(path, resource.body)

    def _transient(self, fault: str, resource: Resource) -> None:
        body = resource.body or b"<html>moved</html>"
        if fault == "unrequested_304" and (self.headers.get("If-None-Match") or self.headers.get("If-Modified-Since")):
            fault = "server_error"  # a 304 to a conditional request is no fault
        if fault == "server_error":
            self._send(b"503 Service Unavailable", [("Retry-After", "0"), ("Content-Type", "text/plain")], b"busy")
        elif fault == "rate_limited":
            self._send(b"429 Too Many Requests", [("Retry-After", "0"), ("Content-Type", "text/plain")], b"slow")
        elif fault == "unrequested_304":
            self._send(b"304 Not Modified", [], b"", length=0)
        elif fault in ("reset", "short"):
            self._send(b"200 OK", [("Content-Type", resource.content_type or "text/html")], body[: len(body) // 2],
                       length=len(body))
            self._hang_up(reset=fault == "reset")
        elif fault == "broken_chunked":
            half = body[: len(body) // 2]
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
                             + f"{len(half):x}\r\n".encode() + half + b"\r\nzz\r\n")
            self.wfile.flush()
            self._hang_up()
        elif fault == "cut_gzip":
            data = gzip.compress(body)
            data = data[: len(data) * 2 // 3]  # a Content-Length that says this is all
            self._send(b"200 OK", [("Content-Type", resource.content_type or "text/html"),
                                   ("Content-Encoding", "gzip")], data)
        elif fault == "stall":
            time.sleep(READ_TIMEOUT + 0.3)  # the server hangs on purpose
            self._hang_up()


def _encoded(body: bytes, encoding: str) -> tuple[bytes, list[tuple[str, str]]]:
    if encoding == "gzip":
        return gzip.compress(body), [("Content-Encoding", "gzip")]
    if encoding == "deflate":
        return zlib.compress(body), [("Content-Encoding", "deflate")]
    if encoding == "br":
        return brotli.compress(body), [("Content-Encoding", "br")]
    return body, []
