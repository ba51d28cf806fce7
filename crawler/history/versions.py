"""The history of one URL: every version an output folder keeps of it, and what changed from
one to the next.

Snapshot mode keeps a copy per snapshot (an unchanged file is the same file, hard-linked); a
plain mirror keeps its current copy, and -- in the crawl state, until the next run -- the copy
its last run replaced. What changed is told as `crawl diff --text` tells it: the visible text
of HTML pages, after the ignore rules the later crawl recorded; other files by their SHA-256.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

from crawler.config_history import IgnoreRule
from crawler.errors import UnsafePathError
from crawler.history.changes import PREVIOUS_CRAWL, text_diff
from crawler.history.manifest_search import find_entry, matching_urls
from crawler.history.snapshot import kept_copies, snapshots
from crawler.history.timeline import runs
from crawler.mirror.paths import checked_join
from crawler.models import SavedFile, is_html
from crawler.output_folder import MANIFEST, SNAPSHOTS
from crawler.urls import InvalidURLError, canonicalize

LAST_CRAWL = "last crawl"  # a plain mirror's current copy, as `crawl diff` names it

UNCHANGED, MODIFIED, NOISE, OTHER, UNKNOWN = "unchanged", "modified", "noise_only", "other", "unknown"


@dataclass(frozen=True)
class Version:
    """What one run saved of a URL; `entry` None: that run did not save it (it was removed,
    failed, or not reached)."""

    run: str  # a snapshot's name; in a plain mirror "previous crawl" or "last crawl"
    entry: SavedFile | None
    file: Path | None = None  # the saved copy, to compare (None: not kept)
    served: str | None = None  # its path in the output folder, to link to (None: not served)


@dataclass(frozen=True)
class Step:
    """From one version of a URL to the next it has."""

    before: Version
    after: Version
    kind: str  # unchanged (same SHA-256) | modified (visible text) | noise_only | other (not HTML) | unknown
    diff: str = ""  # the unified diff of the visible text, for `modified`

    @property
    def hard_linked(self) -> bool:
        """Unchanged and kept once: both versions are the same file on disk."""
        try:
            return self.before.file is not None and self.after.file is not None and \
                os.path.samefile(self.before.file, self.after.file)
        except OSError:
            return False


def versions(output: Path, url: str) -> list[Version]:
    """The versions of `url` the output folder keeps, oldest first: from the first run that
    saved it, with a version without entry for each later run that did not."""
    found = _snapshot_versions(output, url) + _plain_versions(output, url)
    while found and found[0].entry is None:
        found.pop(0)
    return found


def _snapshot_versions(output: Path, url: str) -> list[Version]:
    found = []
    for name in snapshots(output):
        root = output / SNAPSHOTS / name
        if not (root / MANIFEST).is_file():  # being written, or interrupted: nothing kept yet
            continue
        entry = find_entry(root / MANIFEST, url)
        path = f"{SNAPSHOTS}/{name}/{entry.path}" if entry else None
        found.append(Version(name, entry, saved_copy(output, root, entry.path) if entry else None, path))
    return found


def _plain_versions(output: Path, url: str) -> list[Version]:
    current = find_entry(output / MANIFEST, url)
    if current is None and not (output / MANIFEST).is_file():
        return []
    kept = kept_copies(output)
    previous = find_entry(kept / MANIFEST, url)
    found = []
    if previous is not None:
        # The last run kept the copy it replaced; an unchanged page is the current file.
        copy = saved_copy(output, kept, previous.path)
        if copy is None and current is not None and current.sha256 == previous.sha256:
            copy = saved_copy(output, output, current.path)
        found.append(Version(PREVIOUS_CRAWL, previous, copy))
    found.append(Version(LAST_CRAWL, current, saved_copy(output, output, current.path) if current else None,
                         current.path if current else None))
    return found


def saved_copy(output: Path, root: Path, path: str) -> Path | None:
    """The file a manifest says `path` (under `root`) was saved as, if it is there -- and inside
    the output folder once symlinks are followed: its text goes into a page."""
    try:
        copy = Path(os.path.realpath(checked_join(root, path)))
    except UnsafePathError:
        return None
    return copy if copy.is_file() and Path(os.path.realpath(output)) in copy.parents else None


def steps(output: Path, kept: list[Version]) -> list[Step]:
    """What changed between consecutive versions that have an entry."""
    present = [version for version in kept if version.entry is not None]
    return [_step(output, before, after) for before, after in itertools.pairwise(present)]


def _step(output: Path, before: Version, after: Version) -> Step:
    old, new = before.entry, after.entry
    assert old is not None and new is not None
    if old.sha256 == new.sha256:
        return Step(before, after, UNCHANGED)
    if not (is_html(old.content_type) and is_html(new.content_type)):
        return Step(before, after, OTHER)
    if before.file is None or after.file is None:
        return Step(before, after, UNKNOWN)  # the earlier copy is not kept
    diff = text_diff(before.file, after.file, new.url, charset_before=old.charset, charset_after=new.charset,
                     ignore=_ignore_rules(output, after))
    return Step(before, after, MODIFIED if diff else NOISE, diff)


def _ignore_rules(output: Path, version: Version) -> tuple[IgnoreRule, ...]:
    """The noise rules the crawl that saved `version` compared with."""
    for run in runs(output):
        if (run.name or LAST_CRAWL) == version.run and run.changes is not None:
            return run.changes.ignore
    return ()


def find_urls(output: Path, text: str, limit: int = 50) -> tuple[str | None, list[str]]:
    """What a person typed in the search box: the URL it names, if the output folder keeps
    a version of it (as typed, or canonical); else the URLs that contain it."""
    text = text.strip()
    if not text:
        return None, []
    candidates = [text]
    with contextlib.suppress(InvalidURLError):
        candidates.append(canonicalize(text))
    manifests = _manifests(output)
    for candidate in candidates:
        if any(find_entry(manifest, candidate) for manifest in manifests):
            return candidate, []
    found: dict[str, None] = {}
    for manifest in manifests:
        for url in matching_urls(manifest, text, limit - len(found)):
            found[url] = None
        if len(found) >= limit:
            break
    return None, sorted(found)


def _manifests(output: Path) -> list[Path]:
    """Every manifest of the output folder, newest first."""
    found = [output / SNAPSHOTS / name / MANIFEST for name in reversed(snapshots(output))]
    found += [output / MANIFEST, kept_copies(output) / MANIFEST]
    return [path for path in found if path.is_file()]
