"""URL -> safe file path, atomic file writes, and the manifest.

`url_to_path` is the only way a URL becomes a path. It is a pure function whose result is
always a relative path of plain names (never empty, ".", "..", absolute, or containing NUL,
"/" or "\\" inside a name, never longer than the filesystem allows), so no URL can point
outside the output folder. `Writer` adds the checks only the filesystem can answer: a file
where a folder is needed (and the reverse), and symlinks planted inside the output folder.

Names keep URLs readable: %-escapes are decoded, except for the characters a name cannot
hold (/ \\ NUL, controls) and the two that give names their structure, "%" and "?". A "%"
in a name is therefore always "%XX" -- except in the markers below, which no URL can produce.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import json
import os
import re
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from crawler.errors import OutputError, UnsafePathError
from crawler.models import SavedFile, is_css, is_html

INDEX_NAME = "index.html"
COLLISION_SUFFIX = "%~file"  # "a" saved as "a%~file" when "a/" must be a folder
EMPTY_SEGMENT = "%~empty"  # the name between the slashes of "a//b"
TEMP_SUFFIX = ".%~tmp"
HASH_MARKER = "%~"  # long names end "<prefix>%~<hash><ext>"
MAX_NAME_BYTES = 200  # below NAME_MAX (255) with room for a temp prefix and suffix
MAX_PATH_BYTES = 2048  # well below PATH_MAX (4096), leaving room for the output folder
RESERVED_TOP_LEVEL = frozenset({"manifest.jsonl", "report.json", "changes.json", "crawl.log", ".crawl",
                                "snapshots", "latest", "warc", "crawl.warc.gz"})

_ESCAPES = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
_KEEP_ESCAPED = frozenset("/\\%?") | {chr(c) for c in range(0x20)} | {"\x7f"}
_ESCAPE_IN_NAME = re.compile(r"[/\\?\x00-\x1f\x7f]")  # _KEEP_ESCAPED but "%": escaped in a file name


@lru_cache(maxsize=16384)  # asked again for each link to a URL not saved yet; bounded, for big sites
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


@dataclass(frozen=True)
class StreamedList:
    """A list too long to hold in memory: its length, and a way to read its items again
    (from the crawl state) each time they are needed."""

    length: int
    read: Callable[[], Iterator[object]]

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[object]:
        return self.read()


def _json_pieces(data: dict[str, object]) -> Iterator[str]:
    """json.dumps(data, indent=2, ensure_ascii=False), in pieces, reading StreamedList values
    one item at a time."""
    encoder = json.JSONEncoder(indent=2, ensure_ascii=False)
    if not any(isinstance(value, StreamedList) for value in data.values()):
        yield from encoder.iterencode(data)
        return
    yield "{"
    for number, (key, value) in enumerate(data.items()):
        yield f"{',' if number else ''}\n  {json.dumps(key, ensure_ascii=False)}: "
        if not isinstance(value, StreamedList) or not value:
            for piece in encoder.iterencode([] if isinstance(value, StreamedList) else value):
                yield piece.replace("\n", "\n  ")
            continue
        yield "["
        for index, item in enumerate(value):
            yield f"{',' if index else ''}\n    " + encoder.encode(item).replace("\n", "\n    ")
        yield "\n  ]"
    yield "\n}"


def checked_join(root: Path | str, relative: str) -> str:
    """root/relative, after proving that it stays inside root. Raises UnsafePathError."""
    parts = relative.split("/")
    if (not relative or relative.startswith("/") or "\x00" in relative or "\\" in relative
            or any(part in ("", ".", "..") for part in parts)):
        raise UnsafePathError(f"refusing unsafe path {relative[:200]!r}")
    if parts[0] in RESERVED_TOP_LEVEL:
        raise UnsafePathError(f"host name {parts[0]!r} is reserved for crawl's own files")
    base = str(root)
    target = os.path.join(base, *parts)
    if os.path.commonpath([base, os.path.normpath(target)]) != base:
        raise UnsafePathError(f"refusing path outside the output folder: {relative[:200]!r}")
    return target


@dataclass(frozen=True, slots=True)
class Owner:
    """The URL a file was first saved for, and its content: a URL with the same content may
    share the file; one with other content gets a name of its own."""

    url: str
    sha256: str
    file_size: int


class Writer:
    """Saves bodies under `root`, atomically, one file per URL; shared by all writer threads.

    `adjust_extension`: name HTML and CSS files so a browser opens them from disk.
    Paths are handled as "/"-separated strings relative to `root`: this runs once per file.
    """

    def __init__(self, root: Path, adjust_extension: bool = False,
                 on_move: Callable[[str, str], None] | None = None,
                 on_write: Callable[[str, int], None] | None = None,
                 on_rewrite: Callable[[str, int], None] | None = None) -> None:
        """`on_move(old, new)`: told when a saved file is renamed (a folder needs its name).
        `on_write(path, size)`: told, in the order it happens, each time a file is saved under
        its final name. Both are called under the writer's lock. `on_rewrite(path, size)`:
        told *before* a saved file is replaced with `size` bytes (its links fixed); once it
        returns, the new size must be on record beside the old one, so that a crawl killed at
        any moment finds the file whole whichever of the two it holds.
        The manifest entries themselves are the crawl state's: the writer keeps only what
        deciding file names needs, so a big crawl's memory stays small."""
        self.root = root
        self._base = str(root)
        self.adjust_extension = adjust_extension
        self._on_move = on_move or (lambda old, new: None)
        self._on_write = on_write or (lambda path, size: None)
        self._on_rewrite = on_rewrite or (lambda path, size: None)
        # Guards the folder structure (creating folders, moving a file aside for a folder),
        # `_owners` and `_folders`; file contents are written outside it.
        self._lock = threading.Lock()
        self._owners: dict[str, Owner] = {}  # relative path -> the first URL saved there
        self._folders: set[str] = set()  # relative folders this run created or checked
        self._temp_names = itertools.count()  # next() is atomic under the GIL

    def path_for(self, url: str, content_type: str) -> str:
        """Where `url` is saved (before any collision with another URL's file)."""
        return url_to_path(url, content_type if self.adjust_extension else None)

    def prepare(self) -> None:
        """Create the output folder or fail with OutputError (exit 1) before any fetch."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe", suffix=TEMP_SUFFIX):
                pass
        except OSError as exc:
            # A file where a folder must be: say so ("not writable: File exists" says nothing).
            blocking = next((path for path in (self.root, *self.root.parents) if path.is_file()), None)
            if blocking is not None:
                where = "" if blocking == self.root else f" cannot be made: {blocking}"
                raise OutputError(f"output folder {self.root}{where} is a file, not a folder", str(self.root)) from None
            raise OutputError(f"output folder {self.root} is not writable: {exc.strerror or exc}",
                              str(self.root)) from None

    def shared(self, url: str, entry: SavedFile) -> SavedFile | None:
        """The entry for `url` if the file it would be saved as already holds the same content
        (another URL's: /d/ and /d/index.html): nothing to write then."""
        relative = self.path_for(url, entry.content_type)
        with self._lock:
            owner = self._owners.get(relative)
            if owner is None or owner.url == url or owner.sha256 != entry.sha256:
                return None
            return replace(entry, path=relative, file_size=owner.file_size)

    def save(self, url: str, body: bytes, entry: SavedFile, reuse: str | None = None,
             reuse_holds: bool | None = None) -> SavedFile:
        """Write `body` as the file for `url`; returns the manifest entry with its final path.

        `reuse`: an earlier file that may hold these very bytes. If it does, it is hard-linked
        (copied where links are impossible) instead of written, or, if it is the target
        itself, left alone. `reuse_holds`: whether it does, if the caller knows (it has just
        read the file); else the file is read to compare.
        """
        relative = self.path_for(url, entry.content_type)
        target = checked_join(self._base, relative)
        folder = relative.rpartition("/")[0]
        same = reuse is not None and (_holds(reuse, body) if reuse_holds is None else reuse_holds)
        if same and reuse == target:
            with self._lock:
                owner = self._owners.setdefault(relative, Owner(url, entry.sha256, len(body)))
                if owner.url == url:
                    self._on_write(relative, len(body))
                    return replace(entry, path=relative, file_size=len(body))
        with self._lock:
            self._make_folders(folder)
        temp = self._link_temp(folder, reuse) if same and reuse is not None else None
        linked = temp is not None
        if temp is None:
            temp = self._write_temp(folder, body)
        try:
            with self._lock:  # the file and its manifest entry appear together
                self._make_folders(folder)  # a file may have displaced one meanwhile
                relative = self._unowned(self._beside_folder(relative), url, entry.sha256)
                os.replace(temp, self._full(relative))
                self._owners.setdefault(relative, Owner(url, entry.sha256, len(body)))
                self._on_write(relative, len(body))
        except BaseException:
            _unlink_quietly(temp)
            raise
        if linked:
            # The final name may be `reuse` itself (a file moved aside for a folder, "x%~file",
            # is where the crawl before saved it): renaming a hard link onto another name of the
            # same file does nothing (POSIX), and the temporary name would stay.
            _unlink_quietly(temp)
        return replace(entry, path=relative, file_size=len(body))

    def restore(self, entries: Iterable[SavedFile]) -> None:
        """The files an interrupted run of this crawl saved."""
        with self._lock:
            for entry in entries:
                self._owners.setdefault(entry.path, Owner(entry.url, entry.sha256, entry.file_size))

    def write_json_lines(self, name: str, records: Iterable[dict[str, object]]) -> None:
        """Atomically write `records` as JSON lines, a batch at a time: a big crawl's
        manifest is never all in memory."""
        self._write_text(name, (json.dumps(record, ensure_ascii=False) + "\n" for record in records))

    def write_json(self, name: str, data: dict[str, object]) -> None:
        """Atomically write `data` as indented JSON, encoded piece by piece; a value that is a
        `StreamedList` is read item by item (changes.json of a first crawl lists every file)."""
        self._write_text(name, itertools.chain(_json_pieces(data), "\n"))

    def _write_text(self, name: str, pieces: Iterator[str]) -> None:
        temp = self._write_temp("", b"")
        try:
            with open(temp, "a", encoding="utf-8") as file:
                while batch := "".join(itertools.islice(pieces, 4096)):
                    file.write(batch)
            os.replace(temp, self._full(name))
        except OSError as exc:
            _unlink_quietly(temp)
            raise _as_output_error(exc, self._base) from None
        except BaseException:
            _unlink_quietly(temp)
            raise

    def rewrite(self, relative: str, data: bytes) -> None:
        """Atomically replace the content of a file saved earlier (link conversion)."""
        target = checked_join(self._base, relative)
        temp = self._write_temp(relative.rpartition("/")[0], data)
        try:
            self._on_rewrite(relative, len(data))
            with self._lock:
                os.replace(temp, target)
                owner = self._owners.get(relative)
                if owner is not None:  # a URL that shares the file from now on gets its size
                    self._owners[relative] = replace(owner, file_size=len(data))
        except BaseException:
            _unlink_quietly(temp)
            raise

    def write_metadata(self, name: str, data: bytes) -> None:
        """Atomically write one of crawl's own files (manifest, report) at the top level."""
        temp = self._write_temp("", data)
        os.replace(temp, self._full(name))

    # -- internals (relative paths; the caller holds the lock where noted) -------------------

    def _full(self, relative: str) -> str:
        return f"{self._base}/{relative}" if relative else self._base

    def _make_folders(self, folder: str) -> None:
        """Create `folder` and its parents, never through a symlink. Caller holds the lock."""
        if folder in self._folders or not folder:
            return
        self._make_folders(folder.rpartition("/")[0])
        full = self._full(folder)
        mode = _lstat_mode(full)
        if mode is None:
            try:
                os.mkdir(full)
            except OSError as exc:
                raise _as_output_error(exc, full) from None
        elif stat.S_ISLNK(mode):
            raise UnsafePathError(f"refusing to write through the symlink {full}")
        elif stat.S_ISREG(mode):  # a file saved earlier where a folder is now needed: move it aside
            os.replace(full, full + COLLISION_SUFFIX)
            os.mkdir(full)
            self._rename_saved(folder, folder + COLLISION_SUFFIX)
        elif not stat.S_ISDIR(mode):
            raise UnsafePathError(f"{full} exists and is not a folder")
        self._folders.add(folder)

    def _beside_folder(self, relative: str) -> str:
        """`relative`, or a name beside it if a folder has that name. Caller holds the lock."""
        mode = _lstat_mode(self._full(relative))
        return relative + COLLISION_SUFFIX if mode is not None and stat.S_ISDIR(mode) else relative

    def _unowned(self, relative: str, url: str, sha256: str) -> str:
        """`relative`, or a name of its own if another URL's different file is there (/a as
        HTML and /a.html both want a.html). URLs with the same content share the file, which is
        what /d/ and /d/index.html usually are. Caller holds the lock."""
        owner = self._owners.get(relative)
        if owner is None or owner.url == url or owner.sha256 == sha256:
            return relative
        stem, extension = os.path.splitext(relative)
        digest = hashlib.sha256(url.encode()).hexdigest()[:10]
        return f"{stem}{HASH_MARKER}{digest}{extension}"

    def _rename_saved(self, old: str, new: str) -> None:
        owner = self._owners.pop(old, None)
        if owner is not None:
            self._owners[new] = owner
            self._on_move(old, new)

    def _link_temp(self, folder: str, source: str) -> str | None:
        """A hard link to `source` under a temporary name in `folder`, or a copy where a link
        is impossible (another filesystem); None if neither works."""
        name = f"{self._full(folder)}/.{os.getpid()}-{next(self._temp_names)}{TEMP_SUFFIX}"
        try:
            os.link(source, name)
        except OSError:
            try:
                shutil.copyfile(source, name)
            except OSError:
                _unlink_quietly(name)
                return None
        return name

    def _write_temp(self, folder: str, data: bytes) -> str:
        """A new file holding `data`, in `folder`, under a name no URL maps to. Three system
        calls: each one gives the GIL away, and writer threads wait to get it back."""
        directory = self._full(folder)
        name = f"{directory}/.{os.getpid()}-{next(self._temp_names)}{TEMP_SUFFIX}"
        try:
            # O_EXCL|O_NOFOLLOW: never an existing file, never through a planted symlink; the
            # mode is 0666 less the umask, as for any file the user creates.
            handle = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise _as_output_error(exc, directory) from None
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(handle, view):]
        except OSError as exc:
            os.close(handle)
            _unlink_quietly(name)
            raise _as_output_error(exc, directory) from None
        os.close(handle)
        return name


def _holds(path: str, data: bytes) -> bool:
    """Does the file at `path` hold exactly `data`?"""
    try:
        if os.path.getsize(path) != len(data):
            return False
        with open(path, "rb") as stream:
            return stream.read() == data
    except OSError:
        return False


def _lstat_mode(path: str) -> int | None:
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return None


def _as_output_error(exc: OSError, path: str) -> Exception:
    """Disk full or a read-only/forbidden folder stops the crawl; other errors fail one URL."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
        return OutputError(f"cannot write to {path}: {exc.strerror}", str(path))
    return UnsafePathError(f"cannot write {path}: {exc.strerror or exc}")


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


