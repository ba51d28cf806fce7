"""What changed between two crawls: changes.json, the end-of-run summary, and `crawl diff`.

A URL is *added* when the earlier crawl did not save it, *removed* when the site no longer
has it (404/410, or nothing links to it any more) -- a tombstone naming when it was last
seen, while the earlier copy stays where it was -- and *modified* when its content changed
meaningfully: for an HTML page, when its visible text differs once the snapshots.ignore rules
removed the noise (a timestamp, a rotating ad, a token); a page whose bytes changed but not
its text is listed apart, as `noise_only`. Everything else is unchanged, by SHA-256.
"""

from __future__ import annotations

import difflib
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from crawler.config import IgnoreRule
from crawler.errors import UsageError
from crawler.models import Failure, SavedFile, is_html
from crawler.snapshot import MANIFEST, SNAPSHOTS, load_manifest, snapshots
from crawler.writer import StreamedList

INVISIBLE = ("script", "style", "noscript", "template", "head")
PREVIOUS_CRAWL = "previous crawl"  # what a plain mirror's changes are against


@dataclass
class Changes:
    # A first crawl adds every file: then its records are streamed, not held (see compare).
    added: list[dict[str, object]] | StreamedList = field(default_factory=list)
    modified: list[dict[str, object]] = field(default_factory=list)
    removed: list[dict[str, object]] = field(default_factory=list)
    noise_only: list[dict[str, object]] = field(default_factory=list)
    unavailable: list[dict[str, object]] = field(default_factory=list)  # failed now: not known to be gone
    not_checked: list[str] = field(default_factory=list)  # not reached this time (max_pages, a stop)
    unchanged: int = 0
    compared_with: str | None = None  # the earlier snapshot (or crawl) these changes are against
    ignore: tuple[IgnoreRule, ...] = ()  # the noise rules applied

    def to_dict(self) -> dict[str, object]:
        return {
            "compared_with": self.compared_with,
            "ignore": [rule.model_dump(exclude_none=True) for rule in self.ignore],
            "summary": {"added": len(self.added), "modified": len(self.modified), "removed": len(self.removed),
                        "noise_only": len(self.noise_only), "unavailable": len(self.unavailable),
                        "not_checked": len(self.not_checked), "unchanged": self.unchanged},
            "added": self.added, "modified": self.modified, "removed": self.removed,
            "noise_only": self.noise_only, "unavailable": self.unavailable, "not_checked": self.not_checked,
        }

    def headline(self) -> str:
        """The counts, in one line."""
        against = f" since {self.compared_with}" if self.compared_with else " (first crawl)"
        if self.compared_with == PREVIOUS_CRAWL:
            against = " since the previous crawl"
        return (f"changes{against}: {len(self.added)} added, {len(self.modified)} modified, "
                f"{len(self.removed)} removed, {self.unchanged} unchanged"
                + (f", {len(self.not_checked)} not checked" if self.not_checked else "")
                + (f", {len(self.noise_only)} changed only in ignored noise" if self.noise_only else ""))

    def summary(self) -> str:
        """A few lines for a person at a terminal."""
        lines = [self.headline()]
        kinds = (("added", self.added), ("modified", self.modified), ("removed", self.removed))
        for title, entries in kinds[1:] if self.compared_with is None else kinds:  # first crawl: all added
            for entry in itertools.islice(entries, 5):
                lines.append(f"  {title:8} {entry['url']}")  # type: ignore[index]
            if len(entries) > 5:
                lines.append(f"  {title:8} ... and {len(entries) - 5} more")
        return "\n".join(lines)


def compare(earlier: Iterable[SavedFile], earlier_root: Path | None, later: Iterable[SavedFile],
            later_root: Path, *, ignore: tuple[IgnoreRule, ...] = (), failures: Iterable[Failure] = (),
            not_checked: Iterable[str] = (), earlier_name: str | None = None,
            later_again: Callable[[], Iterator[SavedFile]] | None = None) -> Changes:
    """Changes from the crawl that saved `earlier` (files under `earlier_root`) to the one
    that saved `later`. `failures` and `not_checked` of the later crawl tell removed pages
    from pages that could not be fetched or were not reached. `later_again`: the later
    entries once more, sorted by URL; given, the records of added files (every file of a
    first crawl) are not held in memory but read again when they are written."""
    before = {entry.url: entry for entry in earlier}
    gone = set(before)
    failed = {failure.url: failure for failure in failures}
    unreached = set(not_checked)
    changes = Changes(compared_with=earlier_name, ignore=ignore)
    added = 0
    for entry in later:  # one at a time: a big crawl's entries come streamed from its state
        url = entry.url
        gone.discard(url)
        old = before.get(url)
        if old is None:
            added += 1
            if later_again is None:
                changes.added.append(_added(entry))
        elif old.sha256 == entry.sha256:
            changes.unchanged += 1
        else:
            record = {"url": url, "old_sha256": old.sha256, "new_sha256": entry.sha256,
                      "old_size": old.size, "new_size": entry.size, "path": entry.path}
            meaningful = earlier_root is None or not is_html(entry.content_type) or not is_html(old.content_type) \
                or page_text(earlier_root / old.path, old.charset, ignore) != page_text(
                    later_root / entry.path, entry.charset, ignore)
            (changes.modified if meaningful else changes.noise_only).append(record)
    if later_again is not None:
        changes.added = StreamedList(added, lambda: (_added(entry) for entry in later_again()
                                                     if entry.url not in before))
    for records in (changes.added, changes.modified, changes.noise_only):
        if isinstance(records, list):
            records.sort(key=lambda record: str(record["url"]))
    for url in sorted(gone):
        old = before[url]
        failure = failed.get(url)
        # A crawl that did not reach every page (max_pages) cannot know what nothing links to
        # any more: the unreached pages may (an image of theirs, say).
        if url in unreached or (unreached and failure is None):
            changes.not_checked.append(url)
        elif failure is not None and failure.status not in (404, 410):
            changes.unavailable.append({"url": url, "reason": failure.reason, "last_seen": _seen(old, earlier_name)})
        else:
            changes.removed.append({"url": url, "reason": failure.reason if failure else "no_longer_linked",
                                    "last_seen": _seen(old, earlier_name), "path": old.path, "sha256": old.sha256})
    return changes


def _added(entry: SavedFile) -> dict[str, object]:
    return {"url": entry.url, "sha256": entry.sha256, "size": entry.size, "path": entry.path}


def _seen(entry: SavedFile, snapshot: str | None) -> str | None:
    """The snapshot a page was last seen in; for a plain mirror, when it was last checked."""
    if snapshot and snapshot != PREVIOUS_CRAWL:
        return snapshot
    return entry.checked_at or entry.fetched_at


def page_text(path: Path, charset: str | None, ignore: tuple[IgnoreRule, ...] = ()) -> str:
    """The visible text of a saved HTML page, one block per line, after removing what the
    ignore rules name. Link conversion does not touch the text, so saved copies compare."""
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return visible_text(data, charset, ignore)


def visible_text(data: bytes, charset: str | None, ignore: tuple[IgnoreRule, ...] = ()) -> str:
    from bs4 import BeautifulSoup  # only comparisons need it: not imported by every crawl

    patterns = [re.compile(rule.regex) for rule in ignore if rule.regex]
    if patterns:
        text = data.decode(charset or "utf-8", "replace")
        for pattern in patterns:
            text = pattern.sub("", text)
        soup = BeautifulSoup(text, "lxml")
    else:
        soup = BeautifulSoup(data, "lxml", from_encoding=charset)
    for element in soup(INVISIBLE):
        element.decompose()
    for rule in ignore:
        if rule.css:
            for element in soup.select(rule.css):
                element.decompose()
    lines = (" ".join(line.split()) for line in soup.get_text("\n").splitlines())
    return "\n".join(line for line in lines if line)


def text_diff(earlier: Path, later: Path, url: str, *, charset_before: str | None, charset_after: str | None,
              ignore: tuple[IgnoreRule, ...] = ()) -> str:
    """A unified diff of the visible text of two saved copies of a page."""
    before = page_text(earlier, charset_before, ignore).splitlines()
    after = page_text(later, charset_after, ignore).splitlines()
    return "\n".join(difflib.unified_diff(before, after, f"{url} (before)", f"{url} (after)", lineterm=""))


def diff_snapshots(output: Path, old: str | None = None, new: str | None = None,
                   ignore: tuple[IgnoreRule, ...] | None = None) -> tuple[Changes, str, str]:
    """The changes between two snapshots of `output` (default: the last two), and their names.
    Without `ignore`, the rules recorded in the newer snapshot's changes.json apply."""
    names = snapshots(output)
    if new is None:
        if len(names) < 2 and old is None:
            raise UsageError(f"{output} holds {len(names)} snapshot(s); diff needs two")
        new = names[-1]
    if old is None:
        earlier = [name for name in names if name < new]
        if not earlier:
            raise UsageError(f"no snapshot before {new} in {output}")
        old = earlier[-1]
    for name in (old, new):
        if name not in names:
            raise UsageError(f"no snapshot {name!r} in {output} (snapshots: {', '.join(names) or 'none'})")
    old_root, new_root = output / SNAPSHOTS / old, output / SNAPSHOTS / new
    if ignore is None:
        ignore = _recorded_ignore(new_root / "changes.json")
    earlier_entries = load_manifest(old_root / MANIFEST) or []
    later_entries = load_manifest(new_root / MANIFEST) or []
    failures, not_checked = _recorded_outcomes(new_root / "report.json")
    return compare(earlier_entries, old_root, later_entries, new_root, ignore=ignore, failures=failures,
                   not_checked=not_checked, earlier_name=old), old, new


def text_diffs(output: Path, old: str, new: str, changes: Changes) -> Iterator[str]:
    """A unified diff of the visible text of each modified HTML page."""
    earlier = {entry.url: entry for entry in load_manifest(output / SNAPSHOTS / old / MANIFEST) or []}
    later = {entry.url: entry for entry in load_manifest(output / SNAPSHOTS / new / MANIFEST) or []}
    for record in changes.modified:
        url = str(record["url"])
        before, after = earlier.get(url), later.get(url)
        if before is None or after is None or not (is_html(before.content_type) and is_html(after.content_type)):
            continue
        diff = text_diff(output / SNAPSHOTS / old / before.path, output / SNAPSHOTS / new / after.path, url,
                         charset_before=before.charset, charset_after=after.charset, ignore=changes.ignore)
        if diff:
            yield diff


def _recorded_outcomes(path: Path) -> tuple[list[Failure], list[str]]:
    """What the crawl of a snapshot failed to fetch and did not reach, from its report.json:
    what tells removed pages from unavailable and unchecked ones, as when the crawl compared."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        failures = [Failure(entry["url"], entry["reason"], entry.get("message", ""), entry.get("status"))
                    for entry in report.get("failures", [])]
        return failures, [entry["url"] for entry in report.get("not_fetched", [])]
    except (OSError, ValueError, KeyError, TypeError):
        return [], []


def _recorded_ignore(path: Path) -> tuple[IgnoreRule, ...]:
    try:
        rules = json.loads(path.read_text(encoding="utf-8")).get("ignore", [])
        return tuple(IgnoreRule.model_validate(rule) for rule in rules)
    except (OSError, ValueError):
        return ()
