"""End to end: the pipeline against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

import crawler.engine.cpu as cpu_module
import crawler.engine.parking as parking_module
import crawler.engine.parse_stage as parse_stage_module
from crawler.demo.server import SiteServer
from crawler.engine.pipeline import fetch_threads
from crawler.engine.run import CrawlRun
from crawler.engine.scope import repeats_segments
from crawler.history.report import CrawlReport
from crawler.mirror.links import extract_links
from crawler.mirror.paths import COLLISION_SUFFIX
from crawler.mirror.writer import Writer
from tests import routes
from tests.conftest import (
    DEMO_CDN_FILES,
    DEMO_SITE_FILES,
    DEMO_URL_COUNT,
    CrawlRunner,
    make_config,
    mirrored_files,
    read_manifest,
)
from tests.offline_check import check_mirror


def host_folder(server: SiteServer) -> str:
    return server.url.split("/")[2]


@pytest.mark.parametrize(("fetchers", "parsers", "writers", "queue_size"),
                         [(1, 1, 1, 1), (16, 4, 4, 2), (4, 2, 2, 100)])
def test_sample_site_is_mirrored_completely_and_each_url_fetched_once(
        site: SiteServer, crawl: CrawlRunner, tmp_path: Path,
        fetchers: int, parsers: int, writers: int, queue_size: int) -> None:
    report, _ = crawl(site.url, threads={"fetchers": fetchers, "parsers": parsers, "writers": writers},
                      queue_size=queue_size)
    out = tmp_path / "out"
    host, cdn = host_folder(site), site.cdn_url.split("/")[2]
    assert mirrored_files(out) == sorted([*(f"{host}/{path}" for path in DEMO_SITE_FILES),
                                          *(f"{cdn}/{path}" for path in DEMO_CDN_FILES)])
    for saved, source in DEMO_SITE_FILES.items():
        if not saved.endswith((".html", ".css")):  # HTML and CSS have their links converted
            assert (out / host / saved).read_bytes() == site.render(source), saved
    counts = site.requests()
    assert max(counts.values()) == 1, [path for path, n in counts.items() if n > 1]
    assert report.outcome == "completed"
    assert report.tally.files_saved == DEMO_URL_COUNT
    assert sorted(failure.url.split("/", 3)[3] for failure in report.tally.failures) == [
        "feed.xml", "missing-page.html"]


def test_manifest_describes_every_saved_file(site: SiteServer, crawl: CrawlRunner, tmp_path: Path) -> None:
    crawl(site.url, mirror={"convert_links": False})  # so that files on disk are bodies as served
    out = tmp_path / "out"
    manifest = read_manifest(out)
    assert [entry["url"] for entry in manifest] == sorted(entry["url"] for entry in manifest)
    assert len(manifest) == DEMO_URL_COUNT
    for entry in manifest:
        assert set(entry) == {"url", "path", "status", "content_type", "size", "sha256", "etag",
                              "last_modified", "fetched_at", "charset", "checked_at", "fresh_until", "rendered"}
        assert entry["rendered"] is False  # render.mode never (the default)
        body = (out / entry["path"]).read_bytes()
        assert entry["size"] == len(body)
        assert entry["sha256"] == hashlib.sha256(body).hexdigest()
        assert entry["status"] == 200 and entry["last_modified"]
    by_url = {entry["url"]: entry for entry in manifest}
    assert by_url[site.url]["path"] == f"{host_folder(site)}/index.html"
    assert by_url[site.url + "static/css/site.css"]["content_type"] == "text/css"


def test_report_counts(site: SiteServer, crawl: CrawlRunner, tmp_path: Path) -> None:
    crawl(site.url)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["outcome"] == "completed"
    assert report["counts"]["saved"] == DEMO_URL_COUNT
    assert report["counts"]["fetched"] == DEMO_URL_COUNT
    assert report["counts"]["failed"] == 2 and report["counts"]["failed_broken_links"] == 2
    assert report["counts"]["skipped_by_scope"] == 1  # https://www.example.com/elsewhere
    assert report["counts"]["skipped_by_robots"] == 1  # /private/
    assert report["skipped_by_rule"] == {"domain": 1, "robots": 1}
    assert report["counts"]["redirects"] == 2  # /old-home -> /, /moved-photo -> a photo, both fetched already
    assert [f["reason"] for f in report["failures"]] == ["http_404", "http_404"]
    assert report["failures"][1]["referrer"] == site.url
    sources = [*DEMO_SITE_FILES.values(), *DEMO_CDN_FILES.values(), "index.html"]
    assert report["bytes_downloaded"] == sum(len(site.render(source)) for source in sources)
    assert report["duration_s"] >= 0


def test_exclude_include_and_depth(site: SiteServer, crawl: CrawlRunner, tmp_path: Path) -> None:
    report, _ = crawl(site.url, scope={"exclude": [r"/blog/"], "include": [r"/docs/", r":\d+/$"],
                                       "max_depth": 1})
    saved = mirrored_files(tmp_path / "out" / host_folder(site))
    pages = [p for p in saved if not p.startswith("static/") and p not in ("favicon.ico", "sitemap.xml", "robots.txt")]
    assert pages == ["docs/index.html", "index.html"]
    assert "docs/advanced/config.html" not in saved  # two hops away
    assert "static/img/icon-doc.png" in saved  # the requisite of a depth-1 page
    rules = set(report.skipped.values())
    assert {"exclude", "include", "domain"} <= rules
    assert all(not path.startswith("/blog/") for path in site.requests())


def test_max_depth_zero_fetches_start_urls_and_their_requisites(site: SiteServer, crawl: CrawlRunner,
                                                                 tmp_path: Path) -> None:
    crawl(site.url, scope={"max_depth": 0})
    saved = mirrored_files(tmp_path / "out" / host_folder(site))
    assert [p for p in saved if p.endswith(".html")] == ["index.html"]
    assert "static/img/banner@2x.png" in saved and "static/css/base.css" in saved


def test_max_depth_counts_hops(tmp_path: Path) -> None:
    with SiteServer(root=None, routes=routes.chain_site(10)) as server:
        CrawlRun(make_config(server.url + "chain/0.html", tmp_path, scope={"max_depth": 3},
                             mirror={"sitemaps": False}, politeness={"robots": False})).run()
        assert sorted(server.requests()) == [f"/chain/{n}.html" for n in range(4)]


def test_without_requisites_images_follow_the_depth_limit_of_pages(tmp_path: Path) -> None:
    """mirror.requisites: false -- an image is one more hop, like a page link."""
    site = {"/": routes.html(b'<img src="/root.png"><a href="/p1.html">p1</a>'),
            "/p1.html": routes.html(b'<img src="/p1.png"><a href="/p2.html">p2</a>'),
            "/p2.html": routes.html(b"<p>two hops</p>"),
            "/root.png": routes.raw(b"png", "image/png"), "/p1.png": routes.raw(b"png", "image/png")}
    with SiteServer(root=None, routes=site) as server:
        report = CrawlRun(make_config(server.url, tmp_path, scope={"max_depth": 1},
                                      mirror={"sitemaps": False, "requisites": False},
                                      politeness={"robots": False})).run()
        assert sorted(server.requests()) == ["/", "/p1.html", "/root.png"]
    assert report.skipped[server.url + "p1.png"] == "max_depth"
    assert report.skipped[server.url + "p2.html"] == "max_depth"


def test_with_requisites_images_of_the_deepest_pages_are_fetched(tmp_path: Path) -> None:
    site = {"/": routes.html(b'<a href="/p1.html">p1</a>'),
            "/p1.html": routes.html(b'<img src="/p1.png"><a href="/p2.html">p2</a>'),
            "/p1.png": routes.raw(b"png", "image/png")}
    with SiteServer(root=None, routes=site) as server:
        CrawlRun(make_config(server.url, tmp_path, scope={"max_depth": 1}, mirror={"sitemaps": False},
                             politeness={"robots": False})).run()
        assert sorted(server.requests()) == ["/", "/p1.html", "/p1.png"]


def test_max_pages_stops_after_that_many_html_pages(tmp_path: Path) -> None:
    with SiteServer(root=None, routes=routes.tree_site(100)) as server:
        pipeline = CrawlRun(make_config(server.url + "gen/0.html", tmp_path / "out",
                                        scope={"max_pages": 10}, threads={"fetchers": 8},
                                        mirror={"sitemaps": False}, politeness={"robots": False}))
        report = pipeline.run()
        assert report.tally.html_pages_saved == 10
        assert sum(server.requests().values()) == 10
        assert len(report.not_fetched) > 0


def uneven_tree(pages: int) -> dict[str, routes.Route]:
    """A binary tree (page n links 2n+1, then 2n+2: breadth first in link order is 0, 1, 2, ...)
    whose pages take uneven times, so that fetchers finish them out of order."""
    return {f"/gen/{n}.html": routes.html(routes.page(*(f"/gen/{c}.html" for c in (2 * n + 1, 2 * n + 2) if c < pages)),
                                          delay=(n * 7 % 5) * 0.003)
            for n in range(pages)}


def test_max_pages_saves_the_pages_closest_to_the_start_and_the_same_every_run(tmp_path: Path) -> None:
    with SiteServer(root=None, routes=uneven_tree(200)) as server:
        config = make_config(server.url + "gen/0.html", tmp_path / "out", scope={"max_pages": 40},
                             threads={"fetchers": 8}, politeness={"robots": False}, mirror={"sitemaps": False})
        first = CrawlRun(config).run()
        assert sorted(entry["url"] for entry in read_manifest(tmp_path / "out")) == \
            sorted(f"{server.url}gen/{n}.html" for n in range(40))
        second = CrawlRun(config).run()  # the site did not change: neither did the mirror
    links = first.offline_links
    assert links is not None and links.ok == links.total  # the links to pages left out are not broken
    assert links.left_out == 41  # pages 19 to 39 link to pages 40 to 80
    assert second.changes is not None
    assert (len(second.changes.added), len(second.changes.removed), second.changes.unchanged) == (0, 0, 40)
    assert sorted(second.not_fetched) == sorted(first.not_fetched)


def test_under_max_pages_a_page_takes_the_place_of_its_earliest_link(tmp_path: Path) -> None:
    """/ links /a (slow) then /b; /a links /x, /y; /b links /z, /y. Breadth first, in link
    order: /, /a, /b, /x, /y (its place in /a, before /z's in /b), /z."""
    site = {"/": routes.html(routes.page("/a", "/b")), "/a": routes.html(routes.page("/x", "/y"), delay=0.2),
            "/b": routes.html(routes.page("/z", "/y"))}
    site |= {f"/{name}": routes.html(routes.page()) for name in "xyz"}
    with SiteServer(root=None, routes=site) as server:
        CrawlRun(make_config(server.url, tmp_path / "out", scope={"max_pages": 5}, politeness={"robots": False},
                             mirror={"sitemaps": False})).run()
    assert sorted(entry["url"].removeprefix(server.url) for entry in read_manifest(tmp_path / "out")) == \
        ["", "a", "b", "x", "y"]


def test_other_hosts_are_not_crawled_unless_listed(tmp_path: Path) -> None:
    with SiteServer(root=None, routes={"/other.html": routes.html(routes.page())}) as other:
        other_url = other.url.replace("127.0.0.1", "localhost") + "other.html"  # another host name
        with SiteServer(root=None, routes={"/": routes.html(routes.page(other_url))}) as main_site:
            report = CrawlRun(make_config(main_site.url, tmp_path / "a")).run()
            assert other.requests() == {}
            assert report.skipped == {other_url: "domain"}
            domains = ["127.0.0.1", "localhost"]
            CrawlRun(make_config(main_site.url, tmp_path / "b", scope={"domains": domains})).run()
            assert other.requests()[f"//localhost:{other.port}/other.html"] == 1


def test_slow_writer_holds_the_fetchers_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Back-pressure: with the disk stalled, at most what the queues and threads hold is fetched."""
    fetchers, parsers, writers, queue_size = 4, 1, 1, 2
    gate = threading.Event()
    original_save = Writer.save

    def stalled_save(self: Writer, *args: object, **kwargs: object) -> object:
        gate.wait(timeout=30)
        return original_save(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Writer, "save", stalled_save)
    with SiteServer(root=None, routes=routes.tree_site(60)) as server:
        pipeline = CrawlRun(make_config(server.url + "gen/0.html", tmp_path / "out",
                                        threads={"fetchers": fetchers, "parsers": parsers, "writers": writers},
                                        queue_size=queue_size, mirror={"sitemaps": False},
                                        politeness={"robots": False}))
        runner = threading.Thread(target=pipeline.run)
        runner.start()
        fetched = _settled_count(lambda: sum(server.requests().values()))
        # held: one page per writer, the write queue, one per parser, the page queue, one per fetcher
        bound = writers + queue_size + parsers + queue_size + fetchers
        assert 0 < fetched <= bound
        stages = pipeline.pipeline
        assert stages is not None
        assert stages.pages.qsize() <= queue_size and stages.writes.qsize() <= queue_size
        gate.set()
        runner.join(timeout=30)
        assert not runner.is_alive()
        assert sum(server.requests().values()) == 60
    assert len(read_manifest(tmp_path / "out")) == 60


def test_retryable_errors_are_retried_then_saved(tmp_path: Path) -> None:
    site_routes = {"/": routes.html(routes.page("/flaky.html", "/down.html")),
                   "/flaky.html": routes.flaky(2, routes.html(routes.page())),
                   "/down.html": routes.status(500)}
    with SiteServer(root=None, routes=site_routes) as server:
        report = CrawlRun(make_config(server.url, tmp_path / "out",
                                      http={"retries": 2, "retry_backoff": 0.01})).run()
        counts = server.requests()
    assert counts["/flaky.html"] == 3
    assert counts["/down.html"] == 3  # the first try and two retries
    assert [f.reason for f in report.tally.failures] == ["http_500"]
    assert report.serious_failures
    assert (tmp_path / "out" / server.url.split("/")[2] / "flaky.html").exists()


def test_a_body_cut_short_is_a_failure_not_a_truncated_file(tmp_path: Path) -> None:
    site_routes = {"/": routes.html(routes.page("/cut.html")), "/cut.html": routes.reset_connection}
    with SiteServer(root=None, routes=site_routes) as server:
        report = CrawlRun(make_config(server.url, tmp_path / "out")).run()
        host = server.url.split("/")[2]
    assert [f.reason for f in report.tally.failures] == ["incomplete_body"]
    assert not (tmp_path / "out" / host / "cut.html").exists()


def test_redirect_targets_are_fetched_once_and_out_of_scope_redirects_not_followed(tmp_path: Path) -> None:
    site_routes = {"/": routes.html(routes.page("/moved", "/target.html", "/away")),
                   "/moved": routes.redirect("/target.html", 301),
                   "/target.html": routes.html(routes.page()),
                   "/away": routes.redirect("http://elsewhere.test/")}
    with SiteServer(root=None, routes=site_routes) as server:
        report = CrawlRun(make_config(server.url, tmp_path / "out")).run()
        counts = server.requests()
    assert counts["/target.html"] == 1
    assert report.skipped.get("http://elsewhere.test/") == "redirect_domain"
    assert not report.tally.failures


def test_a_page_that_breaks_the_parser_is_saved_and_reported(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    real_parse = parse_stage_module.parse_document

    def fragile(body: bytes, url: str, *args: object) -> object:
        if url.endswith("/about"):
            raise ValueError("parser exploded")
        return real_parse(body, url, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(parse_stage_module, "parse_document", fragile)
    with SiteServer() as server:
        report = CrawlRun(make_config(server.url, tmp_path / "out")).run()
        host = server.url.split("/")[2]
    assert (tmp_path / "out" / host / "about.html").exists()
    assert [e.reason for e in report.tally.parse_errors] == ["parse_error"]
    assert report.outcome == "completed"


def test_stop_ends_the_crawl_quickly_with_the_rest_pending(tmp_path: Path) -> None:
    with SiteServer(root=None, routes=routes.tree_site(500, delay=0.05)) as server:
        report = _stopped_after(CrawlRun(make_config(server.url + "gen/0.html", tmp_path / "out",
                                                     threads={"fetchers": 2})), server, requests=5)
    assert report.outcome == "interrupted"
    assert len(report.not_fetched) > 0
    assert len(read_manifest(tmp_path / "out")) == report.tally.files_saved  # type: ignore[attr-defined]


def _stopped_after(pipeline: CrawlRun, server: SiteServer, requests: int) -> CrawlReport:
    """Run `pipeline` until `server` has answered `requests` requests, then stop it (Ctrl-C)."""
    result: list[CrawlReport] = []
    runner = threading.Thread(target=lambda: result.append(pipeline.run()))
    runner.start()
    _wait_for(lambda: sum(server.requests().values()) >= requests)
    pipeline.stop()
    runner.join(timeout=10)
    assert not runner.is_alive()
    return result[0]


def _settled_count(count: Callable[[], int], quiet: float = 0.5, deadline: float = 20.0) -> int:
    """Poll `count()` until it is positive and has not changed for `quiet` seconds."""
    start = time.monotonic()
    last, last_change = -1, time.monotonic()
    while time.monotonic() - start < deadline:
        value = count()
        if value != last:
            last, last_change = value, time.monotonic()
        elif value > 0 and time.monotonic() - last_change >= quiet:
            break
        time.sleep(0.02)
    return last


def _wait_for(condition: Callable[[], bool], deadline: float = 20.0) -> None:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < deadline, "condition not reached"
        time.sleep(0.02)


def test_one_fetcher_keeps_one_connection_per_host_alive(tmp_path: Path) -> None:
    """Redirects and error pages are read to the end, so their connection is reused."""
    with SiteServer() as server:
        CrawlRun(make_config(server.url, tmp_path, threads={"fetchers": 1})).run()
        assert sum(server.requests().values()) > 50
        assert server.connections() == 2  # 127.0.0.1 and localhost (the "CDN")


@pytest.mark.parametrize(("path", "trap"), [
    ("/a/b/a/b/a/b/", True), ("/x/x/x", True), ("/p/a/b/c/a/b/c/a/b/c/d.html", True),
    ("/a/b/a/b/", False), ("/2024/01/01/post.html", False), ("/", False), ("/a/a/b/a/a/b/", False),
])
def test_repeated_segments(path: str, trap: bool) -> None:
    assert repeats_segments("http://h" + path, 3) is trap


def test_report_explains_every_url_that_was_not_saved(site: SiteServer, crawl: CrawlRunner, tmp_path: Path) -> None:
    crawl(site.url)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    saved = {entry["url"] for entry in read_manifest(tmp_path / "out")}
    explained = {
        **{f["url"]: f["reason"] for f in report["failures"]},
        **{s["url"]: s["rule"] for s in report["skipped"]},
        **{r["url"]: "redirect" for r in report["redirected"]},
        **{n["url"]: n["reason"] for n in report["not_fetched"]},
    }
    assert explained == {
        site.url + "feed.xml": "http_404", site.url + "missing-page.html": "http_404",
        site.url + "private/": "robots", "https://www.example.com/elsewhere": "domain",
        site.url + "old-home": "redirect", site.url + "moved-photo": "redirect",
    }
    # and every link of every saved page is either saved or explained
    for entry in read_manifest(tmp_path / "out"):
        if entry["content_type"] == "text/html":
            body = site.render(DEMO_SITE_FILES.get(entry["path"].split("/", 1)[1], "index.html")) \
                if entry["url"].startswith(site.url) else b""
            for link in extract_links(body, entry["url"], "text/html", entry["charset"]):
                assert link.url in saved or link.url in explained, link.url


def test_a_file_moved_aside_for_a_folder_keeps_its_manifest_entry_and_links(tmp_path: Path) -> None:
    site = {"/index.html": routes.html(routes.page("data", "data/x.txt")),
            "/data": routes.text("file data"),
            "/data/x.txt": routes.stall(0.3, then=routes.text("x"))}  # after /data is saved: it moves
    with SiteServer(root=None, routes=site) as server:
        report = CrawlRun(make_config(server.url + "index.html", tmp_path, threads={"fetchers": 1},
                                      mirror={"sitemaps": False}, politeness={"robots": False})).run()
    host = host_folder(server)
    paths = {entry["url"]: entry["path"] for entry in read_manifest(tmp_path)}
    assert paths[server.url + "data"] == f"{host}/data{COLLISION_SUFFIX}"
    assert paths[server.url + "data/x.txt"] == f"{host}/data/x.txt"
    assert (tmp_path / host / f"data{COLLISION_SUFFIX}").read_bytes() == b"file data"
    assert check_mirror(tmp_path).local_broken == []
    assert report.offline_links is not None and report.offline_links.ok == report.offline_links.total == 2


def test_a_frontier_over_its_memory_limit_parks_urls_in_the_crawl_state_and_resumes_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With room for 8 queued pages in memory, a 300-page site is crawled in full: the rest
    wait in the crawl state. Stopped midway and run again, the crawl picks the parked URLs up."""
    monkeypatch.setattr(parking_module, "MAX_QUEUED_PAGES", 8)
    pages = 300
    out = tmp_path / "out"
    with SiteServer(root=None, routes=routes.tree_site(pages, delay=0.01)) as server:
        config = make_config(server.url + "gen/0.html", out, threads={"fetchers": 2},
                             mirror={"sitemaps": False}, politeness={"robots": False})
        stopped = _stopped_after(CrawlRun(config), server, requests=40)
        assert stopped.outcome == "interrupted"
        with sqlite3.connect(out / ".crawl" / "state.sqlite") as db:
            parked = {url for (url,) in db.execute("SELECT url FROM urls WHERE parked IS NOT NULL AND done = 0")}
        db.close()
        assert parked  # and the report lists them with the rest not fetched:
        assert parked <= set(stopped.not_fetched)

        report = CrawlRun(config).run()
        assert report.outcome == "completed"
        host = server.url.split("/")[2]
        assert sorted(mirrored_files(out)) == sorted(f"{host}/gen/{n}.html" for n in range(pages))
        assert max(server.requests().values()) <= 2  # nothing fetched over and over
    assert check_mirror(out).local_broken == []


def test_the_cycle_collector_runs_less_during_a_crawl_and_as_before_after_it(tmp_path: Path) -> None:
    """Raised while the crawl runs (seen by the site's handler, in this process) and the
    objects from before it set aside; both as they were once the crawl is over."""
    before = gc.get_threshold()
    seen: list[tuple[tuple[int, int, int], int]] = []

    def home(handler: BaseHTTPRequestHandler) -> None:
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        routes.send(handler, 200, routes.page())

    with SiteServer(root=None, routes={"/": home}) as server:
        report = CrawlRun(make_config(server.url, tmp_path / "out", mirror={"sitemaps": False},
                                      politeness={"robots": False})).run()
    assert report.outcome == "completed"
    (threshold, frozen), = seen
    assert threshold[0] >= 50_000 and threshold[1:] == before[1:] and frozen > 0
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, 0)


def _stage_cpus() -> dict[str, frozenset[int]]:
    """The CPUs each of the crawl's stage threads may run on now."""
    return {thread.name: frozenset(os.sched_getaffinity(thread.native_id)) for thread in threading.enumerate()
            if thread.name.split("-")[0] in ("fetch", "parse", "write", "state") and thread.native_id}


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: nothing to place")
def test_the_crawl_threads_spread_while_it_waits_and_share_one_cpu_while_it_is_busy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the crawl waits (the site is slow to answer) its stage threads may run anywhere;
    while it keeps a CPU busy (here the site's handler, in this process, burns it) every one
    is kept on the same CPU. The caller's CPUs are as before after the crawl."""
    monkeypatch.setattr(cpu_module, "LOOK_EVERY", 0.05)
    # Lower marks than a crawl's: the suite's other workers share the machine's CPUs.
    monkeypatch.setattr(cpu_module, "TOGETHER_AT", 0.3)
    monkeypatch.setattr(cpu_module, "SPREAD_BELOW", 0.1)
    allowed = frozenset(os.sched_getaffinity(0))
    stages = {"fetch-0", "parse-0", "write-0", "state"}
    seen: dict[str, dict[str, frozenset[int]]] = {}

    def placed(together: bool) -> bool:
        cpus = _stage_cpus()
        kinds = set(cpus.values())
        return stages <= set(cpus) and (len(kinds) == 1 and len(next(iter(kinds))) == 1 if together
                                        else kinds == {allowed})

    def idle(handler: BaseHTTPRequestHandler) -> None:
        _wait_for(lambda: placed(together=False), deadline=10)  # sleeps meanwhile: the process waits
        seen["idle"] = _stage_cpus()
        routes.send(handler, 200, routes.page("/busy"))

    def busy(handler: BaseHTTPRequestHandler) -> None:
        deadline = time.monotonic() + 10
        while not placed(together=True) and time.monotonic() < deadline:
            sum(range(20_000))  # the CPU the crawl's process uses
        seen["busy"] = _stage_cpus()
        routes.send(handler, 200, routes.page())

    with SiteServer(root=None, routes={"/": idle, "/busy": busy}) as server:
        report = CrawlRun(make_config(server.url, tmp_path / "out", mirror={"sitemaps": False},
                                      politeness={"robots": False})).run()
    assert report.outcome == "completed"
    assert stages <= set(seen["idle"]) and set(seen["idle"].values()) == {allowed}
    assert stages <= set(seen["busy"])
    (together,) = set(seen["busy"].values())  # the same CPU for all
    assert len(together) == 1 and together <= allowed
    assert frozenset(os.sched_getaffinity(0)) == allowed


@pytest.mark.parametrize("sections", [
    {"threads": {"one_cpu": False}},
    {"render": {"mode": "auto"}},  # the browser would inherit the CPU: left alone while rendering
])
def test_the_crawl_threads_run_anywhere_with_one_cpu_off_or_while_rendering(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sections: dict[str, Any]) -> None:
    monkeypatch.setattr(cpu_module, "LOOK_EVERY", 0.05)
    monkeypatch.setattr(cpu_module, "TOGETHER_AT", 0.3)  # as in the test above: this would be busy
    allowed = frozenset(os.sched_getaffinity(0))
    seen: list[dict[str, frozenset[int]]] = []

    def busy(handler: BaseHTTPRequestHandler) -> None:
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            sum(range(20_000))
        seen.append(_stage_cpus())
        routes.send(handler, 200, routes.page())

    with SiteServer(root=None, routes={"/": busy}) as server:
        report = CrawlRun(make_config(server.url, tmp_path / "out", mirror={"sitemaps": False},
                                      politeness={"robots": False}, **sections)).run()
    assert report.outcome == "completed"
    (cpus,) = seen
    assert "fetch-0" in cpus and set(cpus.values()) == {allowed}
    assert not any(thread.name == "cpu" for thread in threading.enumerate())


@pytest.mark.parametrize(("threads", "loops"), [
    ({}, 1),  # one parser and one writer: one thread drives the downloads
    ({"parsers": 2}, 2), ({"writers": 3}, 2),  # beside more, a second keeps them going
    ({"fetchers": 1, "parsers": 4}, 1),  # one download at a time needs no second
])
def test_threads_driving_the_downloads(tmp_path: Path, threads: dict[str, int], loops: int) -> None:
    config = make_config("http://127.0.0.1/", tmp_path, threads={"fetchers": 16, **threads},
                         politeness={"per_host": 64})
    driving, each = fetch_threads(config)
    assert driving == loops and driving * each >= 64  # every download per_host allows has a thread
