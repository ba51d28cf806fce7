"""Shared fixtures: the bundled sample site on a real local server, and config/crawl helpers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from crawler.config import Config, parse_config
from crawler.demo.server import SITE, SiteServer
from crawler.pipeline import Pipeline
from crawler.report import CrawlReport

DEMO_FILES = sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob("*") if p.is_file())


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


CrawlRunner = Callable[..., tuple[CrawlReport, Pipeline]]


@pytest.fixture
def crawl(tmp_path: Path) -> CrawlRunner:
    """crawl(start_url, **sections) -> (report, pipeline); output in tmp_path/out."""

    def run(start: str | list[str], **sections: Any) -> tuple[CrawlReport, Pipeline]:
        pipeline = Pipeline(make_config(start, tmp_path / "out", **sections))
        return pipeline.run(), pipeline

    return run


def read_manifest(output: Path) -> list[dict[str, Any]]:
    lines = (output / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def mirrored_files(root: Path) -> list[str]:
    """Files under root, relative, excluding crawl's own metadata."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.name not in ("manifest.jsonl", "report.json"))
