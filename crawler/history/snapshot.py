"""Where a run writes, what it compares with, and dated snapshots: naming, `latest`, retention.

Plain mode (snapshots.keep: 0) mirrors into the output folder itself and compares with the
manifest the last completed run left there. Snapshot mode gives every run its own folder,
output/snapshots/<UTC time>/, compares with the snapshot `output/latest` points at, and moves
`latest` (a relative symlink, replaced atomically) only once a run completed and passed its
health checks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from crawler.config_history import HealthConfig
from crawler.errors import CrawlError
from crawler.history.manifest import load_manifest
from crawler.mirror.paths import checked_join
from crawler.models import SavedFile, is_html
from crawler.output_folder import KEPT, LATEST, MANIFEST, SNAPSHOTS, STATE_DIR

log = logging.getLogger(__name__)

_NAME = re.compile(r"^\d{4}-\d\d-\d\dT\d{6}Z(-\d+)?$")


@dataclass
class Previous:
    """The last completed crawl: its mirror folder, its files by URL, its snapshot name."""

    root: Path
    entries: dict[str, SavedFile] = field(default_factory=dict)
    snapshot: str | None = None


@dataclass
class Layout:
    output: Path  # the configured output folder: state, lock, snapshots, latest
    root: Path  # this run's mirror: `output` itself, or output/snapshots/<name>
    snapshot: str | None  # the snapshot's name, in snapshot mode
    previous: Previous | None
    # Plain mode: where the pages this run replaces are kept (see keep_replaced), so that what
    # changed can be compared, and shown by `crawl diff`, until the next run.
    kept: Path | None = None

    def start_keeping(self) -> None:
        """A new run begins: the copies kept by the run before go; the previous manifest is
        kept beside the copies it describes (a hard link: the run will replace it)."""
        if self.kept is None:
            return
        shutil.rmtree(self.kept, ignore_errors=True)
        if self.previous is not None:
            self.kept.mkdir(parents=True, exist_ok=True)
            _link(self.output / MANIFEST, self.kept / MANIFEST)

    def keep_replaced(self, url: str) -> None:
        """Plain mode: this run is about to replace the file of the page `url` (its content
        changed); keep the old one. Pages only: other files are compared by their SHA-256."""
        old = self.previous.entries.get(url) if self.previous is not None else None
        if self.kept is None or old is None or not is_html(old.content_type):
            return
        try:
            copy = checked_join(self.kept, old.path)
            os.makedirs(os.path.dirname(copy), exist_ok=True)
        except (OSError, CrawlError) as error:
            log.debug("cannot keep the previous copy of %s: %s", url, error)
            return
        _link(self.output / old.path, Path(copy))


def snapshot_name(output: Path, now: datetime | None = None) -> str:
    """A new snapshot's name: its UTC start time to the second, made unique with -2, -3..."""
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    base = moment.strftime("%Y-%m-%dT%H%M%SZ")
    # After every snapshot of the same second, even pruned ones' successors: names must sort
    # in the order the snapshots were made.
    taken = [_order(name)[1] for name in snapshots(output) if _order(name)[0] == base.rstrip("Z")]
    number = max(taken) + 1 if taken else 1
    return base if number == 1 else f"{base}-{number}"


def layout(output: Path, keep: int, snapshot: str | None, resuming: bool = False) -> Layout:
    """The layout of a run: `snapshot` is the name of the snapshot to write into (None in plain
    mode, or a resumed snapshot's name)."""
    if keep == 0:
        kept = kept_copies(output)
        previous = read_previous(output)
        if resuming and (kept / MANIFEST).is_file():
            # The manifest in the folder is the interrupted run's, partial: the crawl before it
            # is the one kept when that run started.
            previous = read_previous(kept)
            if previous is not None:
                previous.root = output
        return Layout(output, output, None, previous, kept=kept)
    latest = latest_snapshot(output)
    previous = read_previous(output / SNAPSHOTS / latest, latest) if latest and latest != snapshot else None
    assert snapshot is not None
    return Layout(output, output / SNAPSHOTS / snapshot, snapshot, previous)


def read_previous(root: Path, snapshot: str | None = None) -> Previous | None:
    """The crawl whose manifest is in `root`, or None if there is none (a first crawl)."""
    entries = load_manifest(root / MANIFEST)
    if entries is None:
        return None
    return Previous(root, {entry.url: entry for entry in entries}, snapshot)


def kept_copies(output: Path) -> Path:
    """Plain mode: the folder of the previous copies of the pages the last run changed."""
    return output / STATE_DIR / KEPT


def _link(source: Path, target: Path) -> None:
    """Hard-link `source` as `target` (a copy where links are impossible); an existing target
    is left alone (kept by an interrupted run that this one resumes)."""
    try:
        os.link(source, target)
    except FileExistsError:
        pass
    except OSError:
        with contextlib.suppress(OSError):
            shutil.copyfile(source, target)


def snapshots(output: Path) -> list[str]:
    """Snapshot names, oldest first."""
    try:
        names = [entry.name for entry in (output / SNAPSHOTS).iterdir() if entry.is_dir()]
    except FileNotFoundError:
        return []
    return sorted((name for name in names if _NAME.match(name)), key=_order)


def latest_snapshot(output: Path) -> str | None:
    target = _readlink(output / LATEST)
    name = Path(target).name if target else None
    return name if name and (output / SNAPSHOTS / name).is_dir() else None


def publish(output: Path, name: str) -> None:
    """Point `latest` at snapshot `name`, atomically: readers see the old or the new one."""
    temporary = output / f".{LATEST}.%~tmp"
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    temporary.symlink_to(Path(SNAPSHOTS) / name)
    os.replace(temporary, output / LATEST)


def prune(output: Path, keep: int, protect: set[str]) -> list[str]:
    """Delete the oldest snapshots beyond the newest `keep`, never one in `protect`."""
    removed = doomed(output, keep, protect)
    for name in removed:
        shutil.rmtree(output / SNAPSHOTS / name, ignore_errors=True)
    return removed


def doomed(output: Path, keep: int, protect: set[str]) -> list[str]:
    """The snapshots `prune` deletes: the oldest beyond the newest `keep`, but those in `protect`."""
    names = snapshots(output)
    return [name for name in names[: max(0, len(names) - keep)] if name not in protect]


def _order(name: str) -> tuple[str, int]:
    base, _, number = name.partition("Z-")
    return (base.rstrip("Z"), int(number) if number else 1)


def _readlink(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def health_problems(health: HealthConfig, *, pages: int, start_urls: Iterable[str],
                    final_path: Callable[[str], str | None], previous_pages: int | None,
                    attempted: int, failed: int) -> list[str]:
    """Why a completed snapshot must not become `latest` (empty: it may). `pages`: the HTML
    pages it saved; `attempted`: its fetches (requests and reuses), `failed`: those that failed
    for good, broken links and other hosts aside."""
    problems = []
    if health.start_urls:
        missing = [url for url in start_urls if final_path(url) is None]
        if missing:
            problems.append(f"start URL not saved: {', '.join(missing)}")
    if previous_pages and pages < health.min_pages_ratio * previous_pages:
        problems.append(f"{pages} HTML pages saved, fewer than {health.min_pages_ratio:.0%} "
                        f"of the {previous_pages} of the previous snapshot")
    if attempted and failed >= health.max_failed_ratio * attempted and failed:
        problems.append(f"{failed} of {attempted} fetches failed, not under {health.max_failed_ratio:.0%}")
    return problems
