"""Routes for the test server: generated sites and responses that misbehave on purpose.

A route is a function of the request handler; `SiteServer(root=None, routes={path: route})` serves it.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import gzip
import hashlib
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

import brotli

Route = Callable[[BaseHTTPRequestHandler], None]


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes = b"",
         content_type: str = "text/html", headers: dict[str, str] | None = None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.finishing()  # type: ignore[attr-defined]  # SiteServer's handler: see there
    handler.wfile.write(body)


def page(*hrefs: str, title: str = "page") -> bytes:
    links = "".join(f'<a href="{href}">{href}</a>\n' for href in hrefs)
    return f"<!DOCTYPE html><html><head><title>{title}</title></head><body>{links}</body></html>".encode()


def html(body: bytes, delay: float = 0.0) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        if delay:
            time.sleep(delay)  # the server is slow on purpose
        send(handler, 200, body)
    return route


def tree_site(pages: int, delay: float = 0.0, prefix: str = "/gen/") -> dict[str, Route]:
    """pages HTML pages forming a binary tree: /gen/0.html links to /gen/1.html and /gen/2.html, ..."""
    routes = {}
    for number in range(pages):
        children = [f"{prefix}{child}.html" for child in (2 * number + 1, 2 * number + 2) if child < pages]
        routes[f"{prefix}{number}.html"] = html(page(*children, title=f"page {number}"), delay)
    return routes


def chain_site(length: int, prefix: str = "/chain/") -> dict[str, Route]:
    """/chain/0.html -> /chain/1.html -> ...: depth n is page n."""
    return {f"{prefix}{n}.html": html(page(*([f"{prefix}{n + 1}.html"] if n + 1 < length else [])))
            for n in range(length)}


def status(code: int, headers: dict[str, str] | None = None) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        send(handler, code, f"status {code}".encode(), "text/plain", headers)
    return route


def redirect(location: str, code: int = 302) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        send(handler, code, b"", headers={"Location": location})
    return route


def flaky(failures: int, then: Route, code: int = 503) -> Route:
    """Fail `failures` times with `code`, then behave like `then`."""
    lock = threading.Lock()
    remaining = [failures]

    def route(handler: BaseHTTPRequestHandler) -> None:
        with lock:
            fail = remaining[0] > 0
            remaining[0] -= 1
        if fail:
            send(handler, code, b"try again", "text/plain", {"Retry-After": "0"})
        else:
            then(handler)
    return route


def reset_connection(handler: BaseHTTPRequestHandler) -> None:
    """Promise a body, send half of it, and drop the connection."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html")
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    handler.wfile.write(b"<html>" + b"x" * 400)
    handler.wfile.flush()
    handler.close_connection = True
    handler.connection.shutdown(2)


def hang_up(handler: BaseHTTPRequestHandler) -> None:
    """Read the request, answer nothing, close the connection."""
    handler.close_connection = True
    handler.connection.shutdown(2)


def not_http(handler: BaseHTTPRequestHandler) -> None:
    """Answer with a line that is not an HTTP status line."""
    handler.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    handler.wfile.flush()
    handler.close_connection = True
    handler.connection.shutdown(2)


def stall(seconds: float, then: Route | None = None) -> Route:
    """Say nothing for `seconds` (a hung server), then answer like `then` if still connected."""
    def route(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        if then is not None:
            with contextlib.suppress(OSError):
                then(handler)
    return route


def trickle_body(interval: float = 0.05, total: int = 100_000) -> Route:
    """Headers at once, then the body one byte at a time: each read is quick, the whole is not."""
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(total))
        handler.end_headers()
        with contextlib.suppress(OSError):
            for _ in range(total):
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(interval)
    return route


def paced_body(total: int, chunk: int, interval: float, content_type: str = "application/octet-stream") -> Route:
    """A body of `total` bytes sent `chunk` bytes at a time, one chunk every `interval` seconds:
    a slow but steady link."""
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(total))
        handler.end_headers()
        with contextlib.suppress(OSError):
            for start in range(0, total, chunk):
                handler.wfile.write(bytes([start // chunk % 251]) * min(chunk, total - start))
                handler.wfile.flush()
                time.sleep(interval)
    return route


def trickle_headers(interval: float = 0.05) -> Route:
    """A status line, then header bytes one at a time, forever."""
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        with contextlib.suppress(OSError):
            while True:
                handler.wfile.write(b"X")
                handler.wfile.flush()
                time.sleep(interval)
    return route


def endless_chunked(chunk: int = 65536) -> Route:
    """A chunked body without end (no Content-Length to refuse it by)."""
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        data = f"{chunk:x}\r\n".encode() + b"\0" * chunk + b"\r\n"
        with contextlib.suppress(OSError):
            while True:
                handler.wfile.write(data)
    return route


def gzip_bomb(size: int = 20_000_000) -> Route:
    """A few kilobytes on the wire that inflate to `size` bytes."""
    body = gzip.compress(b"\0" * size, 9)

    def route(handler: BaseHTTPRequestHandler) -> None:
        send(handler, 200, body, "text/html", {"Content-Encoding": "gzip"})
    return route


def rate_limited(times: int, retry_after: str, then: Route) -> Route:
    """Answer 429 with `retry_after` the first `times` requests."""
    lock = threading.Lock()
    remaining = [times]

    def route(handler: BaseHTTPRequestHandler) -> None:
        with lock:
            limited = remaining[0] > 0
            remaining[0] -= 1
        if limited:
            send(handler, 429, b"slow down", "text/plain", {"Retry-After": retry_after})
        else:
            then(handler)
    return route


def calendar(handler: BaseHTTPRequestHandler) -> None:
    """An endless calendar: every month links to the next and the previous one."""
    query = handler.path.partition("?")[2]
    month = int(query.removeprefix("m=") or 0)
    send(handler, 200, page(f"/calendar?m={month + 1}", f"/calendar?m={month - 1}", title=f"month {month}"))


def needs_auth(user: str, password: str, then: Route) -> Route:
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def route(handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("Authorization") != expected:
            send(handler, 401, b"who are you?", "text/plain", {"WWW-Authenticate": 'Basic realm="test"'})
        else:
            then(handler)
    return route


def text(body: str, content_type: str = "text/plain") -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        send(handler, 200, body.encode(), content_type)
    return route


def raw(body: bytes, content_type: str) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        send(handler, 200, body, content_type)
    return route


def recorded(seen: list[dict[str, str]], then: Route) -> Route:
    """Like `then`, noting each request's headers (and path) in `seen`."""
    def route(handler: BaseHTTPRequestHandler) -> None:
        seen.append({"path": handler.path, **{k.lower(): v for k, v in handler.headers.items()}})
        then(handler)
    return route


class MutableSite:
    """A site whose files the test edits between crawls. Each answers conditional requests
    like a real server, with the validators it is given: both, "etag" only, "last_modified"
    only, or "none"."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str, str, float]] = {}  # path -> body, type, validators, mtime
        self.answers: list[tuple[str, int, str]] = []  # (path, status, validator used)
        self._clock = 1_700_000_000.0
        self._lock = threading.Lock()

    def put(self, path: str, body: bytes | str, content_type: str = "text/html", validators: str = "both") -> None:
        self._clock += 60
        data = body.encode() if isinstance(body, str) else body
        self.files[path] = (data, content_type, validators, self._clock)

    def remove(self, path: str) -> None:
        self.files.pop(path, None)

    def routes(self) -> dict[str, Route]:
        return {path: self._route(path) for path in self.files}

    def statuses(self, path: str) -> list[int]:
        with self._lock:
            return [status for answered, status, _ in self.answers if answered == path]

    def _route(self, path: str) -> Route:
        def route(handler: BaseHTTPRequestHandler) -> None:
            if path not in self.files:
                self._note(path, 404, "")
                send(handler, 404, b"gone", "text/plain")
                return
            body, content_type, validators, mtime = self.files[path]
            headers = {}
            etag = '"' + hashlib.sha1(body).hexdigest()[:12] + '"'
            modified = email.utils.formatdate(mtime, usegmt=True)
            if validators in ("both", "etag"):
                headers["ETag"] = etag
            if validators in ("both", "last_modified"):
                headers["Last-Modified"] = modified
            match = handler.headers.get("If-None-Match")
            since = handler.headers.get("If-Modified-Since")
            if match is not None and "ETag" in headers:
                if match == etag:
                    self._note(path, 304, "etag")
                    send_not_modified(handler, headers)
                    return
            elif since and "Last-Modified" in headers and \
                    email.utils.parsedate_to_datetime(since).timestamp() >= mtime:
                self._note(path, 304, "last_modified")
                send_not_modified(handler, headers)
                return
            self._note(path, 200, "")
            send(handler, 200, body, content_type, headers)
        return route

    def _note(self, path: str, status: int, validator: str) -> None:
        with self._lock:
            self.answers.append((path, status, validator))


def send_not_modified(handler: BaseHTTPRequestHandler, headers: dict[str, str]) -> None:
    handler.send_response(304)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()


# -- responses http.server would not send: written byte by byte ----------------------------------

def raw_response(head: bytes, body: bytes = b"", close: bool = True) -> Route:
    """Send `head` (status line and headers, without the blank line) and `body` exactly as
    given; then, with `close`, drop the connection (the body's end is where it stops)."""
    def route(handler: BaseHTTPRequestHandler) -> None:
        with contextlib.suppress(OSError):
            handler.wfile.write(head.rstrip(b"\r\n") + b"\r\n\r\n" + body)
            handler.wfile.flush()
            if close:
                handler.close_connection = True
                handler.connection.shutdown(2)
    return route


def conflicting_lengths(body: bytes) -> Route:
    """Two Content-Length headers that disagree."""
    return raw_response(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                        + f"Content-Length: {len(body)}\r\nContent-Length: {len(body) + 7}".encode(), body)


def compress(body: bytes, encoding: str) -> bytes:
    """`body` as the Content-Encoding `encoding` ("gzip", "deflate" or "br") has it."""
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    return brotli.compress(body)


def compressed_cut_short(body: bytes, encoding: str, keep: float = 0.6) -> Route:
    """A compressed body of which only the first part is sent -- with a Content-Length that
    says this is all there is, so only the compressed format can tell it ended early."""
    sent = compress(body, encoding)[:max(1, int(len(compress(body, encoding)) * keep))]

    def route(handler: BaseHTTPRequestHandler) -> None:
        send(handler, 200, sent, "text/html", {"Content-Encoding": encoding})
    return route


def compressed(body: bytes, encoding: str) -> Route:
    data = compress(body, encoding)

    def route(handler: BaseHTTPRequestHandler) -> None:
        send(handler, 200, data, "text/html", {"Content-Encoding": encoding})
    return route


def not_modified(handler: BaseHTTPRequestHandler) -> None:
    """304, whatever was asked: to a request without validators too."""
    send_not_modified(handler, {})


def raw_redirect(*locations: bytes, code: int = 302) -> Route:
    """A redirect with the Location header(s) exactly as given: raw UTF-8, or two of them."""
    headers = b"".join(b"Location: " + location + b"\r\n" for location in locations)
    return raw_response(f"HTTP/1.1 {code} Found\r\nContent-Length: 0\r\n".encode() + headers, close=False)
