from __future__ import annotations

import posixpath
from pathlib import Path
from posixpath import dirname, join, normpath
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.history.recrawl import KnownLinks
from crawler.mirror.converter import (
    LinkFixer,
    RelativeLinks,
    _relative_path,
    convert_document,
    relative_from_folder,
    relative_link,
)
from crawler.mirror.linkmap import LinkMap
from crawler.mirror.links import parse_document
from crawler.mirror.offline import LinkFinisher, OfflineLinks, count_unconverted
from crawler.mirror.skim import html_spots
from crawler.mirror.writer import Writer
from crawler.models import LinkKind, SavedFile

SITE = "http://h/"


def saved(url: str, path: str, content_type: str = "text/html", charset: str | None = None) -> SavedFile:
    return SavedFile(url=url, path=path, status=200, content_type=content_type, size=0, sha256="",
                     etag=None, last_modified=None, fetched_at="", charset=charset)


def convert(tmp_path: Path, files: dict[str, tuple[str, bytes, str]], aliases: dict[str, str] | None = None,
            broken: tuple[str, ...] = (), excluded: tuple[str, ...] = (), do_convert: bool = True,
            charsets: dict[str, str] | None = None, saved_later: tuple[str, ...] = ()) -> OfflineLinks:
    """As the pipeline does it: files (url -> (path, body, content type)) are saved one by one,
    pages converted as they are written (URLs in `saved_later` saved after every page), then
    the crawl's end fixes up and counts. Returns the counts."""
    writer = Writer(tmp_path, adjust_extension=True)
    links = LinkMap(writer.path_for)
    fixer = LinkFixer(tmp_path, writer.rewrite)
    fixed_during_crawl = 0
    for source, target in (aliases or {}).items():
        links.alias(source, target)
    entries = [saved(url, path, content_type, (charsets or {}).get(url))
               for url, (path, _, content_type) in files.items()]
    order = sorted(entries, key=lambda entry: entry.url in saved_later)
    for entry in order:
        body = files[entry.url][1]
        data, number = body, None
        document = parse_document(body, entry.url, entry.content_type, entry.charset) if do_convert else None
        if document is not None:
            targets = [(t[0], spot.kind, t[0] not in excluded)
                       for spot, t in zip(document.spots, document.targets, strict=True) if t is not None]
            number, planned = links.plan(entry.content_type, entry.charset, targets)
            data = convert_document(document, entry.path, planned, relative_from_folder) or body
        (tmp_path / entry.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / entry.path).write_bytes(data)
        fixed_during_crawl += fixer.fix(links.saved(entry.url, entry.path, number))
    for url in broken:
        fixed_during_crawl += fixer.fix(links.unsaved(url))
    in_domains = lambda url: url.startswith(SITE)  # noqa: E731
    if not do_convert:
        return count_unconverted(tmp_path, entries, final_url=links.final_url, path_of=links.final_path,
                                 in_domains=in_domains, broken=broken, excluded=excluded)
    finisher = LinkFinisher(tmp_path, links, fixer, in_domains=in_domains, broken=broken, excluded=excluded)
    counts = finisher.finish(entries, ())
    counts.files_converted += fixed_during_crawl
    return counts


def test_only_the_link_bytes_change(tmp_path: Path) -> None:
    page = (b"<!DOCTYPE html>\n<HTML><Head><LINK REL=stylesheet HREF='/s.css'></head>\n"
            b"<body class=x   id=y><a  href = \"/docs/\"  >Docs</a> <!-- <a href=\"/c\"> -->\n"
            b"<img src=/i.png alt='a > b'><a href=\"other.html#part\">o</a></body></html>\n")
    counts = convert(tmp_path, {
        SITE: ("h/index.html", page, "text/html"),
        SITE + "s.css": ("h/s.css", b"body{}", "text/css"),
        SITE + "docs/": ("h/docs/index.html", b"<p>docs</p>", "text/html"),
        SITE + "i.png": ("h/i.png", b"png", "image/png"),
        SITE + "other.html": ("h/other.html", b"<p>other</p>", "text/html"),
    })
    assert (tmp_path / "h/index.html").read_bytes() == (
        b"<!DOCTYPE html>\n<HTML><Head><LINK REL=stylesheet HREF='s.css'></head>\n"
        b"<body class=x   id=y><a  href = \"docs/index.html\"  >Docs</a> <!-- <a href=\"/c\"> -->\n"
        b"<img src=i.png alt='a > b'><a href=\"other.html#part\">o</a></body></html>\n")
    assert (counts.ok, counts.total, counts.files_converted) == (4, 4, 0)


def test_links_to_what_was_not_saved_become_absolute(tmp_path: Path) -> None:
    page = b'<a href="gone.html">g</a><a href="/failed.html">f</a><a href="//cdn.test/x.js">x</a>'
    counts = convert(tmp_path, {SITE + "a/": ("h/a/index.html", page, "text/html")},
                     broken=(SITE + "a/gone.html",))
    assert (tmp_path / "h/a/index.html").read_bytes() == (
        b'<a href="http://h/a/gone.html">g</a><a href="http://h/failed.html">f</a>'
        b'<a href="http://cdn.test/x.js">x</a>')
    # gone.html is broken on the site; failed.html should have been saved; cdn.test is external
    assert (counts.ok, counts.total, counts.broken_on_site, counts.external) == (0, 1, 1, 1)
    assert counts.missing == {SITE + "failed.html": 1}


def test_special_links_are_never_touched(tmp_path: Path) -> None:
    page = (b'<a href="javascript:go()">j</a><a href="mailto:x@y.z">m</a><img src="data:image/png;base64,AA">'
            b'<a href="#top">t</a><a href="">empty</a><a href="tel:+1">t</a>')
    convert(tmp_path, {SITE: ("h/index.html", page, "text/html")})
    assert (tmp_path / "h/index.html").read_bytes() == page


def test_query_names_fragments_and_entities(tmp_path: Path) -> None:
    page = b'<a href="p.php?a=1&amp;b=2#sec">p</a><a href=\'caf\xc3\xa9 menu.html\'>c</a>'
    convert(tmp_path, {
        SITE: ("h/index.html", page, "text/html"),
        SITE + "p.php?a=1&b=2": ("h/p.php?a=1&b=2.html", b"p", "text/html"),
        SITE + "caf%C3%A9%20menu.html": ("h/caf\u00e9 menu.html", b"c", "text/html"),
    })
    assert (tmp_path / "h/index.html").read_bytes() == (
        b'<a href="p.php%3Fa=1&amp;b=2.html#sec">p</a><a href=\'caf%C3%A9%20menu.html\'>c</a>')


def test_redirects_are_followed_to_the_saved_file(tmp_path: Path) -> None:
    page = b'<a href="/old">o</a><img src="/img/moved.png">'
    counts = convert(tmp_path, {
        SITE: ("h/index.html", page, "text/html"),
        SITE + "new.html": ("h/new.html", b"n", "text/html"),
        SITE + "img/final.png": ("h/img/final.png", b"i", "image/png"),
    }, aliases={SITE + "old": SITE + "older", SITE + "older": SITE + "new.html",
                SITE + "img/moved.png": SITE + "img/final.png"})
    assert (tmp_path / "h/index.html").read_bytes() == b'<a href="new.html">o</a><img src="img/final.png">'
    assert counts.ok == counts.total == 2


def test_srcset_style_and_css_are_converted(tmp_path: Path) -> None:
    page = (b'<img srcset="/a.png 1x, /b.png 2x"><p style="background:url(&quot;/a.png&quot;)">'
            b"<style>p{background:url( '/b.png' )}</style>")
    css = b'@import "/c/base.css"; a { background: url(../a.png) } b { background: url("/missing.png") }'
    convert(tmp_path, {
        SITE: ("h/index.html", page, "text/html"),
        SITE + "a.png": ("h/a.png", b"a", "image/png"), SITE + "b.png": ("h/b.png", b"b", "image/png"),
        SITE + "c/site.css": ("h/c/site.css", css, "text/css"),
        SITE + "c/base.css": ("h/c/base.css", b"", "text/css"),
    })
    assert (tmp_path / "h/index.html").read_bytes() == (
        b'<img srcset="a.png 1x, b.png 2x"><p style="background:url(&quot;a.png&quot;)">'
        b"<style>p{background:url( 'b.png' )}</style>")
    assert (tmp_path / "h/c/site.css").read_bytes() == (
        b'@import "base.css"; a { background: url(../a.png) } b { background: url("http://h/missing.png") }')


def test_base_href_is_neutralised_once_links_are_relative(tmp_path: Path) -> None:
    page = b'<head><base href="http://h/docs/" target="_blank"></head><a href="x.html">x</a>'
    convert(tmp_path, {SITE + "other/": ("h/other/index.html", page, "text/html"),
                       SITE + "docs/x.html": ("h/docs/x.html", b"x", "text/html")})
    assert (tmp_path / "h/other/index.html").read_bytes() == (
        b'<head><base href="" target="_blank"></head><a href="../docs/x.html">x</a>')


@pytest.mark.parametrize("encoding", ["iso-8859-1", "windows-1252", "shift_jis", "utf-16"])
def test_documents_keep_their_encoding(tmp_path: Path, encoding: str) -> None:
    text = "<p>\u00e9t\u00e9 \u65e5\u672c</p><a href=\"/x.html\">x</a>" if encoding in ("shift_jis", "utf-16") \
        else "<p>d\u00e9j\u00e0 \u00a9</p><a href=\"/x.html\">x</a>"
    if encoding == "shift_jis":
        text = text.replace("\u00e9", "e")
    page = text.encode(encoding)
    convert(tmp_path, {SITE + "d/": ("h/d/index.html", page, "text/html"),
                       SITE + "x.html": ("h/x.html", b"x", "text/html")}, charsets={SITE + "d/": encoding})
    assert (tmp_path / "h/d/index.html").read_bytes() == text.replace("/x.html", "../x.html").encode(encoding)


def test_without_conversion_links_are_only_counted(tmp_path: Path) -> None:
    page = b'<a href="x.html">works</a><a href="/x.html">absolute path</a><a href="y/">folder</a>'
    counts = convert(tmp_path, {SITE: ("h/index.html", page, "text/html"),
                                SITE + "x.html": ("h/x.html", b"x", "text/html"),
                                SITE + "y/": ("h/y/index.html", b"y", "text/html")}, do_convert=False)
    assert (tmp_path / "h/index.html").read_bytes() == page
    assert (counts.ok, counts.total) == (1, 3)


@pytest.mark.parametrize(("source", "target", "link"), [
    ("h/index.html", "h/a/b.html", "a/b.html"),
    ("h/a/b.html", "h/index.html", "../index.html"),
    ("h/a/b.html", "cdn:8080/x.css", "../../cdn:8080/x.css"),
    ("h/index.html", "h/p?q=1.html", "p%3Fq=1.html"),
    ("h/index.html", "h/a b#c%.png", "a%20b%23c%25.png"),
    ("h/index.html", "h/x:y.html", "./x:y.html"),
])
def test_relative_link(source: str, target: str, link: str) -> None:
    assert relative_link(source, target) == link


def test_relative_links_are_remembered_per_folder_within_a_bound() -> None:
    computed: list[tuple[str, str]] = []

    def link(folder: str, path: str) -> str:
        computed.append((folder, path))
        return relative_link(folder, path, from_folder=True)

    links = RelativeLinks(link, max_links=4)
    assert links.from_folder("h/a")["h/b/c.html"] == "../b/c.html"
    assert links("h/a", "h/b/c.html") == "../b/c.html"  # remembered, not computed again
    assert computed == [("h/a", "h/b/c.html")]
    assert [links("h/x", path) for path in ("h/x/1.html", "h/2.html")] == ["1.html", "../2.html"]
    links.from_folder("h/a")  # used again: now h/x is the folder used least recently
    # The fifth link is over the bound: folders are forgotten, least recently used first,
    # down to half of it -- h/x, then h/a; not the folder in use.
    assert [links("h/y", path) for path in ("h/y/1.html", "h/y/2.html")] == ["1.html", "2.html"]
    computed.clear()
    assert links("h/y", "h/y/1.html") == "1.html" and computed == []
    assert links("h/a", "h/b/c.html") == "../b/c.html" and links("h/x", "h/2.html") == "../2.html"
    assert computed == [("h/a", "h/b/c.html"), ("h/x", "h/2.html")]
    assert relative_from_folder("h/a/b", "h/c.css") == "../../c.css"


names = st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=20).filter(
    lambda name: name not in (".", ".."))


@settings(max_examples=200, deadline=None)
@given(source=st.lists(names, min_size=1, max_size=4), target=st.lists(names, min_size=1, max_size=4))
def test_relative_links_lead_to_their_file(source: list[str], target: list[str]) -> None:
    """Read back as a browser does (unescape the path, resolve against the folder), the link
    names exactly the target file."""
    source_path, target_path = "/".join(["h", *source]), "/".join(["h", *target])
    link = relative_link(source_path, target_path)
    parsed = urlsplit(link)
    assert parsed.scheme == "" and parsed.netloc == "" and not parsed.query and not parsed.fragment
    assert normpath(join(dirname(source_path), unquote(parsed.path))) == normpath(target_path)


def test_spots_cover_exactly_the_url_bytes() -> None:
    body = b'<a href="x.html">x</a><img src=\'y.png\' srcset="z.png 2x"><a href=w.html>w</a>'
    assert [body[s.start:s.end] for s in html_spots(body).spots] == [b"x.html", b"y.png", b"z.png", b"w.html"]


def test_links_written_before_their_target_are_fixed_when_it_lands_elsewhere(tmp_path: Path) -> None:
    page = b'<link rel="stylesheet" href="/style"><a href="/about">a</a><a href="/gone">g</a>'
    counts = convert(tmp_path, {
        SITE: ("h/index.html", page, "text/html"),
        SITE + "style": ("h/style.css", b"p{}", "text/css"),  # no .css in the URL: expected as "style"
        SITE + "about": ("h/about.html", b"<p>a</p>", "text/html"),  # expected as about.html: right
    }, broken=(SITE + "gone",))
    assert (tmp_path / "h/index.html").read_bytes() == (
        b'<link rel="stylesheet" href="style.css"><a href="about.html">a</a><a href="http://h/gone">g</a>')
    assert counts.files_converted == 2  # index.html, when style landed elsewhere and when gone failed
    assert (counts.ok, counts.total, counts.broken_on_site) == (2, 2, 1)


def test_pages_whose_targets_land_as_expected_are_not_touched_again(tmp_path: Path) -> None:
    counts = convert(tmp_path, {
        SITE: ("h/index.html", b'<a href="/docs/">d</a><img src="/i.png">', "text/html"),
        SITE + "docs/": ("h/docs/index.html", b"<p>docs</p>", "text/html"),
        SITE + "i.png": ("h/i.png", b"png", "image/png"),
    })
    assert counts.files_converted == 0 and counts.ok == counts.total == 2
    assert (tmp_path / "h/index.html").read_bytes() == b'<a href="docs/index.html">d</a><img src="i.png">'


def test_pages_converted_by_an_interrupted_run_are_converted_again_from_their_links(tmp_path: Path) -> None:
    """After a resume the map does not know these pages' links: they are read back from the
    converted file (relative links name files, absolute ones URLs) and fixed where needed."""
    (tmp_path / "h" / "docs").mkdir(parents=True)
    converted = b'<a href="docs/x.html">x</a><a href="style">s</a><a href="http://h/late.html">l</a><a href="#t">t</a>'
    (tmp_path / "h/index.html").write_bytes(converted)
    (tmp_path / "h/docs/x.html").write_bytes(b"x")
    (tmp_path / "h/style.css").write_bytes(b"s")
    (tmp_path / "h/late.html").write_bytes(b"l")
    entries = [saved(SITE, "h/index.html"), saved(SITE + "docs/x.html", "h/docs/x.html"),
               saved(SITE + "style", "h/style.css", "text/css"), saved(SITE + "late.html", "h/late.html")]
    writer = Writer(tmp_path)
    links = LinkMap(writer.path_for)
    links.restore(entries, [])
    links.plan("text/html", None, [(SITE + "style", LinkKind.REQUISITE, True)])  # "style" was once expected
    finisher = LinkFinisher(tmp_path, links, LinkFixer(tmp_path, writer.rewrite),
                        in_domains=lambda url: url.startswith(SITE), broken=(), excluded=())
    counts = finisher.finish(entries, [entries[0]])
    assert (tmp_path / "h/index.html").read_bytes() == (
        b'<a href="docs/x.html">x</a><a href="style.css">s</a><a href="late.html">l</a><a href="#t">t</a>')
    assert counts.ok == 4 and counts.total == 4  # three here, one for "other"


@given(st.lists(st.sampled_from(["a", "b", "c.html", "d d"]), min_size=1, max_size=4),
       st.lists(st.sampled_from(["a", "b", "c"]), max_size=4))
def test_relative_paths_match_the_standard_library(path: list[str], folder: list[str]) -> None:
    expected = posixpath.relpath("/".join(path), "/".join(folder) or ".")
    assert _relative_path("/".join(path), "/".join(folder)) == expected


def test_a_stored_page_is_taken_as_written_only_if_its_links_may_stay_so(tmp_path: Path) -> None:
    links = LinkMap(Writer(tmp_path).path_for)
    links.saved(SITE + "a.html", "h/a.html")
    links.unsaved(SITE + "gone.html")
    page = [(SITE + "a.html", LinkKind.PAGE, True), (SITE + "gone.html", LinkKind.PAGE, True),
            (SITE + "later.html", LinkKind.PAGE, True)]
    # a.html is saved elsewhere now than written: converted anew
    assert links.plan_if("text/html", None, page, ["h/old-a.html", None, "h/later.html"]) is None
    # gone.html failed: the link written as a file is wrong
    assert links.plan_if("text/html", None, page, ["h/a.html", "h/gone.html", "h/later.html"]) is None
    # later.html is not fetched yet: written as its URL it may stay, and is fixed once saved
    number = links.plan_if("text/html", None, page, ["h/a.html", None, None])
    assert number is not None
    links.saved(SITE + "page.html", "h/page.html", number)
    fixes = links.saved(SITE + "later.html", "h/later.html")
    assert [(fix.page, fix.url, fix.wrong, fix.right) for fix in fixes] == [
        ("h/page.html", SITE + "later.html", "", "h/later.html")]


def test_known_links_round_trip_and_follow_fixes() -> None:
    known = KnownLinks([(SITE + "a.html", LinkKind.PAGE), (SITE + "s.css", LinkKind.REQUISITE),
                        (SITE + "a.html", LinkKind.REQUISITE)], ["h/a.html", None, "h/a.html"])
    assert KnownLinks.decode(known.encode()) == known
    assert [(link.url, link.kind) for link in known.links()] == [
        (SITE + "a.html", LinkKind.REQUISITE), (SITE + "s.css", LinkKind.REQUISITE)]
    assert known.fixed({SITE + "a.html": None}).files == [None, None, None]
    assert KnownLinks.decode("not json") is None
    assert KnownLinks.decode(known.encode()[:-12]) is None  # cut short: the page is parsed again
    assert KnownLinks.decode(KnownLinks([], []).encode()) == KnownLinks([], [])
    # An earlier version's JSON is still read.
    assert KnownLinks.decode('[["http://h/a.html","page","h/a.html"],["http://h/s.css","requisite",null]]') == \
        KnownLinks([(SITE + "a.html", LinkKind.PAGE), (SITE + "s.css", LinkKind.REQUISITE)], ["h/a.html", None])


def test_links_to_a_settled_target_are_fixed_in_every_page_when_its_file_is_renamed(tmp_path: Path) -> None:
    """Once a target is saved and every link names its file, the map keeps only how many
    links there are; if the file is renamed later, the pages are fixed all the same."""
    links = LinkMap(Writer(tmp_path, adjust_extension=True).path_for)
    data = [(SITE + "data", LinkKind.PAGE, True)]
    first, _ = links.plan("text/html", None, data)
    links.saved(SITE + "one.html", "h/one.html", first)
    assert [fix.wrong for fix in links.saved(SITE + "data", "h/data")] == ["h/data.html"]
    second, plan = links.plan("text/html", None, data)
    assert plan == ["h/data"]
    links.saved(SITE + "two.html", "h/two.html", second)
    assert links.all_misplaced() == []
    assert list(links.counts()) == [(SITE + "data", 2)]
    links.moved("h/data", "h/data~")
    assert sorted((fix.page, fix.wrong, fix.right) for fix in links.all_misplaced()) == [
        ("h/one.html", "h/data", "h/data~"), ("h/two.html", "h/data", "h/data~")]
    assert links.url_of_file()["h/data"] == SITE + "data"
