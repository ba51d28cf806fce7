"""A small threaded HTTP server for the bundled sample site (used by `crawl demo` and the tests).

It serves a folder the way a plain web server does: keep-alive, Content-Length, ETag and
Last-Modified, 304 answers to conditional requests, a redirect from /folder to /folder/.
It adds a few routes a real site has (redirects, a page without a file extension), and it
serves the site under two host names, 127.0.0.1 and localhost, standing in for a site and
its CDN: in text files `__ORIGIN__` becomes http://127.0.0.1:<port> and `__CDN__`
http://localhost:<port>. It counts the requests it answered, per path, so tests can check
that no URL was fetched twice.
"""

from __future__ import annotations

import email.utils
import hashlib
import mimetypes
import posixpath
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote

SITE = Path(__file__).parent / "site"

# Routes of the sample site that are not plain files.
REDIRECTS = {"/old-home": "/", "/moved-photo": "/static/img/photo.png"}
ALIASES = {"/about": "about.html"}  # served as text/html without the extension
TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".php": "text/html",
         ".woff2": "font/woff2", ".vtt": "text/vtt", ".svg": "image/svg+xml", ".xml": "application/xml",
         ".txt": "text/plain", ".ico": "image/x-icon", ".mp4": "video/mp4", ".mp3": "audio/mpeg"}
TEMPLATED = frozenset({".html", ".css", ".xml", ".txt", ".php"})

Route = Callable[[BaseHTTPRequestHandler], None]


class SiteServer(ThreadingHTTPServer):
    """Serve `root` (None: only `routes`) on `host` (a loopback address), on a free port unless
    given. Use as a context manager."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, root: Path | None = SITE, port: int = 0, routes: dict[str, Route] | None = None,
                 host: str = "127.0.0.1") -> None:
        self.root = root
        self.host = host
        self.routes = dict(routes or {})
        # Guards the counters below: handler threads count, a test reads.
        self._count_lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._connections = 0
        self._started: list[tuple[float, str]] = []  # (time.monotonic(), path) of every request
        self._active = 0
        self._most_active = 0
        self._thread: threading.Thread | None = None
        super().__init__((host, port), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def cdn_url(self) -> str:
        return f"http://localhost:{self.port}/"

    def render(self, relative: str) -> bytes:
        """The bytes this server sends for the site file `relative` (tokens replaced)."""
        assert self.root is not None
        data = (self.root / relative).read_bytes()
        if posixpath.splitext(relative)[1] in TEMPLATED:
            data = data.replace(b"__ORIGIN__", self.url.rstrip("/").encode())
            data = data.replace(b"__CDN__", self.cdn_url.rstrip("/").encode())
        return data

    def count(self, path: str) -> None:
        with self._count_lock:
            self._requests[path] += 1
            self._started.append((time.monotonic(), path))
            self._active += 1
            self._most_active = max(self._most_active, self._active)

    def answered(self) -> None:
        with self._count_lock:
            self._active -= 1

    def request_log(self) -> list[tuple[float, str]]:
        """(monotonic start time, path) of every request so far, in order."""
        with self._count_lock:
            return list(self._started)

    def most_concurrent(self) -> int:
        """The most requests this server was answering at the same time."""
        with self._count_lock:
            return self._most_active

    def count_connection(self) -> None:
        with self._count_lock:
            self._connections += 1

    def connections(self) -> int:
        """TCP connections accepted so far (one handler per connection, many requests each)."""
        with self._count_lock:
            return self._connections

    def requests(self) -> Counter[str]:
        """Requests answered so far, by path and query ("//localhost:port/path" for the CDN)."""
        with self._count_lock:
            return Counter(self._requests)

    def start(self) -> SiteServer:
        self._thread = threading.Thread(target=self.serve_forever, name="site-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> SiteServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    server: SiteServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every keep-alive response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.count_connection()
        self._answering = False  # counted among the requests being answered

    def do_GET(self) -> None:
        host = self.headers.get("Host", "")
        # Requests to the second host name (the "CDN") are counted with their host.
        self.server.count(self.path if host.startswith(self.server.host) or not host else f"//{host}{self.path}")
        self._answering = True
        try:
            self._answer()
        finally:
            self.finishing()

    def finishing(self) -> None:
        """The response's last bytes are about to go out. From then on the client may send its
        next request, so this one no longer counts as being answered -- else, on a busy
        machine, the next could be counted while this thread had not yet got to it."""
        if self._answering:
            self._answering = False
            self.server.answered()

    def do_POST(self) -> None:
        """A form (a login): answered like a GET, by a route that reads it."""
        self.do_GET()

    def _answer(self) -> None:
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        route = self.server.routes.get(path)
        if route is not None:
            route(self)
        elif path in REDIRECTS:
            self._send(HTTPStatus.MOVED_PERMANENTLY, b"", {"Location": REDIRECTS[path]})
        else:
            self._send_file(ALIASES.get(path, unquote(path).lstrip("/")))

    def _send_file(self, relative: str) -> None:
        relative = posixpath.normpath(relative or ".")
        if self.server.root is None or relative.startswith(("..", "/")) or "\x00" in relative:
            self._send(HTTPStatus.NOT_FOUND, b"File not found", content_type="text/plain")
            return
        file = self.server.root / relative
        if file.is_dir():
            if not self.path.split("?", 1)[0].endswith("/"):
                self._send(HTTPStatus.MOVED_PERMANENTLY, b"", {"Location": self.path.split("?", 1)[0] + "/"})
                return
            file, relative = file / "index.html", posixpath.join(relative, "index.html")
        if not file.is_file():
            self._send(HTTPStatus.NOT_FOUND, b"File not found", content_type="text/plain")
            return
        body = self.server.render(relative)
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        modified = email.utils.formatdate(int(file.stat().st_mtime), usegmt=True)
        headers = {"ETag": etag, "Last-Modified": modified}
        if self._not_modified(etag, int(file.stat().st_mtime)):
            self._send(HTTPStatus.NOT_MODIFIED, b"", headers, body_allowed=False)
            return
        content_type = TYPES.get(posixpath.splitext(file.name)[1]) or \
            mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        self._send(HTTPStatus.OK, body, headers, content_type)

    def _not_modified(self, etag: str, mtime: int) -> bool:
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            return etag in [tag.strip() for tag in if_none_match.split(",")] or if_none_match.strip() == "*"
        since = self.headers.get("If-Modified-Since")
        if since:
            try:
                return mtime <= email.utils.parsedate_to_datetime(since).timestamp()
            except (TypeError, ValueError):
                return False
        return False

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
              content_type: str = "text/html", body_allowed: bool = True) -> None:
        self.send_response(status)
        if body_allowed:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if not body_allowed:
            self.finishing()
        self.end_headers()
        if body_allowed:
            self.finishing()
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the crawler reports what matters
