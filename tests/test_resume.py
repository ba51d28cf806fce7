"""Interrupt and resume: Ctrl-C, kill -9, disk full, a second crawl of the same folder."""

from __future__ import annotations

import errno
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

import crawler.mirror.writer as writer_module
from crawler.cli.main import main
from crawler.demo.server import SiteServer
from crawler.engine.run import CrawlRun
from crawler.engine.state import SqliteState
from crawler.errors import OutputError
from crawler.history.report import CrawlReport
from crawler.mirror.writer import Writer
from crawler.models import SavedFile
from tests import routes
from tests.conftest import make_config, mirrored_files, read_manifest

PAGES = 240


def resume_site() -> dict[str, routes.Route]:
    """A tree of pages, each with an image, served slowly enough to be interrupted."""
    site = {}
    for number in range(PAGES):
        children = [f"/gen/{child}.html" for child in (2 * number + 1, 2 * number + 2) if child < PAGES]
        body = routes.page(*children).replace(b"<body>", f'<body><img src="/img/{number}.png">'.encode())
        site[f"/gen/{number}.html"] = routes.html(body, delay=0.004)
        site[f"/img/{number}.png"] = routes.raw(bytes([number % 256]) * (500 + number), "image/png")
    return site


@pytest.fixture(scope="module")
def server() -> Iterator[SiteServer]:
    with SiteServer(root=None, routes=resume_site()) as running:
        yield running


def config_file(folder: Path, server: SiteServer, **sections: object) -> Path:
    data = {"start_urls": [server.url + "gen/0.html"], "output": str(folder / "out"),
            "threads": {"fetchers": 2}, "http": {"timeout": 5, "retries": 0}, **sections}
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def start_crawl(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "crawler", str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_requests(server: SiteServer, since: int, count: int) -> None:
    deadline = time.monotonic() + 60
    while len(server.request_log()) - since < count:
        assert time.monotonic() < deadline, "the crawl did not get going"
        time.sleep(0.01)


def recorded_saved(out: Path) -> set[str]:
    with sqlite3.connect(out / ".crawl" / "state.sqlite") as db:
        return {url for (url,) in db.execute("SELECT url FROM saved")}


def without_times(manifest: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{key: value for key, value in entry.items() if key not in ("fetched_at", "checked_at", "fresh_until")}
            for entry in manifest]


def assert_same_mirror(expected: Path, actual: Path) -> None:
    assert mirrored_files(actual) == mirrored_files(expected)
    for relative in mirrored_files(expected):
        assert (actual / relative).read_bytes() == (expected / relative).read_bytes(), relative
    assert without_times(read_manifest(actual)) == without_times(read_manifest(expected))


@pytest.fixture(scope="module")
def uninterrupted(server: SiteServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("uninterrupted")
    assert main([str(config_file(folder, server))]) == 0
    return folder / "out"


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM], ids=["kill-9", "ctrl-c", "sigterm"])
def test_an_interrupted_crawl_resumes_to_the_same_mirror(
        server: SiteServer, uninterrupted: Path, tmp_path: Path, how: signal.Signals) -> None:
    config = config_file(tmp_path, server)
    before = len(server.request_log())
    with start_crawl(config) as process:
        wait_for_requests(server, before, 120)
        process.send_signal(how)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == (-signal.SIGKILL if how == signal.SIGKILL else 130), stderr
    out = tmp_path / "out"
    saved_first = recorded_saved(out)
    assert 0 < len(saved_first) < 2 * PAGES

    second_run_starts = len(server.request_log())
    result = subprocess.run([sys.executable, "-m", "crawler", str(config), "-v"], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "resuming the crawl" in result.stderr
    fetched_again = {server.url + path.lstrip("/") for _, path in server.request_log()[second_run_starts:]}
    assert fetched_again & saved_first == set()  # nothing saved is downloaded again
    assert_same_mirror(uninterrupted, out)
    report = json.loads((out / "report.json").read_text())
    assert report["outcome"] == "completed" and report["resumed_crawl_started_at"]
    assert report["counts"]["saved"] == len(read_manifest(out))


def test_a_finished_crawl_started_again_is_a_new_crawl(server: SiteServer, tmp_path: Path) -> None:
    config = make_config(server.url + "gen/200.html", tmp_path, mirror={"sitemaps": False})
    CrawlRun(config).run()
    before = len(server.request_log())
    report = CrawlRun(config).run()
    assert report.resumed_from is None
    assert {path for _, path in server.request_log()[before:]} >= {"/gen/200.html", "/img/200.png"}


def test_a_second_crawl_of_the_same_folder_is_refused(server: SiteServer, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    config = config_file(tmp_path, server)
    before = len(server.request_log())
    with start_crawl(config) as process:
        wait_for_requests(server, before, 20)
        assert main([str(config)]) == 1
        error = capsys.readouterr().err
        assert f"another crawl (pid {process.pid})" in error and error.count("\n") == 1
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert len(read_manifest(tmp_path / "out")) == 2 * PAGES  # pages and their images


def test_disk_full_stops_with_exit_1_and_the_crawl_resumes(server: SiteServer, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = config_file(tmp_path, server, scope={"max_depth": 4})
    real_write = Writer._write_temp
    writes = [0]

    def filling_disk(self: Writer, folder: str, data: bytes) -> str:
        writes[0] += 1
        if writes[0] > 15:  # what the writer makes of the system's answer when the disk is full
            raise writer_module._as_output_error(OSError(errno.ENOSPC, "No space left on device"), folder)
        return real_write(self, folder, data)

    monkeypatch.setattr(Writer, "_write_temp", filling_disk)
    assert main([str(config)]) == 1
    assert capsys.readouterr().err.count("No space left on device") == 1  # said once, not logged then said
    report = json.loads((tmp_path / "out" / "report.json").read_text()) if \
        (tmp_path / "out" / "report.json").exists() else None
    assert report is None or report["outcome"] == "aborted"

    monkeypatch.setattr(Writer, "_write_temp", real_write)  # space was freed
    assert main([str(config)]) == 0
    manifest = read_manifest(tmp_path / "out")
    assert len(manifest) == 2 * 31  # the 31 pages within depth 4 and their images


def test_status_follows_a_crawl_from_another_shell(tmp_path: Path, server: SiteServer,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = config_file(tmp_path, server)

    def status() -> tuple[int, dict[str, object]]:
        code = main(["status", str(config), "--json"])
        return code, json.loads(capsys.readouterr().out)

    assert status() == (1, {**status()[1], "state": "never"})
    since = len(server.request_log())
    crawl = start_crawl(config)
    try:
        wait_for_requests(server, since, 40)
        deadline = time.monotonic() + 30
        while (running := status())[1]["files_saved"] == 0:
            assert time.monotonic() < deadline, "nothing was journaled"
            time.sleep(0.02)
        code, seen = running
        assert code == 0 and seen["state"] == "running" and seen["pid"] == crawl.pid
        assert seen["urls_pending"] > 0 and seen["urls_seen"] > seen["urls_pending"]
    finally:
        crawl.send_signal(signal.SIGKILL)
        crawl.communicate()
    code, killed = status()
    assert code == 1 and killed["state"] == "interrupted" and killed["pid"] is None
    assert main(["status", str(config)]) == 1
    assert "was interrupted; the next run resumes it" in capsys.readouterr().out

    assert main([str(config)]) == 0  # the status queries took no lock: the crawl resumes
    capsys.readouterr()
    code, done = status()
    assert code == 0 and done["state"] == "completed" and done["urls_pending"] == 0
    assert done["files_saved"] == len(read_manifest(tmp_path / "out"))
    assert done["report"]["outcome"] == "completed"  # type: ignore[index]


def test_a_journal_event_that_fails_stops_the_crawl_instead_of_hanging_it(tmp_path: Path) -> None:
    """Whatever goes wrong while the journal thread applies events, those who wait for it
    (flush, close) are released, and the crawl hears of the error."""
    errors: list[OutputError] = []
    state = SqliteState(tmp_path, errors.append)
    state.open("{}", "2026-11-26T00:00:00+00:00")

    def broken(links: str) -> str:
        raise RuntimeError("a bug")

    state.saved(SavedFile("http://site.test/", "site.test/index.html", 200, "text/html", 0, "0" * 64, None, None,
                          "2026-11-26T00:00:00+00:00"), "[]")
    state.flush()
    state.outlinks_changed("site.test/index.html", broken)
    state.flush()  # returns: the journal is not dead with the flush unanswered
    state.close()
    assert len(errors) == 1 and "a bug" in str(errors[0])


def test_a_crawl_state_from_before_parking_is_resumed(tmp_path: Path) -> None:
    """A state file whose urls table has no `parked` column (written by the version before)
    gets the column, and its interrupted crawl resumes with its pending URLs."""
    (tmp_path / ".crawl").mkdir()
    with sqlite3.connect(tmp_path / ".crawl" / "state.sqlite") as db:
        db.executescript("""
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE urls (
                url TEXT PRIMARY KEY, kind TEXT NOT NULL, depth INTEGER NOT NULL, chain INTEGER NOT NULL,
                referrer TEXT, guessed INTEGER NOT NULL, done INTEGER NOT NULL DEFAULT 0);
            INSERT INTO meta VALUES ('status', 'running'), ('schema', '3'), ('started_at', 'then'),
                                    ('config', '{}'), ('snapshot', '');
            INSERT INTO urls VALUES ('http://site.test/', 'page', 0, 0, NULL, 0, 1),
                                    ('http://site.test/next.html', 'page', 1, 0, 'http://site.test/', 0, 0);
        """)
    db.close()
    state = SqliteState(tmp_path, lambda error: None)
    resumed = state.open("{}", "now")
    state.close()
    assert resumed is not None and resumed.started_at == "then"
    assert [item.url for item in resumed.pending] == ["http://site.test/next.html"] and resumed.parked == {}


HELD = {"/held.html": routes.stall(30, routes.html(routes.page()))}  # in flight when the crawl stops


def stop_then_resume(server: SiteServer, out: Path, ready: Callable[[Path], bool], what: str) -> CrawlReport:
    """Crawl until `ready(host folder)`, stop (Ctrl-C) while /held.html is in flight, let
    /held.html answer, and resume; the resumed run's report."""
    config = make_config(server.url, out, mirror={"sitemaps": False}, politeness={"robots": False})
    first = CrawlRun(config)
    running = threading.Thread(target=first.run)
    running.start()
    deadline = time.monotonic() + 20
    while not ready(out / server.url.split("/")[2]):
        assert time.monotonic() < deadline, what
        time.sleep(0.02)
    first.stop()
    running.join()
    server.routes["/held.html"] = routes.html(routes.page())
    return CrawlRun(config).run()


def test_a_page_whose_links_were_fixed_is_not_downloaded_again_on_resume(tmp_path: Path) -> None:
    # "/" is written with a link to gone.html as a file; gone.html answers 404 a moment later,
    # so "/" is rewritten with the link as a URL -- and is a different size from then on.
    site = {"/": routes.html(routes.page("/gone.html", "/held.html")),
            "/gone.html": routes.stall(0.3, routes.status(404)), **HELD}
    with SiteServer(root=None, routes=site) as server:
        gone = f"{server.url}gone.html".encode()

        def fixed(host: Path) -> bool:
            return (host / "index.html").exists() and gone in (host / "index.html").read_bytes()
        report = stop_then_resume(server, tmp_path, fixed, "the link to gone.html was not fixed")
        fetched = server.requests()
    assert report.outcome == "completed" and report.resumed_from
    assert fetched == {"/": 1, "/gone.html": 1, "/held.html": 2}  # "/" saved before the stop: not again
    assert gone in next(tmp_path.glob("127.0.0.1*/index.html")).read_bytes()


def test_links_to_a_redirect_written_before_an_interruption_follow_it_after_resuming(tmp_path: Path) -> None:
    # "/" is written while /go is not fetched yet: its link names go.html, the file /go would
    # have been. /go turns out to redirect; the crawl stops before the end fixes the link.
    site = {"/": routes.html(routes.page("/go", "/held.html")), "/go": routes.redirect("/target.html"),
            "/target.html": routes.stall(0.3, routes.html(routes.page(title="target"))), **HELD}
    with SiteServer(root=None, routes=site) as server:
        report = stop_then_resume(server, tmp_path, lambda host: (host / "target.html").exists(),
                                  "target.html was not saved")
    assert report.outcome == "completed" and report.resumed_from
    home = next(tmp_path.glob("127.0.0.1*/index.html")).read_text()
    assert '<a href="target.html">/go</a>' in home


def test_a_crawl_killed_before_its_start_urls_were_journaled_starts_them_on_resume(tmp_path: Path) -> None:
    with SiteServer(root=None, routes={"/": routes.html(routes.page())}) as server:
        config = make_config(server.url, tmp_path, mirror={"sitemaps": False}, politeness={"robots": False})
        state = SqliteState(tmp_path, lambda error: None)
        state.open(config.model_dump_json(), "2026-11-26T00:00:00+00:00")  # "running", nothing else yet
        state.close()
        report = CrawlRun(config).run()
        assert server.requests()["/"] == 1
    assert report.resumed_from and report.tally.files_saved == 1


def test_a_file_saved_just_before_a_kill_is_not_downloaded_again(tmp_path: Path) -> None:
    """Its entry was journaled, its "done" not: saved whole is done."""
    with SiteServer(root=None, routes={"/": routes.html(routes.page("/a.html")),
                                       "/a.html": routes.html(routes.page())}) as server:
        config = make_config(server.url, tmp_path, mirror={"sitemaps": False}, politeness={"robots": False})
        CrawlRun(config).run()
        with sqlite3.connect(tmp_path / ".crawl" / "state.sqlite") as db:  # as the kill left it
            db.execute("UPDATE meta SET value = 'running' WHERE key = 'status'")
            db.execute("UPDATE urls SET done = 0 WHERE url = ?", (server.url + "a.html",))
        db.close()
        before = server.requests()
        report = CrawlRun(config).run()
        assert server.requests() == before
    assert report.resumed_from and report.outcome == "completed"


def test_a_first_crawl_interrupted_and_resumed_is_still_a_first_crawl(server: SiteServer, tmp_path: Path) -> None:
    config = make_config(server.url + "gen/0.html", tmp_path, threads={"fetchers": 2}, mirror={"sitemaps": False})
    pipeline = CrawlRun(config)
    before = len(server.request_log())

    def stop_soon() -> None:
        wait_for_requests(server, before, 40)
        pipeline.stop()

    stopper = threading.Thread(target=stop_soon)
    stopper.start()
    assert pipeline.run().outcome == "interrupted"
    stopper.join()
    resumed = CrawlRun(config).run()
    assert resumed.outcome == "completed" and resumed.resumed_from is not None
    assert resumed.changes is not None and resumed.changes.compared_with is None
    assert "changes (first crawl)" in resumed.summary()
    changes = json.loads((tmp_path / "changes.json").read_text())
    assert changes["summary"]["added"] == len(read_manifest(tmp_path)) == 2 * PAGES
