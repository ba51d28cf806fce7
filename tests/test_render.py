"""render.mode: pages built by JavaScript, rendered in a real Chromium and saved as the reader saw
them -- then opened from disk in another browser (the tests' own), with no request to the site."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler.config import RenderConfig
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
    # What the browser loaded -- the API's answers, the stylesheet's background -- saved with them.
    assert {"app.js", "app.css", "img/bg.png", "api/articles.json", "api/articles/1.json", "api/articles/2.json",
            "img/one.png", "img/two.png", "img/three.png"} <= set(entries)
    home = saved_page(out, app, "/").read_text()
    assert "Rendered home" in home and "<script" not in home and "<noscript>" in home
    assert '<a href="articles/1.html">Rendered first article</a>' in home  # converted like any page's links
    assert '<meta charset="utf-8">' in home
    about = saved_page(out, app, "/about.html").read_text()
    assert "<script src=" in about and not entries["about.html"]["rendered"]
    # Nothing the crawl may not fetch reached the server: a POST, robots.txt's disallowed, scope.exclude's.
    asked = {path for _, path in app.request_log()}
    assert not asked & {"/api/hit", "/private/secret.json", "/tracking/pixel.gif"}
    assert report.skipped[app.url + "tracking/pixel.gif"] == "exclude"
    assert report.skipped[app.url + "private/secret.json"] == "robots"

    app.stop()  # the saved pages alone, from disk
    for path, text in [("/", "2 articles"), ("/articles/1", "about owls"), ("/articles/2", "about herons")]:
        with offline(browser, saved_page(out, app, path)) as (page, urls):
            assert text in page.inner_text("body")
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


def _browser_process(flag: str) -> int | None:
    """The pid of this process's descendant Chromium (its browser process, not a tab's) started
    with `flag`."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    waiting, found = [os.getpid()], None
    while waiting:
        pid = waiting.pop()
        waiting += children.get(pid, [])
        try:
            arguments = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if flag.encode() in arguments and not any(argument.startswith(b"--type=") for argument in arguments):
            found = pid
    return found


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
    try:
        assert b"Rendered home" in host.render(job).html
        browser = _browser_process(next(flag for flag in FLAGS if flag.startswith("--proxy-server")))
        assert browser is not None
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
