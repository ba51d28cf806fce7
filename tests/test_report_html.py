"""report.html, in a real headless browser: the sections render, nothing but the file itself is
requested, no console error, every link to a saved copy works offline, and a hostile page's
title, URL, text and failure message are shown as text -- never run."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from crawler.demo.server import SiteServer
from crawler.history import report_html
from crawler.history.changes import Changes
from crawler.history.report import CrawlReport
from crawler.models import Failure
from crawler.tally import Tally
from tests import routes
from tests.conftest import CrawlRunner
from tests.report_site import HOSTILE_REASON, HOSTILE_TEXT, HOSTILE_TITLE, Bookshop

SECTIONS = ["Bound by", "Files by content type", "Changes", "Failures", "Skipped by rule"]


def two_nights(crawl: CrawlRunner, keep: int, hostile: bool = False) -> Path:
    """The bookshop crawled on two nights; the second night's report.html."""
    shop = Bookshop(hostile=hostile)
    with SiteServer(root=None, routes=shop.routes()) as server:
        crawl(server.url, snapshots={"keep": keep})
        shop.next_night()
        report, _ = crawl(server.url, snapshots={"keep": keep})
    return report.mirror / "report.html"


@contextmanager
def opened(browser: Any, path: Path) -> Iterator[tuple[Any, dict[str, list[str]]]]:
    """`path` in a new page, and what happened meanwhile: requests, console errors, dialogs."""
    seen: dict[str, list[str]] = {"requests": [], "errors": [], "dialogs": []}
    page = browser.new_page()
    page.on("request", lambda request: seen["requests"].append(request.url))
    page.on("console", lambda message: seen["errors"].append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    page.on("dialog", lambda dialog: (seen["dialogs"].append(dialog.message), dialog.dismiss()))
    try:
        page.goto(path.as_uri())
        yield page, seen
    finally:
        page.close()


def local_targets(page: Any) -> list[Path]:
    """The files the page's links to saved copies lead to."""
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(link => link.href)")
    return [Path(unquote(urlsplit(href).path)) for href in hrefs if href.startswith("file:")]


@pytest.mark.parametrize("keep", [0, 3], ids=["plain", "snapshots"])
def test_the_report_of_a_night_with_changes_renders_offline(crawl: CrawlRunner, browser: Any, keep: int) -> None:
    path = two_nights(crawl, keep)
    if keep:  # in the snapshot, published as latest
        assert (path.parents[2] / "latest").resolve() == path.parent
    assert (path.parent / "report.json").is_file()
    with opened(browser, path) as (page, seen):
        headings = page.eval_on_selector_all("h2", "hs => hs.map(h => h.textContent)")
        assert headings == SECTIONS
        assert page.text_content("h1").startswith("crawl report: 127.0.0.1")
        assert "completed, with failures" in page.text_content("h1")  # the 503: exit status 1
        assert page.locator("svg.chart").count() == 2 and page.locator("svg.chart rect").count() >= 8
        details = page.locator("details")
        assert details.count() == 4  # the modified pages: home, and books 2, 4, 5
        assert all(not d.evaluate("d => d.open") for d in details.all())  # collapsed by default
        first = details.first
        first.locator("summary").click(position={"x": 4, "y": 8})  # the marker, not the link in it
        added = first.locator("pre.diff span.add")
        assert added.first.is_visible() and added.first.text_content() == "+Winter Gardens"
        assert added.first.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
        body = page.text_content("body")
        assert "modified (4)" in body and "added (1)" in body and "removed (1)" in body
        assert "Winter Gardens - The Bookshop" in body  # the added page, with its title
        assert "http_503 (1)" in body and "HTTP 503 Service Unavailable" in body and "robots" in body
        targets = local_targets(page)
    assert seen["requests"] == [path.as_uri()]  # the file itself, nothing else
    assert seen["errors"] == [] and seen["dialogs"] == []
    assert all(target.is_file() for target in targets), [t for t in targets if not t.is_file()]
    names = {target.name for target in targets}
    assert {"9.html", "8.html", "2.html"} <= names  # added, removed (the earlier copy), modified
    earlier = [target for target in targets if target.name == "8.html"]
    assert earlier and all(path.parent not in target.parents for target in earlier) == bool(keep)


def test_hostile_text_is_shown_as_text(crawl: CrawlRunner, browser: Any) -> None:
    path = two_nights(crawl, 3, hostile=True)
    with opened(browser, path) as (page, seen):
        page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
        assert page.url == path.as_uri()
        assert page.evaluate("document.querySelectorAll('script, img, iframe, object, embed, [onerror]').length") == 0
        protocols = page.eval_on_selector_all("a[href]", "links => links.map(link => link.protocol)")
        assert set(protocols) <= {"http:", "https:", "file:"}
        shown = page.inner_text("body")  # as a person sees it
        assert HOSTILE_TITLE in shown and HOSTILE_TEXT in shown and HOSTILE_REASON in shown
        assert "javascript:alert('link')" in shown
        assert "onerror=alert(5)" in unquote(shown)  # the URL
    assert seen["dialogs"] == [] and seen["errors"] == []
    assert seen["requests"] == [path.as_uri()]


def test_every_run_writes_one_even_one_that_failed(crawl: CrawlRunner, browser: Any) -> None:
    with SiteServer() as server:
        url = server.url  # nothing listens on its port once it is gone
    report, _ = crawl(url)
    path = Path(report.output) / "report.html"
    assert json.loads((path.parent / "report.json").read_text())["outcome"] == "unreachable"
    with opened(browser, path) as (page, seen):
        assert "unreachable" in page.text_content("h1")
        assert "connection_error (" in page.text_content("body")
    assert seen["errors"] == [] and seen["requests"] == [path.as_uri()]


def test_long_lists_are_cut_and_say_so(tmp_path: Path) -> None:
    many = 3 * report_html.LIST_CAP
    tally = Tally(failures=[Failure(f"http://example.com/{n}", "timeout", "timed out") for n in range(many)])
    changes = Changes(added=[{"url": f"http://example.com/new/{n}", "path": f"example.com/new/{n}", "size": 1}
                             for n in range(many)], compared_with="2026-01-01T000000Z")
    now = datetime.now(timezone.utc)
    report = CrawlReport(start_urls=["http://example.com/"], output=str(tmp_path), started_at=now, finished_at=now,
                         outcome="completed", tally=tally, skipped={f"http://other.example/{n}": "domain"
                                                                    for n in range(many)},
                         not_fetched=[], changes=changes)
    page = report_html.render(report, tmp_path, later={}, earlier=None)
    assert page.count("http://example.com/new/") == report_html.LIST_CAP
    assert len(re.findall(r"http://example\.com/\d", page)) == report_html.LIST_CAP  # the failures
    assert page.count("http://other.example/") == report_html.EXAMPLES
    assert f"... and {many - report_html.LIST_CAP:,} more" in page
    assert len(page) < 200_000


@pytest.mark.parametrize(("threads", "politeness", "verdict"), [
    ({"fetchers": 2}, {"per_host": 2}, "the network and the site's answers"),  # every download slot waits on the site
    ({"fetchers": 8}, {"per_host": 1, "delay": 0.1}, "politeness or discovery")])  # fetchers wait for the host's turn
def test_the_report_says_what_the_run_was_bound_by(crawl: CrawlRunner, threads: dict[str, int],
                                                   politeness: dict[str, Any], verdict: str) -> None:
    with SiteServer(root=None, routes=routes.tree_site(15, delay=0.15, prefix="/")) as server:
        report, _ = crawl(server.url + "0.html", threads=threads, politeness={"robots": False, **politeness},
                          mirror={"sitemaps": False})
    assert report.duration_s > 1
    data = json.loads((Path(report.output) / "report.json").read_text())
    assert data["bound_by"].startswith(verdict), data["stage_busy_share"]
    assert verdict in (Path(report.output) / "report.html").read_text().replace("&#x27;", "'")
