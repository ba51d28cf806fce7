"""A small threaded HTTP server for the bundled sample site (used by `crawl demo` and the tests).

It serves a folder like a plain web server does (keep-alive, Content-Length, Last-Modified,
304 for If-Modified-Since) plus a few routes a real site has: redirects, and pages without a
file extension. It counts the requests it answered per path, so a test can check that no URL
was fetched twice.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import ClassVar

SITE = Path(__file__).parent / "site"

# Routes of the sample site that are not plain files.
REDIRECTS = {"/old-home": "/", "/docs": "/docs/"}
ALIASES = {"/about": "about.html"}  # served as text/html without the extension
EXTRA_TYPES = {".php": "text/html", ".woff2": "font/woff2"}

Route = Callable[[SimpleHTTPRequestHandler], None]


class SiteServer(ThreadingHTTPServer):
    """Serve `root` on 127.0.0.1 (a free port unless given). Use as a context manager."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, root: Path = SITE, port: int = 0, routes: dict[str, Route] | None = None) -> None:
        self.root = root
        self.routes = dict(routes or {})
        # Guards `requests`: handler threads count, a test reads.
        self._count_lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._thread: threading.Thread | None = None
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def count(self, path: str) -> None:
        with self._count_lock:
            self._requests[path] += 1

    def requests(self) -> Counter[str]:
        """Requests answered so far, by path and query."""
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


class _Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    server: SiteServer
    extensions_map: ClassVar[dict[str, str]] = {**SimpleHTTPRequestHandler.extensions_map, **EXTRA_TYPES}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, directory=str(self.server_root(args)), **kwargs)  # type: ignore[misc, arg-type]

    @staticmethod
    def server_root(args: tuple[object, ...]) -> Path:
        return args[2].root  # type: ignore[attr-defined, no-any-return]

    def do_GET(self) -> None:
        self.server.count(self.path)
        path = self.path.split("?", 1)[0]
        route = self.server.routes.get(path)
        if route is not None:
            route(self)
        elif path in REDIRECTS:
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", REDIRECTS[path])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path in ALIASES:
            self.path = "/" + ALIASES[path]
            super().do_GET()
        else:
            super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the crawler reports what matters
