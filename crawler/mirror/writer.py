"""Atomic file writes under the output folder, one file per URL, for all writer threads.

A file is written under a temporary name in its folder, then renamed over its final name: a
killed crawl never leaves a truncated file under a name the mirror uses. Files of URLs with
the same content share one file; a file of the previous crawl with the same bytes is
hard-linked, not written again. Paths come from `paths.url_to_path` only.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import json
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from crawler.errors import LeaseLostError, OutputError, UnsafePathError
from crawler.mirror.owners import LocalOwners, Owner, PathOwners
from crawler.mirror.paths import COLLISION_SUFFIX, HASH_MARKER, TEMP_SUFFIX, checked_join, url_to_path
from crawler.models import SavedFile


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


_JSON_LINE = json.JSONEncoder(ensure_ascii=False)


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
            yield f"{',' if index else ''}\n    " + (_flat_item(item) or encoder.encode(item).replace("\n", "\n    "))
        yield "\n  ]"
    yield "\n}"


def _flat_item(item: object) -> str | None:
    """An item of a list in _json_pieces as the indenting encoder writes it (which is pure
    Python, and a first crawl's changes.json lists every file), if it is a dict of strings,
    ints, booleans and nulls; else None."""
    if not isinstance(item, dict) or not item:
        return None
    fields = []
    for key, value in item.items():
        if not isinstance(key, str):
            return None
        if isinstance(value, str):
            text = _JSON_LINE.encode(value)  # a string: encode_basestring, in C
        elif value is None or isinstance(value, (bool, int)):  # bool first: True is an int
            text = "null" if value is None else ("true" if value else "false") if isinstance(value, bool) \
                else int.__repr__(value)
        else:
            return None
        fields.append(f"{_JSON_LINE.encode(key)}: {text}")
    return "{\n      " + ",\n      ".join(fields) + "\n    }"


def prepare_folder(root: Path) -> None:
    """Create `root` (an output folder) or fail with OutputError (exit 1), before any fetch."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".probe", suffix=TEMP_SUFFIX):
            pass
    except OSError as exc:
        # A file where a folder must be: say so ("not writable: File exists" says nothing).
        blocking = next((path for path in (root, *root.parents) if path.is_file()), None)
        if blocking is not None:
            where = "" if blocking == root else f" cannot be made: {blocking}"
            raise OutputError(f"output folder {root}{where} is a file, not a folder", str(root)) from None
        raise OutputError(f"output folder {root} is not writable: {exc.strerror or exc}", str(root)) from None


class Writer:
    """Saves bodies under `root`, atomically, one file per URL; shared by all writer threads.

    `adjust_extension`: name HTML and CSS files so a browser opens them from disk.
    Paths are handled as "/"-separated strings relative to `root`: this runs once per file.
    """

    def __init__(self, root: Path, adjust_extension: bool = False,
                 on_move: Callable[[str, str], None] | None = None,
                 on_write: Callable[[str, int], None] | None = None,
                 on_rewrite: Callable[[str, int], None] | None = None, *, owners: PathOwners | None = None,
                 may_rewrite: Callable[[], bool] | None = None) -> None:
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
        self._owners = owners if owners is not None else LocalOwners()  # relative path -> first URL saved there
        self._may_rewrite = may_rewrite or (lambda: True)
        self._folders: set[str] = set()  # relative folders this run created or checked
        self._temp_names = itertools.count()  # next() is atomic under the GIL

    def path_for(self, url: str, content_type: str) -> str:
        """Where `url` is saved (before any collision with another URL's file)."""
        return url_to_path(url, content_type if self.adjust_extension else None)

    def prepare(self) -> None:
        """Create the folder files go to, or fail with OutputError (exit 1) before any fetch."""
        prepare_folder(self.root)

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
             reuse_holds: bool | None = None, *, fence: Callable[[], bool] | None = None) -> SavedFile:
        """Write `body` as the file for `url`; returns the manifest entry with its final path.

        `reuse`: an earlier file that may hold these very bytes. If it does, it is hard-linked
        (copied where links are impossible) instead of written, or, if it is the target
        itself, left alone. `reuse_holds`: whether it does, if the caller knows (it has just
        read the file); else the file is read to compare. `fence()`: asked just before the file
        takes its name (False: another worker holds the URL now, LeaseLostError is raised).
        """
        relative = self.path_for(url, entry.content_type)
        target = checked_join(self._base, relative)
        folder = relative.rpartition("/")[0]
        same = reuse is not None and (_holds(reuse, body) if reuse_holds is None else reuse_holds)
        if same and reuse == target:
            with self._lock:
                owner = self._owners.claim(relative, Owner(url, entry.sha256, len(body)))
                if owner.url == url:
                    _fenced(url, fence)
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
                relative = self._claim(self._beside_folder(relative), Owner(url, entry.sha256, len(body)))
                _fenced(url, fence)
                relative = self._replace(temp, relative)
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
            self._owners.restore(entries)

    def write_json_lines(self, name: str, records: Iterable[dict[str, object]]) -> None:
        """Atomically write `records` as JSON lines, a batch at a time: a big crawl's
        manifest is never all in memory."""
        line = _JSON_LINE.encode  # one encoder: json.dumps with options builds one per call
        self._write_text(name, (line(record) + "\n" for record in records))

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
            if not self._may_rewrite():  # a worker stopped past its lease: the crawl went on without it
                _unlink_quietly(temp)
                return
            self._on_rewrite(relative, len(data))
            with self._lock:
                os.replace(temp, target)
                self._owners.resize(relative, len(data))
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

    def _claim(self, relative: str, owner: Owner) -> str:
        """`relative`, claimed for the owner's URL, or a name of its own if another URL's
        different file is there (/a as HTML and /a.html both want a.html). URLs with the same
        content share the file, which is what /d/ and /d/index.html usually are. The name is
        claimed before the file takes it: workers sharing the owners never give one name to
        two contents. Caller holds the lock."""
        first = self._owners.claim(relative, owner)
        if first.url == owner.url or first.sha256 == owner.sha256:
            return relative
        stem, extension = os.path.splitext(relative)
        digest = hashlib.sha256(owner.url.encode()).hexdigest()[:10]
        unique = f"{stem}{HASH_MARKER}{digest}{extension}"
        self._owners.claim(unique, owner)
        return unique

    def _replace(self, temp: str, relative: str) -> str:
        """Give the file its name. Another worker may have made a folder of that name since it
        was checked (a shared mirror): the file then goes beside it. Caller holds the lock."""
        try:
            os.replace(temp, self._full(relative))
        except IsADirectoryError:
            relative += COLLISION_SUFFIX
            os.replace(temp, self._full(relative))
        return relative

    def _rename_saved(self, old: str, new: str) -> None:
        if self._owners.move(old, new):
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


def _fenced(url: str, fence: Callable[[], bool] | None) -> None:
    if fence is not None and not fence():
        raise LeaseLostError(f"{url}: another worker holds it now")


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


