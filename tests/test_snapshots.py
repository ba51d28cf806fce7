"""Nightly snapshots: re-crawls with conditional requests, hard-linked history, changes.json,
retention, `latest`, health checks -- against a local site whose content changes between runs."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from warcio.archiveiterator import ArchiveIterator

import crawler.engine.parse_stage as parse_stage_module
from crawler.cli.main import main
from crawler.cli.status import crawl_status
from crawler.config_file import load_config
from crawler.config_history import IgnoreRule
from crawler.demo.server import SiteServer
from crawler.engine.run import CrawlRun
from crawler.history.changes import compare, visible_text
from crawler.history.recrawl import StoredCopies
from crawler.history.snapshot import Previous
from crawler.models import Response, SavedFile
from tests import routes
from tests.offline_check import check_mirror

PNG = b"\x89PNG\r\n\x1a\n" + b"pixels" * 50


def page(title: str, *links: str, extra: str = "") -> str:
    anchors = "".join(f'<a href="{link}">{link}</a>' for link in links)
    return f"<html><head><title>{title}</title></head><body><h1>{title}</h1>{extra}{anchors}</body></html>"


@pytest.fixture
def site() -> Iterator[tuple[routes.MutableSite, SiteServer]]:
    mutable = routes.MutableSite()
    mutable.put("/", page("Home", "/a.html", "/b.html", "/c.html", "/etag-only.html", "/lastmod-only.html",
                          extra='<img src="/logo.png">'))
    mutable.put("/a.html", page("Page A", "/"))
    mutable.put("/b.html", page("Page B", "/"))
    mutable.put("/c.html", page("Page C", "/"))
    mutable.put("/etag-only.html", page("ETag only"), validators="etag")
    mutable.put("/lastmod-only.html", page("Last-Modified only"), validators="last_modified")
    mutable.put("/logo.png", PNG, "image/png")
    with SiteServer(root=None, routes=mutable.routes()) as server:
        yield mutable, server


@pytest.fixture
def parsed(site: tuple[routes.MutableSite, SiteServer], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The pages the crawls parse, as paths of the site, in order."""
    _, server = site
    pages: list[str] = []
    real_parse = parse_stage_module.parse_document

    def counting_parse(body: bytes, url: str, *args: object) -> object:
        pages.append(url.removeprefix(server.url))
        return real_parse(body, url, *args)

    monkeypatch.setattr(parse_stage_module, "parse_document", counting_parse)
    return pages


def write_config(folder: Path, server: SiteServer, **sections: object) -> Path:
    data = {"start_urls": [server.url], "output": str(folder / "out"), "http": {"timeout": 5, "retries": 0},
            "mirror": {"heuristic_freshness": 0, "sitemaps": False}, "politeness": {"robots": False},
            **sections}
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def snapshot_dirs(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "snapshots").iterdir())


def latest(out: Path) -> str:
    return Path(os.readlink(out / "latest")).name


def changes(out: Path, snapshot: str) -> dict[str, object]:
    return json.loads((out / "snapshots" / snapshot / "changes.json").read_text())


def urls(entries: object, server: SiteServer) -> list[str]:
    return sorted(str(entry["url"]).removeprefix(server.url) for entry in entries)  # type: ignore[attr-defined]


def test_nightly_snapshots_record_what_changed_and_share_unchanged_files(
        site: tuple[routes.MutableSite, SiteServer], tmp_path: Path) -> None:
    mutable, server = site
    config = write_config(tmp_path, server, snapshots={"keep": 3})
    out = tmp_path / "out"

    assert main([str(config)]) == 0
    first = latest(out)
    first_changes = changes(out, first)
    assert first_changes["compared_with"] is None  # the first snapshot: everything is added
    assert urls(first_changes["added"], server) == sorted(
        ["", "a.html", "b.html", "c.html", "etag-only.html", "lastmod-only.html", "logo.png"])

    # The site changes overnight.
    mutable.put("/", page("Home", "/a.html", "/b.html", "/d.html", "/etag-only.html", "/lastmod-only.html",
                          extra='<img src="/logo.png">'))
    mutable.put("/a.html", page("Page A, edited", "/"))
    mutable.put("/d.html", page("Page D", "/"))
    mutable.remove("/c.html")
    mutable.put("/logo.png", PNG + b"new pixels", "image/png")
    server.routes.update(mutable.routes())
    mutable.answers.clear()

    assert main([str(config)]) == 0
    second = latest(out)
    assert second != first and snapshot_dirs(out) == sorted([first, second])
    second_changes = changes(out, second)
    assert second_changes["compared_with"] == first
    assert urls(second_changes["added"], server) == ["d.html"]
    assert urls(second_changes["modified"], server) == ["", "a.html", "logo.png"]
    assert second_changes["removed"] == [{
        "url": server.url + "c.html", "reason": "no_longer_linked", "last_seen": first,
        "path": f"{server.url.split('/')[2]}/c.html", "sha256": _sha256(page("Page C", "/"))}]
    modified = {entry["url"]: entry for entry in second_changes["modified"]}
    logo = modified[server.url + "logo.png"]
    assert (logo["old_sha256"], logo["new_sha256"]) == (_sha256(PNG), _sha256(PNG + b"new pixels"))
    assert (logo["old_size"], logo["new_size"]) == (len(PNG), len(PNG) + 10)

    # Unchanged resources were asked for conditionally and answered 304, with either validator.
    for path, validator in (("/b.html", "etag"), ("/etag-only.html", "etag"), ("/lastmod-only.html", "last_modified")):
        assert mutable.statuses(path) == [304], path
        assert (path, 304, validator) in mutable.answers
    # ... and they are the same file as in the first snapshot: a hard link, not a copy.
    host = server.url.split("/")[2]
    for name in ("b.html", "etag-only.html", "lastmod-only.html"):
        one, two = (out / "snapshots" / s / host / name for s in (first, second))
        assert one.stat().st_ino == two.stat().st_ino, name
    assert (out / "snapshots" / first / host / "a.html").stat().st_ino != \
        (out / "snapshots" / second / host / "a.html").stat().st_ino
    # The first snapshot keeps its copy of the removed page (a tombstone, not a deletion).
    assert (out / "snapshots" / first / host / "c.html").is_file()
    assert not (out / "snapshots" / second / host / "c.html").exists()
    manifest = [json.loads(line) for line in (out / "snapshots" / second / "manifest.jsonl").read_text().splitlines()]
    assert all(not entry["path"].startswith(("/", "snapshots")) for entry in manifest)  # relative to the snapshot
    report = json.loads((out / "latest" / "report.json").read_text())
    assert report["snapshot"] == second and report["published_as_latest"] is True
    assert report["counts"]["not_modified"] == 3  # b, etag-only, lastmod-only


def _sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def test_retention_keeps_the_newest_and_never_latest(site: tuple[routes.MutableSite, SiteServer],
                                                    tmp_path: Path) -> None:
    _, server = site
    config = write_config(tmp_path, server, snapshots={"keep": 2})
    out = tmp_path / "out"
    made = []
    for _ in range(4):
        assert main([str(config)]) == 0
        made.append(latest(out))
    assert len(set(made)) == 4  # unique names, even within one second
    assert snapshot_dirs(out) == sorted(made[-2:])
    assert latest(out) == made[-1]


def test_an_interrupted_snapshot_never_becomes_latest_and_is_resumed(
        site: tuple[routes.MutableSite, SiteServer], tmp_path: Path) -> None:
    mutable, server = site
    config = write_config(tmp_path, server, snapshots={"keep": 3})
    out = tmp_path / "out"
    assert main([str(config)]) == 0
    good = latest(out)

    release = threading.Event()

    def waiting(handler: object) -> None:  # /b.html answers only once the test says so
        release.wait(10)
        routes.html(page("B").encode())(handler)  # type: ignore[arg-type]

    server.routes["/b.html"] = waiting

    pipeline = CrawlRun(load_config(config))
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    while "/b.html" not in server.requests():  # the crawl is now waiting on /b.html
        runner.join(0.02)
    pipeline.stop()
    release.set()
    runner.join(10)
    interrupted = pipeline.layout.snapshot if pipeline.layout else None
    assert interrupted is not None and interrupted != good
    assert latest(out) == good and interrupted in snapshot_dirs(out)

    server.routes.update(mutable.routes())
    assert main([str(config)]) == 0
    assert latest(out) == interrupted  # the same snapshot, resumed and completed
    assert snapshot_dirs(out) == sorted([good, interrupted])


def test_a_snapshot_that_fails_its_health_checks_is_not_published(
        site: tuple[routes.MutableSite, SiteServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, server = site
    config = write_config(tmp_path, server, snapshots={"keep": 3})
    out = tmp_path / "out"
    assert main([str(config)]) == 0
    good = latest(out)
    server.routes["/"] = routes.status(500)  # the start page is down tonight
    assert main([str(config)]) == 1
    assert latest(out) == good
    failed = next(name for name in snapshot_dirs(out) if name != good)
    report = json.loads((out / "snapshots" / failed / "report.json").read_text())
    assert report["published_as_latest"] is False
    assert any("start URL not saved" in problem for problem in report["health_problems"])


def test_a_stored_copy_reused_after_a_304_keeps_what_the_server_answered_with(tmp_path: Path) -> None:
    """The protocol of the 304 (HTTP/2: the host multiplexes) and its headers, not defaults."""
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "a.html").write_bytes(b"<p>a</p>")
    entry = SavedFile("http://h/a.html", "h/a.html", 200, "text/html", 8, "0" * 64, '"v1"', None,
                      "2026-11-26T00:00:00+00:00")
    stored = StoredCopies(Previous(tmp_path, {entry.url: entry}))
    answer = Response(url=entry.url, status=304, content_type="", charset=None, body=b"", etag='"v1"',
                      last_modified=None, fetched_at="2026-12-01T00:00:00+00:00", headers={"Etag": '"v1"'},
                      http_version="HTTP/2", reason="")
    reused = stored.reuse(entry, answer)
    assert reused is not None and reused.body == b"<p>a</p>"
    assert (reused.http_version, reused.headers) == ("HTTP/2", {"Etag": '"v1"'})


def test_xhtml_pages_compare_by_their_text_without_warnings() -> None:
    """Debian's PostgreSQL docs: XHTML with an XML declaration, served as text/html."""
    xhtml = (b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<!DOCTYPE html PUBLIC '
             b'"-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">'
             b'<html xmlns="http://www.w3.org/1999/xhtml"><head><title>SELECT</title>'
             b'<link rel="stylesheet" type="text/css" href="stylesheet.css" />' * 8 +
             b'</head><body><p>retrieve rows from a table or view</p></body></html>')
    assert visible_text(xhtml, "utf-8") == "retrieve rows from a table or view"  # warnings are errors here
    assert visible_text(xhtml, "utf-8", (IgnoreRule(regex="or view"),)) == "retrieve rows from a table"


def test_noise_is_not_a_modification(site: tuple[routes.MutableSite, SiteServer], tmp_path: Path) -> None:
    mutable, server = site
    config = write_config(tmp_path, server, snapshots={"keep": 3, "ignore": [
        {"css": ".generated"}, {"regex": r'name="csrf" value="\w+"'}]})
    out = tmp_path / "out"
    noisy = '<p class="generated">Built at {}</p><input name="csrf" value="{}">'
    mutable.put("/b.html", page("Page B", extra=noisy.format("01:00", "aaa")))
    server.routes.update(mutable.routes())
    assert main([str(config)]) == 0
    mutable.put("/b.html", page("Page B", extra=noisy.format("02:00", "bbb")))
    mutable.put("/c.html", page("Page C, with news"))
    assert main([str(config)]) == 0
    latest_changes = changes(out, latest(out))
    assert urls(latest_changes["noise_only"], server) == ["b.html"]
    assert urls(latest_changes["modified"], server) == ["c.html"]


@pytest.mark.parametrize("keep", [0, 3], ids=["plain", "snapshots"])
def test_an_edited_text_is_modified_and_a_markup_change_is_noise_in_either_mode(
        site: tuple[routes.MutableSite, SiteServer], tmp_path: Path, keep: int) -> None:
    mutable, server = site
    mutable.put("/a.html", page("Page A", "/", extra="<p>The price is 10 euros.</p>"))
    mutable.put("/b.html", page("Page B", "/", extra="<p>Same words.</p>"))
    server.routes.update(mutable.routes())
    config = write_config(tmp_path, server, snapshots={"keep": keep})
    out = tmp_path / "out"
    assert main([str(config)]) == 0
    mutable.put("/a.html", page("Page A", "/", extra="<p>The price is 99 euros.</p>"))
    mutable.put("/b.html", page("Page B", "/", extra='<p class="new">Same   words.</p>'))
    assert main([str(config)]) == 0
    found = json.loads((out / "changes.json").read_text()) if keep == 0 else changes(out, latest(out))
    assert urls(found["modified"], server) == ["a.html"]
    assert urls(found["noise_only"], server) == ["b.html"]


def test_diff_of_a_plain_mirror_shows_what_the_last_run_changed(
        site: tuple[routes.MutableSite, SiteServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mutable, server = site
    mutable.put("/a.html", page("Page A", "/", extra="<p>The price is 10 euros.</p>"))
    server.routes.update(mutable.routes())
    config = write_config(tmp_path, server)
    out = tmp_path / "out"
    assert main([str(config)]) == 0
    mutable.put("/a.html", page("Page A", "/", extra="<p>The price is 99 euros.</p>"))
    assert main([str(config)]) == 0
    capsys.readouterr()

    assert main(["diff", str(out), "--text"]) == 0
    printed = capsys.readouterr().out
    assert "1 modified" in printed and server.url + "a.html" in printed
    assert "-The price is 10 euros." in printed and "+The price is 99 euros." in printed

    assert main(["diff", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert urls(data["modified"], server) == ["a.html"]

    # The next run changes nothing: nothing to show, and the copies kept for the diff are gone.
    assert main([str(config)]) == 0
    capsys.readouterr()
    assert main(["diff", str(out), "--text"]) == 0
    printed = capsys.readouterr().out
    assert "0 modified" in printed and "euros" not in printed
    assert not [path for path in (out / ".crawl").rglob("*") if path.is_file() and path.suffix == ".html"]


def test_an_interrupted_recrawl_of_a_plain_mirror_resumes_against_the_crawl_before_it(
        site: tuple[routes.MutableSite, SiteServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mutable, server = site
    mutable.put("/a.html", page("Page A", "/", extra="<p>The price is 10 euros.</p>"))
    server.routes.update(mutable.routes())
    config = write_config(tmp_path, server)
    out = tmp_path / "out"
    assert main([str(config)]) == 0
    mutable.put("/a.html", page("Page A", "/", extra="<p>The price is 99 euros.</p>"))
    release = threading.Event()

    def waiting(handler: object) -> None:  # /b.html answers only once the test says so
        release.wait(10)
        mutable.routes()["/b.html"](handler)  # type: ignore[arg-type]

    server.routes["/b.html"] = waiting
    pipeline = CrawlRun(load_config(config))
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    while "/b.html" not in server.requests():
        runner.join(0.02)
    pipeline.stop()
    release.set()
    runner.join(10)
    server.routes.update(mutable.routes())

    assert main([str(config)]) == 0  # resumed
    found = json.loads((out / "changes.json").read_text())
    assert found["compared_with"] == "previous crawl"
    assert urls(found["modified"], server) == ["a.html"]
    assert found["added"] == [] and found["removed"] == []
    capsys.readouterr()
    assert main(["diff", str(out), "--text"]) == 0
    assert "+The price is 99 euros." in capsys.readouterr().out


def test_a_rerun_asks_about_files_that_only_have_last_modified(
        site: tuple[routes.MutableSite, SiteServer], tmp_path: Path) -> None:
    """The default: a file the server gave no lifetime is revalidated on every run."""
    mutable, server = site
    config = write_config(tmp_path, server, mirror={"sitemaps": False})  # heuristic_freshness by default
    out = tmp_path / "out"
    assert main([str(config)]) == 0
    mutable.put("/lastmod-only.html", page("Last-Modified only, fixed"), validators="last_modified")
    mutable.answers.clear()
    assert main([str(config)]) == 0
    assert mutable.statuses("/lastmod-only.html") == [200]
    assert "fixed" in (out / server.url.split("/")[2] / "lastmod-only.html").read_text()
    assert urls(json.loads((out / "changes.json").read_text())["modified"], server) == ["lastmod-only.html"]
    assert {path for path, _, _ in mutable.answers} == {"/", "/a.html", "/b.html", "/c.html", "/etag-only.html",
                                                        "/lastmod-only.html", "/logo.png"}


def test_plain_mirror_updates_in_place_and_deletes_removed_pages_when_asked(
        site: tuple[routes.MutableSite, SiteServer], tmp_path: Path) -> None:
    mutable, server = site
    out = tmp_path / "out"
    host = server.url.split("/")[2]
    config = write_config(tmp_path, server)
    assert main([str(config)]) == 0
    untouched = (out / host / "b.html").stat()
    mutable.put("/", page("Home", "/a.html", "/b.html"))  # c.html is no longer linked
    mutable.put("/a.html", page("Page A, edited", "/"))
    assert main([str(config)]) == 0
    plain_changes = json.loads((out / "changes.json").read_text())
    assert urls(plain_changes["removed"], server) == ["c.html", "etag-only.html", "lastmod-only.html", "logo.png"]
    assert (out / host / "c.html").exists()  # kept by default
    assert (out / host / "b.html").stat().st_mtime_ns == untouched.st_mtime_ns  # 304: left alone
    assert "Page A, edited" in (out / host / "a.html").read_text()
    config = write_config(tmp_path, server, mirror={"heuristic_freshness": 0, "sitemaps": False,
                                                     "delete_removed": True})
    mutable.put("/", page("Home", "/a.html"))
    assert main([str(config)]) == 0
    assert not (out / host / "b.html").exists()
    assert (out / host / "a.html").exists()


def test_a_recrawl_right_after_a_crawl_asks_nothing_that_is_still_fresh(
        site: tuple[routes.MutableSite, SiteServer], tmp_path: Path) -> None:
    """Responses with Last-Modified stay fresh for a tenth of their age (at most
    mirror.heuristic_freshness): reused without a request."""
    mutable, server = site
    config = write_config(tmp_path, server, mirror={"heuristic_freshness": 3600, "sitemaps": False})
    assert main([str(config)]) == 0
    mutable.answers.clear()
    assert main([str(config)]) == 0
    asked = {path for path, _, _ in mutable.answers}
    assert asked == {"/etag-only.html"}  # the only one without Last-Modified: revalidated (304)
    assert mutable.statuses("/etag-only.html") == [304]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["counts"]["reused_without_request"] == 6


def test_diff_shows_what_changed_between_two_snapshots(site: tuple[routes.MutableSite, SiteServer], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    mutable, server = site
    config = write_config(tmp_path, server, snapshots={"keep": 5})
    out = tmp_path / "out"
    assert main([str(config)]) == 0
    first = latest(out)
    mutable.put("/a.html", page("Page A", "/", extra="<p>A new paragraph.</p>"))
    assert main([str(config)]) == 0
    second = latest(out)
    capsys.readouterr()

    assert main(["diff", str(out), "--text"]) == 0
    printed = capsys.readouterr().out
    assert f"{first} -> {second}" in printed
    assert "1 modified" in printed and server.url + "a.html" in printed
    assert "+A new paragraph." in printed  # the visible text, not the markup

    assert main(["diff", str(out), first, second, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["old"], data["new"]) == (first, second)
    assert urls(data["modified"], server) == ["a.html"]

    assert main(["diff", str(out), "no-such-snapshot"]) == 2
    assert "no snapshot 'no-such-snapshot'" in capsys.readouterr().err
    assert main(["diff", str(tmp_path / "nowhere")]) == 2


def test_status_and_diff_take_a_config_or_its_output_folder(site: tuple[routes.MutableSite, SiteServer],
                                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mutable, server = site
    config = write_config(tmp_path, server, snapshots={"keep": 5})
    assert main([str(config)]) == 0
    pages = ["/", "/a.html", "/b.html", "/c.html", "/etag-only.html", "/lastmod-only.html"]
    for path in pages:
        mutable.put(path, page(f"Changed {path}", "/a.html", "/b.html", "/c.html", "/etag-only.html",
                               "/lastmod-only.html"), validators="etag" if "etag" in path else "both")
    assert main([str(config)]) == 0
    capsys.readouterr()
    for target in (config, tmp_path / "out"):
        assert main(["status", str(target)]) == 0
        assert "completed" in capsys.readouterr().out
        assert main(["diff", str(target)]) == 0
        printed = capsys.readouterr().out
        assert "6 modified" in printed
        for path in pages:  # each once: not a few, "... and 1 more", then all of them again
            assert printed.count(f"{server.url}{path.lstrip('/')}\n") == 1, printed
        assert "more" not in printed
    assert main(["status", str(tmp_path / "nowhere")]) == 2
    assert "no such config file or output folder" in capsys.readouterr().err


def test_pages_max_pages_left_out_are_not_checked_in_changes_json_and_in_diff_alike(
        site: tuple[routes.MutableSite, SiteServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Not reached is never removed: neither the pages the cap left out nor an image only they link."""
    mutable, server = site
    mutable.put("/c.html", page("Page C", "/", extra='<img src="/c.png">'))
    mutable.put("/c.png", PNG, "image/png")
    server.routes.update(mutable.routes())
    config = write_config(tmp_path, server, snapshots={"keep": 5, "health": {"min_pages_ratio": 0}})
    out = tmp_path / "out"
    assert main([str(config)]) == 0
    assert main([str(config), "--set", "scope.max_pages=1"]) == 0  # only the start page this time
    written = changes(out, latest(out))
    assert written["removed"] == []
    assert server.url + "c.png" in written["not_checked"]
    assert urls(({"url": url} for url in written["not_checked"]), server) == [
        "a.html", "b.html", "c.html", "c.png", "etag-only.html", "lastmod-only.html"]
    capsys.readouterr()
    assert main(["diff", str(out), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["removed"], shown["not_checked"]) == (written["removed"], written["not_checked"])
    assert main(["diff", str(out)]) == 0
    assert "0 removed, 2 unchanged, 6 not checked" in capsys.readouterr().out
    assert main(["status", str(config)]) == 0
    status = capsys.readouterr().out
    assert "not fetched (max_pages)" in status and "waiting" not in status  # a completed crawl waits for nothing


def test_warc_holds_every_exchange_and_revisits_for_unchanged_content(
        site: tuple[routes.MutableSite, SiteServer], tmp_path: Path) -> None:
    mutable, server = site
    config = write_config(tmp_path, server, snapshots={"keep": 3}, output_formats=["files", "warc"],
                          http={"timeout": 5, "retries": 0, "headers": {"X-Api-Key": "secret-key"}})
    out = tmp_path / "out"
    assert main([str(config)]) == 0
    mutable.put("/a.html", page("Page A, edited", "/"))
    assert main([str(config)]) == 0
    first, second = snapshot_dirs(out)

    def records(snapshot: str) -> list[tuple[str, str, bytes, dict[str, str]]]:
        found = []
        with (out / "snapshots" / snapshot / "crawl.warc.gz").open("rb") as stream:
            for record in ArchiveIterator(stream):
                http = dict(record.http_headers.headers) if record.http_headers else {}
                found.append((record.rec_type, record.rec_headers.get_header("WARC-Target-URI") or "",
                              record.content_stream().read(), http))
        return found

    one = records(first)
    assert one[0][0] == "warcinfo"
    responses = {uri: body for kind, uri, body, _ in one if kind == "response"}
    assert responses[server.url + "logo.png"] == PNG
    assert b"Page A" in responses[server.url + "a.html"]
    assert {uri for kind, uri, _, _ in one if kind == "request"} == set(responses)

    two = records(second)
    kinds = {uri: kind for kind, uri, _, _ in two if kind in ("response", "revisit")}
    assert kinds[server.url + "a.html"] == "response"
    assert kinds[server.url + "b.html"] == "revisit" and kinds[server.url + "logo.png"] == "revisit"
    revisit = next(r for r in two if r[0] == "revisit" and r[1].endswith("logo.png"))
    assert revisit[2] == b""  # no payload: it is the earlier capture's
    for _, _, _, http in one + two:  # the credential header never reaches the archive
        assert "X-Api-Key" not in http and "secret-key" not in str(http)


def test_unchanged_pages_are_not_parsed_again_yet_their_links_follow_the_site(
        site: tuple[routes.MutableSite, SiteServer], tmp_path: Path, parsed: list[str]) -> None:
    """An unchanged page's links come from the crawl state; when one of them must now be
    written otherwise (a page removed, then back), the page is rewritten all the same."""
    mutable, server = site
    out, host = tmp_path / "out", server.url.split("/")[2]
    config = write_config(tmp_path, server, snapshots={"keep": 5})
    assert main([str(config)]) == 0
    assert {"a.html", "b.html", ""} <= set(parsed)

    def home_links() -> str:
        return (out / "latest" / host / "index.html").read_text()

    parsed.clear()
    mutable.remove("/c.html")
    assert main([str(config)]) == 0
    assert mutable.statuses("/a.html")[-1] == 304
    assert not {"a.html", "b.html", "etag-only.html", "lastmod-only.html"} & set(parsed)
    assert f'href="{server.url}c.html"' in home_links()  # removed: its absolute URL
    assert os.path.samefile(*(out / "snapshots" / name / host / "a.html" for name in snapshot_dirs(out)))

    mutable.put("/c.html", page("Page C", "/"))
    assert main([str(config)]) == 0
    assert 'href="c.html"' in home_links()  # back: the local file again
    check = check_mirror(out / "latest")
    assert check.local_broken == []


@pytest.mark.parametrize("stored_as", ["text", "damaged"])
def test_stored_links_of_an_earlier_version_or_damaged_are_handled(
        stored_as: str, site: tuple[routes.MutableSite, SiteServer], tmp_path: Path, parsed: list[str]) -> None:
    """The crawl state keeps each page's links compressed. Links an earlier version stored as
    text are still used; a damaged record only means the page is parsed again."""
    _, server = site
    config = write_config(tmp_path, server)
    assert main([str(config)]) == 0
    state = tmp_path / "out" / ".crawl" / "state.sqlite"
    with sqlite3.connect(state) as db:
        stored = dict(db.execute("SELECT url, links FROM outlinks"))
        assert stored and all(isinstance(links, bytes) for links in stored.values())
        text = zlib.decompress(stored[server.url + "a.html"]).decode()
        assert len(stored[server.url + "a.html"]) < len(text) and server.url in text
        for url, links in stored.items():
            value = zlib.decompress(links).decode() if stored_as == "text" else links[:5]
            db.execute("UPDATE outlinks SET links = ? WHERE url = ?", (value, url))
    db.close()

    parsed.clear()
    assert main([str(config)]) == 0
    assert ("a.html" in parsed) == (stored_as == "damaged")
    assert check_mirror(tmp_path / "out").local_broken == []


@pytest.mark.parametrize("earlier_urls", [[], ["a", "b", "gone"]])
def test_changes_with_added_records_read_again_are_the_same_changes(earlier_urls: list[str], tmp_path: Path) -> None:
    def entry(name: str, digest: str = "0" * 64) -> SavedFile:
        return SavedFile(f"http://h/{name}", f"h/{name}", 200, "image/png", 1, digest, None, None, "2026-11-26")

    earlier = [entry(name) for name in earlier_urls]
    later = [entry("a"), entry("b", "1" * 64), entry("c"), entry("d")]  # sorted by URL, as the state gives them
    held = compare(earlier, tmp_path, later, tmp_path)
    read_again = compare(earlier, tmp_path, iter(later), tmp_path, later_again=lambda: iter(later))
    assert not isinstance(read_again.added, list) and len(read_again.added) == len(held.added)
    assert json.loads(json.dumps(read_again.to_dict(), default=list)) == json.loads(json.dumps(held.to_dict()))
    assert read_again.summary() == held.summary()


def test_status_names_the_snapshot_a_crawl_wrote_and_its_report(site: tuple[routes.MutableSite, SiteServer],
                                                                tmp_path: Path) -> None:
    _, server = site
    config = load_config(write_config(tmp_path, server, snapshots={"keep": 3}))
    CrawlRun(config).run()
    status = crawl_status(config)
    out = tmp_path / "out"
    assert status.state == "completed" and status.snapshot == latest(out) and status.exit_code == 0
    assert status.files_saved == len((out / "latest" / "manifest.jsonl").read_text().splitlines())
    assert status.report is not None and status.report["outcome"] == "completed"
    assert f"snapshot {latest(out)} completed" in status.text()


def test_the_summary_lists_added_pages_only_against_an_earlier_crawl(tmp_path: Path) -> None:
    def entry(name: str) -> SavedFile:
        return SavedFile(f"http://h/{name}", f"h/{name}", 200, "image/png", 1, "0" * 64, None, None, "2026-11-26")

    first = compare([], None, [entry("a"), entry("b")], tmp_path)
    assert first.summary() == "changes (first crawl): 2 added, 0 modified, 0 removed, 0 unchanged"
    later = compare([entry("a")], tmp_path, [entry("a"), entry("b")], tmp_path, earlier_name="2026-11-25T020000Z")
    assert later.summary().splitlines()[1:] == ["  added    http://h/b"]
