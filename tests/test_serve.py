"""`crawl serve`: the timeline, the saved files of each snapshot, the history of a URL -- in a
real browser, against output folders made by real crawls of a local site that changes
between runs -- and what the server must never do: leave the output folder, answer anything
but GET and HEAD, or let a mirrored page's script act on its own pages."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crawler.cli.main import main
from crawler.cli.serve import HistoryServer
from crawler.cli.serve_files import UNSATISFIABLE, byte_range, header_value
from crawler.demo.server import SiteServer
from tests import routes
from tests.test_snapshots import latest, page, snapshot_dirs, write_config

# A mirrored page that tries what a hostile page would: take the server's cookies and storage,
# read its pages, and call home. Its findings go into #result.
PROBE = """<p id="result">not run</p><script>
var out = [];
try { document.cookie = "stolen=1; path=/"; out.push(document.cookie ? "cookie-set" : "cookie-empty"); }
catch (e) { out.push("cookie-blocked"); }
try { localStorage.setItem("k", "v"); out.push("storage-ok"); } catch (e) { out.push("storage-blocked"); }
new Image().src = "BEACON/beacon.png";
fetch("/").then(function (r) { return r.text(); })
  .then(function (t) { out.push("read-" + t.length); }, function () { out.push("fetch-blocked"); })
  .then(function () { document.getElementById("result").textContent = out.join(" "); });
</script>"""
HOSTILE_TEXT = "&lt;img src=x onerror=alert(1)&gt;"  # shows as <img ...> text on the page
LATIN1 = "<html><head><title>Caf\xe9</title></head><body><h1>Caf\xe9 cr\xe8me</h1></body></html>".encode("latin-1")


@dataclass
class History:
    out: Path
    site: SiteServer
    snapshots: list[str]
    server: HistoryServer
    outside: Path  # a secret file next to the output folder, that nothing may serve

    def url(self, path: str) -> str:
        return self.server.url.rstrip("/") + path

    def host(self) -> str:
        return self.site.url.removeprefix("http://").rstrip("/")


def home(*links: str) -> str:
    return page("Home", *links, extra='<link rel="stylesheet" href="/style.css">')


def hostile(beacon: str, text: str) -> str:
    return page("Probe", "/", extra=f"<p>{text}</p>" + PROBE.replace("BEACON", beacon.rstrip("/")))


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """Three nightly snapshots of a changing site, served by `crawl serve`."""
    folder = tmp_path_factory.mktemp("serve")
    mutable = routes.MutableSite()
    with SiteServer(root=None, routes={}) as site, SiteServer(root=None, routes={}) as beacon:
        links = ["/a.html", "/b.html", "/c.html", "/probe.html", "/latin.html", "/feed", "/list.php?page=2", "/dir/"]
        mutable.put("/", home(*links))
        for name in "abc":
            mutable.put(f"/{name}.html", page(f"Page {name.upper()}", "/"))
        mutable.put("/probe.html", hostile(beacon.url, "Nothing here."))
        mutable.put("/latin.html", LATIN1, "text/html; charset=iso-8859-1")
        mutable.put("/feed", "<rss><channel><title>News</title></channel></rss>", "application/rss+xml")
        mutable.put("/list.php", page("Page two of the list", "/"))
        mutable.put("/dir/", page("The dir index", "/"))
        mutable.put("/style.css", "@font-face { font-family: Shop; src: url(/shop.woff2); }\n"
                                  "h1 { color: rgb(1, 2, 3); font-family: Shop, serif; }", "text/css")
        mutable.put("/shop.woff2", b"wOF2" + bytes(60), "font/woff2")
        config = write_config(folder, site, snapshots={"keep": 5})
        nights = [
            lambda: None,
            lambda: (mutable.put("/a.html", page("Page A, edited", "/")), mutable.remove("/c.html"),
                     mutable.put("/", home(*[link for link in links if link != "/c.html"], "/d.html")),
                     mutable.put("/d.html", page("Page D", "/")),
                     mutable.put("/probe.html", hostile(beacon.url, HOSTILE_TEXT))),
            lambda: mutable.put("/b.html", page("Page B, edited", "/")),
        ]
        for change in nights:
            change()
            site.routes.clear()
            site.routes.update(mutable.routes())
            assert main([str(config)]) == 0
        out = folder / "out"
        outside = folder / "outside"
        outside.mkdir()
        (outside / "secret.txt").write_text("the secret")
        first_host = out / "snapshots" / snapshot_dirs(out)[0] / site.url.removeprefix("http://").rstrip("/")
        (first_host / "escape.txt").symlink_to(os.path.relpath(outside / "secret.txt", first_host))
        (first_host / "escape-dir").symlink_to(outside)
        (first_host / "state.sqlite").symlink_to(out / ".crawl" / "state.sqlite")
        with HistoryServer(out, port=0) as server:
            yield History(out, site, snapshot_dirs(out), server, outside)
        assert beacon.requests() == {}  # no mirrored page called anywhere but the server


@pytest.fixture
def browser_page(browser: Any) -> Iterator[tuple[Any, list[str]]]:
    """A page of a fresh browser context, and the errors its pages print on the console."""
    context = browser.new_context()
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
    yield tab, errors
    context.close()


def request(history: History, method: str, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """A request sent as written: no client cleans the path up first (browsers remove dot segments)."""
    host, port = history.server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), int(port), timeout=5)
    try:
        connection.putrequest(method, path, skip_host="Host" in headers, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


# -- in the browser ------------------------------------------------------------------------

def test_timeline_leads_to_each_snapshot_and_to_the_history_of_a_page(
        history: History, browser_page: tuple[Any, list[str]]) -> None:
    tab, errors = browser_page
    tab.goto(history.url("/"))
    rows = tab.locator("tbody > tr:not(.changes)")
    assert rows.count() == 3
    names = [rows.nth(number).locator("td").first.inner_text() for number in range(3)]
    assert [name.splitlines()[-1] for name in names] == history.snapshots[::-1]  # newest first
    assert "latest" in names[0] and "latest" not in names[1]
    assert rows.nth(1).locator("td").nth(3).inner_text() == "1"  # the second night: d.html added
    assert [rows.nth(1).locator("td").nth(n).inner_text() for n in (4, 5)] == ["3", "1"]  # /, a, probe; c

    # Each run's report.html, as the run wrote it.
    rows.nth(0).get_by_role("link", name="report", exact=True).click()
    tab.wait_for_load_state()  # the click returns once the navigation commits: the title may not be in yet
    assert tab.url.endswith(f"/mirror/snapshots/{history.snapshots[-1]}/report.html")
    assert tab.title().startswith("crawl report: completed")
    tab.go_back()

    # The first night, as it was: Page A before its edit.
    rows.nth(2).get_by_role("link", name="mirror").click()
    assert tab.locator("h1").inner_text() == "Home"
    assert f"/mirror/snapshots/{history.snapshots[0]}/" in tab.url
    tab.get_by_role("link", name="/a.html").click()
    assert tab.locator("h1").inner_text() == "Page A"

    # The change lists lead to the history of a page: every version, and what changed.
    tab.goto(history.url("/"))
    tab.locator("tr.changes details").nth(1).locator("summary").click()
    tab.get_by_role("link", name=history.site.url + "a.html").click()
    assert tab.locator("h1").inner_text() == "History of a URL"
    versions = tab.locator("tbody tr")
    assert versions.count() == 3
    assert versions.nth(0).locator("td").last.inner_text() == "first version kept"
    assert versions.nth(1).locator("td").last.inner_text() == "text changed"
    assert versions.nth(2).locator("td").last.inner_text() == "unchanged (the same file, hard-linked)"
    diff = tab.locator("pre.diff").inner_text()
    assert "-Page A\n" in diff and "+Page A, edited\n" in diff
    versions.nth(0).get_by_role("link").click()  # the version of the first night
    assert tab.locator("h1").inner_text() == "Page A"
    assert errors == []


def test_the_search_box_finds_a_url_by_part_of_it(history: History, browser_page: tuple[Any, list[str]]) -> None:
    tab, errors = browser_page
    tab.goto(history.url("/"))
    tab.get_by_role("searchbox").fill("c.htm")
    tab.get_by_role("button", name="History").click()
    tab.get_by_role("link", name=history.site.url + "c.html").click()
    rows = tab.locator("tbody tr")
    # Removed on the second night: the two nights without it, in one row.
    assert [rows.nth(n).locator("td").last.inner_text() for n in range(rows.count())] == [
        "first version kept", "not saved (2 runs)"]
    tab.get_by_role("searchbox").fill("no such page")
    tab.get_by_role("button", name="History").click()
    assert "No URL kept contains no such page." in tab.locator("body").inner_text()
    assert errors == []


def test_hostile_text_in_a_diff_is_shown_as_text(history: History, browser_page: tuple[Any, list[str]]) -> None:
    tab, errors = browser_page
    tab.goto(history.url("/history?url=" + history.site.url + "probe.html"))
    diff = tab.locator("pre.diff")
    assert "+<img src=x onerror=alert(1)>" in diff.inner_text()
    assert diff.locator("img").count() == 0
    assert errors == []


def test_a_mirrored_page_renders_sandboxed_its_scripts_cannot_reach_the_server(
        history: History, browser_page: tuple[Any, list[str]]) -> None:
    tab, errors = browser_page
    response = tab.goto(history.url(f"/mirror/latest/{history.host()}/probe.html"))
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert policy.startswith("sandbox ") and "allow-same-origin" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    # Its script ran -- in an origin of its own: no cookie, no storage, the server's pages unreadable.
    result = tab.locator("#result")
    result.filter(has_not_text="not run").wait_for()
    assert result.inner_text() == "cookie-blocked storage-blocked fetch-blocked"
    assert tab.context.cookies() == []
    # Its stylesheet, from the server, applies; its font, fetched in CORS mode, is given to it.
    tab.goto(history.url(f"/mirror/latest/{history.host()}/index.html"))
    assert tab.locator("h1").evaluate("h => getComputedStyle(h).color") == "rgb(1, 2, 3)"
    assert tab.evaluate("document.fonts.ready.then(() => [...document.fonts].map(font => font.family))") == ["Shop"]
    assert [error for error in errors if error.startswith("Access to font")] == []


def test_saved_files_are_served_with_their_recorded_types(history: History) -> None:
    base = f"/mirror/latest/{history.host()}"
    status, headers, body = request(history, "GET", f"{base}/latin.html")
    assert (status, headers["content-type"]) == (200, "text/html; charset=iso-8859-1")
    assert body == LATIN1
    status, headers, _ = request(history, "GET", f"{base}/feed")
    assert (status, headers["content-type"]) == (200, "application/rss+xml")
    status, _, body = request(history, "GET", f"{base}/list.php%3Fpage=2.html")  # a name with "?"
    assert status == 200 and b"Page two of the list" in body
    status, headers, body = request(history, "GET", f"{base}/dir/")  # a folder: its index.html
    assert status == 200 and b"The dir index" in body and headers["content-security-policy"].startswith("sandbox")
    status, headers, _ = request(history, "GET", f"{base}/dir")
    assert (status, headers["location"]) == (301, f"{base}/dir/")
    status, headers, body = request(history, "GET", f"/mirror/snapshots/{history.snapshots[0]}/")
    assert status == 200 and history.host().encode() in body  # no page: a listing, by the server
    assert "sandbox" not in headers["content-security-policy"]
    status, headers, body = request(history, "GET", f"/mirror/snapshots/{history.snapshots[0]}/report.json")
    assert headers["content-type"] == "application/json; charset=utf-8" and json.loads(body)["outcome"] == "completed"
    # Fonts (and scripts, stylesheets, images) are shared with the sandboxed pages' "null" origin; pages are not.
    assert request(history, "GET", f"{base}/shop.woff2", Origin="null")[1]["access-control-allow-origin"] == "*"
    assert "access-control-allow-origin" not in request(history, "GET", f"{base}/a.html", Origin="null")[1]


def test_a_range_of_a_saved_file_is_served_so_a_browser_can_seek_in_a_video(history: History) -> None:
    path = f"/mirror/latest/{history.host()}/latin.html"
    status, headers, whole = request(history, "GET", path)
    assert status == 200 and headers["accept-ranges"] == "bytes"
    size = len(whole)
    status, headers, body = request(history, "GET", path, Range="bytes=3-9")
    assert (status, body) == (206, whole[3:10])
    assert (headers["content-range"], headers["content-length"]) == (f"bytes 3-9/{size}", "7")
    assert headers["content-security-policy"].startswith("sandbox")  # sandboxed like the whole file
    assert request(history, "GET", path, Range="bytes=-4")[2] == whole[-4:]
    assert request(history, "GET", path, Range="bytes=5-")[2] == whole[5:]
    status, headers, body = request(history, "GET", path, Range=f"bytes={size}-")
    assert (status, headers["content-range"]) == (416, f"bytes */{size}") and whole not in body
    assert request(history, "HEAD", path, Range="bytes=3-9")[0] == 206
    # Several ranges, or If-Range (the files have no version to compare): the whole file.
    assert request(history, "GET", path, Range="bytes=0-1,4-5")[:3:2] == (200, whole)
    assert request(history, "GET", path, **{"Range": "bytes=0-1", "If-Range": '"v1"'})[:3:2] == (200, whole)


@pytest.mark.parametrize(("header", "size", "expected"), [
    (None, 10, None), ("bytes=0-0", 10, (0, 0)), ("bytes=2-", 10, (2, 9)), ("bytes=2-100", 10, (2, 9)),
    ("bytes=-3", 10, (7, 9)), ("bytes=-30", 10, (0, 9)), ("bytes=10-", 10, UNSATISFIABLE),
    ("bytes=-0", 10, UNSATISFIABLE), ("bytes=0-", 0, UNSATISFIABLE), ("bytes=5-2", 10, None), ("bytes=-", 10, None),
    ("bytes=0-1,3-4", 10, None), ("items=0-1", 10, None), ("bytes=a-b", 10, None), ("bytes = 1 - 2", 10, (1, 2)),
])
def test_the_range_header_is_read_as_one_range_or_none(header: str | None, size: int,
                                                       expected: tuple[int, int] | None) -> None:
    assert byte_range(header, size) == expected


def test_recorded_types_cannot_add_headers() -> None:
    assert header_value("text/html", "UTF-8") == "text/html; charset=utf-8"
    assert header_value("text/html\r\nSet-Cookie: a=b", None) == "application/octet-stream"
    assert header_value("text/html", "utf-8\r\nSet-Cookie: a=b") == "text/html"
    assert header_value("text/html; x=1", None) == "application/octet-stream"


# -- what the server refuses ---------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/mirror/../../outside/secret.txt",
    "/mirror/%2e%2e/%2e%2e/outside/secret.txt",
    "/mirror/..%2f..%2foutside%2fsecret.txt",
    "/mirror/latest/..%2F..%2F..%2Foutside/secret.txt",
    "/mirror/latest/%2E%2E/%2E%2E/%2E%2E/outside/secret.txt",
    "/mirror/..%5c..%5coutside%5csecret.txt",
    "/mirror//etc/passwd",
    "/mirror/%2fetc%2fpasswd",
    "/etc/passwd",
    "/../outside/secret.txt",
    "/mirror/.crawl/state.sqlite",
    "/mirror/%2ecrawl/state.sqlite",
    "/mirror/latest/%00",
    "/mirror/latest/%ff",
    "/mirror/snapshots/FIRST/HOST/escape.txt",  # symlinks planted in the mirror, pointing outside
    "/mirror/snapshots/FIRST/HOST/escape-dir/secret.txt",
    "/mirror/snapshots/FIRST/HOST/escape-dir/",
    "/mirror/snapshots/FIRST/HOST/state.sqlite",  # ... or into the crawl state
])
def test_paths_that_leave_the_output_folder_or_reach_the_crawl_state_get_404(history: History, path: str) -> None:
    path = path.replace("FIRST", history.snapshots[0]).replace("HOST", history.host())
    for method in ("GET", "HEAD"):
        status, _, body = request(history, method, path)
        assert status == 404, (method, path)
        assert b"secret" not in body and b"SQLite" not in body


def test_only_names_of_this_machine_are_answered(history: History) -> None:
    """A site whose name was pointed at 127.0.0.1 (DNS rebinding) must not read the history as its own."""
    port = history.server.server_address[1]
    assert request(history, "GET", "/", Host=f"evil.example:{port}")[0] == 403
    assert request(history, "GET", f"/mirror/latest/{history.host()}/a.html", Host="evil.example")[0] == 403
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "LOCALHOST"):
        assert request(history, "GET", "/", Host=host)[0] == 200


def test_only_get_and_head_are_answered(history: History) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND"):
        status, headers, _ = request(history, method, "/")
        assert (status, headers["allow"]) == (405, "GET, HEAD"), method
    get_status, get_headers, body = request(history, "GET", "/")
    head_status, head_headers, nothing = request(history, "HEAD", "/")
    assert (get_status, head_status, nothing) == (200, 200, b"")
    assert head_headers["content-length"] == get_headers["content-length"] == str(len(body))
    policy = get_headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy and get_headers["x-frame-options"] == "DENY"


# -- a plain mirror ------------------------------------------------------------------------

def test_a_plain_mirror_shows_its_last_run_and_what_it_replaced(
        tmp_path: Path, browser_page: tuple[Any, list[str]]) -> None:
    mutable = routes.MutableSite()
    mutable.put("/", page("Home", "/a.html"))
    mutable.put("/a.html", page("Page A", "/"))
    with SiteServer(root=None, routes=mutable.routes()) as site:
        config = write_config(tmp_path, site)
        assert main([str(config)]) == 0
        mutable.put("/a.html", page("Page A, edited", "/"))
        site.routes.update(mutable.routes())
        assert main([str(config)]) == 0
    tab, errors = browser_page
    with HistoryServer(tmp_path / "out", port=0) as server:
        tab.goto(server.url)
        rows = tab.locator("tbody > tr:not(.changes)")
        assert rows.count() == 1 and "plain mirror: last run" in rows.first.inner_text()
        tab.get_by_role("link", name=site.url + "a.html").click()
        versions = tab.locator("tbody tr")
        assert [versions.nth(n).locator("td").first.inner_text() for n in range(2)] == ["previous crawl", "last crawl"]
        assert "+Page A, edited" in tab.locator("pre.diff").inner_text()
        tab.goto(server.url)
        rows.first.get_by_role("link", name="mirror").click()
        tab.get_by_role("link", name="/a.html").click()
        assert tab.locator("h1").inner_text() == "Page A, edited"
    assert errors == []


# -- the command ---------------------------------------------------------------------------

def test_crawl_serve_takes_a_config_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    mutable = routes.MutableSite()
    mutable.put("/", page("Home"))
    with SiteServer(root=None, routes=mutable.routes()) as site:
        config = write_config(tmp_path, site, snapshots={"keep": 2})
        assert main([str(config)]) == 0
    with subprocess.Popen([sys.executable, "-m", "crawler", "serve", str(config), "--port", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as serving:
        try:
            assert serving.stdout is not None
            line = serving.stdout.readline()
            found = re.fullmatch(r"serving (.+) at (http://127\.0\.0\.1:(\d+)/) \(Ctrl-C to stop\)\n", line)
            assert found and Path(found[1]) == tmp_path / "out", line
            connection = http.client.HTTPConnection("127.0.0.1", int(found[3]), timeout=5)
            connection.request("GET", "/")
            assert latest(tmp_path / "out") in connection.getresponse().read().decode()
            connection.close()
            serving.send_signal(signal.SIGINT)
            assert serving.wait(timeout=10) == 0
        finally:
            serving.kill()


def test_a_port_in_use_and_a_folder_crawl_did_not_write_are_one_line_errors(
        history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(history.out), "--port", str(port)]) == 1
    assert capsys.readouterr().err == (f"crawl: error: cannot serve on 127.0.0.1:{port}: Address already in use "
                                       "(choose another with --port)\n")
    (tmp_path / "notes.txt").write_text("not a mirror")
    assert main(["serve", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"crawl: error: {tmp_path}: not a crawl output folder (no manifest.jsonl, "
                                       "report.json, snapshots/ or .crawl/ in it)\n")
    assert main(["serve", str(tmp_path / "nothing")]) == 2
    assert "no such config file or output folder" in capsys.readouterr().err
    assert main(["serve", str(history.out), "--port", "70000"]) == 2
    assert capsys.readouterr().err == ("crawl: error: argument --port: 70000 is not a port number (0 to 65535) "
                                       "(see crawl serve --help)\n")


# -- an output folder written by hand: what crawl never writes, but the server must survive --

def snapshot(out: Path, name: str, files: dict[str, str], report: str | None = None) -> Path:
    """A snapshot with a manifest of text/html files ({path: content}); a report as given."""
    root = out / "snapshots" / name
    root.mkdir(parents=True)
    lines = []
    for path, content in files.items():
        if not path.startswith(".."):
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(content)
        lines.append(json.dumps({"url": "http://site/" + path.rpartition("/")[2], "path": path, "status": 200,
                                 "content_type": "text/html", "size": len(content), "sha256": content * 2,
                                 "etag": None, "last_modified": None, "fetched_at": "2026-05-01T02:00:00+00:00"}))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    if report is not None:
        (root / "report.json").write_text(report)
    return root


def test_a_manifest_cannot_point_the_history_outside_the_output_folder(
        tmp_path: Path, browser_page: tuple[Any, list[str]]) -> None:
    out = tmp_path / "out"
    (tmp_path / "secret.html").write_text("<p>the secret</p>")
    snapshot(out, "2026-05-01T020000Z", {"site/a.html": "<p>first</p>"})
    second = snapshot(out, "2026-05-02T020000Z", {"site/b.html": "<p>b</p>"},
                      report=json.dumps({"outcome": "aborted", "fatal_error": "disk full <b>now</b>"}))
    (second / "changes.json").write_text(json.dumps({"compared_with": "2026-05-01T020000Z",
                                                     "modified": [{"url": "http://site/b.html"}, "odd"]}))
    snapshot(out, "2026-05-03T020000Z", {"../../../secret.html": "x", "site/b.html": "<p>b, edited</p>"},
             report="{damaged")
    (second / "site" / "a.html").symlink_to(tmp_path / "secret.html")  # listed as a.html below
    (second / "manifest.jsonl").write_text((second / "manifest.jsonl").read_text() + json.dumps(
        {"url": "http://site/a.html", "path": "site/a.html", "status": 200, "content_type": "text/html",
         "size": 1, "sha256": "other", "etag": None, "last_modified": None, "fetched_at": "x"}) + "\n")
    (out / "snapshots" / "2026-05-04T020000Z").mkdir()  # a crawl writing it: no manifest, no report yet
    tab, errors = browser_page
    with HistoryServer(out, port=0) as server:
        tab.goto(server.url)
        rows = tab.locator("tbody > tr:not(.changes)")
        assert rows.count() == 4
        assert "no report" in rows.first.inner_text() and "no report" in rows.nth(1).inner_text()
        assert "aborted\ndisk full <b>now</b>" in rows.nth(2).inner_text()  # why, as text
        assert tab.locator("tr.changes li").all_text_contents() == ["modified http://site/b.html", "modified odd"]
        for url in ("http://site/a.html", "http://site/secret.html"):  # a symlink out; a path out
            tab.goto(server.url + "history?url=" + url)
            assert tab.locator("h2").first.inner_text().endswith("versions kept")  # listed...
            assert "the secret" not in tab.locator("body").inner_text()  # ... and nothing read
    assert errors == []
