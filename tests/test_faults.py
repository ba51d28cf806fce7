"""Faults, each against a real local server that misbehaves on purpose (tests/routes.py)."""

from __future__ import annotations

import itertools
import socket
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from crawler.demo.server import SiteServer
from crawler.pipeline import Pipeline
from crawler.report import CrawlReport
from tests import routes
from tests.conftest import make_config

FAST = {"timeout": 2, "retries": 0}


def crawl_site(site: dict[str, routes.Route], out: Path, start: str = "", **sections: object) -> tuple[
        CrawlReport, SiteServer]:
    sections.setdefault("mirror", {"sitemaps": False})
    sections.setdefault("politeness", {"robots": False})
    with SiteServer(root=None, routes=site) as server:
        report = Pipeline(make_config(server.url + start, out, **sections)).run()
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
    assert starts[-1] - starts[0] >= 0.15 * 5 - 0.05  # on average: arrival times jitter a little
    assert min(later - earlier for earlier, later in itertools.pairwise(starts)) >= 0.04


def test_a_slow_host_does_not_hold_up_another(tmp_path: Path) -> None:
    with SiteServer(root=None, routes=routes.tree_site(6, delay=0.4)) as slow:
        slow_start = slow.url.replace("127.0.0.1", "localhost") + "gen/0.html"
        fast_site = routes.tree_site(30)
        fast_site["/"] = routes.html(routes.page("/gen/0.html", slow_start))
        with SiteServer(root=None, routes=fast_site) as fast:
            config = make_config(fast.url, tmp_path, threads={"fetchers": 4}, mirror={"sitemaps": False},
                                 politeness={"robots": False, "per_host": 1},
                                 scope={"domains": ["127.0.0.1", "localhost"]})
            Pipeline(config).run()
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
    when = formatdate(time.time() + 2, usegmt=True)  # whole seconds: at least one more second
    site = linking({"/limited.html": routes.rate_limited(1, when, routes.html(routes.page()))})
    _, server = crawl_site(site, tmp_path, http={"retries": 2, "retry_backoff": 0.01})
    times = [moment for moment, path in server.request_log() if path == "/limited.html"]
    assert len(times) == 2 and times[1] - times[0] >= 0.9


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
    # What a user reads: the cause, not urllib3's wrappers around it.
    assert failures[refused].message == "connection failed: Connection refused"
    assert failures["hang-up.html"].message == "connection failed: Remote end closed connection without response"
    assert failures["not-http.html"].message == "connection failed: not an HTTP response: 'SSH-2.0-OpenSSH_9.6\\r\\n'"
    assert failures["cut.html"].message.startswith("connection broke mid-body: IncompleteRead(406 bytes read")
    assert failures["hang.html"].message == "timed out: Read timed out. (read timeout=0.3)"


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
    assert reasons(report) == {"slow.html": "too_slow"}
    assert "min_rate" in report.tally.failures[0].message
    assert server.requests()["/slow.html"] == 2  # retried like a timeout
    assert (tmp_path / server.url.split("/")[2] / "once-slow.html").read_bytes() == b"<p>fine now</p>"
    assert time.monotonic() - started < 20


def test_a_large_body_on_a_slow_but_steady_link_is_not_cut(tmp_path: Path) -> None:
    # 3 KB/s, three times the default min_rate, for longer than http.timeout.
    site = linking({"/big.bin": routes.paced_body(total=9_000, chunk=300, interval=0.1)})
    report, server = crawl_site(site, tmp_path, http={"timeout": 1, "retries": 0})
    assert reasons(report) == {}
    assert (tmp_path / server.url.split("/")[2] / "big.bin").stat().st_size == 9_000


def test_min_rate_zero_lets_a_trickle_run_to_max_time(tmp_path: Path) -> None:
    site = linking({"/slow.html": routes.trickle_body(interval=0.2, total=10_000)})
    started = time.monotonic()
    report, _ = crawl_site(site, tmp_path, http={"timeout": 1, "retries": 0, "min_rate": 0, "max_time": 3})
    assert reasons(report) == {"slow.html": "too_slow"}
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
