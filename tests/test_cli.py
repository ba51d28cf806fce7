"""The command line as users and cron jobs see it: outputs and exit codes."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from crawler.cli.main import main
from crawler.config import Config
from crawler.config_file import dotted_keys, load_config, parse_config
from crawler.demo.server import SiteServer
from tests import routes
from tests.conftest import DEMO_URL_COUNT, read_manifest


def write_config(path: Path, start: str, output: Path, **sections: object) -> Path:
    data = {"start_urls": [start], "output": str(output), "http": {"timeout": 5, "retries": 0}, **sections}
    path.write_text(yaml.safe_dump(data))
    return path


def test_demo_mirrors_the_sample_site_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--port", "0", "--output", str(tmp_path / "demo")]) == 0
    printed = capsys.readouterr().out
    assert "completed:" in printed and "index.html in a browser" in printed
    assert len(read_manifest(tmp_path / "demo")) == DEMO_URL_COUNT


def test_python_dash_m_runs_a_config(tmp_path: Path, site: SiteServer) -> None:
    config = write_config(tmp_path / "site.yaml", site.url, tmp_path / "out")
    result = subprocess.run([sys.executable, "-m", "crawler", str(config)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # no terminal: nothing but errors (for cron)
    assert json.loads((tmp_path / "out" / "report.json").read_text())["outcome"] == "completed"


def test_exit_1_when_urls_fail_after_retries(tmp_path: Path) -> None:
    site_routes = {"/": routes.html(routes.page("/down.html")), "/down.html": routes.status(503)}
    with SiteServer(root=None, routes=site_routes) as server:
        config = write_config(tmp_path / "c.yaml", server.url, tmp_path / "out")
        assert main([str(config)]) == 1


def test_exit_1_when_a_start_url_fails_even_with_a_404(tmp_path: Path) -> None:
    with SiteServer(root=None, routes={"/": routes.status(404)}) as server:
        assert main([str(write_config(tmp_path / "c.yaml", server.url, tmp_path / "out"))]) == 1


def test_broken_links_alone_exit_0(tmp_path: Path) -> None:
    with SiteServer(root=None, routes={"/": routes.html(routes.page("/gone.html"))}) as server:
        assert main([str(write_config(tmp_path / "c.yaml", server.url, tmp_path / "out"))]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [f["reason"] for f in report["failures"]] == ["http_404"]


def test_exit_1_when_nothing_answers(tmp_path: Path) -> None:
    with SiteServer() as server:
        url = server.url  # the port is free again once the server is gone
    assert main([str(write_config(tmp_path / "c.yaml", url, tmp_path / "out"))]) == 1


def test_unusable_output_folder_exits_1_with_one_line(tmp_path: Path, site: SiteServer,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "out").write_text("a file, not a folder")
    assert main([str(write_config(tmp_path / "c.yaml", site.url, tmp_path / "out"))]) == 1
    error = capsys.readouterr().err
    assert error.startswith("crawl: error: output folder") and error.count("\n") == 1
    assert error.endswith("is a file, not a folder\n")
    assert site.requests() == {}


def test_verbose_prints_the_summary_once(tmp_path: Path, site: SiteServer,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    log_file = tmp_path / "crawl.log"
    assert main([str(write_config(tmp_path / "c.yaml", site.url, tmp_path / "out")), "-v",
                 "--log-file", str(log_file)]) == 0
    captured = capsys.readouterr()
    summary = f"completed: {DEMO_URL_COUNT} files saved"
    assert summary in captured.out
    assert " INFO failed " in captured.err and summary not in captured.err  # INFO logs, but not it twice
    assert summary in log_file.read_text()


def test_version_and_help_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert main(["--help"]) == 0
    assert "crawl" in capsys.readouterr().out


def test_sigint_stops_the_crawl_with_exit_130(tmp_path: Path) -> None:
    with SiteServer(root=None, routes=routes.tree_site(400, delay=0.05)) as server:
        config = write_config(tmp_path / "c.yaml", server.url + "gen/0.html", tmp_path / "out",
                              threads={"fetchers": 2})
        with subprocess.Popen([sys.executable, "-m", "crawler", str(config)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
            deadline = time.monotonic() + 30
            while sum(server.requests().values()) < 5:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=10)
    assert process.returncode == 130, stderr
    assert "stopping" in stderr
    assert stderr.endswith("crawl: interrupted; run the same command again to resume\n")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["outcome"] == "interrupted" and report["counts"]["not_fetched"] > 0
    assert len(read_manifest(tmp_path / "out")) == report["counts"]["saved"]


def test_failures_of_other_hosts_resources_do_not_fail_the_run(tmp_path: Path) -> None:
    with SiteServer(root=None, routes={"/broken.png": routes.status(503)}) as cdn:
        image = cdn.url.replace("127.0.0.1", "localhost") + "broken.png"
        page = routes.page().replace(b"<body>", f'<body><img src="{image}">'.encode())
        with SiteServer(root=None, routes={"/": routes.html(page)}) as server:
            assert main([str(write_config(tmp_path / "c.yaml", server.url, tmp_path / "out"))]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [f["reason"] for f in report["failures"]] == ["http_503"]
    assert report["counts"]["failed_off_site"] == 1


def test_ctrl_c_during_a_stalled_download_exits_within_seconds(tmp_path: Path) -> None:
    site = {"/": routes.html(routes.page("/stalled.html")), "/stalled.html": routes.stall(60)}
    with SiteServer(root=None, routes=site) as server:
        config = write_config(tmp_path / "c.yaml", server.url, tmp_path / "out", http={"timeout": 120})
        with subprocess.Popen([sys.executable, "-m", "crawler", str(config)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
            deadline = time.monotonic() + 30
            while "/stalled.html" not in server.requests():
                assert time.monotonic() < deadline
                time.sleep(0.02)
            stopped_at = time.monotonic()
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=30)
            assert time.monotonic() - stopped_at < 10
    assert process.returncode == 130
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["not_fetched"] == [{"url": server.url + "stalled.html", "reason": "interrupted"}]


def fake_snapshots(output: Path, *names: str) -> None:
    """Snapshots as a crawl leaves them, each saving one page more than the one before."""
    for number, name in enumerate(names):
        folder = output / "snapshots" / name
        folder.mkdir(parents=True)
        lines = [json.dumps({"url": f"http://h/{page}.html", "path": f"h/{page}.html", "status": 200,
                             "content_type": "text/html", "size": 1, "sha256": "0" * 64, "etag": None,
                             "last_modified": None, "fetched_at": "2026-01-01T00:00:00+00:00"})
                 for page in range(number * 50)]
        (folder / "manifest.jsonl").write_text("".join(line + "\n" for line in lines))


def test_output_cut_short_by_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`crawl diff OUT | head`: head leaves, and crawl stops without a traceback."""
    fake_snapshots(tmp_path / "out", "2026-01-01T000000Z", "2026-01-02T000000Z")
    with subprocess.Popen([sys.executable, "-m", "crawler", "diff", str(tmp_path / "out")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        process.stdout.close()  # before crawl has started: its first write finds the pipe closed
        _, stderr = process.communicate(timeout=30)
    assert stderr == ""
    assert process.returncode == 141  # as for any command a closed pipe stops (128 + SIGPIPE)


def test_a_url_instead_of_a_config_mirrors_the_site_with_the_defaults(tmp_path: Path, site: SiteServer,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([site.url, "-o", "quick"]) == 0
    assert len(read_manifest(tmp_path / "quick")) == DEMO_URL_COUNT
    assert main(["--set", "scope.max_depth=0", site.url]) == 0  # the default folder: output/<host>
    assert (tmp_path / "output" / "127.0.0.1" / "report.json").is_file()


def test_a_missing_config_says_how_to_mirror_without_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "books")]) == 2
    assert "no such config file (to mirror a site: crawl https://SITE/" in capsys.readouterr().err


def test_init_writes_a_config_with_every_key_its_default_and_what_it_means(
        tmp_path: Path, site: SiteServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", site.url]) == 0
    path = tmp_path / "127.0.0.1.yaml"
    assert f"wrote {path.name}" in capsys.readouterr().out
    text = path.read_text()
    assert load_config(path) == parse_config(f"start_urls: [{site.url}]")  # the defaults, nothing else
    lines = text.splitlines()
    for key in dotted_keys(Config):
        name = key.rpartition(".")[2]
        at = next(n for n, line in enumerate(lines) if re.match(rf" *(# )?{name}:", line) and
                  len(line) - len(line.lstrip()) == 2 * key.count("."))
        assert lines[at - 1].lstrip().startswith("# "), f"{key} has no comment"
    assert main([path.name]) == 0  # and it crawls
    assert len(read_manifest(tmp_path / "output" / "127.0.0.1")) == DEMO_URL_COUNT

    assert main(["init", site.url]) == 2  # never over an existing file
    assert path.read_text() == text
    assert main(["init", site.url, "-o", "configs/site.yaml", "--output", "mirrors/site"]) == 0
    assert load_config(tmp_path / "configs" / "site.yaml").output_dir == tmp_path / "mirrors" / "site"


def test_the_summary_says_where_the_mirror_is(tmp_path: Path, site: SiteServer,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(write_config(tmp_path / "c.yaml", site.url, tmp_path / "out")), "-v"]) == 0
    assert f"\nmirror: {tmp_path / 'out'}\n" in capsys.readouterr().out
    assert main([str(write_config(tmp_path / "c.yaml", site.url, tmp_path / "snaps", snapshots={"keep": 2})),
                 "-v"]) == 0
    snapshot = next((tmp_path / "snaps" / "snapshots").iterdir())
    assert f"\nmirror: {snapshot}\n" in capsys.readouterr().out


def test_one_failed_url_is_one_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site_routes = {"/": routes.html(routes.page("/down.html")), "/down.html": routes.status(503)}
    with SiteServer(root=None, routes=site_routes) as server:
        assert main([str(write_config(tmp_path / "c.yaml", server.url, tmp_path / "out"))]) == 1
    assert capsys.readouterr().err.startswith("crawl: 1 URL failed after retries (see ")


@pytest.mark.parametrize("keep", [0, 2])
def test_the_failure_line_names_the_report_of_the_run(tmp_path: Path, keep: int,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    site_routes = {"/": routes.html(routes.page("/down.html")), "/down.html": routes.status(503)}
    with SiteServer(root=None, routes=site_routes) as server:
        config = write_config(tmp_path / "c.yaml", server.url, tmp_path / "out", snapshots={"keep": keep},
                              http={"retries": 0})
        assert main([str(config)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("crawl: ") and error.endswith(")\n")
    named = Path(error[error.rindex("(see ") + len("(see "):-2])
    assert named.is_file() and json.loads(named.read_text())["outcome"] == "completed"
    assert (named.parent.parent.name == "snapshots") is bool(keep)  # a snapshot's report is in the snapshot


@pytest.mark.parametrize("robots", [True, False])
def test_a_site_that_cannot_be_reached_says_so_and_why(tmp_path: Path, robots: bool,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    with SiteServer() as server:
        url = server.url  # nothing listens on its port once it is gone
    config = write_config(tmp_path / "c.yaml", url, tmp_path / "out", politeness={"robots": robots})
    assert main([str(config)]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"crawl: could not reach the site: {url}: connection failed: ")
    assert "Connection refused" in error and error.count("\n") == 1
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["outcome"] == "unreachable"
    assert "robots_unavailable" not in report["failures_by_reason"]  # the cause, not what it led to
    assert [(f["url"], f["reason"]) for f in report["start_urls_failed"]] == [(url, "connection_error")]
    assert main(["status", str(config)]) == 1
    status = capsys.readouterr().out
    assert f"could not reach the site: {url}: connection failed" in status and "completed" not in status


def test_a_start_url_that_robots_txt_keeps_out_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site_routes = {"/robots.txt": routes.status(503), "/": routes.html(routes.page())}
    with SiteServer(root=None, routes=site_routes) as server:
        assert main([str(write_config(tmp_path / "c.yaml", server.url, tmp_path / "out"))]) == 1
    assert capsys.readouterr().err.startswith(
        f"crawl: start URL failed: {server.url}: robots.txt unavailable, so none of this host is fetched: HTTP 503")
    assert json.loads((tmp_path / "out" / "report.json").read_text())["outcome"] == "completed"  # the site answered
