"""URL -> safe file path: the only way a URL becomes a path in the mirror.

`url_to_path` is a pure function whose result is always a relative path of plain names (never
empty, ".", "..", absolute, or containing NUL, "/" or "\\" inside a name, never longer than
the filesystem allows), so no URL can point outside the output folder; `checked_join` proves
it again before any file is written. (The Writer adds the checks only the filesystem can
answer: a file where a folder is needed, and symlinks planted inside the output folder.)

Names keep URLs readable: %-escapes are decoded, except for the characters a name cannot
hold (/ \\ NUL, controls) and the two that give names their structure, "%" and "?". A "%"
in a name is therefore always "%XX" -- except in the markers below, which no URL can produce.
"""

from __future__ import annotations

import hashlib
import os
import re
from functools import lru_cache
from pathlib import Path

from crawler.errors import UnsafePathError
from crawler.models import is_css, is_html
from crawler.output_folder import RESERVED

INDEX_NAME = "index.html"
COLLISION_SUFFIX = "%~file"  # "a" saved as "a%~file" when "a/" must be a folder
EMPTY_SEGMENT = "%~empty"  # the name between the slashes of "a//b"
TEMP_SUFFIX = ".%~tmp"
HASH_MARKER = "%~"  # long names end "<prefix>%~<hash><ext>"
MAX_NAME_BYTES = 200  # below NAME_MAX (255) with room for a temp prefix and suffix
MAX_PATH_BYTES = 2048  # well below PATH_MAX (4096), leaving room for the output folder

_ESCAPES = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
_KEEP_ESCAPED = frozenset("/\\%?") | {chr(c) for c in range(0x20)} | {"\x7f"}
_ESCAPE_IN_NAME = re.compile(r"[/\\?\x00-\x1f\x7f]")  # _KEEP_ESCAPED but "%": escaped in a file name


@lru_cache(maxsize=4096)  # asked again for each link to a URL not saved yet; bounded, for big sites
def url_to_path(url: str, content_type: str | None = None) -> str:
    """The mirror path of a canonical URL, relative to the output folder, "/"-separated.

    http://host/a/b.html -> host/a/b.html;  http://host/a/ -> host/a/index.html;
    http://host:8080/p?q=1 -> host:8080/p?q=1;  http://host/%41%2F -> host/A%2F
    With a `content_type`, HTML and CSS get the extension a browser needs to open them from
    disk (wget -E): http://host/about as text/html -> host/about.html.
    """
    scheme_sep = url.find("://")
    rest = url[scheme_sep + 3:] if scheme_sep >= 0 else url
    netloc, _, path_and_query = rest.partition("/")
    path, question, query = path_and_query.partition("?")
    segments = path.split("/")
    names = [_safe_name(netloc.rpartition("@")[2] or "%~nohost")]
    names += [_safe_name(segment) if segment else EMPTY_SEGMENT for segment in segments[:-1]]
    last = _safe_name(segments[-1]) if segments[-1] else INDEX_NAME
    if question:
        last = f"{last}?{_safe_name(query)}" if query else last
    names.append(_shorten(last + _missing_extension(last, content_type)))
    relative = "/".join(names)
    if len(relative.encode()) > MAX_PATH_BYTES:
        digest = hashlib.sha256(relative.encode()).hexdigest()[:32]
        relative = f"{names[0]}/{HASH_MARKER}long/{digest}{_extension(last)}"
    return relative


def _safe_name(segment: str) -> str:
    name = _ESCAPES.sub(_decode_escapes, segment) if "%" in segment else segment
    name = _ESCAPE_IN_NAME.sub(lambda match: f"%{ord(match.group()):02X}", name)
    if name in (".", ".."):
        return name.replace(".", "%2E")
    return _shorten(name)


def _decode_escapes(match: re.Match[str]) -> str:
    """Decode a run of %XX escapes where they spell valid UTF-8 of harmless characters."""
    raw = bytes.fromhex(match.group().replace("%", ""))
    text = raw.decode("utf-8", "surrogateescape")
    out = []
    for char in text:
        if "\udc80" <= char <= "\udcff":  # a byte that is not UTF-8: stays escaped
            out.append(f"%{ord(char) - 0xDC00:02X}")
        elif char in _KEEP_ESCAPED:
            out.append("".join(f"%{byte:02X}" for byte in char.encode()))
        else:
            out.append(char)
    return "".join(out)


def _shorten(name: str) -> str:
    encoded = name.encode("utf-8", "surrogatepass")
    if len(encoded) <= MAX_NAME_BYTES:
        return name
    extension = _extension(name)
    digest = hashlib.sha256(encoded).hexdigest()[:16]
    keep = MAX_NAME_BYTES - len(extension.encode()) - len(HASH_MARKER) - len(digest)
    prefix = encoded[:keep].decode("utf-8", "ignore").rstrip("%")
    return f"{prefix}{HASH_MARKER}{digest}{extension}"


def _missing_extension(name: str, content_type: str | None) -> str:
    lowered = name.lower()
    if content_type is None:
        return ""
    if is_html(content_type) and not lowered.endswith((".html", ".htm")):
        return ".html"
    if is_css(content_type) and not lowered.endswith(".css"):
        return ".css"
    return ""


def _extension(name: str) -> str:
    extension = os.path.splitext(name.partition("?")[0])[1]
    return extension if 1 < len(extension) <= 10 and extension[1:].isalnum() else ""



def checked_join(root: Path | str, relative: str) -> str:
    """root/relative, after proving that it stays inside root. Raises UnsafePathError."""
    parts = relative.split("/")
    if (not relative or relative.startswith("/") or "\x00" in relative or "\\" in relative
            or any(part in ("", ".", "..") for part in parts)):
        raise UnsafePathError(f"refusing unsafe path {relative[:200]!r}")
    if parts[0] in RESERVED:
        raise UnsafePathError(f"host name {parts[0]!r} is reserved for crawl's own files")
    base = str(root)
    target = os.path.join(base, *parts)
    if os.path.commonpath([base, os.path.normpath(target)]) != base:
        raise UnsafePathError(f"refusing path outside the output folder: {relative[:200]!r}")
    return target
