"""Logged-in areas against a real server: a form login with a CSRF token, the session kept for
the crawl, logout links left alone, a session that expires mid-crawl, cookies from a
cookies.txt, and secrets kept out of everything the crawl writes."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from crawler.cli.main import main
from crawler.demo.server import SiteServer
from crawler.engine.run import CrawlRun
from crawler.errors import LoginError
from tests import routes
from tests.conftest import CrawlRunner, make_config, read_manifest
from tests.login_site import PASSWORD, USER, LoginSite


@pytest.fixture
def members(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SiteServer, LoginSite]]:
    monkeypatch.setenv("SITE_PASSWORD", PASSWORD)
    site = LoginSite()
    with SiteServer(root=None, routes=site.routes()) as server:
        yield server, site


def login(server: SiteServer, **extra: object) -> dict[str, object]:
    return {"url": server.url + "login", "fields": {"username": USER}, "password_env": "SITE_PASSWORD", **extra}


def saved_text(report_output: str, server: SiteServer, path: str) -> str:
    return (Path(report_output) / server.url.split("/")[2] / path).read_text()


def test_a_crawl_behind_a_login_form(members: tuple[SiteServer, LoginSite], crawl: CrawlRunner) -> None:
    server, site = members
    report, _ = crawl(server.url + "members/", login=login(server, success_text="Welcome alice"),
                      politeness={"robots": False}, mirror={"sitemaps": False})
    assert not report.tally.failures
    assert "Welcome alice" in saved_text(report.output, server, "members/index.html")
    assert "page a of alice" in saved_text(report.output, server, "members/a.html")
    assert "log book" in saved_text(report.output, server, "members/log-book.html")
    posted = site.logins[0]  # as a browser sends the form: its own values kept, the blanks filled
    assert posted["csrf"] == [next(iter(site.csrf.values()))] and posted["username"] == [USER]
    assert posted["password"] == [PASSWORD] and posted["remember"] == ["yes"] and "spam" not in posted
    assert posted["lang"] == ["fr"] and posted["action"] == ["login"] and "other" not in posted
    # Links that would end the session: by their URL (/logout) and by their text ("Sign out").
    assert "/logout" not in site.paths() and "/account/end" not in site.paths()
    assert report.skipped[server.url + "logout"] == report.skipped[server.url + "account/end"] == "logout"
    assert report.to_dict()["skipped_by_rule"]["logout"] == 2


def test_a_session_that_expires_mid_crawl_is_renewed_once(members: tuple[SiteServer, LoginSite],
                                                          crawl: CrawlRunner) -> None:
    server, site = members
    report, _ = crawl(server.url + "members/", login=login(server), politeness={"robots": False},
                      mirror={"sitemaps": False})
    assert len(site.logins) == 2  # before the crawl, and when /members/b.html said the session was gone
    assert "page b of alice" in saved_text(report.output, server, "members/b.html")
    assert not report.tally.failures
    assert server.url + "login" not in {entry["url"] for entry in read_manifest(Path(report.output))}


def test_a_session_that_cannot_be_renewed_fails_the_page(members: tuple[SiteServer, LoginSite],
                                                         crawl: CrawlRunner) -> None:
    server, site = members
    site.always_expire = {"/members/b.html"}
    report, _ = crawl(server.url + "members/", login=login(server), politeness={"robots": False, "per_host": 1},
                      mirror={"sitemaps": False}, threads={"fetchers": 1})  # one page at a time: b.html alone fails
    failures = {failure.url: (failure.reason, failure.message) for failure in report.tally.failures}
    assert failures == {server.url + "members/b.html": ("session_expired",
                                                        "HTTP 302 to the login page: the session expired")}
    assert site.paths().count("/members/b.html") == 2  # logged in again once for it, no more


@pytest.mark.parametrize(("extra", "words"), [
    ({"success_text": "Welcome bob"}, "'Welcome bob' is not on the page it led to"),
    ({}, "asks for the password again"),
])
def test_a_failed_login_stops_the_crawl_with_exit_1(members: tuple[SiteServer, LoginSite], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                    extra: dict[str, object], words: str) -> None:
    server, site = members
    if not extra:
        monkeypatch.setenv("SITE_PASSWORD", "wrong")
    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump({"start_urls": [server.url + "members/"], "output": str(tmp_path / "out"),
                                      "login": login(server, **extra)}))
    assert main([str(config)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("crawl: error: login at ") and words in error and "\n" not in error
    assert PASSWORD not in error and "wrong" not in error
    assert not (tmp_path / "out" / ".crawl" / "state.sqlite").exists()  # no crawl to resume
    assert "/members/a.html" not in site.paths()  # the crawl did not start


def test_a_page_without_a_login_form_is_a_clear_error(members: tuple[SiteServer, LoginSite], tmp_path: Path) -> None:
    server, _ = members
    server.routes["/about.html"] = routes.html(b"<p>no form here</p>")
    config = make_config(server.url + "members/", tmp_path / "out",
                         login={**login(server), "url": server.url + "about.html"})
    with pytest.raises(LoginError, match="no form with a password field"):
        CrawlRun(config).run()


def test_secrets_are_in_no_file_and_no_log(members: tuple[SiteServer, LoginSite], crawl: CrawlRunner,
                                          crawler_log: pytest.LogCaptureFixture) -> None:
    server, site = members
    report, _ = crawl(server.url + "members/", login=login(server), output_formats=["files", "warc"],
                      politeness={"robots": False})
    session = next(iter(site.sessions))
    out = Path(report.output)
    written = b"".join(gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
                       for path in out.rglob("*") if path.is_file() and ".crawl" not in path.parts)
    assert b"warc/1.1" in written.lower() and b"/members/a.html" in written
    assert "logged in at" in crawler_log.text and "the session expired" in crawler_log.text
    for secret in (PASSWORD, session, "pre="):
        assert secret.encode() not in written, secret
        assert secret not in crawler_log.text, secret
    assert b"Cookie" not in written.split(b"WARC/1.1", 1)[1]


def test_cookies_from_a_cookies_txt_go_only_where_their_domain_and_path_say(tmp_path: Path,
                                                                           crawl: CrawlRunner) -> None:
    seen: list[dict[str, str]] = []
    page = routes.page("/members/x.html", "/public.html", "/members/")
    with SiteServer(root=None) as server:
        server.routes.update({path: routes.recorded(seen, routes.html(page)) for path in
                              ["/", "/members/", "/members/x.html", "/public.html"]})
        cookies = tmp_path / "cookies.txt"
        cookies.write_text("# Netscape HTTP Cookie File\n"
                           "127.0.0.1\tFALSE\t/members\tFALSE\t0\tsession\tabc123\n"
                           "#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t0\tsite_wide\tyes\n"
                           "elsewhere.example\tFALSE\t/\tFALSE\t0\tforeign\tno\n")
        report, _ = crawl(server.url, http={"timeout": 5, "retries": 0, "cookies_file": str(cookies)},
                          politeness={"robots": False}, mirror={"sitemaps": False})
    got = {request["path"]: request.get("cookie", "") for request in seen}
    assert got["/members/x.html"] == got["/members/"] == "session=abc123; site_wide=yes"
    assert got["/"] == got["/public.html"] == "site_wide=yes"
    assert not report.tally.failures
    saved = json.loads((Path(report.output) / "report.json").read_text())
    assert "abc123" not in json.dumps(saved)


def test_the_logout_rule_applies_to_cookies_files_too_and_check_names_it(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tabc\n")
    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump({"start_urls": ["http://127.0.0.1:9/"], "output": str(tmp_path / "out"),
                                      "http": {"cookies_file": str(cookies)}}))
    urls = ["http://127.0.0.1:9/user/logout", "http://127.0.0.1:9/?action=sign-out", "http://127.0.0.1:9/blog-outline"]
    assert main(["check", str(config), "--no-robots", *urls]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "links that log out are not followed: rule logout" in out[0]
    assert out[1] == "http://127.0.0.1:9/user/logout: not crawled -- logout: looks like a link that logs out " \
                     "(log out, sign out...): not followed while logged in"
    assert "not crawled -- logout" in out[2]
    assert "not crawled" not in out[3]


def test_a_form_sent_with_get_keeps_the_password_out_of_the_error(members: tuple[SiteServer, LoginSite],
                                                                 tmp_path: Path) -> None:
    server, _ = members
    form = b'<form action="/old-login"><input name="user"><input type="password" name="pw"></form>'
    seen: list[dict[str, str]] = []
    server.routes["/old-login"] = routes.recorded(seen, routes.html(form))  # never satisfied
    config = make_config(server.url + "members/", tmp_path / "out",
                         login={**login(server), "url": server.url + "old-login", "fields": {"user": USER}})
    with pytest.raises(LoginError) as failed:
        CrawlRun(config).run()
    assert "asks for the password again" in str(failed.value)
    assert seen[-1]["path"] == "/old-login?user=alice&pw=correct+horse"  # sent as the form says: in its query
    assert "correct" not in str(failed.value)
