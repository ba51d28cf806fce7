from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from crawler.demo.server import SiteServer
from crawler.engine.run import CrawlRun
from crawler.errors import OutputError, UnsafePathError
from crawler.mirror.paths import COLLISION_SUFFIX, MAX_NAME_BYTES, TEMP_SUFFIX, checked_join, url_to_path
from crawler.mirror.writer import StreamedList, Writer, _json_pieces
from crawler.models import SavedFile
from crawler.urls import InvalidURLError, canonicalize
from tests import routes
from tests.conftest import make_config


@pytest.mark.parametrize(("url", "path"), [
    ("http://example.com/", "example.com/index.html"),
    ("http://example.com/a/b.html", "example.com/a/b.html"),
    ("http://example.com/a/", "example.com/a/index.html"),
    ("http://example.com:8080/x.css", "example.com:8080/x.css"),
    ("http://example.com/page.php?id=3&x=y", "example.com/page.php?id=3&x=y"),
    ("http://example.com/?q=1", "example.com/index.html?q=1"),
    ("http://example.com/a%20b.html", "example.com/a b.html"),
    ("http://example.com/caf%C3%A9", "example.com/caf\u00e9"),
    ("http://example.com/a%2Fb", "example.com/a%2Fb"),
    ("http://example.com/a%5Cb", "example.com/a%5Cb"),
    ("http://example.com/a%00b", "example.com/a%00b"),
    ("http://example.com/a%3Fb", "example.com/a%3Fb"),
    ("http://example.com/a%25b", "example.com/a%25b"),
    ("http://example.com/%FF.bin", "example.com/%FF.bin"),
    ("http://example.com/a//b", "example.com/a/%~empty/b"),
    ("http://example.com/p?a=%2F..%2F", "example.com/p?a=%2F..%2F"),
])
def test_url_to_path(url: str, path: str) -> None:
    assert url_to_path(url) == path


def test_long_names_are_shortened_with_a_hash_and_keep_their_extension() -> None:
    long_a = url_to_path("http://h/" + "a" * 300 + ".html")
    long_b = url_to_path("http://h/" + "a" * 299 + "b.html")
    name = long_a.split("/")[-1]
    assert len(name.encode()) <= MAX_NAME_BYTES and name.endswith(".html")
    assert long_a != long_b


def test_very_deep_paths_are_flattened_under_the_host() -> None:
    path = url_to_path("http://h/" + "/".join(["segment-name"] * 300) + "/page.css")
    assert path.startswith("h/%~long/") and path.endswith(".css")
    assert len(path.encode()) < 200


@pytest.mark.parametrize("relative", ["", "/etc/passwd", "h/../../x", "h/./x", "h//x", "h/a\x00b",
                                      "h\\..\\x", "manifest.jsonl/x", "report.json/x"])
def test_checked_join_refuses_unsafe_paths(tmp_path: Path, relative: str) -> None:
    with pytest.raises(UnsafePathError):
        checked_join(tmp_path, relative)


# Any text at all in host, path and query: whatever a hostile page or server sends.
hostile_text = st.text(st.characters(codec="utf-8"), max_size=60) | st.sampled_from(
    ["..", ".", "%2e%2e", "%2E%2E/%2e%2e", "../../../../etc/passwd", "..\\..\\x", "/abs", "a\x00b",
     "%00", "x" * 400, "/".join([".."] * 50), "%c0%ae%c0%ae", "~", "a/b/"])


@settings(max_examples=400, deadline=None)
@given(path=hostile_text, query=hostile_text)
@example(path="..%2F..%2Fetc%2Fpasswd", query="")
@example(path="%2e%2e/%2e%2e/secret", query="../../x")
def test_no_url_maps_outside_the_output_folder(tmp_path_factory: pytest.TempPathFactory,
                                               path: str, query: str) -> None:
    root = tmp_path_factory.getbasetemp() / "root"
    try:
        url = canonicalize(f"http://example.com/{path}?{query}")
    except InvalidURLError:
        return
    relative = url_to_path(url)
    target = checked_join(root, relative)  # raises if unsafe: that would fail the test
    assert os.path.normpath(target).startswith(str(root) + os.sep)
    for name in relative.split("/"):
        assert name not in ("", ".", "..")
        assert "\x00" not in name and "\\" not in name
        assert len(name.encode("utf-8", "surrogatepass")) <= MAX_NAME_BYTES


@settings(max_examples=300, deadline=None)
@given(a=hostile_text, b=hostile_text)
def test_distinct_urls_get_distinct_paths(a: str, b: str) -> None:
    try:
        url_a, url_b = canonicalize(f"http://h/{a}"), canonicalize(f"http://h/{b}")
    except InvalidURLError:
        return
    # "/x/" and "/x/index.html" are the same file by design, as in wget.
    assume(not url_a.endswith("/index.html") and not url_b.endswith("/index.html"))
    if url_a != url_b:
        assert url_to_path(url_a) != url_to_path(url_b)


def _entry(url: str) -> SavedFile:
    return SavedFile(url=url, path="", status=200, content_type="text/html", size=0, sha256="",
                     etag=None, last_modified=None, fetched_at="2026-01-01T00:00:00+00:00")


def test_save_writes_the_file_and_returns_its_path(tmp_path: Path) -> None:
    writer = Writer(tmp_path)
    saved = writer.save("http://h/a/b.html", b"<p>hi</p>", _entry("http://h/a/b.html"))
    assert saved.path == "h/a/b.html"
    assert (tmp_path / "h/a/b.html").read_bytes() == b"<p>hi</p>"
    assert not list(tmp_path.rglob(f"*{TEMP_SUFFIX}"))


def test_file_then_folder_moves_the_file_aside(tmp_path: Path) -> None:
    moves: list[tuple[str, str]] = []
    writer = Writer(tmp_path, on_move=lambda old, new: moves.append((old, new)))
    first = writer.save("http://h/a", b"file a", _entry("http://h/a"))
    second = writer.save("http://h/a/b", b"file b", _entry("http://h/a/b"))
    assert (tmp_path / f"h/a{COLLISION_SUFFIX}").read_bytes() == b"file a"
    assert (tmp_path / "h/a/b").read_bytes() == b"file b"
    assert (first.path, second.path) == ("h/a", "h/a/b")
    assert moves == [("h/a", f"h/a{COLLISION_SUFFIX}")]  # the manifest entry of /a follows


def test_folder_then_file_saves_the_file_beside_the_folder(tmp_path: Path) -> None:
    writer = Writer(tmp_path)
    writer.save("http://h/a/b", b"file b", _entry("http://h/a/b"))
    saved = writer.save("http://h/a", b"file a", _entry("http://h/a"))
    assert saved.path == f"h/a{COLLISION_SUFFIX}"
    assert (tmp_path / "h/a/b").read_bytes() == b"file b"


def test_a_symlink_planted_in_the_output_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "out"
    (root / "h").mkdir(parents=True)
    (root / "h" / "docs").symlink_to(outside)
    with pytest.raises(UnsafePathError):
        Writer(root).save("http://h/docs/x.html", b"data", _entry("http://h/docs/x.html"))
    assert list(outside.iterdir()) == []


def test_a_symlink_as_the_final_name_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    root = tmp_path / "out"
    (root / "h").mkdir(parents=True)
    (root / "h" / "x.html").symlink_to(victim)
    Writer(root).save("http://h/x.html", b"new", _entry("http://h/x.html"))
    assert victim.read_bytes() == b"precious"
    assert not (root / "h" / "x.html").is_symlink()


def test_failed_write_leaves_neither_final_nor_temporary_file(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    writer = Writer(tmp_path)

    def no_rename(src: object, dst: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="Input/output"):
        writer.save("http://h/a.html", b"data", _entry("http://h/a.html"))
    assert not (tmp_path / "h/a.html").exists()
    assert not list(tmp_path.rglob(f"*{TEMP_SUFFIX}"))


def test_unwritable_output_is_an_output_error() -> None:
    # sysfs refuses new entries even to root, so this holds whoever runs the tests
    with pytest.raises(OutputError, match="not writable"):
        Writer(Path("/sys/crawl-test-output")).prepare()


def test_output_that_is_a_file_is_an_output_error(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        Writer(tmp_path / "out").prepare()


KILL_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from crawler.models import SavedFile
    from crawler.mirror.writer import Writer
    writer = Writer(Path(sys.argv[1]))
    body = b"x" * 4_000_000
    for number in range(10_000):
        url = f"http://h/file-{number}.bin"
        writer.save(url, body, SavedFile(url, "", 200, "x", 0, "", None, None, ""))
        print(number, flush=True)
""")


def test_a_killed_writer_never_leaves_a_truncated_file_under_its_final_name(tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(tmp_path)],
                          stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        for _ in range(5):  # let it save a few files, then kill it in the middle of the next ones
            process.stdout.readline()
        process.send_signal(signal.SIGKILL)
        process.wait()
    finals = list((tmp_path / "h").glob("file-*.bin"))
    assert len(finals) >= 5
    assert all(path.stat().st_size == 4_000_000 for path in finals)


def test_json_with_streamed_lists_is_written_as_json_dumps_would_write_it(tmp_path: Path) -> None:
    records = [{"url": f"http://h/{n}.html", "size": n, "note": "naïve ✓", "nested": {"a": [1, 2]}} for n in range(3)]
    reads: list[int] = []

    def read() -> Iterator[object]:
        reads.append(1)
        return iter(records)

    writer = Writer(tmp_path)
    writer.write_json("out.json", {"summary": {"added": 3}, "added": StreamedList(3, read),
                                   "none": StreamedList(0, lambda: iter(())), "removed": [], "name": None})
    expected = {"summary": {"added": 3}, "added": records, "none": [], "removed": [], "name": None}
    written = (tmp_path / "out.json").read_text(encoding="utf-8")
    assert written == json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
    assert len(reads) == 1  # read while writing, not held before


def _temporary_files(root: Path) -> list[str]:
    return [str(path.relative_to(root)) for path in root.rglob(f"*{TEMP_SUFFIX}")]


@pytest.mark.parametrize("snapshots", [0, 2])
def test_a_recrawl_leaves_no_temporary_file_beside_a_file_moved_aside_for_a_folder(tmp_path: Path,
                                                                                 snapshots: int) -> None:
    # /odd/x is saved, then /odd/x/y needs a folder "x": the file becomes "x%~file". A re-crawl
    # finds x unchanged and links it to its stored copy -- which is the file itself.
    site = {"/": routes.html(routes.page("/odd/x", "/odd/x/y")),
            "/odd/x": routes.raw(b"x as text", "text/plain"), "/odd/x/y": routes.raw(b"y", "text/plain")}
    with SiteServer(root=None, routes=site) as server:
        for revalidate in ("always", "auto"):
            config = make_config(server.url, tmp_path, mirror={"sitemaps": False, "revalidate": revalidate},
                                 politeness={"robots": False}, snapshots={"keep": snapshots})
            report = CrawlRun(config).run()
            assert not report.tally.failures
            assert _temporary_files(tmp_path) == []
    files = list(tmp_path.rglob("x" + COLLISION_SUFFIX))
    assert files and all(path.read_bytes() == b"x as text" for path in files)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=8), st.one_of(st.none(), st.booleans(), st.integers(),
                                                               st.text(max_size=12), st.floats(allow_nan=False),
                                                               st.lists(st.integers(), max_size=2)),
                                max_size=5), max_size=4))
def test_json_with_streamed_lists_is_what_json_dumps_writes(items: list[dict[str, object]]) -> None:
    # The items of a StreamedList are written without the (pure Python) indenting encoder when
    # they are flat; the file must read exactly as json.dumps(indent=2) writes it.
    data = {"summary": {"added": len(items)}, "added": StreamedList(len(items), lambda: iter(items)), "ünï": "x"}
    written = "".join(_json_pieces(data))
    assert written == json.dumps({**data, "added": items}, indent=2, ensure_ascii=False)
