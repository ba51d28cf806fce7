"""The runs an output folder remembers, newest first: what `crawl serve` shows at its top.

A plain mirror remembers one run (its last: report.json and changes.json beside the mirror);
snapshot mode one per snapshot (each with its own). Everything is read from those files as
the crawls left them -- a snapshot being written, or interrupted before its report, is still
listed, as such -- and read again only when a file changes, so that a page of the timeline
costs a few stat() calls however big the history.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crawler.history.changes import Changes
from crawler.history.file_cache import while_unchanged
from crawler.history.manifest_search import find_entry
from crawler.history.snapshot import latest_snapshot, snapshots
from crawler.output_folder import CHANGES, MANIFEST, REPORT, SNAPSHOTS, STATE_DIR

IN_PROGRESS = "no report"  # the outcome of a run that has not written its report.json (yet)
MAX_REDIRECTS = 10  # followed from a start URL to the page it was saved as
_DATED = re.compile(r"\d{4}-\d\d-\d\dT\d{6}Z")  # how a snapshot's name starts (snapshot.snapshot_name)


@dataclass(frozen=True)
class Run:
    """One run of an output folder: a snapshot, or the last run of a plain mirror."""

    name: str | None  # the snapshot's name; None for a plain mirror
    root: str  # its mirror, relative to the output folder: "snapshots/<name>", or "" (plain)
    report: dict[str, Any]  # its report.json; {} while it has none
    changes: Changes | None  # its changes.json (completed runs)
    latest: bool = False  # snapshot mode: `latest` points at it

    @property
    def started_at(self) -> str:
        """ISO 8601 (UTC); for a snapshot without a report, the time in its name."""
        started = self.report.get("started_at")
        if isinstance(started, str):
            return started
        return snapshot_time(self.name) if self.name else ""

    @property
    def outcome(self) -> str:
        outcome = self.report.get("outcome")
        return outcome if isinstance(outcome, str) else IN_PROGRESS

    @property
    def health_problems(self) -> list[str]:
        problems = self.report.get("health_problems")
        return [str(problem) for problem in problems] if isinstance(problems, list) else []

    @property
    def first(self) -> bool:
        """The first crawl of the history: everything it saved was added, which says nothing."""
        return self.changes is not None and self.changes.compared_with is None

    def files(self, name: str) -> str:
        """The path of one of its files (report.json, report.html...) in the output folder."""
        return f"{self.root}/{name}" if self.root else name


def snapshot_time(name: str) -> str | None:
    """When a snapshot started, from its name (2026-05-01T020000Z-2), in ISO 8601; None for
    a name that is not a snapshot's."""
    if not _DATED.match(name):
        return None
    day, _, clock = name.partition("T")
    return f"{day}T{clock[:2]}:{clock[2:4]}:{clock[4:6]}+00:00"


def is_crawl_output(output: Path) -> bool:
    """Does this folder hold what crawl writes (a mirror, snapshots, or a crawl's state)?"""
    return any((output / name).exists() for name in (MANIFEST, REPORT, SNAPSHOTS, STATE_DIR))


def runs(output: Path) -> list[Run]:
    """The runs of `output`, newest first."""
    found = []
    latest = latest_snapshot(output)
    for name in snapshots(output):
        root = output / SNAPSHOTS / name
        found.append(Run(name, f"{SNAPSHOTS}/{name}", read_json(root / REPORT), _changes(root), name == latest))
    if (output / REPORT).is_file() or (output / MANIFEST).is_file():
        found.append(Run(None, "", read_json(output / REPORT), _changes(output)))
    # Snapshots of the same second sort by name, as they were made.
    ordered = sorted(enumerate(found), key=lambda item: (item[1].started_at, item[0]), reverse=True)
    return [run for _, run in ordered]


def start_page(output: Path, run: Run) -> str | None:
    """Where the run saved its first start URL (after the redirects it followed), as a path
    in the output folder: the page to open its mirror at."""
    start_urls = run.report.get("start_urls")
    if not isinstance(start_urls, list) or not start_urls:
        return None
    hops = run.report.get("redirected")
    redirects = {str(hop.get("url")): str(hop.get("to")) for hop in hops if isinstance(hop, dict)} \
        if isinstance(hops, list) else {}
    url = str(start_urls[0])
    for _ in range(MAX_REDIRECTS):
        entry = find_entry(output / run.files(MANIFEST), url)
        if entry is not None:
            return run.files(entry.path)
        if url not in redirects:
            return None
        url = redirects[url]
    return None


@while_unchanged(maxsize=256, missing={})
def read_json(path: Path) -> dict[str, Any]:
    """A JSON object crawl wrote ({} if missing or damaged)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _changes(root: Path) -> Changes | None:
    """A run's changes.json (None: it has none, or it is damaged)."""
    return _read_changes(root / CHANGES)


@while_unchanged(maxsize=256, missing=None)
def _read_changes(path: Path) -> Changes | None:
    data = read_json(path)
    try:
        return Changes.from_dict(data) if data else None
    except (TypeError, ValueError, AttributeError):
        return None
