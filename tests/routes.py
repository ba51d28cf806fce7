"""Routes for the test server: generated sites and responses that misbehave on purpose.

A route is a function of the request handler; `SiteServer(root=None, routes={path: route})` serves it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

Route = Callable[[BaseHTTPRequestHandler], None]


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes = b"",
         content_type: str = "text/html", headers: dict[str, str] | None = None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
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
