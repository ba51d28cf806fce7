"""`crawl serve`: from a request's path to a file of the output folder -- the only way the
server reaches the disk -- and the content type the site sent it with.

A request path is a mirror path with each name percent-escaped (as `html.path_link` writes
it, and as the mirror's converted links are). It is decoded one name at a time, and refused
(None: the server answers 404) when a name could step aside: empty, ".", "..", or holding a
"/", "\\" or NUL once decoded (`..%2f`, `%2e%2e`). The path is then resolved -- symlinks
followed -- and must still be inside the output folder, and not in its private parts: the
crawl state (.crawl/, which keeps earlier copies and the crawl's journal), the log, and the
temporary files of a crawl still writing.
"""

from __future__ import annotations

import mimetypes
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from crawler.history.file_cache import while_unchanged
from crawler.history.manifest import load_manifest
from crawler.mirror.paths import INDEX_NAME, TEMP_SUFFIX
from crawler.output_folder import CHANGES, LOG, MANIFEST, REPORT, SNAPSHOTS, STATE_DIR

PRIVATE = frozenset({STATE_DIR, LOG})  # names at the top of the output folder never served
_TOKEN = r"[a-z0-9!#$&^_.+\-]+"
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}")
_CHARSET = re.compile(r"[a-z0-9._:+\-]+")
OWN_TYPES = {MANIFEST: "text/plain; charset=utf-8", REPORT: "application/json; charset=utf-8",
             CHANGES: "application/json; charset=utf-8"}
FALLBACK_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class Found:
    """A file or folder of the output folder a request may see."""

    path: Path  # resolved: no symlink left in it
    relative: str  # to the output folder, "/"-separated ("" for the folder itself)

    @property
    def is_dir(self) -> bool:
        return self.path.is_dir()


def find(output: Path, request_path: str) -> Found | None:
    """The file or folder `request_path` (relative to the output folder, percent-escaped,
    without a query) names; None if there is none, or it may not be served. `output` must
    be resolved."""
    names = []
    for segment in request_path.removesuffix("/").split("/") if request_path.strip("/") else []:
        try:
            name = unquote(segment, errors="strict")
        except UnicodeDecodeError:
            return None
        if name in ("", ".", "..") or any(char in name for char in "/\\\x00"):
            return None
        names.append(name)
    target = Path(os.path.realpath(os.path.join(output, *names)))
    if target != output and output not in target.parents:
        return None
    relative = target.relative_to(output).as_posix() if target != output else ""
    if not _may_serve(relative) or not target.exists():
        return None
    return Found(target, relative)


def _may_serve(relative: str) -> bool:
    """Not the private parts of the output folder, nor a file a crawl is still writing."""
    parts = relative.split("/") if relative else []
    if parts and (parts[0] in PRIVATE or parts[0].startswith(".")):
        return False
    return not any(part.endswith(TEMP_SUFFIX) for part in parts)


def index_of(folder: Found) -> Found | None:
    """The page a folder's URL was saved as (index.html), if it was."""
    index = folder.path / INDEX_NAME
    if not index.is_file():
        return None
    return Found(index, f"{folder.relative}/{INDEX_NAME}" if folder.relative else INDEX_NAME)


def listing(folder: Found) -> list[tuple[str, bool]]:
    """What a folder holds that may be served, as (name, is a folder), sorted: for folders
    that no page was saved as (a snapshot's top, a host's)."""
    try:
        entries = sorted(os.scandir(folder.path), key=lambda entry: entry.name)
    except OSError:
        return []
    prefix = f"{folder.relative}/" if folder.relative else ""
    return [(entry.name, entry.is_dir()) for entry in entries if _may_serve(prefix + entry.name)]


def content_type(output: Path, found: Found) -> str:
    """The Content-Type to send a file with: what the site said (recorded in the manifest of
    the run that saved it); for crawl's own files and files no manifest lists, a guess."""
    parts = found.relative.split("/")
    if len(parts) > 2 and parts[0] == SNAPSHOTS:  # snapshots/<name>/<mirror path>
        root, path = output / SNAPSHOTS / parts[1], "/".join(parts[2:])
    else:
        root, path = output, found.relative
    recorded = _recorded_types(root / MANIFEST).get(path)
    if recorded is not None:
        return recorded
    if path in OWN_TYPES:
        return OWN_TYPES[path]
    guessed, _ = mimetypes.guess_type("file" + os.path.splitext(parts[-1].partition("?")[0])[1])
    return guessed or FALLBACK_TYPE


@while_unchanged(maxsize=8, missing={})  # a few snapshots browsed at once
def _recorded_types(manifest: Path) -> dict[str, str]:
    return {entry.path: header_value(entry.content_type, entry.charset) for entry in load_manifest(manifest) or []}


def header_value(media_type: str, charset: str | None) -> str:
    """A Content-Type header from what a manifest recorded -- which a hostile site chose: only
    a plain type/subtype and charset get through, never a line break or a parameter more."""
    media_type = media_type.strip().lower()
    if not _MEDIA_TYPE.fullmatch(media_type):
        return FALLBACK_TYPE
    if charset and _CHARSET.fullmatch(charset.strip().lower()):
        return f"{media_type}; charset={charset.strip().lower()}"
    return media_type


UNSATISFIABLE = (-1, -1)
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one range of bytes a Range header asks of a file of `size` bytes, as (first, last),
    both included: what lets a browser seek in a saved video. None: the whole file (no header,
    several ranges, or a form this server does not read -- a server may ignore Range);
    UNSATISFIABLE: a range that starts past the end."""
    match = _RANGE.fullmatch(header.strip().replace(" ", "")) if header else None
    if match is None or not (match[1] or match[2]):
        return None
    if not match[1]:  # the last N bytes
        suffix = int(match[2])
        return (max(0, size - suffix), size - 1) if suffix and size else UNSATISFIABLE
    first = int(match[1])
    if first >= size:
        return UNSATISFIABLE
    last = min(int(match[2]), size - 1) if match[2] else size - 1
    return (first, last) if first <= last else None
