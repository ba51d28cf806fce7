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
import logging
import re
import sqlite3
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawler.config_history import IgnoreRule
from crawler.errors import UsageError
from crawler.history.manifest import load_manifest
from crawler.history.snapshot import kept_copies, snapshots
from crawler.mirror.writer import StreamedList
from crawler.models import Failure, SavedFile, is_html
from crawler.output_folder import CHANGES, MANIFEST, REPORT, SNAPSHOTS, STATE_DIR, STATE_FILE

log = logging.getLogger(__name__)

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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Changes:
        """Changes as changes.json holds them."""
        return cls(added=list(data.get("added", [])), modified=list(data.get("modified", [])),
                   removed=list(data.get("removed", [])), noise_only=list(data.get("noise_only", [])),
                   unavailable=list(data.get("unavailable", [])), not_checked=list(data.get("not_checked", [])),
                   unchanged=int(data.get("summary", {}).get("unchanged", 0)),
                   compared_with=data.get("compared_with"),
                   ignore=tuple(IgnoreRule.model_validate(rule) for rule in data.get("ignore", [])))

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
    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning  # only comparisons need it

    patterns = [re.compile(rule.regex) for rule in ignore if rule.regex]
    markup: bytes | str = data
    if patterns:
        markup = data.decode(charset or "utf-8", "replace")
        for pattern in patterns:
            markup = pattern.sub("", markup)
    with warnings.catch_warnings():
        # XHTML served as text/html (it starts with <?xml ...>) is read as HTML on purpose: it
        # is what a browser shows. bs4 would print its advice on the terminal for every page.
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(markup, "lxml", from_encoding=charset if isinstance(markup, bytes) else None)
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


@dataclass(frozen=True)
class Diff:
    """What changed from one crawl of an output folder to a later one, and where to find the
    files of each side (to show the text of what changed)."""

    changes: Changes
    old: str  # the earlier side's name: a snapshot, or "previous crawl"
    new: str
    old_root: Path
    new_root: Path
    texts: bool = True  # the files of both sides are still there (see diff_plain_mirror)

    def text_diffs(self) -> Iterator[str]:
        """A unified diff of the visible text of each modified HTML page."""
        if not self.texts:
            return
        earlier = {entry.url: entry for entry in load_manifest(self.old_root / MANIFEST) or []}
        later = {entry.url: entry for entry in load_manifest(self.new_root / MANIFEST) or []}
        for record in self.changes.modified:
            url = str(record["url"])
            before, after = earlier.get(url), later.get(url)
            if before is None or after is None or not (is_html(before.content_type) and is_html(after.content_type)):
                continue
            diff = text_diff(self.old_root / before.path, self.new_root / after.path, url,
                             charset_before=before.charset, charset_after=after.charset, ignore=self.changes.ignore)
            if diff:
                yield diff


def diff_output(output: Path, old: str | None = None, new: str | None = None) -> Diff:
    """What changed in `output`: between two of its snapshots (default: the last two), or, in a
    plain mirror, in its last completed run."""
    if not snapshots(output) and (output / CHANGES).is_file() and old is None and new is None:
        return diff_plain_mirror(output)
    changes, old, new = diff_snapshots(output, old, new)
    return Diff(changes, old, new, output / SNAPSHOTS / old, output / SNAPSHOTS / new)


def diff_plain_mirror(output: Path) -> Diff:
    """What the last completed run of a plain mirror changed: its changes.json, and the copies
    it kept of the pages it replaced (see snapshot.Layout.keep_replaced)."""
    try:
        changes = Changes.from_dict(json.loads((output / CHANGES).read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read {output / CHANGES}: {error}") from None
    texts = not _unfinished_crawl(output)
    if not texts:
        log.warning("a crawl of %s started after the last completed one and has not finished: these are the "
                    "changes of the last completed crawl; the earlier text of its pages is no longer kept", output)
    return Diff(changes, PREVIOUS_CRAWL, "last crawl", kept_copies(output), output, texts=texts)


def _unfinished_crawl(output: Path) -> bool:
    """Does the crawl state say a crawl is running, or was interrupted?"""
    path = output / STATE_DIR / STATE_FILE
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'status'").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return False
    return row is not None and row[0] != "completed"


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
        ignore = _recorded_ignore(new_root / CHANGES)
    earlier_entries = load_manifest(old_root / MANIFEST) or []
    later_entries = load_manifest(new_root / MANIFEST) or []
    failures, not_checked = _recorded_outcomes(new_root / REPORT)
    return compare(earlier_entries, old_root, later_entries, new_root, ignore=ignore, failures=failures,
                   not_checked=not_checked, earlier_name=old), old, new


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
