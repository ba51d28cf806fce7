"""Credentials stay with the hosts they are for, and nothing is written outside the output."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from crawler.demo.server import SiteServer
from crawler.engine.run import CrawlRun
from tests import routes
from tests.conftest import make_config

SECRET = "s3cret-Pa55word"


def test_basic_auth_goes_to_the_site_and_nowhere_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("SITE_PASSWORD", SECRET)
    cdn_seen: list[dict[str, str]] = []
    site_seen: list[dict[str, str]] = []
    with SiteServer(root=None, routes={"/logo.png": routes.recorded(cdn_seen, routes.raw(b"png", "image/png")),
                                       "/away.png": routes.recorded(cdn_seen, routes.raw(b"png", "image/png"))}) as cdn:
        other = cdn.url.replace("127.0.0.1", "localhost")
        home = routes.page("/private.html").replace(
            b"<body>", f'<body><img src="{other}logo.png"><img src="/moved.png">'.encode())
        site = {"/": routes.html(home), "/moved.png": routes.redirect(other + "away.png"),
                "/private.html": routes.html(routes.page())}
        site = {path: routes.recorded(site_seen, routes.needs_auth("reader", SECRET, route))
                for path, route in site.items()}
        with SiteServer(root=None, routes=site) as server:
            caplog.set_level(logging.DEBUG, logger="crawler")
            report = CrawlRun(make_config(server.url, tmp_path, http={
                "auth": {"username": "reader", "password_env": "SITE_PASSWORD"},
                "headers": {"X-Api-Key": "key-" + SECRET}, "timeout": 5, "retries": 0},
                scope={"domains": ["127.0.0.1"]}, mirror={"sitemaps": False},
                politeness={"robots": False})).run()
    assert not report.tally.failures
    assert {entry["path"] for entry in site_seen} == {"/", "/private.html", "/moved.png"}
    assert all(entry.get("authorization", "").startswith("Basic ") for entry in site_seen)
    assert all(entry.get("x-api-key") == "key-" + SECRET for entry in site_seen)
    assert {entry["path"] for entry in cdn_seen} == {"/logo.png", "/away.png"}  # a requisite, a redirect
    assert all("authorization" not in entry and "x-api-key" not in entry for entry in cdn_seen)
    everything_written = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*.json*"))
    assert SECRET not in everything_written
    assert SECRET not in caplog.text


def test_a_missing_password_variable_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_PASSWORD", raising=False)
    with pytest.raises(Exception, match="environment variable NO_SUCH_PASSWORD"):
        make_config("http://h/", tmp_path, http={"auth": {"username": "u", "password_env": "NO_SUCH_PASSWORD"}})
    with pytest.raises(Exception, match="password: unknown key"):  # no password in the file, ever
        make_config("http://h/", tmp_path, http={"auth": {"username": "u", "password_env": "X", "password": "x"}})


def test_hostile_links_write_nothing_outside_the_output(tmp_path: Path) -> None:
    hostile = ["/%2e%2e/%2e%2e/%2e%2e/escape-1.html", "/..%2f..%2f..%2fescape-2.html", "/a/../../../escape-3.html",
               "/%2F%2Fetc%2Fescape-4.html", "/x%00y/escape-5.html", "/" + "%2e%2e/" * 30 + "escape-6.html"]
    served = {path: routes.html(routes.page()) for path in
              ["/escape-1.html", "/..%2F..%2F..%2Fescape-2.html", "/escape-3.html", "/%2F%2Fetc%2Fescape-4.html",
               "/x%00y/escape-5.html", "/escape-6.html"]}
    out = tmp_path / "deep" / "out"
    with SiteServer(root=None, routes={"/": routes.html(routes.page(*hostile)), **served}) as server:
        CrawlRun(make_config(server.url, out, mirror={"sitemaps": False}, politeness={"robots": False})).run()
    outside = [p for p in tmp_path.rglob("*") if out not in p.parents and p != out and p.is_file()]
    assert outside == []
    assert len([p for p in out.rglob("escape-*") if p.is_file()]) >= 4


def test_a_symlink_planted_in_the_output_is_never_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    out = tmp_path / "out"
    with SiteServer(root=None, routes={"/": routes.html(routes.page("/docs/a.html")),
                                       "/docs/a.html": routes.html(routes.page())}) as server:
        host = server.url.split("/")[2]
        (out / host).mkdir(parents=True)
        os.symlink(victim, out / host / "docs")
        report = CrawlRun(make_config(server.url, out, mirror={"sitemaps": False},
                                      politeness={"robots": False})).run()
    assert list(victim.iterdir()) == []
    assert [(f.url.split("/", 3)[3], f.reason) for f in report.tally.failures] == [("docs/a.html", "unsafe_path")]
    failures = json.loads((out / "report.json").read_text())["failures"]
    assert "symlink" in failures[0]["message"]
