from __future__ import annotations

import gzip
import hashlib
import re
import tracemalloc
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from crawler.mirror import links as links_module
from crawler.mirror import skim, tags
from crawler.mirror.links import extract_links, link_target, sitemap_links
from crawler.mirror.markup import css_spots, srcset_spans
from crawler.mirror.skim import PLAIN_LINK_BYTES, compiled_spots, html_spots, python_spots, resolve_plain
from crawler.models import Link, LinkKind
from crawler.urls import BaseURL

PAGE, REQUISITE = LinkKind.PAGE, LinkKind.REQUISITE
BASE = "http://h/dir/page.html"
# The two fast readers: the C extension the crawl uses, and the Python skim it falls back on.
READERS = pytest.mark.parametrize("reader", [compiled_spots, python_spots], ids=["compiled", "python"])


def links(html: str | bytes, url: str = BASE, content_type: str = "text/html",
          charset: str | None = None) -> dict[str, LinkKind]:
    body = html.encode() if isinstance(html, str) else html
    return {link.url: link.kind for link in extract_links(body, url, content_type, charset)}


def test_every_link_form_of_html() -> None:
    html = """<html><head>
    <link rel="stylesheet" href="s.css"><link rel="icon" href="/favicon.ico">
    <link rel="alternate" href="feed.xml"><link rel="preload" href="font.woff2">
    <script src="app.js"></script>
    <meta http-equiv="refresh" content="5; url=next.html">
    <style>body { background: url(bg.png) }</style>
    </head><body background="body.png">
    <a href="a.html">a</a><area href="area.html">
    <img src="i.png" srcset="i-1x.png 1x, i-2x.png 2x">
    <picture><source srcset="p.webp 1x, p@2x.webp 2x"><img src="p.png"></picture>
    <video src="v.mp4" poster="poster.jpg"><track src="subs.vtt"></video><audio src="a.mp3"></audio>
    <iframe src="frame.html"></iframe><object data="obj.svg"></object><embed src="e.swf">
    <input type="image" src="button.png"><input type="text" src="not-this.png">
    <p style="background-image: url('inline.png')">x</p>
    </body></html>"""
    found = links(html)
    expected_requisites = ["s.css", "favicon.ico", "font.woff2", "app.js", "bg.png", "body.png", "i.png",
                           "i-1x.png", "i-2x.png", "p.webp", "p@2x.webp", "p.png", "v.mp4", "poster.jpg",
                           "subs.vtt", "a.mp3", "frame.html", "obj.svg", "e.swf", "button.png", "inline.png"]
    for name in expected_requisites:
        url = f"http://h/{name}" if name == "favicon.ico" else f"http://h/dir/{name}"
        assert found.get(url) is REQUISITE, name
    for name in ["a.html", "area.html", "feed.xml", "next.html"]:
        assert found.get(f"http://h/dir/{name}") is PAGE, name
    assert "http://h/dir/not-this.png" not in found


def test_lazy_loaded_images_are_requisites_on_any_tag() -> None:
    html = """<img src="data:image/gif;base64,R0lGOD" data-src="lazy.jpg" data-srcset="l-1x.jpg 1x, l-2x.jpg 2x">
    <img class="lazy" data-original="jquery.jpg"><img data-lazy-src="rocket.jpg">
    <div class="hero" data-bg="hero.jpg"></div><section data-bg="url('section.jpg')"></section>
    <picture><source data-srcset="p.webp 1x, p@2x.webp 2x"></picture><iframe data-src="video.html"></iframe>
    <a href="page.html" data-bg="a-bg.jpg">x</a><p data-srcs="not-an-image.jpg" data-source="nor-this.jpg">"""
    found = links(html)
    assert found == {f"http://h/dir/{name}": REQUISITE for name in [
        "lazy.jpg", "l-1x.jpg", "l-2x.jpg", "jquery.jpg", "rocket.jpg", "hero.jpg", "section.jpg", "p.webp",
        "p@2x.webp", "video.html", "a-bg.jpg"]} | {"http://h/dir/page.html": PAGE}


def test_where_the_offline_copy_shows_a_lazy_image() -> None:
    body = (b'<img src="blank.gif" data-src="a.jpg"><img data-srcset="b.jpg 2x" alt=x>'
            b'<div data-bg="c.jpg" style="color: red"><div data-bg="d.jpg" style="background: blue">')
    copies = html_spots(body).lazy
    assert [(body[c.source[0]:c.source[1]], c.name, c.target and body[c.target[0]:c.target[1]],
             body[c.insert_at - 4:c.insert_at]) for c in copies] == [
        (b"a.jpg", b"src", b"blank.gif", b"<img"), (b"b.jpg 2x", b"srcset", None, b"<img"),
        (b"c.jpg", b"style", b"color: red", b"<div")]  # a style with a background of its own keeps it


def test_robots_meta_tags_are_read() -> None:
    body = b'<meta name="description" content="x"><META NAME=Robots CONTENT="noindex, NoFollow"><a href=x>'
    assert html_spots(body).robots == (b"noindex, NoFollow",)
    assert html_spots(b'<!-- <meta name="robots" content="nofollow"> -->').robots == ()


def test_base_href_is_honoured() -> None:
    found = links('<head><base href="http://cdn.test/assets/"></head><a href="x.html">x</a>'
                  '<img src="/abs.png">')
    assert set(found) == {"http://cdn.test/assets/x.html", "http://cdn.test/abs.png"}


def test_links_that_are_not_fetchable_are_dropped() -> None:
    found = links('<a href="mailto:a@b.c">m</a><a href="javascript:void(0)">j</a><a href="#top">t</a>'
                  '<img src="data:image/png;base64,AAAA"><a href="tel:123">t</a><a href="ftp://h/x">f</a>'
                  '<a href="">empty</a><a href="http://[bad">bad</a><a href="ok.html#frag">ok</a>')
    assert found == {"http://h/dir/ok.html": PAGE}


def test_a_url_that_is_both_page_and_requisite_is_a_requisite() -> None:
    found = links('<a href="pic.png">see</a><img src="pic.png">')
    assert found == {"http://h/dir/pic.png": REQUISITE}


def test_comments_and_scripts_do_not_yield_links() -> None:
    found = links('<!-- <a href="commented.html">x</a> --><script>var s = "<a href=\'js.html\'>";</script>'
                  '<a href="real.html">r</a>')
    assert set(found) == {"http://h/dir/real.html"}


@pytest.mark.parametrize("body", [b"", b"   ", b"\x00\x01\x02\xff\xfe binary", b"<<<<>>>>",
                                  b"<a href='unclosed", b"\xef\xbb\xbf<a href=bom.html>x</a>"])
def test_malformed_or_binary_html_does_not_raise(body: bytes) -> None:
    extract_links(body, BASE, "text/html")


def test_declared_charset_decodes_non_ascii_links() -> None:
    body = '<a href="caf\u00e9.html">x</a>'.encode("iso-8859-1")
    assert links(body, charset="iso-8859-1") == {"http://h/dir/caf%C3%A9.html": PAGE}
    assert links(body, charset="no-such-charset")  # an unknown charset falls back, no crash


def test_css_links() -> None:
    css = """@import "reset.css"; @import url('print.css') print;
    a { background: url( spaced.png ); }
    b { background: URL("quoted.png") }
    /* c { background: url(commented.png) } */
    @font-face { src: url(../fonts/f.woff2) format("woff2"), url(data:font/woff;base64,AA) }"""
    found = links(css, "http://h/css/site.css", "text/css")
    assert found == {f"http://h/{p}": REQUISITE for p in
                     ["css/reset.css", "css/print.css", "css/spaced.png", "css/quoted.png", "fonts/f.woff2"]}


def test_css_urls_in_order() -> None:
    css = b"a{b:url(x)} /* url(y) */ c{d:url('z')}"
    assert [css[s.start:s.end] for s in css_spots(css)] == [b"x", b"z"]


@pytest.mark.parametrize(("value", "urls"), [
    ("a.png 1x, b.png 2x", ["a.png", "b.png"]),
    ("a.png", ["a.png"]),
    ("  a.png  100w ,b.png 200w", ["a.png", "b.png"]),
    ("a,b.png 1x, c.png 2x", ["a,b.png", "c.png"]),
    ("a.png, b.png", ["a.png", "b.png"]),
    ("a.png (min-width: 1px, x) 1x, b.png", ["a.png", "b.png"]),
    ("", []),
])
def test_srcset(value: str, urls: list[str]) -> None:
    data = value.encode()
    assert [data[start:end].decode() for start, end in srcset_spans(data, 0, len(data))] == urls


def test_other_types_have_no_links() -> None:
    assert extract_links(b"<a href='x'>", BASE, "image/png") == []
    assert extract_links(b"url(x)", BASE, "text/plain") == []


def test_links_are_deduplicated_and_in_document_order() -> None:
    result = extract_links(b'<a href="b.html"></a><a href="a.html"></a><a href="b.html#x"></a>',
                           BASE, "text/html")
    assert result == [Link("http://h/dir/b.html", PAGE), Link("http://h/dir/a.html", PAGE)]


def test_entities_in_attributes_are_decoded() -> None:
    assert links('<a href="p.php?a=1&amp;b=2">x</a>') == {"http://h/dir/p.php?a=1&b=2": PAGE}
    assert links('<p style="background:url(&quot;q.png&quot;)">') == {"http://h/dir/q.png": REQUISITE}


def test_unquoted_and_odd_attribute_syntax() -> None:
    found = links("<a href=plain.html>x</a><A HREF = 'upper.html'>y</A><img/src=slash.png>"
                  '<a title="x>y" href="after-gt.html">z</a><a href="first.html" href="second.html">w</a>')
    assert set(found) == {f"http://h/dir/{name}" for name in
                          ["plain.html", "upper.html", "slash.png", "after-gt.html", "first.html"]}


def test_raw_text_elements_hide_markup_but_style_is_css() -> None:
    found = links("<textarea><a href='in-textarea.html'></textarea><title><a href='t.html'></title>"
                  "<style>/* <a href='x.html'> */ p { background: url(s.png) }</style>"
                  "<script>document.write('<img src=\"js.png\">')</script><a href='out.html'>o</a>")
    assert found == {"http://h/dir/s.png": REQUISITE, "http://h/dir/out.html": PAGE}


def test_utf16_documents_are_read() -> None:
    body = '<a href="caf\u00e9.html">x</a>'.encode("utf-16")
    assert links(body) == {"http://h/dir/caf%C3%A9.html": PAGE}


def test_meta_charset_decides_when_the_header_is_silent() -> None:
    body = '<meta charset="windows-1252"><a href="na\u00efve.html">x</a>'.encode("windows-1252")
    assert links(body) == {"http://h/dir/na%C3%AFve.html": PAGE}


def test_sitemap_and_sitemap_index() -> None:
    sitemap = b"""<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
      <url><loc>http://h/a.html</loc></url><url><loc> http://h/b.html </loc></url></urlset>"""
    assert {link.url: link.kind for link in sitemap_links(sitemap, "http://h/sitemap.xml")} == {
        "http://h/a.html": PAGE, "http://h/b.html": PAGE}
    index = b"""<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
      <sitemap><loc>http://h/s1.xml.gz</loc></sitemap></sitemapindex>"""
    assert sitemap_links(index, "http://h/sitemap.xml") == [Link("http://h/s1.xml.gz", LinkKind.SITEMAP)]
    assert [link.url for link in sitemap_links(gzip.compress(sitemap), "http://h/s.xml.gz")] == [
        "http://h/a.html", "http://h/b.html"]


def test_sitemap_entities_are_not_expanded() -> None:
    laughs = b"""<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">
      <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
      <!ENTITY ext SYSTEM "file:///etc/passwd">]>
      <urlset><url><loc>http://h/&c;</loc></url><url><loc>http://h/&ext;x</loc></url></urlset>"""
    urls = [link.url for link in sitemap_links(laughs, "http://h/sitemap.xml")]
    assert all(len(url) < 100 and "root:" not in url for url in urls)


def test_garbage_sitemap_gives_no_links() -> None:
    assert sitemap_links(b"\x1f\x8b not gzip", "http://h/s.xml") == []
    assert sitemap_links(b"<html>not a sitemap", "http://h/s.xml") == []


# Pieces of markup, well and badly formed, that a document is made of for the properties below.
_NAMES = ["a", "A", "img", "td", "TD", "table", "body", "div", "p", "span", "style", "script", "title",
          "link", "meta", "source", "plaintext", "textarea", "li", "section", "iframe", "base", "input",
          "object", "video", "area", "xmp", "embed", "use", "th", "Link", "SCRIPT"]
_ATTRIBUTES = ['href="x.html"', "href=y.html", "HREF='z.html'", 'style="background:url(s.png)"',
               "STYLE=url(t.png)", "style", 'background="bg.png"', "Background=bg2.png", 'src="i.png"',
               'srcset="a.png 1x, b.png 2x"', 'rel="stylesheet"', 'title="a>b <a href=q.html>"',
               'data-style="url(no.png)"', 'class="x"', "x=", "=y", '"quoted"', "a/b", 'unterminated="',
               "'", 'http-equiv="refresh"', 'content="0; url=r.html"', "href = 'w.html'", 'href=""', "href=",
               'data-href="d.html"', "href\n=\nn.html", 'data-src="l.png"', "DATA-SRCSET='l1.png 1x, l2.png 2x'",
               'data-bg="url(&quot;bg.png&quot;)"', "data-bg=b.png", "data-original=o.png", 'data-lazy-src="w.png"',
               "data-srcs=no.png", "data-src", "data-src =sp.png",
               # what the skim relies on: quotes after "=", ">" and "<" inside values, one-link tags
               "title='c>d'", 'title="e=\'>"', "alt='f=\">'", 'onclick="a(\'<b>\')"', 'title="<!--"', "title='style=x'",
               "rel=icon", "REL='stylesheet preload'", "type=image", "name=robots", 'NAME="ROBOTS"',
               "poster=p.png", "data=o.swf", "lowsrc=l.gif", "xlink:href=#x", "src=", "src = 'sq.png'",
               "href=\"unclosed.html", "rel", "content=c"]
_PIECES = st.one_of(
    st.sampled_from(["text ", "<", "< a", "<!-- <a href=c.html> -->", "<!-->", "<!doctype html>", "<?x?>",
                     "</a>", "</ p>", "</div", "&amp;", ">", "\n", "url(u.png)", "<3", 'x="', "x='", " = '",
                     "it's ", '"a>b" ', "style ", "data-src=", "background ", "</script>", "</title>",
                     "<![CDATA[<a href=cd.html>]]>", "</style x='>'>"]),
    st.builds(lambda name, attributes, close: f"<{name}{''.join(' ' + a for a in attributes)}{close}",
              st.sampled_from(_NAMES), st.lists(st.sampled_from(_ATTRIBUTES), max_size=4),
              st.sampled_from([">", "/>", " >", ""])),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=30))
@example(["<div ", "style=url(a.png)>"])
@example(["<td background=x.png>", "<p title='<a href=y.html>'>"])
@example(["<a href=x.html data-bg=b.png>", "<div data-srcset='a.png 1x'>", "<img data-src=l.png>"])
@example(["<title>", "<a href=x.html>"])
@example(["<p title='c>d'>", "<a href=x.html>", "<span x='>", "<a href=y.html>", "'>"])
@example(["<a", 'x="', '<a data-src="l.png">'])  # the skip once read the name "ax" and a value '"<a data-src="'
@example(["<Link href=x.html href=y.html rel=stylesheet>"])
def test_skimming_finds_the_same_spots_as_reading_every_tag(pieces: list[str]) -> None:
    # tags.read_tags, without its skip, reads every tag one by one: the reference. The fast
    # paths must find what it finds: its skip of stretches without links, the C reader the
    # crawl uses, and skim's Python reading -- also where its quote check gives up everywhere
    # and it reads tag by tag.
    body = "".join(pieces).encode()
    every_tag = tags.read_tags(body, skip=False)
    assert tags.read_tags(body) == every_tag
    assert compiled_spots(body) == every_tag
    assert python_spots(body) == every_tag
    with mock.patch.object(skim, "_outside_values", return_value=False):
        assert python_spots(body) == every_tag


def test_the_crawl_reads_html_with_the_compiled_reader() -> None:
    # setup.py builds it at install (scripts/test installs gcc); without it crawl still works,
    # 3-7x slower, and this test says the extension is missing.
    assert skim.COMPILED, "crawler/mirror/_skim.c was not built: pip install -e . with a C compiler"
    assert html_spots is compiled_spots
    source = (Path(skim.__file__).parent / "_skim.c").read_bytes()
    assert hashlib.sha256(source).hexdigest() == skim._skim.SOURCE_SHA256, \
        "the extension was built from another _skim.c: pip install -e . (a build that fails leaves the old one)"


def test_the_compiled_reader_knows_the_tags_that_tags_py_knows() -> None:
    tables = skim._skim.tables()
    kinds = [PAGE, REQUISITE]
    assert {tag.encode(): tuple((name, kinds[kind]) for name, kind in attributes)
            for tag, attributes in tables["url_attributes"].items()} == tags.URL_ATTRIBUTES
    assert set(tables["raw_text"]) == tags.RAW_TEXT
    assert set(tables["requisite_rels"]) == tags.REQUISITE_RELS
    assert set(tables["special"]) == {b"style"} | tags.LAZY_ATTRIBUTES


@pytest.mark.parametrize("body", [
    b"<a\x00b href=x.html><img\x00 src=y.png>",  # a NUL in a tag's name: no tag of the tables
    b"<a href=x.html", b"<a href='x.html", b"<a href", b"<", b"<a", b"<!--", b"<!-- <a href=y> --",
    b"<script src=s.js><a href=in-script.html></SCRIPT ><a href=after.html>",
    b"<script><a href=unclosed.html></script", "<a href=ünï.html>é</a>".encode(),
    b"<table background=t.png><td background=d.png style=x><th Background=h.png>",
    b"<video src=v.mp4 poster=p.png><use xlink:href=#s href=u.svg><object data=o.swf>",
    b"<link href=a.css rel=' Stylesheet\tPRELOAD '><link rel=next href=n.html><link rel=iconic href=i.html>",
    b"<link href=x.css rel=stylesheet href=y.css rel=next><link rel=icon><link href>",
    b"<link rel=stylesheet href=a.css id=mainThemeStyle><img src=i.png class='data-x style'>",
    b"<span id=Style data-bg = x><img src=i.png STYLE><td background=b.png Data-Src=l.png>",
    b"<input src=i.png type=' IMAGE '><input type=text src=t.png><input type=image><input src=n.png>",
])
def test_the_compiled_reader_at_the_edges(body: bytes) -> None:
    assert compiled_spots(body) == tags.read_tags(body, skip=False)


def test_the_skip_takes_linear_time_on_a_tag_with_many_attributes() -> None:
    # A tag the skip must refuse (here: for its style attribute, last) must not make the
    # regular expression try every way of splitting the attributes before it.
    body = b"<div " + b" ".join(b'a%d="v" b%d=w c%d' % (n, n, n) for n in range(2000)) + b' style="x">'
    assert tags._TO_NEXT_LINK.match(body).end() == 0  # type: ignore[union-attr]
    assert html_spots(body).spots == []
    body = b"<a " + b" ".join(b'a%d="v" b%d=w c%d' % (n, n, n) for n in range(20)) + b' href=x.html style="x">'
    assert tags._TO_NEXT_LINK.match(body).end() == 0  # type: ignore[union-attr]
    assert [body[spot.start:spot.end] for spot in html_spots(body).spots] == [b"x.html"]


def test_skimming_agrees_with_reading_every_tag_on_the_sample_site() -> None:
    pages = sorted((Path(tags.__file__).parent.parent / "demo" / "site").rglob("*.html"))
    assert pages
    for page in pages:
        body = page.read_bytes()
        every_tag = tags.read_tags(body, skip=False)
        assert tags.read_tags(body) == every_tag, page
        assert compiled_spots(body) == every_tag, page
        assert python_spots(body) == every_tag, page


@pytest.mark.parametrize("hostile", [
    b"<div " + b"a=b " * 100_000 + b">",  # one tag with a hundred thousand attributes
    b"<div " + b"a=b " * 100_000 + b' style="x">',  # the same, with a style attribute to read
    b"<p class=x>x</p>" * 25_000,  # a long run of tags without links
    b"<div title='" + b"<a href=x " * 20_000 + b"'>",  # what skim searches for, inside one value
    b"style data-src " * 20_000,  # and in the text
])
@READERS
def test_tokenizing_a_hostile_page_takes_memory_in_proportion_to_the_page(hostile: bytes, reader) -> None:
    # The regular-expression engine keeps state for each repetition of a group it may have
    # to undo: one unbounded repetition over a page's tags or a tag's attributes cost
    # gigabytes on a 10 MB page before the repetitions were bounded.
    body = hostile + b'<a href="y.html">y</a>'
    reader(b"<a href=x.html>")  # its regular expressions compiled once, before memory is counted
    tracemalloc.start()
    try:
        spots = reader(body).spots
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [body[spot.start:spot.end] for spot in spots] == [b"y.html"]
    assert peak < 4 * len(body)


@pytest.mark.parametrize("hostile", [
    b"<div title='" + b"<a href=x " * 20_000 + b"'>",  # hits inside one long value
    b"x='> <a href=y>" * 5_000,  # a quote after "=" before every hit: each stretch is read tag by tag
    b"style data-src <p " * 10_000,  # attribute hits in the text and in tags that never close
    b"<a " * 50_000 + b"<img src=" * 5_000,  # tags that never close
])
@READERS
def test_skimming_a_hostile_page_finds_what_reading_every_tag_finds(hostile: bytes, reader) -> None:
    assert reader(hostile) == tags.read_tags(hostile, skip=False)


_LINK_PIECES = st.lists(st.sampled_from(["a", "B", "x.html", "/", "/", "..", ".", "?", "#", "=", "-", "~", ":",
                                         "%41", "%2e", "&amp;", ";", "\\", " ", "é", "@", "!", "'", "+", "//"]),
                        max_size=8).map("".join)
_BASES = st.sampled_from(["https://h/", "https://h/d/e/page.html", "http://h:8080/d/", "https://h/d/e/?q=1",
                          "https://xn--fa-hia.de/a/b/c", "https://h/a%20b/c/", "https://h/d;p/e", "https://H/Up/",
                          "https://h/a//b/c.html", "https://h/d/e/page.html#f"])


@settings(max_examples=600, deadline=None)
@given(_LINK_PIECES, _BASES)
@example("../../../../x", "https://h/d/e/page.html")
@example("a/./b/../c/.", "https://h/d/e/page.html")
@example("x?", "https://h/")
@example("a:b/c", "https://h/")
def test_the_compiled_resolver_agrees_with_link_target(value: str, base: str) -> None:
    # The C resolver takes the plain relative links (what most pages are made of) and leaves
    # the rest to link_target: where it answers, its answer is link_target's.
    assert resolve_plain is not None
    base_url = BaseURL(base)
    written = value.encode()
    resolver = links_module._plain_links(base_url, "utf-8")
    if not base_url.is_canonical():  # the page's URL or <base> is always canonical; if not, Python
        assert resolver is None
        return
    assert resolver is not None
    answer = resolver(written)
    if answer is not None:
        assert answer == link_target(value, base_url)
    first_segment = re.split(r"[/?#]", value, maxsplit=1)[0]
    plain = value and set(written) <= set(PLAIN_LINK_BYTES) and value[0] not in "#?" and "//" not in value \
        and ":" not in first_segment
    if plain:
        assert answer is not None, "a plain link left to Python"


def test_the_compiled_resolver_is_used_only_where_the_encoding_reads_plain_links_as_ascii() -> None:
    base = BaseURL("https://h/d/")
    assert links_module._plain_links(base, "utf-8") is not None
    assert links_module._plain_links(base, "cp1252") is not None
    assert links_module._plain_links(base, "shift_jis_2004") is None  # "~" reads as an overline there
