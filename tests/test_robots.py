"""robots.txt: the rules (unit), and a crawl that obeys them against a real server."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from crawler.demo.server import SiteServer
from crawler.engine import parse_stage
from crawler.engine.run import CrawlRun
from crawler.http.robots import ALLOW_ALL, DISALLOW_ALL, RobotsRules, product_token
from tests import routes
from tests.conftest import assert_spaced, make_config

RULES = """
User-agent: *
Disallow: /private/
Allow: /private/open.html
Disallow: /*.pdf$
Disallow: /search?
Crawl-delay: 2

User-agent: crawl
Disallow: /not-for-crawl/
Allow: /private/
Crawl-delay: 0.5

Sitemap: http://h/sitemap-a.xml
Sitemap: http://h/sitemap-b.xml.gz
"""


@pytest.mark.parametrize(("agent", "url", "allowed"), [
    ("other/1.0", "http://h/private/x.html", False),
    ("other/1.0", "http://h/private/open.html", True),  # the longer Allow wins
    ("other/1.0", "http://h/doc.pdf", False),
    ("other/1.0", "http://h/doc.pdf?x=1", True),  # "$" anchors the end
    ("other/1.0", "http://h/search?q=1", False),
    ("other/1.0", "http://h/search", True),
    ("crawl/0.1 (website mirroring tool)", "http://h/private/x.html", True),  # our own group
    ("crawl/0.1 (website mirroring tool)", "http://h/not-for-crawl/x", False),
    ("crawl/0.1 (website mirroring tool)", "http://h/robots.txt", True),
])
def test_rules(agent: str, url: str, allowed: bool) -> None:
    assert RobotsRules.parse(RULES, agent).allows(url) is allowed


def test_crawl_delay_and_sitemaps() -> None:
    assert RobotsRules.parse(RULES, "crawl/0.1").crawl_delay == 0.5
    assert RobotsRules.parse(RULES, "other").crawl_delay == 2
    assert RobotsRules.parse(RULES, "crawl/0.1").sitemaps == ("http://h/sitemap-a.xml", "http://h/sitemap-b.xml.gz")


def test_fixed_answers_and_product_token() -> None:
    assert ALLOW_ALL.allows("http://h/x") and not DISALLOW_ALL.allows("http://h/x")
    assert product_token("crawl/0.1 (+info)") == "crawl"
    assert product_token("MyArchiver (contact me)") == "MyArchiver"
    assert RobotsRules.parse("garbage \x00 lines\n:::\n", "crawl").allows("http://h/x")


def site_with_robots(robots: routes.Route | None, pages: int = 6) -> dict[str, routes.Route]:
    site: dict[str, routes.Route] = {
        "/": routes.html(routes.page(*(f"/p{n}.html" for n in range(pages)), "/private/x.html"))}
    site.update({f"/p{n}.html": routes.html(routes.page()) for n in range(pages)})
    site["/private/x.html"] = routes.html(routes.page())
    if robots is not None:
        site["/robots.txt"] = robots
    return site


def crawl(server: SiteServer, out: Path, **sections: object) -> CrawlRun:
    pipeline = CrawlRun(make_config(server.url, out, mirror={"sitemaps": False}, **sections))
    pipeline.run()
    return pipeline


def test_robots_txt_goes_first_once_and_is_obeyed(tmp_path: Path) -> None:
    robots = routes.text("User-agent: *\nDisallow: /private/\n")
    with SiteServer(root=None, routes=site_with_robots(robots)) as server:
        pipeline = crawl(server, tmp_path, threads={"fetchers": 4})
        log = [path for _, path in server.request_log()]
    assert log[0] == "/robots.txt" and log.count("/robots.txt") == 1
    assert "/private/x.html" not in log
    report = pipeline.frontier.skipped()
    assert report[server.url + "private/x.html"] == "robots"
    assert (tmp_path / server.url.split("/")[2] / "robots.txt").is_file()


def test_no_robots_txt_means_everything_is_allowed(tmp_path: Path) -> None:
    with SiteServer(root=None, routes=site_with_robots(None)) as server:
        crawl(server, tmp_path)
        assert server.requests()["/private/x.html"] == 1


def test_robots_txt_server_error_means_retry_then_nothing(tmp_path: Path) -> None:
    with SiteServer(root=None, routes=site_with_robots(routes.status(503))) as server:
        pipeline = crawl(server, tmp_path, http={"retries": 2, "retry_backoff": 0.01, "timeout": 5})
        assert server.requests() == {"/robots.txt": 3}  # tried three times, then nothing else
    report = pipeline.frontier.skipped()
    assert report[server.url] == "robots_unavailable"


def test_robots_txt_that_recovers_lets_the_crawl_go_on(tmp_path: Path) -> None:
    robots = routes.flaky(1, routes.text("User-agent: *\nDisallow: /private/\n"))
    with SiteServer(root=None, routes=site_with_robots(robots)) as server:
        crawl(server, tmp_path, http={"retries": 2, "retry_backoff": 0.01, "timeout": 5})
        counts = server.requests()
    assert counts["/robots.txt"] == 2 and counts["/p5.html"] == 1 and "/private/x.html" not in counts


def test_robots_txt_that_hangs_is_like_a_server_error(tmp_path: Path) -> None:
    with SiteServer(root=None, routes=site_with_robots(routes.stall(3))) as server:
        pipeline = crawl(server, tmp_path, http={"retries": 0, "timeout": 0.3})
        assert set(server.requests()) == {"/robots.txt"}
    assert pipeline.frontier.skipped()[server.url] == "robots_unavailable"


def test_crawl_delay_spaces_requests_to_the_host(tmp_path: Path) -> None:
    robots = routes.text("User-agent: *\nCrawl-delay: 0.5\n")
    with SiteServer(root=None, routes=site_with_robots(robots, pages=4)) as server:
        crawl(server, tmp_path, threads={"fetchers": 4}, politeness={"per_host": 4})
        starts = [moment for moment, _ in server.request_log()]
    # Measured where the requests arrive (see assert_spaced): on average at least the
    # Crawl-delay apart -- the first page too, after robots.txt -- and never sent together.
    # Under load the server's thread notes an arrival up to ~0.2 s late (robots.txt's, once, in
    # CI): a delay of 0.5 s leaves room for that and still shows one delay missing.
    assert len(starts) >= 6
    assert starts[-1] - starts[0] >= 0.5 * (len(starts) - 1) - 0.25
    assert_spaced(starts, 0.5)


def test_robots_can_be_turned_off(tmp_path: Path) -> None:
    robots = routes.text("User-agent: *\nDisallow: /\n")
    with SiteServer(root=None, routes=site_with_robots(robots)) as server:
        crawl(server, tmp_path, politeness={"robots": False})
        counts = server.requests()
    assert "/robots.txt" not in counts and counts["/private/x.html"] == 1


def test_sitemaps_named_in_robots_txt_are_read_even_gzipped(tmp_path: Path) -> None:
    sitemap = b"""<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
        <url><loc>/only-in-sitemap.html</loc></url></urlset>"""
    site: dict[str, routes.Route] = {"/": routes.html(routes.page())}
    with SiteServer(root=None, routes=site) as server:
        sitemap = sitemap.replace(b"<loc>/", f"<loc>{server.url}".encode())
        site["/robots.txt"] = routes.text(f"User-agent: *\nAllow: /\nSitemap: {server.url}maps/a.xml.gz\n")
        site["/maps/a.xml.gz"] = routes.raw(gzip.compress(sitemap), "application/gzip")
        site["/only-in-sitemap.html"] = routes.html(routes.page())
        server.routes.update(site)
        CrawlRun(make_config(server.url, tmp_path)).run()
        counts = server.requests()
    assert counts["/maps/a.xml.gz"] == 1 and counts["/only-in-sitemap.html"] == 1
    assert counts["/sitemap.xml"] == 1  # the usual place is tried too; its 404 is no failure


def test_links_to_a_host_whose_robots_txt_fails_are_fixed_during_the_crawl(tmp_path: Path) -> None:
    # The CDN's robots.txt answers 503 only after the site's pages are written with their
    # image links pointing at files to come; those links must become URLs right away (by the
    # writers), not in a pass over the mirror after the last fetch.
    cdn_routes = {"/robots.txt": routes.stall(1.0, routes.status(503)), "/logo.png": routes.raw(b"png", "image/png")}
    with SiteServer(root=None, routes=cdn_routes) as cdn:
        logo = cdn.url.replace("127.0.0.1", "localhost") + "logo.png"
        site = {"/": routes.html(routes.page(*(f"/p{n}.html" for n in range(4)))),
                **{f"/p{n}.html": routes.html(routes.page() + f'<img src="{logo}">'.encode()) for n in range(4)}}
        with SiteServer(root=None, routes=site) as server:
            config = make_config(server.url, tmp_path, mirror={"sitemaps": False}, http={"retries": 0},
                                 scope={"domains": ["127.0.0.1", "localhost"]})
            report = CrawlRun(config).run()
        assert "/logo.png" not in cdn.requests()
    host = server.url.split("/")[2]
    for n in range(4):
        assert f'src="{logo}"'.encode() in (tmp_path / host / f"p{n}.html").read_bytes()
    assert report.offline_links is not None and report.offline_links.files_converted == 0


NOFOLLOW_META = '<meta name="robots" content="{}">'


@pytest.mark.parametrize(("meta", "header", "followed"), [
    ("nofollow", None, False),
    ("noindex, NOFOLLOW", None, False),
    ("none", None, False),
    ("noindex", None, True),
    (None, "nofollow", False),
    (None, "noindex, nofollow", False),
    (None, "crawl: nofollow", False),  # to our user agent
    (None, "googlebot: nofollow", True),  # to another crawler
    (None, "unavailable_after: 25 Jun 2030 15:00:00 PST", True),
    (None, None, True),
])
def test_a_page_that_says_nofollow_is_saved_with_its_requisites_but_its_links_are_not_followed(
        tmp_path: Path, meta: str | None, header: str | None, followed: bool) -> None:
    head = NOFOLLOW_META.format(meta) if meta else ""
    body = f'<html><head>{head}</head><body><img src="/pic.png"><a href="/next.html">n</a></body></html>'
    server = SiteServer(root=None, routes={
        "/": lambda handler: routes.send(handler, 200, body.encode(),
                                         headers={"X-Robots-Tag": header} if header else {}),
        "/pic.png": routes.raw(b"png", "image/png"), "/next.html": routes.html(b"next")})
    with server:
        report = CrawlRun(make_config(server.url, tmp_path / "out")).run()
        requested = server.requests()
    assert requested["/"] == requested["/pic.png"] == 1
    assert ("/next.html" in requested) is followed
    assert (report.skipped.get(server.url + "next.html") == "robots_meta_nofollow") is not followed
    if not followed:
        assert report.to_dict()["skipped_by_rule"] == {"robots_meta_nofollow": 1}
        assert report.counts()["skipped_by_robots"] == 1
        saved = (tmp_path / "out" / server.url.split("/")[2] / "index.html").read_text()
        assert f'href="{server.url}next.html"' in saved  # written as its URL: not in the mirror


def test_robots_meta_tags_are_ignored_when_robots_are(tmp_path: Path) -> None:
    body = NOFOLLOW_META.format("nofollow") + '<a href="/next.html">n</a>'
    with SiteServer(root=None, routes={"/": routes.html(body.encode()), "/next.html": routes.html(b"x")}) as server:
        CrawlRun(make_config(server.url, tmp_path / "out", politeness={"robots": False})).run()
        assert server.requests()["/next.html"] == 1


@pytest.mark.parametrize("meta", [NOFOLLOW_META.format("nofollow"), '<META content="nofollow"\n  name="ROBOTS">'])
def test_an_unchanged_nofollow_page_of_a_recrawl_still_keeps_its_links_unfollowed(tmp_path: Path, meta: str) -> None:
    site = routes.MutableSite()
    site.put("/", meta + '<a href="/next.html">n</a>')
    site.put("/next.html", "next")
    with SiteServer(root=None, routes=site.routes()) as server:
        for _ in range(2):
            report = CrawlRun(make_config(server.url, tmp_path / "out", mirror={"sitemaps": False})).run()
            assert report.skipped.get(server.url + "next.html") == "robots_meta_nofollow"
    assert site.statuses("/") == [200, 304] and site.statuses("/next.html") == []


def test_an_unchanged_page_that_only_mentions_robots_is_not_parsed_again_on_a_recrawl(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Its links come from the crawl state; only a <meta> naming robots makes a page worth reading again.
    parsed: list[str] = []
    parse = parse_stage.parse_response
    monkeypatch.setattr(parse_stage, "parse_response", lambda response, stored: parsed.append(response.url)
                        or parse(response, stored))
    site = routes.MutableSite()
    site.put("/", '<p>How robots.txt and <code>&lt;meta name="robots"&gt;</code> work</p><a href="/next.html">n</a>')
    site.put("/next.html", "next")
    with SiteServer(root=None, routes=site.routes()) as server:
        for _ in range(2):
            parsed.clear()
            CrawlRun(make_config(server.url, tmp_path / "out", mirror={"sitemaps": False})).run()
    assert site.statuses("/") == [200, 304] and site.statuses("/next.html") == [200, 304]
    assert parsed == []  # the second run: both pages unchanged, neither parsed
