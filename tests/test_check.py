"""`crawl check`, the progress display and JSON logs."""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from crawler.cli.main import main
from crawler.cli.progress import ProgressReporter, bound_by, line, render
from crawler.demo.server import SiteServer
from crawler.engine.run import CrawlRun
from crawler.tally import Stats
from tests import routes
from tests.conftest import make_config


@pytest.fixture
def checked_site(tmp_path: Path) -> tuple[SiteServer, Path]:
    server = SiteServer(root=None, routes={
        "/robots.txt": routes.text("User-agent: *\nDisallow: /private/\n"),
        "/": routes.html(routes.page())}).start()
    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump({
        "start_urls": [server.url], "output": str(tmp_path / "out"),
        "scope": {"exclude": [r"\.zip$"], "include": [r"/docs/", r":\d+/$", r"/private/"], "max_depth": 3}}))
    yield server, config  # type: ignore[misc]
    server.stop()


def test_check_says_which_rule_decides(checked_site: tuple[SiteServer, Path],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    server, config = checked_site
    urls = [server.url, server.url + "docs/a.html", server.url + "docs/big.zip", server.url + "private/x",
            server.url + "blog/post.html", "https://elsewhere.example/docs/", "mailto:me@example.com",
            server.url + "/".join(["docs", "a", "b"] * 3)]
    assert main(["check", str(config), *urls]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{config}: valid -- start {server.url}")
    verdicts = out[1:]
    assert verdicts[0] == f"{server.url}: crawled -- start_url: a start URL; host 127.0.0.1 is in scope.domains; " \
                          f"{server.url}robots.txt allows it"
    assert verdicts[1].startswith(f"{server.url}docs/a.html: crawled -- scope:")
    assert verdicts[1].endswith("if linked within 3 hops of a start URL")
    assert verdicts[2] == f"{server.url}docs/big.zip: not crawled -- exclude: matches scope.exclude '\\\\.zip$'"
    assert verdicts[3] == f"{server.url}private/x: not crawled -- robots: {server.url}robots.txt disallows it"
    assert verdicts[4] == f"{server.url}blog/post.html: not crawled -- include: matches none of scope.include"
    assert verdicts[5] == "https://elsewhere.example/docs/: not crawled -- domain: host elsewhere.example " \
                          "is not in scope.domains"
    assert verdicts[6].startswith("mailto:me@example.com: not crawled -- url:")
    assert "repeated_segments" in verdicts[7]
    assert server.requests()["/robots.txt"] == 1  # fetched once for all URLs of the host


def test_check_json_and_requisites(checked_site: tuple[SiteServer, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, config = checked_site
    assert main(["check", str(config), "https://cdn.example/lib.js", "--requisite", "--no-robots", "--json"]) == 0
    out = capsys.readouterr().out
    verdicts = json.loads(out[out.index("["):])
    assert verdicts == [{"url": "https://cdn.example/lib.js", "crawled": True, "rule": "scope",
                         "reason": "a requisite of a saved page: fetched whatever its host and depth"}]


def test_options_may_come_between_the_config_and_the_urls(checked_site: tuple[SiteServer, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    _, config = checked_site
    assert main(["check", str(config), "--requisite", "https://cdn.example/lib.js", "--no-robots"]) == 0
    verdict = capsys.readouterr().out.splitlines()[1]
    assert verdict.startswith("https://cdn.example/lib.js: crawled -- scope: a requisite of a saved page")


def test_check_of_a_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("start_urls: [http://a/]\nscope: {max_dept: 2}\n")
    assert main(["check", str(config)]) == 2
    assert "did you mean 'max_depth'" in capsys.readouterr().err


def test_progress_frame_shows_each_stage_and_queue() -> None:
    stats = Stats(elapsed=65, saved=1234, discovered=2310, bytes=12_300_000, errors=3,
                  busy={"fetch": 16, "parse": 1, "write": 0}, threads={"fetch": 16, "parse": 2, "write": 2},
                  queued={"page queue": 12, "write queue": 3}, queue_size=100)
    console = Console(file=StringIO(), width=100, record=True)
    console.print(render(stats, 245.1))
    frame = console.export_text()
    assert "1,234 saved / 2,310 found" in frame and "12.3 MB" in frame and "245.1 pages/s" in frame
    assert "3 errors" in frame and "0:01:05" in frame
    assert "16/16 busy" in frame and "-> page queue 12/100" in frame and "-> write queue 3/100" in frame
    assert line(stats, 2.5).startswith("progress: 1234 saved / 2310 found, 12.3 MB, 2.5 pages/s, 3 errors")


def test_a_stage_with_every_thread_busy_shows_a_full_bar_on_a_16_colour_terminal() -> None:
    stats = Stats(elapsed=1, saved=1, discovered=2, bytes=0, errors=0, busy={"fetch": 4, "parse": 0, "write": 0},
                  threads={"fetch": 4, "parse": 2, "write": 2}, queued={}, queue_size=100)
    console = Console(file=StringIO(), width=100, force_terminal=True, color_system="standard")
    with console.capture() as capture:
        console.print(render(stats, 1.0))
    rows = {row.split("\x1b[0m", 1)[0].removeprefix("\x1b[1m"): row for row in capture.get().splitlines()}
    busy_colour, idle_colour = "\x1b[91m━", "\x1b[90m━"
    assert busy_colour in rows["fetch"] and idle_colour not in rows["fetch"]
    assert idle_colour in rows["parse"] and busy_colour not in rows["parse"]


def test_progress_is_logged_while_a_crawl_runs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with SiteServer(root=None, routes=routes.tree_site(60, delay=0.02)) as server:
        pipeline = CrawlRun(make_config(server.url + "gen/0.html", tmp_path, threads={"fetchers": 2}))
        with caplog.at_level("INFO", logger="crawler.cli.progress"), \
                ProgressReporter(pipeline.stats, live=False, every=0.1):
            pipeline.run()
    lines = [record.getMessage() for record in caplog.records if record.name == "crawler.cli.progress"]
    assert len(lines) >= 3 and all(message.startswith("progress: ") for message in lines)
    assert any("fetch " in message and "busy" in message for message in lines)


def test_json_logs(tmp_path: Path) -> None:
    with SiteServer(root=None, routes={"/": routes.html(routes.page())}) as server:
        config = tmp_path / "site.yaml"
        config.write_text(yaml.safe_dump({"start_urls": [server.url], "output": str(tmp_path / "out")}))
        result = subprocess.run([sys.executable, "-m", "crawler", str(config), "-v", "--log-format", "json"],
                                capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    entries = [json.loads(text) for text in result.stderr.splitlines()]
    assert entries and all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    assert any(entry["message"].startswith("completed:") for entry in entries)


def test_json_logs_give_the_summary_and_failures_as_fields(tmp_path: Path) -> None:
    site = {"/": routes.html(routes.page("/gone.html"))}
    with SiteServer(root=None, routes=site) as server:
        config = tmp_path / "site.yaml"
        config.write_text(yaml.safe_dump({"start_urls": [server.url], "output": str(tmp_path / "out"),
                                          "mirror": {"sitemaps": False}}))
        result = subprocess.run([sys.executable, "-m", "crawler", str(config), "-v", "--log-format", "json"],
                                capture_output=True, text=True, timeout=60, check=False)
    entries = [json.loads(text) for text in result.stderr.splitlines()]
    assert all("\n" not in entry["message"] for entry in entries)
    summary = next(entry for entry in entries if entry["message"].startswith("completed:"))
    assert summary["outcome"] == "completed" and summary["output"] == str(tmp_path / "out")
    assert summary["counts"]["saved"] == 1 and summary["counts"]["failed_broken_links"] == 1
    assert summary["failures_by_reason"] == {"http_404": 1}
    failed = next(entry for entry in entries if entry["message"].startswith("failed "))
    assert (failed["url"], failed["reason"]) == (server.url + "gone.html", "http_404")


@pytest.mark.parametrize(("busy", "queued", "frontier", "retrying", "bound"), [
    ({"fetch": 4}, {}, 100, 0, "the network"),
    ({"fetch": 4}, {"page queue": 10, "write queue": 10}, 100, 0, "writing"),
    ({"fetch": 4}, {"page queue": 10}, 100, 0, "parsing"),
    ({"fetch": 1}, {}, 100, 0, "politeness"),
    ({"fetch": 0}, {}, 0, 3, "retries"),
    ({"fetch": 0}, {}, 0, 0, "discovery"),
])
def test_progress_says_what_the_crawl_is_bound_by(busy: dict[str, int], queued: dict[str, int], frontier: int,
                                                  retrying: int, bound: str) -> None:
    stats = Stats(elapsed=1, saved=1, discovered=2, bytes=0, errors=0, busy=busy,
                  threads={"fetch": 4, "parse": 2, "write": 2}, queued=queued, queue_size=10,
                  frontier=frontier, retrying=retrying)
    assert bound_by(stats).startswith(bound)
    assert f"{frontier} URLs waiting, {retrying} to retry; bound by {bound}" in line(stats, 1.0)
    console = Console(file=StringIO(), width=140, record=True)
    console.print(render(stats, 1.0))
    assert f"bound by {bound}" in console.export_text()


@pytest.mark.parametrize(("busy", "queued", "held", "limit", "bound"), [
    ({"fetch": 2}, {}, 0, True, "max_pages reached"),
    ({"fetch": 0, "write": 2}, {"write queue": 3}, 40, True, "max_pages reached"),
    ({"fetch": 0}, {}, 12, False, "max_pages order"),
    ({"fetch": 0, "parse": 1, "write": 2}, {"write queue": 3}, 0, False, "finishing"),
])
def test_progress_says_when_max_pages_or_the_last_writes_hold_the_crawl(
        busy: dict[str, int], queued: dict[str, int], held: int, limit: bool, bound: str) -> None:
    stats = Stats(elapsed=1, saved=1, discovered=2, bytes=0, errors=0, busy=busy,
                  threads={"fetch": 4, "parse": 2, "write": 2}, queued=queued, queue_size=10,
                  held=held, page_limit_reached=limit)
    assert bound_by(stats).startswith(bound)


def test_a_crawl_that_reached_max_pages_says_so_not_politeness(tmp_path: Path) -> None:
    with SiteServer(root=None, routes=routes.tree_site(60)) as server:
        pipeline = CrawlRun(make_config(server.url + "gen/0.html", tmp_path, scope={"max_pages": 5},
                                        politeness={"robots": False}, mirror={"sitemaps": False}))
        pipeline.run()
    stats = pipeline.stats()
    assert bound_by(stats).startswith("max_pages reached")
    assert stats.frontier == 0 and stats.held > 0


def test_a_polite_crawl_logs_that_politeness_holds_it_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # One host, four fetchers, a delay between requests: fetchers wait, URLs wait, and the
    # progress line says why.
    with SiteServer(root=None, routes=routes.tree_site(30)) as server:
        pipeline = CrawlRun(make_config(server.url + "gen/0.html", tmp_path, threads={"fetchers": 4},
                                        politeness={"robots": False, "per_host": 1, "delay": 0.05}))
        with caplog.at_level("INFO", logger="crawler.cli.progress"), \
                ProgressReporter(pipeline.stats, live=False, every=0.2):
            pipeline.run()
    lines = [record.getMessage() for record in caplog.records if record.name == "crawler.cli.progress"]
    assert any("bound by politeness" in message for message in lines)


def test_check_names_the_robots_meta_nofollow_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with SiteServer(root=None, routes={
            "/": routes.html(b'<meta name="robots" content="noindex, nofollow"><a href="/a.html">a</a>'),
            "/a.html": routes.html(b"<p>no meta</p>")}) as server:
        config = tmp_path / "site.yaml"
        config.write_text(yaml.safe_dump({"start_urls": [server.url], "output": str(tmp_path / "out")}))
        assert main(["check", str(config), server.url, server.url + "a.html"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith(f"{server.url}: crawled -- start_url:")
    assert out[1].endswith("its links are not followed -- robots_meta_nofollow: the page says nofollow "
                           "(robots meta tag or X-Robots-Tag)")
    assert "robots_meta_nofollow" not in out[2]
