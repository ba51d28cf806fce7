"""`crawl serve OUTPUT`: a local, read-only web server for browsing a mirror and its history.

    /                    the timeline: every run (snapshot), newest first, with its changes
    /history?url=URL     every version kept of a URL, and the text diff between them
    /mirror/<path>       the files of the output folder (snapshots/<name>/<host>/..., latest/...,
                         or a plain mirror's <host>/...) as the site sent them

Mirrored pages are the sites' own HTML and scripts, served from the server's origin. So that
they cannot act on the server's pages -- read them, set its cookies, install a service
worker over it -- they are sent with `Content-Security-Policy: sandbox` (never with
allow-same-origin): the browser gives them an opaque origin of their own. Their scripts may
run (menus and galleries work as they did), their forms may not submit, and they may load
nothing from anywhere but this server: a snapshot shows what was saved that night, not what
the live site serves now. The server's own pages have no script and a strict policy.

Only GET and HEAD are answered (anything else: 405); what a path may reach is decided by
serve_files.find (never outside the output folder, never its crawl state).
"""

from __future__ import annotations

import io
import ipaddress
import logging
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

from crawler.cli import serve_files
from crawler.cli.arguments import SERVE_PORT
from crawler.cli.serve_files import Found
from crawler.cli.serve_pages import (
    HISTORY,
    MIRROR,
    error_page,
    history_page,
    listing_page,
    search_page,
    timeline_page,
)
from crawler.errors import CrawlError, UsageError
from crawler.history import timeline
from crawler.history.versions import find_urls, steps, versions
from crawler.output_folder import REPORT_HTML

log = logging.getLogger(__name__)

OWN_PAGES_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
                    "base-uri 'none'; frame-ancestors 'none'")
MIRRORED_POLICY = ("sandbox allow-scripts allow-popups allow-popups-to-escape-sandbox; "
                   "default-src 'self' data: blob: 'unsafe-inline' 'unsafe-eval'; form-action 'none'")
ALLOWED = "GET, HEAD"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
# Mirrored files a sandboxed page (an opaque origin: "Origin: null") must fetch in CORS mode --
# fonts, module scripts, `crossorigin` images and stylesheets -- are shared with any origin:
# any page may include such files already. Pages and data (HTML, JSON...) never are.
SHARED_TYPES = ("font/", "image/", "text/css", "text/javascript", "application/javascript",
                "application/x-javascript", "application/font", "application/x-font", "application/vnd.ms-fontobject")


class HistoryServer(ThreadingHTTPServer):
    """Serve `output` on host:port (port 0: any free one) in a thread of its own; use as a
    context manager. Raises UsageError for a folder crawl did not write, CrawlError for an
    address it cannot listen on."""

    daemon_threads = True  # a browser's idle keep-alive connection never holds up the stop

    def __init__(self, output: Path, host: str = "127.0.0.1", port: int = SERVE_PORT) -> None:
        if not output.is_dir() or not timeline.is_crawl_output(output):
            raise UsageError(f"{output}: not a crawl output folder (no manifest.jsonl, report.json, "
                             "snapshots/ or .crawl/ in it)")
        self.output = output.resolve()
        self.label = str(output)  # as the command line named it
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            super().__init__((host, port), _Handler)
        except OSError as error:
            raise CrawlError(f"cannot serve on {host}:{port}: {error.strerror or error}"
                             + (" (choose another with --port)" if port else "")) from None
        self._thread: threading.Thread | None = None
        self.loopback = ipaddress.ip_address(self.server_address[0]).is_loopback

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}/" if self.address_family == socket.AF_INET6 else f"http://{host}:{port}/"

    def __enter__(self) -> HistoryServer:
        self._thread = threading.Thread(target=self.serve_forever, name="serve", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    server: HistoryServer
    protocol_version = "HTTP/1.1"

    # -- methods ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._route(body=True)

    def do_HEAD(self) -> None:
        self._route(body=False)

    def __getattr__(self, name: str) -> Any:
        """Any other method (POST, PUT, DELETE, OPTIONS...): 405, not http.server's 501."""
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self) -> None:
        self.close_connection = True  # a body it may have sent is not read
        self._page(405, error_page(405, "Method Not Allowed"), {"Allow": ALLOWED})

    # -- routes ----------------------------------------------------------------------------

    def _route(self, body: bool) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        try:
            if not self._host_allowed():
                self._page(403, error_page(403, "Forbidden: not a name of this machine"), body=body)
            elif path == "/":
                self._page(200, self._timeline(), body=body)
            elif path == HISTORY:
                self._page(200, self._history(parse_qs(parts.query).get("url", [""])[0]), body=body)
            elif path.startswith(MIRROR) or path == MIRROR.rstrip("/"):
                self._mirror(path.removeprefix(MIRROR.rstrip("/")), body)
            else:
                self._not_found(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # a damaged file of the history: this page fails, the server goes on
            log.exception("cannot answer %s", self.path)
            self.close_connection = True
            self._page(500, error_page(500, "Internal Server Error"), body=body)

    def _host_allowed(self) -> bool:
        """Listening on this machine only, a request must name it so: a web page whose own host
        name was pointed at 127.0.0.1 (DNS rebinding) would otherwise read everything here as
        its own origin."""
        if not self.server.loopback:
            return True
        host = (self.headers.get("Host") or "").lower()
        name = host.rpartition(":")[0] if ":" in host and not host.endswith("]") else host
        return name in LOOPBACK_NAMES

    def _timeline(self) -> str:
        output = self.server.output
        found = timeline.runs(output)
        start_pages = {run.root: timeline.start_page(output, run) for run in found}
        reports = {run.root: (output / run.files(REPORT_HTML)).is_file() for run in found}
        return timeline_page(self.server.label, found, start_pages, reports)

    def _history(self, query: str) -> str:
        output = self.server.output
        url, matches = find_urls(output, query)
        if url is None:
            return search_page(query, matches)
        kept = versions(output, url)
        return history_page(url, kept, steps(output, kept))

    def _mirror(self, request_path: str, body: bool) -> None:
        """A file of the output folder; a folder's index.html, else what it holds."""
        found = serve_files.find(self.server.output, request_path.removeprefix("/"))
        if found is None:
            self._not_found(body)
        elif found.is_dir and not request_path.endswith("/"):
            # Its page's relative links resolve against the folder only with the slash.
            self._page(301, "", {"Location": MIRROR.rstrip("/") + request_path + "/"}, body=False)
        elif found.is_dir:
            index = serve_files.index_of(found)
            if index is None:
                self._page(200, listing_page(found.relative, serve_files.listing(found)), body=body)
            else:
                self._file(index, body)
        else:
            self._file(found, body)

    def _not_found(self, body: bool) -> None:
        self._page(404, error_page(404, "Not Found"), body=body)

    # -- answers ---------------------------------------------------------------------------

    def _page(self, status: int, html: str, headers: dict[str, str] | None = None, body: bool = True) -> None:
        """One of the server's own pages."""
        data = html.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Security-Policy", OWN_PAGES_POLICY)
        self.send_header("X-Frame-Options", "DENY")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self._common_headers()
        if body:
            self.wfile.write(data)

    def _file(self, found: Found, body: bool) -> None:
        """A saved file, as the site sent it -- sandboxed."""
        content_type = serve_files.content_type(self.server.output, found)
        try:
            # Resolved already; O_NOFOLLOW refuses a symlink put in its place since.
            file = os.fdopen(os.open(found.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb")
        except OSError:
            self._not_found(body)
            return
        with file:
            size = os.fstat(file.fileno()).st_size
            # If-Range names a version; the files have none to compare it with: the whole file then.
            asked = self.headers.get("Range") if not self.headers.get("If-Range") else None
            wanted = serve_files.byte_range(asked, size)
            if wanted == serve_files.UNSATISFIABLE:
                self._page(416, error_page(416, "Range Not Satisfiable"), {"Content-Range": f"bytes */{size}"},
                           body=body)
                return
            first, last = wanted or (0, size - 1)
            self.send_response(206 if wanted else 200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(last - first + 1))
            if wanted:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Security-Policy", MIRRORED_POLICY)
            if content_type.startswith(SHARED_TYPES):
                self.send_header("Access-Control-Allow-Origin", "*")
            self._common_headers()
            if body:
                file.seek(first)
                _copy(file, self.wfile, last - first + 1)

    def _common_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

    def version_string(self) -> str:
        return "crawl-serve"

    def log_message(self, format: str, *args: object) -> None:
        log.info("%s %s", self.address_string(), format % args)


def _copy(source: BinaryIO, destination: io.BufferedIOBase, length: int) -> None:
    """`length` bytes of `source` to `destination`, a block at a time."""
    while length > 0:
        block = source.read(min(length, 64 * 1024))
        if not block:
            return
        destination.write(block)
        length -= len(block)
