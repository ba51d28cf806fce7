"""Shared fixtures: the bundled sample site on a real local server, and config/crawl helpers."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from crawler.config import Config
from crawler.config_file import parse_config
from crawler.demo.server import SiteServer
from crawler.engine.run import CrawlRun
from crawler.history.report import CrawlReport

pytest_plugins = ["tests.browser", "tests.redis_server"]  # a real headless Chromium; a real redis-server

# Every file a browser needs to show the sample site, as a complete mirror saves it:
# path under the host folder -> the site file it comes from.
DEMO_SITE_FILES = {
    "index.html": "index.html", "about.html": "about.html", "contact.html": "contact.html",
    "gallery.html": "gallery.html", "frame.html": "frame.html", "latin1.html": "latin1.html",
    "caf\u00e9.html": "caf\u00e9.html", "refresh.html": "refresh.html", "unlinked.html": "unlinked.html",
    "base-demo/index.html": "base-demo/index.html", "sitemap.xml": "sitemap.xml",
    "products.php?id=1.html": "products.php", "products.php?id=2.html": "products.php",
    "products.php?id=3&view=full.html": "products.php",
    "docs/index.html": "docs/index.html", "docs/getting-started.html": "docs/getting-started.html",
    "docs/advanced/index.html": "docs/advanced/index.html", "docs/advanced/config.html": "docs/advanced/config.html",
    "blog/index.html": "blog/index.html", "blog/2026/first-post.html": "blog/2026/first-post.html",
    "blog/2026/second-post.html": "blog/2026/second-post.html",
    "favicon.ico": "favicon.ico", "robots.txt": "robots.txt",
    **{f"static/{name}": f"static/{name}" for name in [
        "css/site.css", "css/base.css", "css/print.css", "js/app.js", "fonts/demo.woff2",
        "img/logo.png", "img/banner.png", "img/banner@2x.png", "img/background.png", "img/icon-doc.png",
        "img/photo.png", "img/wide-480.png", "img/wide-960.png", "img/frame-pic.png", "img/quoted.png",
        "img/spaced.png", "img/unquoted.png", "img/style-block.png", "img/table-bg.png",
        "media/clip.mp4", "media/poster.png", "media/subs.vtt", "media/sound.mp3", "media/diagram.svg",
        "media/button.png"]},
}
DEMO_CDN_FILES = {"cdn/cdn.css": "cdn/cdn.css", "cdn/cdn-logo.png": "cdn/cdn-logo.png",
                  "cdn/cdn-font.woff2": "cdn/cdn-font.woff2", "robots.txt": "robots.txt"}
# robots.txt disallows /private/, linked from every page's navigation.
DEMO_DISALLOWED = {"private/"}
# URLs saved: one per file, plus /index.html, which has the content of / and shares its file.
DEMO_URL_COUNT = len(DEMO_SITE_FILES) + len(DEMO_CDN_FILES) + 1


@pytest.fixture
def crawler_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog, with every record of the crawler's loggers at DEBUG and up -- also once a CLI
    test has set up logging, which stops them at the "crawler" logger."""
    logger = logging.getLogger("crawler")
    level = logger.level
    logger.addHandler(caplog.handler)
    logger.setLevel(logging.DEBUG)
    caplog.handler.setLevel(logging.DEBUG)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)
        logger.setLevel(level)


@pytest.fixture
def site() -> Iterator[SiteServer]:
    """The sample site on 127.0.0.1, a fresh server (and request counts) per test."""
    with SiteServer() as server:
        yield server


def make_config(start: str | list[str], output: Path, **sections: Any) -> Config:
    """A validated Config, as if read from YAML: keyword arguments are top-level keys."""
    data = {"start_urls": start if isinstance(start, list) else [start], "output": str(output),
            "http": {"timeout": 5, "retries": 0}, **sections}
    return parse_config(yaml.safe_dump(data), "test.yaml")


CrawlRunner = Callable[..., tuple[CrawlReport, CrawlRun]]


@pytest.fixture
def crawl(tmp_path: Path) -> CrawlRunner:
    """crawl(start_url, **sections) -> (report, pipeline); output in tmp_path/out."""

    def run(start: str | list[str], **sections: Any) -> tuple[CrawlReport, CrawlRun]:
        pipeline = CrawlRun(make_config(start, tmp_path / "out", **sections))
        return pipeline.run(), pipeline

    return run


def read_manifest(output: Path) -> list[dict[str, Any]]:
    lines = (output / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def mirrored_files(root: Path) -> list[str]:
    """Files under root, relative, excluding crawl's own metadata."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.name not in ("manifest.jsonl", "report.json", "report.html", "changes.json")
                  and ".crawl" not in p.relative_to(root).parts)


def url_places(output: Path) -> dict[str, list[str]]:
    """Where report.json and the manifest put each URL of a crawl: "saved", "failed:<reason>",
    "skipped:<rule>", "redirected", "not_fetched". A URL the crawl admitted must be in exactly
    one of them."""
    report = json.loads((output / "report.json").read_text(encoding="utf-8"))
    places: dict[str, list[str]] = {}
    for entry in read_manifest(output):
        places.setdefault(entry["url"], []).append("saved")
    for failure in report["failures"]:
        places.setdefault(failure["url"], []).append(f"failed:{failure['reason']}")
    for skip in report["skipped"]:
        places.setdefault(skip["url"], []).append(f"skipped:{skip['rule']}")
    for redirect in report["redirected"]:
        places.setdefault(redirect["url"], []).append("redirected")
    for waiting in report["not_fetched"]:
        places.setdefault(waiting["url"], []).append("not_fetched")
    return places


def assert_spaced(starts: list[float], delay: float) -> None:
    """Requests to a host, by when they arrived, were sent at least `delay` apart. Measured
    where they arrive: on a busy machine the server's thread may get to one late (176 ms once),
    which shortens its gaps to both neighbours; so any n requests must span at least n - 1
    delays less one. Requests sent together would span none."""
    for first, last in itertools.combinations(range(len(starts)), 2):
        assert starts[last] - starts[first] >= delay * (last - first - 1) - 0.02, (first, last)
