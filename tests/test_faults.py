"""Faults, each against a real local server that misbehaves on purpose (tests/routes.py)."""

from __future__ import annotations

import gzip
import itertools
import json
import socket
import time
import zlib
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from crawler.demo.server import SiteServer
from crawler.engine.run import CrawlRun
from crawler.history.report import CrawlReport
from tests import routes
from tests.conftest import assert_spaced, make_config, url_places

FAST = {"timeout": 2, "retries": 0}


def crawl_site(site: dict[str, routes.Route], out: Path, start: str = "", **sections: object) -> tuple[
        CrawlReport, SiteServer]:
    sections.setdefault("mirror", {"sitemaps": False})
    sections.setdefault("politeness", {"robots": False})
    with SiteServer(root=None, routes=site) as server:
        report = CrawlRun(make_config(server.url + start, out, **sections)).run()
    return report, server


def reasons(report: CrawlReport) -> dict[str, str]:
    return {failure.url.split("/", 3)[3]: failure.reason for failure in report.tally.failures}


def linking(served: dict[str, routes.Route], *more_links: str) -> dict[str, routes.Route]:
    """The routes `served`, and a home page "/" that links to each of them (and `more_links`)."""
    return {"/": routes.html(routes.page(*served, *more_links)), **served}


# -- politeness ---------------------------------------------------------------------------------

def test_per_host_limits_requests_in_flight(tmp_path: Path) -> None:
    site = routes.tree_site(40, delay=0.05)
    _, server = crawl_site(site, tmp_path, "gen/0.html", threads={"fetchers": 8}, politeness={
        "robots": False, "per_host": 2})
    assert server.most_concurrent() == 2


def test_delay_spaces_request_starts(tmp_path: Path) -> None:
    _, server = crawl_site(routes.tree_site(6), tmp_path, "gen/0.html", threads={"fetchers": 4},
                           politeness={"robots": False, "delay": 0.15, "per_host": 4})
    starts = [moment for moment, _ in server.request_log()]
    assert len(starts) == 6
    assert_spaced(starts, 0.15)


def test_a_slow_host_does_not_hold_up_another(tmp_path: Path) -> None:
    with SiteServer(root=None, routes=routes.tree_site(6, delay=0.4)) as slow:
        slow_start = slow.url.replace("127.0.0.1", "localhost") + "gen/0.html"
        fast_site = routes.tree_site(30)
        fast_site["/"] = routes.html(routes.page("/gen/0.html", slow_start))
        with SiteServer(root=None, routes=fast_site) as fast:
            config = make_config(fast.url, tmp_path, threads={"fetchers": 4}, mirror={"sitemaps": False},
                                 politeness={"robots": False, "per_host": 1},
                                 scope={"domains": ["127.0.0.1", "localhost"]})
            CrawlRun(config).run()
            fast_done = max(moment for moment, _ in fast.request_log())
            slow_log = slow.request_log()
    assert len(slow_log) == 6
    # the fast host's 31 pages were all fetched while the slow one served its first few
    assert sum(moment <= fast_done for moment, _ in slow_log) <= 3


def test_cookies_a_site_sets_are_sent_back_to_it_and_to_no_other_host(tmp_path: Path) -> None:
    # A site that hands out a session cookie on its front page and refuses pages without it.
    def front(handler: BaseHTTPRequestHandler) -> None:
        routes.send(handler, 200, routes.page("/members.html", other), headers={"Set-Cookie": "session=s3cret; Path=/"})

    def members(handler: BaseHTTPRequestHandler) -> None:
        allowed = "session=s3cret" in (handler.headers.get("Cookie") or "")
        routes.send(handler, 200 if allowed else 403, routes.page(title="members"))

    other_seen: list[dict[str, str]] = []
    with SiteServer(root=None, routes={"/x.html": routes.recorded(other_seen, routes.html(routes.page()))}) as third:
        other = third.url.replace("127.0.0.1", "localhost") + "x.html"
        report, _ = crawl_site({"/": front, "/members.html": members}, tmp_path,
                               scope={"domains": ["127.0.0.1", "localhost"]})
    assert not report.tally.failures
    assert (tmp_path / next(tmp_path.glob("127.0.0.1*")).name / "members.html").is_file()
    assert len(other_seen) == 1 and "cookie" not in other_seen[0]


def test_user_agent_is_honest_and_overridable(tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []
    crawl_site({"/": routes.recorded(seen, routes.html(routes.page()))}, tmp_path / "a")
    crawl_site({"/": routes.recorded(seen, routes.html(routes.page()))}, tmp_path / "b",
               http={"user_agent": "archiver/2 (ops@example.com)"})
    assert seen[0]["user-agent"].startswith("crawl/")
    assert seen[1]["user-agent"] == "archiver/2 (ops@example.com)"


# -- retries ------------------------------------------------------------------------------------

def test_retry_after_seconds_is_honoured(tmp_path: Path) -> None:
    site = linking({"/limited.html": routes.rate_limited(1, "1", routes.html(routes.page()))})
    report, server = crawl_site(site, tmp_path, http={"retries": 2, "retry_backoff": 0.01})
    times = [moment for moment, path in server.request_log() if path == "/limited.html"]
    assert len(times) == 2 and times[1] - times[0] >= 0.95
    assert not report.tally.failures and report.tally.retries == 1


def test_retry_after_http_date_is_honoured(tmp_path: Path) -> None:
    now, clock = time.time(), time.monotonic()
    due = int(now) + 3  # a date is whole seconds: 2 to 3 seconds from now
    site = linking({"/limited.html": routes.rate_limited(1, formatdate(due, usegmt=True),
                                                         routes.html(routes.page()))})
    _, server = crawl_site(site, tmp_path, http={"retries": 2, "retry_backoff": 0.01})
    times = [moment for moment, path in server.request_log() if path == "/limited.html"]
    due_at = clock + (due - now)  # the date, on the server log's (monotonic) clock
    assert len(times) == 2
    assert times[0] < due_at - 0.5  # asked first well before the date,
    assert times[1] >= due_at - 0.05  # and again not before it (a loaded server notes requests late, never early)


def test_retry_after_is_capped(tmp_path: Path) -> None:
    site = linking({"/limited.html": routes.rate_limited(1, "3600", routes.html(routes.page()))})
    report, server = crawl_site(site, tmp_path, http={"retries": 1, "retry_backoff": 0.01, "max_retry_after": 0.3})
    times = [moment for moment, path in server.request_log() if path == "/limited.html"]
    assert len(times) == 2 and 0.29 <= times[1] - times[0] < 30
    assert not report.tally.failures


def test_client_errors_are_not_retried_and_server_errors_are(tmp_path: Path) -> None:
    site = linking({"/gone.html": routes.status(410), "/forbidden.html": routes.status(403),
                    "/broken.html": routes.status(502)})
    report, server = crawl_site(site, tmp_path, http={"retries": 2, "retry_backoff": 0.01})
    counts = server.requests()
    assert (counts["/gone.html"], counts["/forbidden.html"], counts["/broken.html"]) == (1, 1, 3)
    assert reasons(report) == {"gone.html": "http_410", "forbidden.html": "http_403", "broken.html": "http_502"}


def test_each_failure_is_in_the_report_with_its_reason(tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused = f"http://127.0.0.1:{closed.getsockname()[1]}/"
    closed.close()  # nothing listens there now
    site = linking({"/hang.html": routes.stall(2), "/cut.html": routes.reset_connection,
                    "/hang-up.html": routes.hang_up, "/not-http.html": routes.not_http}, refused)
    report, _ = crawl_site(site, tmp_path, http={"timeout": 0.3, "retries": 1, "retry_backoff": 0.01})
    failures = {failure.url.split("/", 3)[-1] or failure.url: failure for failure in report.tally.failures}
    assert {name: failure.reason for name, failure in failures.items()} == {
        "hang.html": "timeout", "cut.html": "incomplete_body", "hang-up.html": "connection_error",
        "not-http.html": "connection_error", refused: "connection_error"}
    assert report.tally.retries == 5  # each once
    # What a user reads: the cause, not the HTTP library's codes and wrappers around it.
    assert failures[refused].message == "connection failed: Connection refused"
    assert failures["hang-up.html"].message == "connection failed: the server closed the connection without answering"
    assert failures["not-http.html"].message == "connection failed: not an HTTP response"
    assert failures["cut.html"].message == "connection broke mid-body: end of response with 594 bytes missing"
    assert failures["hang.html"].message == "timed out: no data for 1 s"  # http.timeout, in whole seconds


# -- slow and oversized responses ---------------------------------------------------------------

def test_a_trickling_body_is_cut_off_at_max_time(tmp_path: Path) -> None:
    site = linking({"/slow.html": routes.trickle_body(interval=0.05)})
    started = time.monotonic()
    report, _ = crawl_site(site, tmp_path, http={**FAST, "max_time": 1})
    assert reasons(report) == {"slow.html": "too_slow"}
    assert time.monotonic() - started < 20
    assert not list(tmp_path.rglob("slow.html"))


@pytest.mark.timeout(30)
def test_a_body_slower_than_min_rate_is_cut_within_seconds_and_retried(tmp_path: Path) -> None:
    # One byte every half second never trips the silence timeout, and max_time is 5 minutes.
    trickling = routes.trickle_body(interval=0.5, total=10_000)
    site = linking({"/slow.html": trickling,
                    "/once-slow.html": _first_then(trickling, routes.html(b"<p>fine now</p>"))})
    started = time.monotonic()
    report, server = crawl_site(site, tmp_path, http={"timeout": 2, "retries": 1, "retry_backoff": 0.1})
    assert reasons(report) == {"slow.html": "too_slow"}, (report.tally.failures, server.request_log())
    assert "min_rate" in report.tally.failures[0].message
    assert server.requests()["/slow.html"] == 2  # retried like a timeout
    assert (tmp_path / server.url.split("/")[2] / "once-slow.html").read_bytes() == b"<p>fine now</p>"
    assert time.monotonic() - started < 20


def test_a_large_body_on_a_slow_but_steady_link_is_not_cut(tmp_path: Path) -> None:
    # 6 KB/s, six times the default min_rate (a busy test machine slows the server down), for
    # longer than http.timeout.
    site = linking({"/big.bin": routes.paced_body(total=18_000, chunk=600, interval=0.1)})
    report, server = crawl_site(site, tmp_path, http={"timeout": 2, "retries": 0})
    assert reasons(report) == {}
    assert (tmp_path / server.url.split("/")[2] / "big.bin").stat().st_size == 18_000


def test_min_rate_zero_lets_a_trickle_run_to_max_time(tmp_path: Path) -> None:
    site = linking({"/slow.html": routes.trickle_body(interval=0.2, total=10_000)})
    started = time.monotonic()
    # A byte every 0.2 s: ten times inside the silence timeout, even on a busy machine.
    report, _ = crawl_site(site, tmp_path, http={"timeout": 2, "retries": 0, "min_rate": 0, "max_time": 3})
    assert reasons(report) == {"slow.html": "too_slow"}, report.tally.failures
    assert "max_time" in report.tally.failures[0].message
    assert time.monotonic() - started >= 3


def _first_then(first: routes.Route, then: routes.Route) -> routes.Route:
    answered = itertools.count()

    def route(handler: BaseHTTPRequestHandler) -> None:
        (first if next(answered) == 0 else then)(handler)
    return route


def test_trickling_headers_are_cut_off_at_max_time(tmp_path: Path) -> None:
    site = linking({"/slow.html": routes.trickle_headers(interval=0.05)})
    report, _ = crawl_site(site, tmp_path, http={**FAST, "max_time": 1})
    assert reasons(report) == {"slow.html": "too_slow"}


def test_an_endless_body_is_stopped_at_max_bytes(tmp_path: Path) -> None:
    site = linking({"/endless.bin": routes.endless_chunked()})
    report, _ = crawl_site(site, tmp_path, http={**FAST, "max_bytes": 1_000_000})
    assert reasons(report) == {"endless.bin": "too_large"}


def test_a_gzip_bomb_is_stopped_not_inflated(tmp_path: Path) -> None:
    site = linking({"/bomb.html": routes.gzip_bomb(50_000_000)})
    report, _ = crawl_site(site, tmp_path, http={**FAST, "max_bytes": 1_000_000})
    assert reasons(report) == {"bomb.html": "too_large"}


# -- redirects -----------------------------------------------------------------------------------

def test_redirect_loops_and_long_chains_stop(tmp_path: Path) -> None:
    chain = {f"/hop{n}": routes.redirect(f"/hop{n + 1}") for n in range(10)}
    site = linking({"/loop-a": routes.redirect("/loop-b"), "/ftp": routes.redirect("ftp://example.com/file")},
                   "/hop0")
    site["/loop-b"] = routes.redirect("/loop-a")
    report, _ = crawl_site({**site, **chain}, tmp_path, http={**FAST, "max_redirects": 5})
    assert reasons(report) == {"loop-a": "redirect_loop", "hop0": "too_many_redirects", "ftp": "bad_redirect"}


# -- traps ---------------------------------------------------------------------------------------

def test_an_endless_calendar_ends_within_the_limits(tmp_path: Path) -> None:
    report, server = crawl_site({"/calendar": routes.calendar}, tmp_path, "calendar?m=0",
                                scope={"max_depth": 30})
    assert sum(server.requests().values()) == 61  # month 0, then 30 hops either way
    assert report.outcome == "completed"
    report, server = crawl_site({"/calendar": routes.calendar}, tmp_path / "b", "calendar?m=0",
                                scope={"max_depth": None, "max_pages": 50})
    assert report.tally.html_pages_saved == 50


def test_long_urls_and_repeating_paths_are_traps(tmp_path: Path) -> None:
    long = "/" + "x" * 3000
    report, server = crawl_site(linking({"/a/b/a/b/ok.html": routes.html(routes.page())}, long,
                                        "/a/b/a/b/a/b/page.html"), tmp_path)
    skipped = {url.split("/", 3)[3]: rule for url, rule in report.skipped.items()}
    assert skipped == {"x" * 3000: "max_url_length", "a/b/a/b/a/b/page.html": "repeated_segments"}
    assert server.requests()["/a/b/a/b/ok.html"] == 1


# -- bad content ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "links_next"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 20, False),  # binary served as text/html
    (b"<html><body><a href='/next.html'>\xff\xfe\xfd invalid UTF-8 \xc3</a>", True),
    (b"<<<<<<>>>>>><a href=<a href='/next.html'>>><!--", False),  # as in browsers: href is "<a"
    (b"<html>" + b"<div>" * 50_000 + b"<a href='/next.html'>deep</a>", True),
])
def test_malformed_pages_are_saved_and_the_crawl_goes_on(tmp_path: Path, body: bytes, links_next: bool) -> None:
    site = linking({"/bad.html": routes.raw(body, "text/html; charset=utf-8")})
    site["/next.html"] = routes.html(routes.page())
    report, server = crawl_site(site, tmp_path)
    assert report.outcome == "completed" and not report.serious_failures
    assert server.requests()["/next.html"] == int(links_next)  # a link after the garbage is still found
    saved = next(tmp_path.rglob("bad.html"))
    assert saved.stat().st_size >= len(body) - 100


# -- headers that contradict each other ----------------------------------------------------------

def test_conflicting_content_lengths_are_a_bad_response_not_a_crash(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    site = linking({"/two-lengths.html": routes.conflicting_lengths(routes.page(title="which length?"))})
    report, _ = crawl_site(site, tmp_path, http={"retries": 1, "retry_backoff": 0.01})
    assert reasons(report) == {"two-lengths.html": "bad_response"}
    assert not [record for record in caplog.records if record.exc_info], "no traceback"
    assert not list(tmp_path.rglob("two-lengths.html"))


# -- compressed bodies ---------------------------------------------------------------------------

BODY = b"<!DOCTYPE html><html><body>" + b"<p>words worth compressing</p>\n" * 400 + b"</body></html>"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_a_compressed_body_cut_short_is_incomplete_retried_and_not_saved(tmp_path: Path, encoding: str) -> None:
    site = linking({"/cut.html": routes.compressed_cut_short(BODY, encoding)})
    report, server = crawl_site(site, tmp_path, http={"retries": 1, "retry_backoff": 0.01})
    assert reasons(report) == {"cut.html": "incomplete_body"}
    assert server.requests()["/cut.html"] == 2
    assert not list(tmp_path.rglob("cut.html"))


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_a_compressed_body_cut_short_never_replaces_the_stored_copy(tmp_path: Path, encoding: str) -> None:
    site = linking({"/cut.html": routes.compressed(BODY, encoding)})
    crawl_site(site, tmp_path)
    [saved] = tmp_path.rglob("cut.html")
    assert saved.read_bytes() == BODY
    site["/cut.html"] = routes.compressed_cut_short(BODY, encoding)
    report, _ = crawl_site(site, tmp_path)
    assert reasons(report) == {"cut.html": "incomplete_body"}
    assert saved.read_bytes() == BODY


@pytest.mark.parametrize("data", [
    gzip.compress(BODY[:3000]) + gzip.compress(BODY[3000:]),  # two gzip members: one body
    gzip.compress(BODY) + b"\0\0\0\0",  # padding after the end, which browsers ignore too
])
def test_whole_gzip_bodies_are_saved(tmp_path: Path, data: bytes) -> None:
    def route(handler: BaseHTTPRequestHandler) -> None:
        routes.send(handler, 200, data, "text/html", {"Content-Encoding": "gzip"})
    report, _ = crawl_site(linking({"/whole.html": route}), tmp_path)
    assert not report.tally.failures
    assert next(tmp_path.rglob("whole.html")).read_bytes() == BODY


def test_raw_deflate_and_an_empty_compressed_body_are_whole(tmp_path: Path) -> None:
    squeezer = zlib.compressobj(wbits=-zlib.MAX_WBITS)  # deflate without its zlib wrapper, as some servers send

    def raw_deflate(handler: BaseHTTPRequestHandler) -> None:
        routes.send(handler, 200, squeezer.compress(BODY) + squeezer.flush(), "text/html",
                    {"Content-Encoding": "deflate"})

    def empty(handler: BaseHTTPRequestHandler) -> None:
        routes.send(handler, 200, b"", "text/plain", {"Content-Encoding": "gzip"})
    report, _ = crawl_site(linking({"/raw.html": raw_deflate, "/empty.txt": empty}), tmp_path)
    assert not report.tally.failures
    assert next(tmp_path.rglob("raw.html")).read_bytes() == BODY
    assert next(tmp_path.rglob("empty.txt")).read_bytes() == b""


# -- unrequested 304s ----------------------------------------------------------------------------

def test_a_304_to_a_request_without_validators_is_a_failure_not_an_empty_file(tmp_path: Path) -> None:
    site = linking({"/never-asked.html": routes.not_modified})
    report, server = crawl_site(site, tmp_path, http={"retries": 1, "retry_backoff": 0.01})
    assert reasons(report) == {"never-asked.html": "unexpected_304"}
    assert server.requests()["/never-asked.html"] == 2  # tried again, unconditionally each time
    assert not list(tmp_path.rglob("never-asked.html"))


def test_a_304_when_the_stored_copy_is_gone_is_a_failure_not_an_empty_file(tmp_path: Path) -> None:
    site = routes.MutableSite()
    site.put("/", routes.page("/kept.html"))
    site.put("/kept.html", routes.page(title="kept"))
    crawl_site(site.routes(), tmp_path)
    [kept] = tmp_path.rglob("kept.html")
    kept.unlink()  # the stored copy is lost; the server still says "not modified" to anything
    report, _ = crawl_site({**site.routes(), "/kept.html": routes.not_modified}, tmp_path,
                           mirror={"sitemaps": False, "revalidate": "always"})
    assert reasons(report) == {"kept.html": "unexpected_304"}
    assert not kept.exists()


# -- what follows a redirect ---------------------------------------------------------------------

def test_a_redirect_target_that_fails_once_is_retried_and_saved(tmp_path: Path) -> None:
    site = linking({"/a": routes.redirect("/b"), "/also-b.html": routes.html(routes.page("/b"))})
    site["/b"] = routes.flaky(1, routes.html(routes.page(title="b")))
    report, server = crawl_site(site, tmp_path, http={"retries": 1, "retry_backoff": 0.01})
    assert not report.tally.failures
    assert server.requests()["/b"] == 2
    places = url_places(tmp_path)
    assert {url.split("/", 3)[3]: place for url, place in places.items()} == {
        "": ["saved"], "a": ["redirected"], "b": ["saved"], "also-b.html": ["saved"]}


@pytest.mark.parametrize(("target", "reason"), [(routes.status(503), "http_503"),
                                                (routes.not_modified, "unexpected_304"),
                                                (routes.reset_connection, "incomplete_body")])
def test_a_redirect_target_that_fails_is_reported_under_its_own_url(tmp_path: Path, target: routes.Route,
                                                                     reason: str) -> None:
    site = linking({"/a": routes.redirect("/odd/b.html"), "/also-b.html": routes.html(routes.page("/odd/b.html"))})
    site["/odd/b.html"] = target
    report, server = crawl_site(site, tmp_path, http={"retries": 1, "retry_backoff": 0.01})
    assert reasons(report) == {"odd/b.html": reason}
    assert server.requests()["/odd/b.html"] == 2  # its own retry
    places = {url.split("/", 3)[3]: place for url, place in url_places(tmp_path).items()}
    assert places == {"": ["saved"], "a": ["redirected"], "odd/b.html": [f"failed:{reason}"],
                      "also-b.html": ["saved"]}
    failure = next(f for f in json.loads((tmp_path / "report.json").read_text())["failures"])
    assert failure["redirected_from"] == [server.url + "a"]  # the chain that led there


def test_the_end_of_a_redirect_chain_is_reported_with_the_chain(tmp_path: Path) -> None:
    site = linking({"/r": routes.redirect("/m"), "/m": routes.redirect("/odd/x.html")})
    report, server = crawl_site(site, tmp_path)
    assert reasons(report) == {"odd/x.html": "http_404"}
    [failure] = json.loads((tmp_path / "report.json").read_text())["failures"]
    assert failure["redirected_from"] == [server.url + "r", server.url + "m"]
    places = {url.split("/", 3)[3]: place for url, place in url_places(tmp_path).items()}
    assert places == {"": ["saved"], "r": ["redirected"], "m": ["redirected"], "odd/x.html": ["failed:http_404"]}


def test_redirect_loops_and_long_chains_leave_every_url_in_one_place(tmp_path: Path) -> None:
    chain = {f"/hop{n}": routes.redirect(f"/hop{n + 1}") for n in range(10)}
    site = {**linking({"/loop-a": routes.redirect("/loop-b"), "/hop0": chain["/hop0"]}), **chain,
            "/loop-b": routes.redirect("/loop-a")}
    crawl_site(site, tmp_path, http={**FAST, "max_redirects": 3})
    places = {url.split("/", 3)[3]: place for url, place in url_places(tmp_path).items()}
    assert places.pop("loop-a") == ["failed:redirect_loop"]
    assert places.pop("hop0") == ["failed:too_many_redirects"]
    assert places.pop("") == ["saved"]
    # every other URL the crawl admitted is somewhere: each once
    assert all(len(place) == 1 for place in places.values()), places
    assert places["loop-b"] == ["redirected"]


def test_a_utf8_location_is_read_as_utf8(tmp_path: Path) -> None:
    site = linking({"/u": routes.raw_redirect("/caf\u00e9.html".encode())})
    site["/caf%C3%A9.html"] = routes.html(routes.page(title="caf\u00e9"))
    report, _ = crawl_site(site, tmp_path)
    assert not report.tally.failures
    assert next(tmp_path.rglob("caf\u00e9.html")).read_bytes() == routes.page(title="caf\u00e9")


def test_conflicting_location_headers_are_a_bad_redirect(tmp_path: Path) -> None:
    site = linking({"/two": routes.raw_redirect(b"/p/11.html", b"/p/12.html"),
                    "/same-twice": routes.raw_redirect(b"/p/13.html", b"/p/13.html")})
    site.update({f"/p/{n}.html": routes.html(routes.page(title=str(n))) for n in (11, 12, 13)})
    report, server = crawl_site(site, tmp_path)
    assert reasons(report) == {"two": "bad_redirect"}
    assert server.requests()["/p/13.html"] == 1  # the same Location twice is one Location
    assert not any("," in path for path in server.requests())
