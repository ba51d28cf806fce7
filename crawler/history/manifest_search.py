"""Looking a URL up in a manifest without reading all of it into memory.

A manifest has a line per saved file: a big crawl's holds hundreds of thousands, and `crawl
serve` asks every snapshot's for one URL when it shows that URL's history. Only the lines
that contain the text looked for are parsed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from crawler.history.file_cache import while_unchanged
from crawler.history.manifest import FIELDS
from crawler.models import SavedFile


@while_unchanged(maxsize=4096, missing=None)  # a timeline asks each run for its start page, every time
def find_entry(manifest: Path, url: str) -> SavedFile | None:
    """The manifest line of `url` (None: the manifest has none, or there is no manifest)."""
    quoted = json.dumps(url, ensure_ascii=False)  # as the manifest writes it
    for line in _lines(manifest):
        if quoted in line:
            entry = _entry(line)
            if entry is not None and entry.url == url:
                return entry
    return None


def matching_urls(manifest: Path, fragment: str, limit: int) -> list[str]:
    """The URLs of a manifest that contain `fragment`, ignoring case; at most `limit`."""
    wanted = fragment.lower()
    found: list[str] = []
    for line in _lines(manifest):
        if wanted in line.lower():
            entry = _entry(line)
            if entry is not None and wanted in entry.url.lower():
                found.append(entry.url)
                if len(found) >= limit:
                    break
    return found


def _lines(manifest: Path) -> Iterator[str]:
    """The lines of a manifest; none if it cannot be read. (Left early, the generator is
    closed, and the file with it, when it is dropped.)"""
    try:
        with manifest.open(encoding="utf-8", errors="replace") as file:
            yield from file
    except OSError:
        return


def _entry(line: str) -> SavedFile | None:
    """One manifest line, read as load_manifest reads it: damaged ones are None, and fields
    a later version added are ignored."""
    try:
        record = json.loads(line)
        return SavedFile(**{key: value for key, value in record.items() if key in FIELDS})
    except (ValueError, TypeError, AttributeError):
        return None
