"""Mirror fidelity: the saved sample site browses offline like the live one.

Everything here is checked by reading the files on disk with tests/offline_check.py, which
shares no code with the crawler.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from crawler.demo.server import SiteServer
from crawler.engine.run import CrawlRun
from tests.conftest import DEMO_CDN_FILES, DEMO_DISALLOWED, DEMO_SITE_FILES, make_config, read_manifest
from tests.offline_check import check_mirror

BROKEN_ON_SITE = {"feed.xml", "missing-page.html"}


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SiteServer, dict[str, object]]:
    out = tmp_path_factory.mktemp("fidelity")
    with SiteServer() as server:
        CrawlRun(make_config(server.url, out, threads={"fetchers": 4})).run()
    return out, server, json.loads((out / "report.json").read_text())


def host_dirs(server: SiteServer) -> tuple[str, str]:
    return server.url.split("/")[2], server.cdn_url.split("/")[2]


def test_every_required_resource_is_saved(mirror: tuple[Path, SiteServer, dict[str, object]]) -> None:
    out, server, _ = mirror
    site, cdn = host_dirs(server)
    saved = {path for path in check_mirror(out).files if not path.startswith(".crawl/")}
    expected = {f"{site}/{path}" for path in DEMO_SITE_FILES} | {f"{cdn}/{path}" for path in DEMO_CDN_FILES}
    assert expected - saved == set()
    assert saved - expected == {"manifest.jsonl", "report.json", "report.html", "changes.json"}


def test_files_that_are_not_html_or_css_are_saved_byte_for_byte(
        mirror: tuple[Path, SiteServer, dict[str, object]]) -> None:
    out, server, _ = mirror
    site, cdn = host_dirs(server)
    for files, host in ((DEMO_SITE_FILES, site), (DEMO_CDN_FILES, cdn)):
        for saved, source in files.items():
            if not saved.endswith((".html", ".css")):
                assert (out / host / saved).read_bytes() == server.render(source), saved


def test_every_relative_link_resolves_to_a_saved_file(mirror: tuple[Path, SiteServer, dict[str, object]]) -> None:
    out, _, _ = mirror
    check = check_mirror(out, encodings={})
    assert check.local_broken == []
    assert len(check.local_ok) > 200


def test_no_absolute_link_to_a_mirrored_host_remains_but_for_pages_not_to_be_had(
        mirror: tuple[Path, SiteServer, dict[str, object]]) -> None:
    out, server, _ = mirror
    mirrored = (server.url, server.cdn_url)
    to_mirrored = {link for _, link in check_mirror(out).absolute if link.startswith(mirrored)}
    assert to_mirrored == {server.url + path for path in BROKEN_ON_SITE | DEMO_DISALLOWED}


def test_report_counts_the_links_that_work_offline(mirror: tuple[Path, SiteServer, dict[str, object]]) -> None:
    _, _, report = mirror
    assert report["offline_links_total"] == report["offline_links_ok"]
    assert report["offline_links_total"] > 200  # type: ignore[operator]
    details = report["offline_links"]
    assert details["broken_on_site"] == 2  # type: ignore[index]  # feed.xml, missing-page.html


def test_non_utf8_page_keeps_its_encoding(mirror: tuple[Path, SiteServer, dict[str, object]]) -> None:
    out, server, _ = mirror
    site, _ = host_dirs(server)
    saved = (out / site / "latin1.html").read_bytes()
    original = server.render("latin1.html")
    assert "D\u00e9j\u00e0 vu".encode("iso-8859-1") in saved
    assert b'href="caf%C3%A9.html"' in saved  # the link to caf\u00e9.html, as a browser requests it
    # Only link values changed: the text around them is byte-for-byte the original.
    assert saved.replace(b'href="caf%C3%A9.html"', b"") == original.replace(b'href="caf\xe9.html"', b"")


def test_base_href_links_point_into_the_mirror(mirror: tuple[Path, SiteServer, dict[str, object]]) -> None:
    out, server, _ = mirror
    page = (out / host_dirs(server)[0] / "base-demo" / "index.html").read_text()
    assert '<base href="">' in page
    assert 'href="../docs/getting-started.html"' in page


def test_redirected_links_lead_to_the_final_file(mirror: tuple[Path, SiteServer, dict[str, object]]) -> None:
    out, server, _ = mirror
    site, _ = host_dirs(server)
    gallery = (out / site / "gallery.html").read_text()
    assert '<a href="static/img/photo.png">A moved photo</a>' in gallery
    index = (out / site / "index.html").read_text()
    assert '<a href="index.html">An old address</a>' in index


def test_pages_without_html_extension_are_saved_and_linked_with_one(
        mirror: tuple[Path, SiteServer, dict[str, object]]) -> None:
    out, server, _ = mirror
    site, _ = host_dirs(server)
    by_url = {entry["url"]: entry["path"] for entry in read_manifest(out)}
    assert by_url[server.url + "about"] == f"{site}/about.html"
    assert by_url[server.url + "products.php?id=1"] == f"{site}/products.php?id=1.html"
    index = (out / site / "index.html").read_text()
    assert 'href="products.php%3Fid=1.html"' in index and 'href="about.html"' in index


def test_manifest_describes_the_body_as_served_not_as_converted(
        mirror: tuple[Path, SiteServer, dict[str, object]]) -> None:
    out, server, _ = mirror
    entry = next(e for e in read_manifest(out) if e["url"] == server.url)
    served = server.render("index.html")
    assert entry["sha256"] == hashlib.sha256(served).hexdigest() and entry["size"] == len(served)
    assert (out / entry["path"]).read_bytes() != served


def test_special_links_are_left_alone(mirror: tuple[Path, SiteServer, dict[str, object]]) -> None:
    out, server, _ = mirror
    index = (out / host_dirs(server)[0] / "index.html").read_text()
    for untouched in ('href="javascript:void(0)"', 'href="#top"', 'href="mailto:webmaster@example.com"',
                      'href="https://www.example.com/elsewhere"'):
        assert untouched in index


def test_without_conversion_the_mirror_is_the_site_byte_for_byte(tmp_path: Path) -> None:
    with SiteServer() as server:
        report = CrawlRun(make_config(server.url, tmp_path, mirror={"convert_links": False,
                                                                      "adjust_extension": False})).run()
        site = host_dirs(server)[0]
        for entry in read_manifest(tmp_path):
            if entry["url"].startswith(server.url):
                source = SITE_FILES_BY_URL.get(entry["url"][len(server.url):])
                if source:
                    assert (tmp_path / entry["path"]).read_bytes() == server.render(source)
    assert (tmp_path / site / "about").is_file()
    assert report.offline_links is not None
    assert report.offline_links.ok < report.offline_links.total  # "/docs/" and "?id=" links break


SITE_FILES_BY_URL = {"": "index.html", "about": "about.html", "gallery.html": "gallery.html",
                     "static/css/site.css": "static/css/site.css", "latin1.html": "latin1.html"}
