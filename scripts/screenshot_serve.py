"""docs/img/serve.png: the timeline `crawl serve` shows for four nights of a small bookshop.

Re-run after changing the server's pages (it is not part of the test suite):

    .venv/bin/python scripts/screenshot_serve.py [--keep FOLDER]

A local site changes between four crawls in snapshot mode, dated as four nights apart (the
crawl's clock is shifted); `crawl serve` serves the result and the tests' headless Chromium
(tests/browser.py) photographs the timeline.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from unittest import mock

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.cli.main import main  # noqa: E402
from crawler.cli.serve import HistoryServer  # noqa: E402
from crawler.demo.server import SiteServer  # noqa: E402
from tests import routes  # noqa: E402
from tests.browser import CHROMIUM_FLAGS, system_chromium  # noqa: E402

IMAGE = ROOT / "docs" / "img" / "serve.png"
FIRST_NIGHT = datetime(2026, 5, 1, 2, 0, 7, tzinfo=timezone.utc)
CLOCKED = ("crawler.engine.run", "crawler.engine.finish", "crawler.engine.write_stage", "crawler.history.recrawl",
           "crawler.http.fetcher")
BOOKS = {"the-river": ("The River", "£12.99"), "salt-and-stone": ("Salt and Stone", "£8.50"),
         "night-trains": ("Night Trains", "£10.00"), "paper-moons": ("Paper Moons", "£7.25")}


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title} - Riverside Books</title>'
            f'<link rel="stylesheet" href="/style.css"></head><body><h1>{title}</h1>{body}'
            '<p><a href="/">Home</a> <a href="/news.html">News</a></p></body></html>')


def home(books: dict[str, tuple[str, str]], note: str) -> str:
    items = "".join(f'<li><a href="/books/{slug}.html">{title}</a> {price}</li>'
                    for slug, (title, price) in books.items())
    return page("Riverside Books", f'<img src="/cover.png" alt=""><p>{note}</p><ul>{items}</ul>')


def publish(site: routes.MutableSite, books: dict[str, tuple[str, str]], note: str, news: list[str]) -> None:
    """The site as it is tonight: a book no longer sold has no page any more."""
    for path in [path for path in site.files if path.startswith("/books/")]:
        site.remove(path)
    site.put("/", home(books, note))
    for slug, (title, price) in books.items():
        site.put(f"/books/{slug}.html", page(title, f"<p>{title}, paperback, {price}.</p>"))
    site.put("/news.html", page("News", "".join(f"<p>{item}</p>" for item in news)))


@contextmanager
def night(number: int) -> Iterator[None]:
    """The crawl's clock, as if it ran `number` nights after the first, at 02:00."""
    shift = FIRST_NIGHT + timedelta(days=number) - datetime.now(timezone.utc)

    class Clock(datetime):
        @classmethod
        def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
            return datetime.now(tz) + shift  # type: ignore[arg-type]

    patches = [mock.patch(f"{module}.datetime", Clock) for module in CLOCKED]
    for patch in patches:
        patch.start()
    try:
        yield
    finally:
        for patch in patches:
            patch.stop()


def crawl_four_nights() -> Path:
    """Four nights of crawls into output/books of the current folder (as the page shows it)."""
    site = routes.MutableSite()
    books = dict(BOOKS)
    news = ["Poetry evening on Friday."]
    site.put("/style.css", "body { font-family: serif; }", "text/css")
    site.put("/cover.png", b"\x89PNG\r\n\x1a\n" + b"cover" * 40, "image/png")
    with SiteServer(root=None, routes={}) as server:
        config = Path("books.yaml")
        config.write_text(yaml.safe_dump({
            "start_urls": [server.url], "output": "output/books", "snapshots": {"keep": 30},
            "mirror": {"heuristic_freshness": 0, "sitemaps": False}, "politeness": {"robots": False},
            "http": {"retries": 0}}))
        nights = [  # what the site says that night, what changed, and whether its book pages fail
            ("Open every day.", lambda: None, False),
            ("Open every day. Summer sale!", lambda: books.update(
                {"the-river": ("The River", "£9.99"), "winter-light": ("Winter Light", "£11.00")}), False),
            ("Open every day. Summer sale!", lambda: None, True),
            ("Closed on Monday.", lambda: (books.pop("night-trains"), news.insert(0, "Signing on 12 May.")), False),
        ]
        for number, (note, change, failing) in enumerate(nights):
            change()
            publish(site, books, note, news)
            server.routes.clear()
            server.routes.update(site.routes())
            if failing:  # the shop's database is down: the book pages answer 503
                server.routes.update({path: routes.status(503) for path in site.files if path.startswith("/books/")})
            with night(number):
                main([str(config)])
    return Path("output/books")


def photograph(output: Path) -> None:
    from playwright.sync_api import sync_playwright

    with HistoryServer(output, port=0) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=system_chromium(), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 720}, color_scheme="light")
        page.goto(server.url)  # the newest run's changes are open
        IMAGE.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(IMAGE))
        browser.close()
    print(f"wrote {IMAGE.relative_to(ROOT)} ({IMAGE.stat().st_size // 1024} KB)")


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=Path, help="crawl into this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        here = os.getcwd()
        os.chdir(folder)
        try:
            photograph(crawl_four_nights())
        finally:
            os.chdir(here)


if __name__ == "__main__":
    run()
