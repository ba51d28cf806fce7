"""render.mode: pages built by JavaScript, rendered in a real Chromium and saved as the reader saw
them -- then opened from disk in another browser (the tests' own), with no request to the site."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler.config_render import RenderConfig
from crawler.demo.server import SiteServer
from crawler.engine.run import CrawlRun
from crawler.http.fetcher import Fetcher
from crawler.http.policy import Follow
from crawler.models import CrawlItem, LinkKind, Response
from tests import render_site
from tests.conftest import CrawlRunner, make_config, mirrored_files, read_manifest
from tests.render_site import saved_page

RENDERED = {"", "articles/1", "articles/2", "gallery"}


@pytest.fixture
def app() -> Iterator[SiteServer]:
    with render_site.app_site() as server:
        yield server


@contextmanager
def offline(browser: Any, page_file: Path) -> Iterator[tuple[Any, list[str]]]:
    """The saved page opened from disk, and every URL it asked for (only file: ones are let through)."""
    context = browser.new_context()
    asked: list[str] = []

    def answer(route: Any) -> None:
        asked.append(route.request.url)
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            route.abort()

    try:
        context.route("**/*", answer)
        page = context.new_page()
        page.goto(page_file.as_uri(), wait_until="load")
        yield page, asked
    finally:
        context.close()


def test_a_single_page_app_is_saved_as_the_reader_saw_it(app: SiteServer, crawl: CrawlRunner, browser: Any) -> None:
    report, _ = crawl([app.url, app.url + "about.html"], render={"mode": "auto"}, scope={"exclude": ["/tracking/"]})
    out = Path(report.output)
    entries = {entry["url"].removeprefix(app.url): entry for entry in read_manifest(out)}
    # The app's pages (two of them linked only from the navigation its script builds) rendered;
    # the static page with a script left as served.
    assert {path for path, entry in entries.items() if entry["rendered"]} == RENDERED
    assert report.tally.pages_rendered == 4 and not report.tally.render_failures
    # What rendering cost the site, apart from the fetchers' requests: in report.json and report.html.
    counts = json.loads((out / "report.json").read_text())["counts"]
    assert counts["rendered"] == 4 and counts["browser_requests"] == report.tally.browser_requests >= 9
    assert report.tally.browser_bytes > 0
    assert f"4 pages ({report.tally.browser_requests} requests, " in (out / "report.html").read_text()
    # What the browser loaded -- the API's answers, the stylesheet's background -- saved with them.
    assert {"app.js", "app.css", "img/bg.png", "api/articles.json", "api/articles/1.json", "api/articles/2.json",
            "img/one.png", "img/two.png", "img/three.png"} <= set(entries)
    home = saved_page(out, app, "/").read_text()
    assert "Rendered home" in home and "<script" not in home and "<noscript>" in home
    assert '<a href="articles/1.html">Rendered first article</a>' in home  # converted like any page's links
    assert '<meta charset="utf-8">' in home and "onclick" not in home
    about = saved_page(out, app, "/about.html").read_text()
    assert "<script src=" in about and not entries["about.html"]["rendered"]
    # What the browser downloaded is saved from its copy: the site was asked for each once.
    times_asked = Counter(path for _, path in app.request_log())
    assert {path: times_asked["/" + path] for path in ["app.js", "app.css", "img/bg.png", "api/articles.json",
                                                      "api/articles/1.json", "img/one.png"]} == dict.fromkeys(
        ["app.js", "app.css", "img/bg.png", "api/articles.json", "api/articles/1.json", "img/one.png"], 1)
    assert {path for path, times in times_asked.items() if times > 1} == set()  # robots.txt too: the crawl's answer
    # Nothing the crawl may not fetch reached the server: a POST, robots.txt's disallowed, scope.exclude's.
    asked = set(times_asked)
    assert not asked & {"/api/hit", "/private/secret.json", "/tracking/pixel.gif"}
    assert report.skipped[app.url + "tracking/pixel.gif"] == "exclude"
    assert report.skipped[app.url + "private/secret.json"] == "robots"

    app.stop()  # the saved pages alone, from disk
    for path, text in [("/", "2 articles"), ("/articles/1", "about owls"), ("/articles/2", "about herons")]:
        with offline(browser, saved_page(out, app, path)) as (page, urls):
            assert text in page.inner_text("body")
            assert page.eval_on_selector("main h1", "h1 => getComputedStyle(h1).color") == "rgb(0, 128, 0)"
            background = page.evaluate("getComputedStyle(document.body).backgroundImage")
            assert background.startswith('url("file:'), background  # the stylesheet and its image, from disk
            assert all(url.startswith("file:") for url in urls), urls
    with offline(browser, saved_page(out, app, "/")) as (page, urls):
        page.click("text=Rendered second article")  # the navigation the script built, followed on disk
        page.wait_for_load_state("load")
        assert "about herons" in page.inner_text("main")
        assert all(url.startswith("file:") for url in urls), urls
    with offline(browser, saved_page(out, app, "/gallery")) as (page, urls):
        widths = page.eval_on_selector_all("#pictures img", "images => images.map(image => image.naturalWidth)")
        assert widths == [32, 32, 32]
        assert all(url.startswith("file:") for url in urls), urls


def test_a_rendered_page_is_rendered_again_by_the_next_crawl(app: SiteServer, tmp_path: Path) -> None:
    """Its validators and freshness say nothing of what its scripts show: it is saved without
    them, and fetched and rendered again, while a static page still fresh is reused."""
    config = make_config([app.url, app.url + "about.html"], tmp_path / "out", render={"mode": "auto"},
                         scope={"max_depth": 0})
    CrawlRun(config).run()
    entries = {entry["url"].removeprefix(app.url): entry for entry in read_manifest(tmp_path / "out")}
    assert entries[""]["rendered"] and entries[""]["etag"] is None and entries[""]["fresh_until"] is None
    assert not entries["about.html"]["rendered"] and entries["about.html"]["etag"] == '"v1"'
    report = CrawlRun(config).run()
    asked = [path for _, path in app.request_log()]
    assert asked.count("/") == 2 and asked.count("/about.html") == 1
    assert report.tally.pages_rendered == 1 and report.changes is not None
    assert report.changes.to_dict()["summary"]["modified"] == 0  # the same DOM: unchanged


def test_auto_renders_no_static_page_and_starts_no_browser(site: SiteServer, tmp_path: Path) -> None:
    CrawlRun(make_config(site.url, tmp_path / "never")).run()
    run = CrawlRun(make_config(site.url, tmp_path / "auto", render={"mode": "auto"}))
    report = run.run()
    assert run.pipeline is not None and run.pipeline.render_stage is not None
    assert not run.pipeline.render_stage.browser_started
    assert report.tally.pages_rendered == 0
    assert not any(entry["rendered"] for entry in read_manifest(tmp_path / "auto"))
    files = mirrored_files(tmp_path / "never")
    assert files == mirrored_files(tmp_path / "auto")
    for relative in files:  # the same mirror, byte for byte
        assert (tmp_path / "never" / relative).read_bytes() == (tmp_path / "auto" / relative).read_bytes(), relative


def test_render_mode_never_builds_no_render_stage(site: SiteServer, tmp_path: Path) -> None:
    run = CrawlRun(make_config(site.url, tmp_path / "out", scope={"max_depth": 0}))
    run.run()
    assert run.pipeline is not None
    assert run.pipeline.render_stage is None and run.pipeline.renders is None
    assert "render queue" not in run.stats().queued and not run.stats().threads.get("render")


def test_a_page_that_never_loads_is_saved_as_served(tmp_path: Path, crawl: CrawlRunner,
                                                    crawler_log: pytest.LogCaptureFixture) -> None:
    with render_site.app_site(stall=2.5) as server:  # its image: 2.5 s, past render.timeout
        report, _ = crawl([server.url + "never"], render={"mode": "auto", "timeout": 1.5})
    out = Path(report.output)
    assert [(failure.url, failure.reason, failure.message) for failure in report.tally.render_failures] == [
        (server.url + "never", "render_failed", "not loaded within render.timeout (1.5 s)")]
    # As served, its link converted.
    assert saved_page(out, server, "/never").read_bytes() == render_site.NEVER.replace(b"/stall.png", b"stall.png")
    assert not read_manifest(out)[1]["rendered"]
    assert not report.serious_failures  # no failure of the crawl: the page is saved
    warned = [record.getMessage() for record in crawler_log.records if record.levelname == "WARNING"]
    assert f"cannot render {server.url}never: not loaded within render.timeout (1.5 s); saving it as served" in warned
    saved = json.loads((out / "report.json").read_text())
    assert saved["counts"]["render_failed"] == 1 and saved["render_failed"][0]["url"] == server.url + "never"
    assert "render_failed: saved as served (1)" in (out / "report.html").read_text()


def test_a_page_that_crashes_the_renderer_is_saved_as_served_and_the_browser_renders_on(
        app: SiteServer, crawl: CrawlRunner) -> None:
    report, _ = crawl([app.url + "crash", app.url + "gallery"], render={"mode": "auto", "parallel": 1},
                      output_formats=["files", "warc"])
    out = Path(report.output)
    assert [(failure.url, failure.message) for failure in report.tally.render_failures] == [
        (app.url + "crash", "the page crashed the browser's renderer (out of memory?)")]
    entries = {entry["url"].removeprefix(app.url): entry for entry in read_manifest(out)}
    assert not entries["crash"]["rendered"] and entries["gallery"]["rendered"]
    assert saved_page(out, app, "/crash").read_bytes() == render_site.CRASH
    # The WARC keeps what the server sent; the mirror, what the reader saw.
    with next((out / "warc").iterdir()).open("rb") as stream:
        responses = {record.rec_headers.get_header("WARC-Target-URI"): record.content_stream().read()
                     for record in ArchiveIterator(stream) if record.rec_type == "response"}
    assert responses[app.url + "gallery"] == render_site.GALLERY
    assert b"<script>" not in saved_page(out, app, "/gallery").read_bytes()


def _browser_processes(flag: str) -> set[int]:
    """The pids of the Chromiums this process started with `flag`: their browser processes (not
    a tab's, which has a --type=)."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        if flag.encode() in arguments and not any(argument.startswith(b"--type=") for argument in arguments) \
                and _descends_from(int(entry.name), os.getpid()):
            found.add(int(entry.name))
    return found


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1 and pid != ancestor:
        try:
            pid = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
    return pid == ancestor


@pytest.mark.slow
def test_a_browser_that_dies_is_started_again(app: SiteServer, tmp_path: Path) -> None:
    from crawler.render.browser import FLAGS, BrowserHost
    from crawler.render.network import BrowserNetwork
    from crawler.render.page import RenderError, RenderJob

    config = make_config(app.url, tmp_path / "out", render={"mode": "always"})
    fetcher = Fetcher(config.http, in_domains=lambda url: True, may_follow=lambda item, target: Follow.NOW)
    shell = fetcher.fetch(CrawlItem(app.url, 0, LinkKind.PAGE))
    assert isinstance(shell, Response)
    network = BrowserNetwork(fetcher, user_agent="test", robots=False, per_host=4, delay=0, max_redirects=5)
    host = BrowserHost(config.render, network)
    job = RenderJob(app.url, shell, lambda url: None)
    flag = next(flag for flag in FLAGS if flag.startswith("--proxy-server"))
    # An earlier test's browser may still be on its way out: this host's is the one new here.
    earlier = _browser_processes(flag)
    try:
        assert b"Rendered home" in host.render(job).html
        (browser,) = _browser_processes(flag) - earlier
        os.kill(browser, signal.SIGKILL)
        outcomes = []
        for _ in range(2):  # the death is noticed by the next render at the latest
            try:
                outcomes.append(b"Rendered home" in host.render(job).html)
            except RenderError as error:
                outcomes.append(str(error))
        assert outcomes[-1] is True, outcomes
        assert host.restarts == 1
    finally:
        host.close()


def test_a_stopping_crawl_puts_the_pages_to_render_back_and_passes_the_rest_on(tmp_path: Path) -> None:
    """Ctrl-C: what would be rendered is rendered when the crawl resumes, not while it drains."""
    import queue
    from types import SimpleNamespace

    from crawler.engine.outcomes import STOP
    from crawler.engine.render_stage import RenderStage
    from crawler.engine.scope import Scope
    from crawler.models import Page
    from crawler.tally import Tally

    config = make_config("http://h/", tmp_path / "out", render={"mode": "always"})
    put_back: list[str] = []
    frontier = SimpleNamespace(put_back=lambda item: put_back.append(item.url))
    renders: queue.Queue[Any] = queue.Queue()
    pages: queue.Queue[Any] = queue.Queue()
    stage = RenderStage(config, frontier=frontier, fetcher=SimpleNamespace(stopping=True),  # type: ignore[arg-type]
                        scope=Scope(config.scope), renders=renders, pages=pages)

    def page(url: str, content_type: str, body: bytes) -> Page:
        return Page(CrawlItem(url, 0, LinkKind.PAGE), Response(url, 200, content_type, None, body, None, None, ""))

    for item in (page("http://h/", "text/html", render_site.SHELL), page("http://h/app.css", "text/css", b""), STOP):
        renders.put(item)
    stage.run(Tally(stage="render"))
    assert put_back == ["http://h/"]
    assert [pages.get().item.url] == ["http://h/app.css"] and pages.empty()
    assert not stage.browser_started


def test_without_chromium_or_playwright_rendering_is_a_config_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from crawler.cli.main import main

    config = tmp_path / "site.yaml"
    config.write_text("start_urls: http://127.0.0.1:9/\nrender:\n  mode: auto\n")
    monkeypatch.setenv("PATH", str(tmp_path))  # no chromium there
    assert main(["check", str(config)]) == 2
    assert capsys.readouterr().err == (
        f"crawl: error: {config}:2: render: mode auto: a Chromium is needed, and none of chromium, chromium-browser, "
        "google-chrome is on PATH: apt-get install chromium (or name one in render.browser)\n")
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *rest: None)
    with pytest.raises(ValueError, match=r"needs Playwright, which is not installed: pip install 'crawl-mirror\["):
        RenderConfig(mode="always")
    assert RenderConfig(mode="never").browser is None  # never: nothing asked of the machine


@pytest.mark.parametrize(("wait", "expected"), [("network_idle", "network_idle"), ("load", "load"), (2, 2.0),
                                                ("0.5", 0.5)])
def test_render_wait_is_an_event_or_seconds(wait: object, expected: object) -> None:
    assert RenderConfig(wait=wait).wait == expected


@pytest.mark.parametrize("wait", ["idle", 0, -1, True])
def test_a_bad_render_wait_is_refused(wait: object) -> None:
    with pytest.raises(ValueError, match="give network_idle, load, or a number of seconds above 0"):
        RenderConfig(wait=wait)


TEXT = b"<p>" + b"plenty of words " * 10 + b"</p>"  # 130 characters


@pytest.mark.parametrize(("body", "rendered"), [
    (b"<html><body><p>Hello</p></body></html>", False),  # no script: nothing could change it
    (b'<div id="root"></div><script src="/app.js"></script>' + TEXT, True),  # an empty mount element
    (b'<div id="app" class="x">\n  <!-- Vue -->\n</div><script type="module" src="/main.js"></script>', True),
    (b"<app-root></app-root><script src=main.js></script>", True),  # Angular
    (b'<div id="root"><p>server-rendered</p></div><script src=/app.js></script>' + TEXT, False),
    (b'<script type="application/ld+json">{}</script><div id="root"></div>', False),  # data, not code
    (b'<script type="text/javascript">go()</script><div id=__next></div>', True),
    (b"<body><noscript>" + TEXT + b"</noscript><p>Loading...</p><script>x()</script>", True),  # noscript unseen
    (b"<title>" + TEXT + b"</title><body><script>x('" + TEXT + b"')</script><style>p{}</style><!-- x --></body>",
     True),
    (b"<body><h1>Title</h1>" + TEXT + b"<script>analytics()</script>", False),  # a page with its text
    (b'<body><div id="rooted"></div><script>x()</script>' + TEXT, False),  # another id
])
def test_auto_renders_what_looks_like_an_app_shell(body: bytes, rendered: bool) -> None:
    from crawler.render.shell import app_shell

    assert app_shell(body).render is rendered, app_shell(body).why


def test_check_says_whether_a_page_would_be_rendered(app: SiteServer, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from crawler.cli.main import main

    config = tmp_path / "site.yaml"
    urls = [app.url, app.url + "about.html", app.url + "app.css"]
    for mode in ("auto", "always", "never"):
        config.write_text(f"start_urls: [{app.url}]\noutput: {tmp_path / 'out'}\nrender: {{mode: {mode}}}\n")
        assert main(["check", str(config), *urls]) == 0
        assert main(["check", str(config), *urls, "--json"]) == 0
    auto, auto_json, always, always_json, never, never_json = capsys.readouterr().out.split(f"{config}: valid")[1:]
    lines = auto.splitlines()[1:]
    assert lines[0].endswith('; rendered in a browser -- render.mode auto: an app shell: an empty mount element '
                             '<div id="root">')
    assert lines[1].endswith("; not rendered -- render.mode auto: static HTML: a script, but 511 characters of "
                             "visible text (100 or more)")
    assert lines[2].endswith("; not rendered -- text/css, not HTML")
    assert [verdict["rendered"] for verdict in json.loads(auto_json[auto_json.index("["):])] == [True, False, False]
    assert always.splitlines()[2].endswith("; rendered in a browser -- render.mode always")
    assert [verdict["rendered"] for verdict in json.loads(always_json[always_json.index("["):])] == [True, True, False]
    assert "render" not in never
    assert all("rendered" not in verdict for verdict in json.loads(never_json[never_json.index("["):]))


def test_the_progress_display_shows_the_render_stage_and_its_queue() -> None:
    from rich.console import Console

    from crawler.cli.progress import bound_by, line, render
    from crawler.tally import Stats

    stats = Stats(elapsed=3, saved=10, discovered=40, bytes=10_000, errors=0,
                  busy={"fetch": 2, "render": 2, "parse": 0, "write": 1},
                  threads={"fetch": 16, "render": 2, "parse": 2, "write": 2},
                  queued={"render queue": 100, "page queue": 3, "write queue": 0}, queue_size=100, frontier=50)
    assert bound_by(stats) == "rendering pages in the browser (the render queue is full)"
    console = Console(record=True, width=120, color_system=None)
    console.print(render(stats, 3.0))
    rows = [row.rstrip() for row in console.export_text().splitlines()[2:]]
    assert [row.split()[0] for row in rows] == ["fetch", "render", "parse", "write"]
    assert rows[0].endswith("2/16 busy  -> render queue 100/100")
    assert rows[1].endswith("2/2 busy   -> page queue 3/100")
    assert "render 2/2 busy" in line(stats, 3.0) and "render queue 100/100" in line(stats, 3.0)
    static = Stats(elapsed=3, saved=10, discovered=40, bytes=10_000, errors=0, busy={"fetch": 2},
                   threads={"fetch": 16, "render": 0, "parse": 2, "write": 2},
                   queued={"page queue": 3, "write queue": 0}, queue_size=100)
    console = Console(record=True, width=120, color_system=None)
    console.print(render(static, 3.0))
    assert "render" not in console.export_text() and "render" not in line(static, 3.0)


def test_a_manifest_or_crawl_state_from_before_rendering_reads_as_not_rendered(tmp_path: Path) -> None:
    import sqlite3

    from crawler.engine import state_db
    from crawler.history.manifest import load_manifest

    line = {"url": "http://h/", "path": "h/index.html", "status": 200, "content_type": "text/html", "size": 1,
            "sha256": "0" * 64, "etag": None, "last_modified": None, "fetched_at": "2026-11-26T00:00:00+00:00",
            "charset": None, "checked_at": None, "fresh_until": None}
    (tmp_path / "manifest.jsonl").write_text(json.dumps(line) + "\n")
    entries = load_manifest(tmp_path / "manifest.jsonl")
    assert entries is not None and entries[0].rendered is False
    db = sqlite3.connect(tmp_path / "state.sqlite")
    db.execute("CREATE TABLE saved (url TEXT PRIMARY KEY, path TEXT NOT NULL, status INTEGER NOT NULL, "
               "content_type TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL, etag TEXT, "
               "last_modified TEXT, fetched_at TEXT NOT NULL, charset TEXT, checked_at TEXT, fresh_until TEXT, "
               "file_size INTEGER NOT NULL)")
    db.execute("INSERT INTO saved VALUES (?, ?, 200, 'text/html', 1, ?, NULL, NULL, ?, NULL, NULL, NULL, 1)",
               (line["url"], line["path"], line["sha256"], line["fetched_at"]))
    state_db.prepare(db)
    row = db.execute(f"SELECT {state_db.SAVED_COLUMNS} FROM saved").fetchone()
    assert row[-2:] == (0, 1)  # rendered: no; file_size: as it was
