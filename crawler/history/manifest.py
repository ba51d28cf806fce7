"""manifest.jsonl: one line per saved URL, sorted by URL -- what a crawl saved, where, and
what the server said of it, and whether it was saved as a browser rendered it (`rendered`).
The next crawl reads it back to know what it may reuse and what changed; a manifest written
before a field existed reads with that field's default.
"""

from __future__ import annotations

import json
import logging
from dataclasses import fields
from pathlib import Path

from crawler.models import SavedFile

log = logging.getLogger(__name__)

# The fields of a manifest line: SavedFile's but file_size (the size on disk, after link
# conversion: the crawl state's business).
FIELDS = tuple(f.name for f in fields(SavedFile) if f.name != "file_size")


def manifest_record(entry: SavedFile) -> dict[str, object]:
    """The manifest line of a saved file. (`rendered` is a true boolean whatever the crawl
    state kept it as: SQLite's 0 and 1, nothing in a Redis record of an older version.)"""
    record = {name: getattr(entry, name) for name in FIELDS}
    record["rendered"] = bool(entry.rendered)
    return record


def load_manifest(path: Path) -> list[SavedFile] | None:
    """The entries of a manifest; None if there is none (a first crawl). Damaged lines are
    skipped with a warning, and fields a later version added are ignored."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    except OSError as error:
        log.warning("cannot read the previous manifest %s: %s", path, error)
        return None
    entries = []
    for line in lines:
        try:
            record = json.loads(line)
            entries.append(SavedFile(**{key: value for key, value in record.items() if key in FIELDS}))
        except (ValueError, TypeError):
            log.warning("skipping a damaged line of %s", path)
    return entries
