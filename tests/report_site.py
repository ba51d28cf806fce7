"""A small bookshop whose pages change from one night to the next: what report.html's tests
(and the README's screenshot, bench/screenshots.py) crawl twice to have a run with changes.

Night 1: a home page, eight books, an about page, a cover image, a stylesheet; a link to a
page that fails (503), a broken link (404), links the scope rules skip. Night 2: prices and
blurbs of three books change, a ninth book comes, the eighth goes (404). `hostile=True`
adds a page whose title, URL, text, links and failure message are made to break out of
an HTML report: `<script>`, `<img onerror>`, `javascript:`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

Route = Callable[[BaseHTTPRequestHandler], None]

HOSTILE_TITLE = "<script>alert('title')</script><img src=x onerror=alert('title-img')>"
HOSTILE_TEXT = "<script>alert('text')</script> and <img src=x onerror=alert('text-img')>"
HOSTILE_PATH = "/evil'%22%3Cimg%20src=x%20onerror=alert(5)%3E.html"  # as the crawler asks for it
HOSTILE_REASON = "<img src=x onerror=alert('reason')>"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a5d4c3c70000000049454e44ae426082")


class Bookshop:
    """The site's pages, as they are tonight; `routes()` serves them, `next_night()` changes them."""

    def __init__(self, hostile: bool = False) -> None:
        self.hostile = hostile
        self.night = 1
        self._lock = threading.Lock()

    def next_night(self) -> None:
        with self._lock:
            self.night += 1

    def routes(self) -> dict[str, Route]:
        paths = ["/", "/about.html", "/style.css", "/cover.png", "/down.html", "/robots.txt"]
        paths += [f"/books/{number}.html" for number in range(1, 10)]
        if self.hostile:
            paths.append(HOSTILE_PATH)
        return {path: self._route(path) for path in paths}

    def _route(self, path: str) -> Route:
        def route(handler: BaseHTTPRequestHandler) -> None:
            with self._lock:
                status, content_type, body = self._page(path)
            handler.send_response(status, HOSTILE_REASON if self.hostile and status == 503 else None)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        return route

    def _page(self, path: str) -> tuple[int, str, bytes]:
        if path == "/style.css":
            return 200, "text/css", b"body { font-family: serif; } .price { color: #a00; }"
        if path == "/cover.png":
            return 200, "image/png", PNG
        if path == "/robots.txt":
            return 200, "text/plain", b"User-agent: *\nDisallow: /admin/\n"
        if path == "/down.html":
            return 503, "text/html", b"<h1>Service unavailable</h1>"
        if path == HOSTILE_PATH:
            return 200, "text/html", self._hostile()
        if path == "/":
            return 200, "text/html", self._home()
        if path == "/about.html":
            return 200, "text/html", _html("About the shop", "<h1>About</h1><p>Second-hand books since 1987.</p>")
        number = int(path.rsplit("/", 1)[1].split(".", maxsplit=1)[0])
        if number not in self._books():
            return 404, "text/html", b"<h1>Not found</h1>"
        return 200, "text/html", self._book(number)

    def _books(self) -> list[int]:
        return list(range(1, 9)) if self.night == 1 else [*range(1, 8), 9]

    def _home(self) -> bytes:
        links = "".join(f'<li><a href="/books/{n}.html">{_TITLES[n]}</a></li>' for n in self._books())
        extra = f'<a href="{HOSTILE_PATH}">{HOSTILE_TITLE}</a>' if self.hostile else ""
        return _html("The Bookshop", f'<img src="/cover.png" alt=""><h1>The Bookshop</h1><ul>{links}</ul>'
                     '<a href="/about.html">About</a> <a href="/down.html">Opening hours</a> '
                     '<a href="/missing.html">Gift cards</a> <a href="/admin/">Staff</a> '
                     f'<a href="https://elsewhere.example/">Our friends</a> {extra}')

    def _book(self, number: int) -> bytes:
        price = 12 + number + (3 if self.night > 1 and number in (2, 4, 5) else 0)
        blurb = _BLURBS[number % len(_BLURBS)]
        if self.night > 1 and number == 4:
            blurb += " Now with a new afterword by the author."
        if self.night > 1 and number == 5:
            blurb = "Out of print; our last copy, slightly foxed."
        return _html(f"{_TITLES[number]} - The Bookshop",
                     f'<h1>{_TITLES[number]}</h1><p class="price">Price: {price}.00 EUR</p><p>{blurb}</p>'
                     '<p>In stock: yes</p><a href="/">Back to the shop</a>')

    def _hostile(self) -> bytes:
        words = "first version" if self.night == 1 else "second version"
        return (f"<html><head><title>{HOSTILE_TITLE}</title></head><body><p>{words}</p>"
                f"<p>&lt;script&gt;alert('text')&lt;/script&gt; and &lt;img src=x onerror=alert('text-img')&gt;</p>"
                '<a href="javascript:alert(\'link\')">javascript:alert(\'link\')</a></body></html>').encode()


def _html(title: str, body: str) -> bytes:
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title>'
            f'<link rel="stylesheet" href="/style.css"></head><body>{body}</body></html>').encode()


_TITLES = {1: "The Grand Voyage", 2: "A Field Guide to Moths", 3: "Bread and Salt", 4: "The Quiet Harbour",
           5: "Letters from Lisbon", 6: "On Clocks", 7: "Mapping the Fens", 8: "The Last Lamplighter",
           9: "Winter Gardens"}
_BLURBS = ["A sweeping tale of ships and the people who sail them.", "Three hundred species, drawn from life.",
           "Recipes and stories from a village bakery.", "A novel of a small port town over one long summer."]
