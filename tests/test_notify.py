"""Notifications through Apprise, to real receivers on 127.0.0.1: a webhook (json://), an SMTP
server (mailto://), one that is down. One message per run that `notify.when` asks for; a
message that cannot be delivered changes nothing but a warning and report.json; credentials
are never in the log or the report."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml

from crawler.cli.main import main
from crawler.demo.server import SiteServer
from crawler.mirror import writer as writer_module
from crawler.mirror.writer import Writer
from tests import routes
from tests.notify_servers import MailServer, Webhook

PASSWORD = "s3cr3t-Pa55"


def write_config(path: Path, start: str, output: Path, urls: list[str], **sections: Any) -> Path:
    data = {"start_urls": [start], "output": str(output), "http": {"timeout": 5, "retries": 0},
            "notify": {"urls": urls, **sections.pop("notify", {})}, **sections}
    path.write_text(yaml.safe_dump(data))
    return path


def report_of(output: Path) -> dict[str, Any]:
    return json.loads((output / "report.json").read_text())


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_first_crawl_tells_the_webhook_and_the_mailbox(tmp_path: Path, site: SiteServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("HOOK_PASSWORD", PASSWORD)
    with Webhook() as hook, MailServer("crawler", PASSWORD) as mail:
        urls = [f"json://crawler:${{HOOK_PASSWORD}}@127.0.0.1:{hook.port}/crawl",
                f"mailto://crawler:${{SMTP_PASSWORD}}@example.com?smtp=127.0.0.1&port={mail.port}"
                "&from=crawl@example.com&to=ops@example.com"]
        config = write_config(tmp_path / "books.yaml", site.url, tmp_path / "out", urls)
        log_file = tmp_path / "crawl.log"
        assert main([str(config), "--log-file", str(log_file), "-vv"]) == 0  # debug logs too
    [post] = hook.posts
    assert (post["path"], post["user"], post["password"]) == ("/crawl", "crawler", PASSWORD)  # the variable, expanded
    assert post["json"]["title"] == "crawl books: 53 added (first crawl)"
    body = post["json"]["message"]
    assert body.startswith("completed: 53 files saved (20 HTML pages)")
    assert "changes (first crawl): 53 added" in body  # every page: not listed one by one
    assert f"http_404 (2):\n  {site.url}feed.xml (linked from {site.url}gallery.html)\n" in body
    assert f"report: {tmp_path / 'out' / 'report.html'}" in body
    [letter] = mail.messages
    assert mail.logins == [("crawler", PASSWORD)]
    assert letter["Subject"] == "crawl books: 53 added (first crawl)" and letter["To"] == "ops@example.com"
    assert "53 added" in letter.get_body(("plain",)).get_content()

    report = report_of(tmp_path / "out")
    assert report["notifications"] == [
        {"target": f"json://127.0.0.1:{hook.port}/crawl", "ok": True, "error": None},
        {"target": f"mailto://example.com:{mail.port}/ops%40example.com", "ok": True, "error": None}]
    for path in (log_file, tmp_path / "out" / "report.json", tmp_path / "out" / "report.html"):
        assert PASSWORD not in path.read_text()


def test_a_receiver_that_is_down_changes_nothing_but_a_warning(
        tmp_path: Path, site: SiteServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HOOK_TOKEN", PASSWORD)
    down, mail_down = closed_port(), closed_port()
    with Webhook() as hook:
        urls = [f"json://ops:${{HOOK_TOKEN}}@127.0.0.1:{down}/crawl?token=${{HOOK_TOKEN}}",
                f"mailto://ops:${{HOOK_TOKEN}}@example.com?smtp=127.0.0.1&port={mail_down}&to=ops@example.com",
                f"json://127.0.0.1:{hook.port}/second"]
        config = write_config(tmp_path / "books.yaml", site.url, tmp_path / "out", urls)
        log_file = tmp_path / "crawl.log"
        assert main([str(config), "--log-file", str(log_file)]) == 0  # as without notifications
    assert len(hook.posts) == 1  # the others' failures did not keep it from its message
    first, second, third = report_of(tmp_path / "out")["notifications"]
    assert first["target"] == f"json://127.0.0.1:{down}/crawl" and first["ok"] is False
    assert "Connection refused" in first["error"]
    assert second["target"].startswith(f"mailto://example.com:{mail_down}/") and second["ok"] is False
    assert "Connection refused" in second["error"]
    assert third == {"target": f"json://127.0.0.1:{hook.port}/second", "ok": True, "error": None}
    logged = log_file.read_text()
    assert f"notification to json://127.0.0.1:{down}/crawl failed: " in logged
    for text in (logged, (tmp_path / "out" / "report.json").read_text(), capsys.readouterr().err):
        assert PASSWORD not in text


def test_a_receiver_that_refuses_the_message_is_recorded(tmp_path: Path, site: SiteServer) -> None:
    with Webhook(status=500) as hook:
        config = write_config(tmp_path / "c.yaml", site.url, tmp_path / "out", [f"json://127.0.0.1:{hook.port}/x"])
        assert main([str(config)]) == 0
    [record] = report_of(tmp_path / "out")["notifications"]
    assert record["ok"] is False and "500" in record["error"]


def test_changes_sends_only_when_pages_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pages = {"/": routes.page("/a.html", "/b.html", title="home"), "/a.html": routes.page(title="a"),
             "/b.html": routes.page(title="b")}
    site_routes = {path: _current(pages, path) for path in pages}
    with SiteServer(root=None, routes=site_routes) as server, Webhook() as hook:
        config = write_config(tmp_path / "books.yaml", server.url, tmp_path / "out",
                              [f"json://127.0.0.1:{hook.port}/"], snapshots={"keep": 3})
        assert main([str(config)]) == 0  # the first crawl: 3 added
        assert main([str(config)]) == 0  # nothing changed: no message
        pages["/a.html"] = routes.page(title="a") + b"<p>new text</p>"
        assert main([str(config)]) == 0
    assert [post["json"]["title"] for post in hook.posts] == ["crawl books: 3 added (first crawl)",
                                                              "crawl books: 1 modified"]
    assert f"  modified {server.url}a.html" in hook.posts[1]["json"]["message"]


def _current(pages: dict[str, bytes], path: str) -> routes.Route:
    """The page at `path` as `pages` has it now (the test changes it between crawls)."""
    return lambda handler: routes.send(handler, 200, pages[path])


def test_always_sends_for_every_run_even_an_interrupted_one(tmp_path: Path) -> None:
    def interrupt(handler: BaseHTTPRequestHandler) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, while the crawl is at this page
        routes.send(handler, 200, routes.page(title="slow"))

    site_routes = {"/": routes.html(routes.page("/slow.html", "/other.html")), "/slow.html": interrupt,
                   "/other.html": routes.html(routes.page())}
    with SiteServer(root=None, routes=site_routes) as server, Webhook() as hook:
        config = write_config(tmp_path / "books.yaml", server.url, tmp_path / "out",
                              [f"json://127.0.0.1:{hook.port}/"], notify={"when": ["always"]},
                              threads={"fetchers": 1})
        assert main([str(config)]) == 130
        server.routes["/slow.html"] = routes.html(routes.page())
        assert main([str(config)]) == 0  # resumed, and completed
        assert main([str(config)]) == 0  # again: no change
    titles = [post["json"]["title"] for post in hook.posts]
    assert titles == ["crawl books: interrupted", "crawl books: 3 added (first crawl)",
                      "crawl books: completed, no changes"]
    assert report_of(tmp_path / "out")["notifications"][0]["ok"] is True


def _failing_site() -> dict[str, routes.Route]:
    return {"/": routes.html(routes.page("/down.html")), "/down.html": routes.status(503)}


@pytest.mark.parametrize("case", ["failed_urls", "unreachable", "disk_full", "health"])
def test_failure_sends_one_message_saying_why(tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = {"failed_urls": "FAILED (1 URL failed after retries)", "disk_full": "FAILED (disk full)",
                "unreachable": "FAILED (could not reach the site: ", "health": "FAILED (snapshot "}[case]
    with SiteServer(root=None, routes=_failing_site()) as server, Webhook() as hook:
        start = server.url if case != "unreachable" else f"http://127.0.0.1:{closed_port()}/"
        sections: dict[str, Any] = {"notify": {"when": ["failure"]}}
        if case == "health":  # every fetch but the start page's fails: more than the 20% allowed
            sections["snapshots"] = {"keep": 2}
        config = write_config(tmp_path / "books.yaml", start, tmp_path / "out", [f"json://127.0.0.1:{hook.port}/"],
                              **sections)
        if case == "disk_full":
            _fill_the_disk_after(3, monkeypatch)
        assert main([str(config)]) == 1
    [post] = hook.posts
    assert post["json"]["title"].startswith(f"crawl books: {expected}")
    assert post["json"]["type"] == "failure"
    assert post["json"]["message"].startswith("FAILED: ")


def test_a_run_with_changes_and_a_failure_sends_one_message(tmp_path: Path) -> None:
    with SiteServer(root=None, routes=_failing_site()) as server, Webhook() as hook:
        config = write_config(tmp_path / "books.yaml", server.url, tmp_path / "out",
                              [f"json://127.0.0.1:{hook.port}/"], notify={"when": ["changes"]})
        assert main([str(config)]) == 1  # the first crawl added the home page; /down.html failed
    assert [post["json"]["title"] for post in hook.posts] == ["crawl books: FAILED (1 URL failed after retries)"]


def _fill_the_disk_after(writes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = Writer._write_temp
    count = [0]
    lock = threading.Lock()

    def filling_disk(self: Writer, folder: str, data: bytes) -> str:
        with lock:
            count[0] += 1
            full = count[0] > writes
        if full:
            raise writer_module._as_output_error(OSError(errno.ENOSPC, "No space left on device"), folder)
        return real_write(self, folder, data)

    monkeypatch.setattr(Writer, "_write_temp", filling_disk)


def test_a_quiet_run_sends_nothing_by_default(tmp_path: Path, site: SiteServer) -> None:
    with Webhook() as hook:
        config = write_config(tmp_path / "c.yaml", site.url, tmp_path / "out", [f"json://127.0.0.1:{hook.port}/"],
                              snapshots={"keep": 2})
        assert main([str(config)]) == 0
        assert main([str(config)]) == 0
    assert len(hook.posts) == 1  # the first crawl's; the second changed nothing
    latest = tmp_path / "out" / "latest" / "report.json"
    assert json.loads(latest.read_text())["notifications"] == []


def test_a_missing_variable_is_a_config_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("NO_SUCH_PASSWORD", raising=False)
    config = write_config(tmp_path / "c.yaml", "http://127.0.0.1:9/", tmp_path / "out",
                          ["json://127.0.0.1:9/", "mailto://u:${NO_SUCH_PASSWORD}@example.com?to=a@example.com"])
    assert main([str(config)]) == 2
    error = capsys.readouterr().err
    line = next(n for n, text in enumerate(config.read_text().splitlines(), 1) if "NO_SUCH_PASSWORD" in text)
    assert error == (f"crawl: error: {config}:{line}: notify.urls.1: environment variable NO_SUCH_PASSWORD "
                     "is not set (the URL uses ${NO_SUCH_PASSWORD})\n")


@pytest.mark.parametrize("url", ["nosuchservice://example.com/", "mailto://user:${SECRET}@127.0.0.1"])
def test_a_url_apprise_cannot_use_is_a_config_error_without_its_secret(
        tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SECRET", PASSWORD)
    config = write_config(tmp_path / "c.yaml", "http://127.0.0.1:9/", tmp_path / "out", [url])
    assert main(["check", str(config)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"crawl: error: {config}:") and ": notify.urls.0: Apprise cannot send to " in error
    assert PASSWORD not in error and error.count("\n") == 1


def test_the_config_keeps_the_variables_not_their_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SECRET", PASSWORD)
    config = write_config(tmp_path / "c.yaml", "http://127.0.0.1:9/", tmp_path / "out",
                          ["json://u:${SECRET}@127.0.0.1:9/"])
    assert main(["config", "set", str(config), "notify.when=[always]"]) == 0
    assert main(["check", str(config)]) == 0
    assert PASSWORD not in capsys.readouterr().out
