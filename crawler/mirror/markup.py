"""Where the links are in HTML and CSS bytes: one tokenizer for both extraction and rewriting.

`html_spots` and `css_spots` return each link as a *spot*: the byte span of one URL inside
the document, with the kind of link it is. Link extraction reads the URLs at the spots;
link conversion replaces exactly those bytes and leaves every other byte of the file as it
was. Using the same spots for both guarantees that every link that was followed is also
rewritten. No HTML library reports source offsets of attribute values, which is why wget,
wget2 and HTTrack carry tokenizers of their own for this job too; this one follows the
HTML Living Standard's tokenizer for what matters here: comments, raw-text elements
(script, style, ...), and the four ways to write an attribute value.

Offsets are in bytes. The tokenizer works on any ASCII-compatible encoding (UTF-8, the
ISO-8859 and Windows code pages, Shift_JIS, GBK, Big5, EUC-*): their multi-byte sequences
never contain the bytes that structure markup. UTF-16/32 documents are transcoded first
(`ascii_compatible_view`).
"""

from __future__ import annotations

import codecs
import enum
import html
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from crawler.models import LinkKind

PAGE, REQUISITE = LinkKind.PAGE, LinkKind.REQUISITE


class Context(enum.Enum):
    """How the bytes of a spot are escaped, which decides how a new URL is written there."""

    ATTRIBUTE = "attribute"  # an HTML attribute value: character references apply
    CSS = "css"  # CSS text (a stylesheet or a <style> element): taken literally


class Spot(NamedTuple):
    """A link's URL in a document: body[start:end]. A tuple: a page has hundreds, and a
    frozen dataclass takes three times as long to make."""

    start: int
    end: int
    kind: LinkKind
    context: Context
    quote: bytes = b'"'  # the attribute's quote; b"" for an unquoted value


_Value = tuple[int, int, bytes]  # start, end, quote of an attribute value


class LazyCopy(NamedTuple):
    """A lazily loaded image, as its offline copy shows it: the value of a lazy attribute
    (`source`: data-src, data-srcset, data-bg...), once its links are converted, goes into the
    attribute `name` that a browser shows without the page's script -- src, srcset, or style
    for a background -- over its value `target`, or, when the tag has none, as a new attribute
    at `insert_at`. A style keeps its value: the background is added at its end."""

    source: _Value
    name: bytes
    target: _Value | None
    insert_at: int


@dataclass(frozen=True, slots=True)
class Document:
    """The spots of one HTML document, its <base href> spot if any, its lazily loaded images,
    and the content of its <meta name="robots"> tags."""

    spots: list[Spot]
    base: Spot | None
    lazy: tuple[LazyCopy, ...] = ()
    robots: tuple[bytes, ...] = ()


# tag -> ((attribute, kind), ...): attributes that hold exactly one URL.
URL_ATTRIBUTES: dict[bytes, tuple[tuple[bytes, LinkKind], ...]] = {
    b"a": ((b"href", PAGE),),
    b"area": ((b"href", PAGE),),
    b"script": ((b"src", REQUISITE),),
    b"img": ((b"src", REQUISITE), (b"lowsrc", REQUISITE)),
    b"source": ((b"src", REQUISITE),),
    b"video": ((b"src", REQUISITE), (b"poster", REQUISITE)),
    b"audio": ((b"src", REQUISITE),),
    b"track": ((b"src", REQUISITE),),
    b"iframe": ((b"src", REQUISITE),),
    b"frame": ((b"src", REQUISITE),),
    b"object": ((b"data", REQUISITE),),
    b"embed": ((b"src", REQUISITE),),
    b"body": ((b"background", REQUISITE),),
    b"table": ((b"background", REQUISITE),),
    b"td": ((b"background", REQUISITE),),
    b"th": ((b"background", REQUISITE),),
    b"image": ((b"href", REQUISITE), (b"xlink:href", REQUISITE)),  # SVG
    b"use": ((b"href", REQUISITE), (b"xlink:href", REQUISITE)),  # SVG sprites
}
SRCSET_TAGS = frozenset({b"img", b"source"})
# Where lazy-loading scripts (lazysizes, lozad, vanilla-lazyload, jQuery lazyload, WP Rocket)
# keep an image until it scrolls into view: requisites, on any tag.
LAZY_URL_ATTRIBUTES = (b"data-src", b"data-lazy-src", b"data-original")  # one URL, for src
LAZY_SRCSET, LAZY_BACKGROUND = b"data-srcset", b"data-bg"  # a srcset; a URL or url(...), a background
LAZY_ATTRIBUTES = frozenset({*LAZY_URL_ATTRIBUTES, LAZY_SRCSET, LAZY_BACKGROUND})
LAZY_SRC_TAGS = frozenset({b"img", b"iframe", b"video", b"audio", b"source", b"embed"})  # src shows it
LINK_TAGS = frozenset({*URL_ATTRIBUTES, b"link", b"input", b"meta", b"base"})  # tags that may hold links
# <link rel=...> values whose target is part of the page rather than a page of its own.
REQUISITE_RELS = frozenset({
    b"stylesheet", b"icon", b"shortcut", b"apple-touch-icon", b"apple-touch-icon-precomposed",
    b"mask-icon", b"preload", b"prefetch", b"modulepreload", b"manifest", b"image_src",
})
# Elements whose content is text, not markup: no tags or comments are recognised inside.
RAW_TEXT = frozenset({b"script", b"style", b"textarea", b"title", b"xmp", b"iframe", b"noembed",
                      b"noframes"})

_RAW_TEXT_END = {tag: re.compile(rb"</" + tag + rb"[\s/>]", re.IGNORECASE) for tag in RAW_TEXT}
_MARKUP = re.compile(
    rb"<!--(?:-?>|.*?(?:--!?>|\Z))"  # a comment (also the abrupt "<!-->")
    rb"|<[!?][^>]*>?"  # doctype, CDATA, processing instruction: skipped
    rb"|</[a-zA-Z][^>]*>?"  # an end tag
    rb"|<([a-zA-Z][^\s/>]*)",  # a start tag: its name is group 1
    re.DOTALL,
)
_ATTRIBUTE = re.compile(
    rb"""[\s/]*(?:([^\s/>][^\s/>=]*)(?:\s*=\s*(?:"([^"]*)"?|'([^']*)'?|([^\s>]*)))?)?""")
# The whole attribute list of a start tag at once: _ATTRIBUTE repeated, then the ">".
# Up to 64 attributes of a start tag (the grammar of _ATTRIBUTE): _tag_end repeats it. One
# unbounded repetition would make the regex engine keep state for every attribute of a tag
# -- gigabytes for a hostile page made of one tag with millions of them.
_ATTRIBUTE_RUN = re.compile(
    rb"""(?:[\s/]*[^\s/>][^\s/>=]*(?:\s*=\s*(?:"[^"]*"?|'[^']*'?|[^\s>]*))?){0,64}""")
_TAG_CLOSE = re.compile(rb"[\s/]*>?")
# A tag that holds no link by its name may hold one in these: style's url(), the lazy ones.
_SPECIAL = b"style|" + b"|".join(sorted(LAZY_ATTRIBUTES, key=len, reverse=True))
_SPECIAL_ATTRIBUTE = re.compile(rb"(?:" + _SPECIAL + rb")\s*=", re.IGNORECASE)


def _attributes_without(names: bytes, closed: bool = True) -> bytes:
    """The attribute list of a start tag up to its ">" (the grammar of _ATTRIBUTE), matching
    only if no attribute is called one of `names` ("a|b"); `closed=False`: a run of such
    attributes, without the end of the tag. Each piece of the tag can be read one way only
    (a name or unquoted value runs to its delimiter, a quote to its match or the end), so a
    tag that does not match fails in linear time instead of backtracking."""
    name = rb"(?!(?i:" + names + rb")(?=[\s/>=]|\Z))[^\s/>][^\s/>=]*(?=[\s/>=]|\Z)"
    value = rb"""(?:"[^"]*(?:"|\Z)|'[^']*(?:'|\Z)|(?!["'])[^\s>]*(?=[\s>]|\Z))"""
    # A name without a value must not be followed by "=": else "=v" could be read as a name.
    # At most 64 attributes, for the reason given at _ATTRIBUTE_RUN; a tag with more is read
    # the slow way.
    run = rb"(?:[\s/]*" + name + rb"(?:\s*=\s*(?=\S|\Z)" + value + rb"|(?!\s*=))){0,64}"
    return run + rb"[\s/]*(?:>|\Z)" if closed else run


def _names(tags: Iterable[bytes]) -> bytes:
    return b"|".join(sorted(tags, key=len, reverse=True))


# The stretch of a document, from a position, that holds no link: text, comments, end tags,
# and start tags that cannot hold one -- a tag not in LINK_TAGS nor raw text, without a style
# or lazy-image attribute; a body/table/td/th without those nor background. html_spots skips
# it in one match instead of a loop of Python per tag; where it stops, a tag of interest starts.
_BACKGROUND_ONLY = frozenset({b"body", b"table", b"td", b"th"})
_NO_LINK = (
    rb"(?:[^<]+"
    rb"|<(?![a-zA-Z!?]|/[a-zA-Z])"  # a "<" that starts no markup is text
    rb"|<!--(?:-?>|.*?(?:--!?>|\Z))"
    rb"|<[!?][^>]*>?"
    rb"|</[a-zA-Z][^>]*>?"
    rb"|<(?!(?i:" + _names(LINK_TAGS | RAW_TEXT | {b"plaintext"}) + rb")(?=[\s/>]|\Z))[a-zA-Z][^\s/>]*"
    + _attributes_without(_SPECIAL) +
    rb"|<(?i:" + _names(_BACKGROUND_ONLY) + rb")(?=[\s/>]|\Z)" + _attributes_without(_SPECIAL + b"|background") +
    rb"){0,256}"  # bounded: the regex engine keeps state for every repetition
)
# A plain <a href>: the attribute once, its value quoted or not, no style or lazy attribute. Its
# whole attribute list is read in the same match as the stretch before it, the URL in group
# 1, 2 or 3 (quoted with ", with ', unquoted): API docs have 300 of them a page, and most
# pages far more <a href> than any other tag that holds a link. Any other form of <a> is
# read attribute by attribute.
_PLAIN_A = (rb"<(?i:a)(?=[\s/>]|\Z)" + _attributes_without(b"href|" + _SPECIAL, closed=False)
            + rb"""[\s/]*(?i:href)\s*=\s*(?=\S|\Z)(?:"([^"]*)"|'([^']*)'|(?!["'])([^\s>]*)(?=[\s>]|\Z))"""
            + _attributes_without(_SPECIAL))
_PLAIN_QUOTES = {1: b'"', 2: b"'", 3: b""}
_TO_NEXT_LINK = re.compile(_NO_LINK + rb"(?:" + _PLAIN_A + rb")?", re.DOTALL)
_CSS_LINKS = re.compile(
    rb"""/\*.*?(?:\*/|\Z)"""  # a comment: skipped
    rb"""|url\(\s*(?:"([^"]*)"|'([^']*)'|([^)"'\s]*))\s*\)"""
    rb"""|@import\s+(?:"([^"]*)"|'([^']*)')""",
    re.IGNORECASE | re.DOTALL,
)
_REFRESH_URL = re.compile(rb"""\s*[\d.]*\s*[;,]?\s*(?:url\s*=\s*)?(["']?)([^"']*)""", re.IGNORECASE)
_ENTITY_QUOTED = re.compile(rb"(&quot;|&#34;|&#x22;|&apos;|&#39;|&#x27;)(.*)\1", re.IGNORECASE | re.DOTALL)
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
         (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
# <meta charset="x">, and the charset= inside <meta http-equiv="Content-Type" content="...">
_META_CHARSET = re.compile(rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_:.+-]+)""", re.IGNORECASE)
_CSS_CHARSET = re.compile(rb'^@charset\s+"([^"]+)"\s*;')


# -- HTML -------------------------------------------------------------------------------------

def html_spots(body: bytes) -> Document:
    """Every link of an HTML document (ASCII-compatible encoding), in document order."""
    spots: list[Spot] = []
    base: Spot | None = None
    lazy: list[LazyCopy] = []
    robots: list[bytes] = []
    position, length = 0, len(body)
    while position < length:
        skip = _TO_NEXT_LINK.match(body, position)
        assert skip is not None  # the pattern can match the empty string
        position = skip.end()
        if skip.lastindex is not None:  # a plain <a href>
            group = skip.lastindex
            spots.append(Spot(skip.start(group), skip.end(group), PAGE, Context.ATTRIBUTE, _PLAIN_QUOTES[group]))
            continue
        match = _MARKUP.search(body, position)
        if match is None:
            break
        position = match.end()
        if match.group(1) is None:
            continue
        tag = match.group(1).lower()
        # Most tags hold no link: skip them with one match of the whole attribute list (the
        # same grammar as _read_attributes), unless a style or lazy attribute may hold one.
        tag_end = None if tag in LINK_TAGS else _tag_end(body, position)
        if tag_end is None or _SPECIAL_ATTRIBUTE.search(body, position, tag_end):
            name_end = position
            attributes, position = _read_attributes(body, position)
            if tag == b"base" and base is None and b"href" in attributes:
                base = _attribute_spot(attributes[b"href"], PAGE)
            else:
                spots.extend(_tag_spots(body, tag, attributes))
            if not LAZY_ATTRIBUTES.isdisjoint(attributes):
                lazy.extend(_lazy_copies(body, tag, attributes, name_end))
            elif tag == b"meta" and _attribute_bytes(body, attributes.get(b"name")).lower() == b"robots":
                robots.append(_attribute_bytes(body, attributes.get(b"content")))
        else:
            position = tag_end
        if tag in RAW_TEXT:
            end = _raw_text_end(body, tag, position)
            if tag == b"style":
                spots.extend(css_spots(body, position, end))
            position = end
        elif tag == b"plaintext":
            break
    return Document(spots, base, tuple(lazy), tuple(robots))


def _tag_end(body: bytes, position: int) -> int:
    """Where the start tag whose attribute list begins at `position` ends (after its ">")."""
    while (end := _ATTRIBUTE_RUN.match(body, position).end()) > position:  # type: ignore[union-attr]
        position = end
    return _TAG_CLOSE.match(body, position).end()  # type: ignore[union-attr]


_VALUE_QUOTES = {2: b'"', 3: b"'", 4: b""}  # _ATTRIBUTE's value groups


def _read_attributes(body: bytes, position: int) -> tuple[dict[bytes, _Value], int]:
    """The attributes of the start tag whose name ends at `position` (the first of duplicates
    wins, as in browsers), and the position after the tag."""
    attributes: dict[bytes, _Value] = {}
    while True:
        match = _ATTRIBUTE.match(body, position)
        assert match is not None  # the pattern can match the empty string
        position = match.end()
        group = match.lastindex  # 1: a name alone; 2, 3, 4: the name and its value's group
        if group is None:
            break
        name = match.group(1).lower()
        if name not in attributes:
            attributes[name] = (match.start(group), match.end(group), _VALUE_QUOTES[group]) if group > 1 \
                else (match.end(1), match.end(1), b"")
    if body[position:position + 1] == b">":
        position += 1
    return attributes, position


def _tag_spots(body: bytes, tag: bytes, attributes: dict[bytes, _Value]) -> Iterator[Spot]:
    for name, kind in URL_ATTRIBUTES.get(tag, ()):
        if name in attributes:
            yield _attribute_spot(attributes[name], kind)
    if tag in SRCSET_TAGS and b"srcset" in attributes:
        start, end, quote = attributes[b"srcset"]
        for candidate_start, candidate_end in srcset_spans(body, start, end):
            yield Spot(candidate_start, candidate_end, REQUISITE, Context.ATTRIBUTE, quote)
    elif tag == b"link" and b"href" in attributes:
        rels = set(_attribute_bytes(body, attributes.get(b"rel")).lower().split())
        yield _attribute_spot(attributes[b"href"], REQUISITE if rels & REQUISITE_RELS else PAGE)
    elif tag == b"input" and b"src" in attributes and \
            _attribute_bytes(body, attributes.get(b"type")).lower() == b"image":
        yield _attribute_spot(attributes[b"src"], REQUISITE)
    elif tag == b"meta" and b"content" in attributes and \
            _attribute_bytes(body, attributes.get(b"http-equiv")).lower() == b"refresh":
        start, end, quote = attributes[b"content"]
        refresh = _REFRESH_URL.match(body, start, end)
        if refresh and refresh.end(2) > refresh.start(2):
            yield Spot(refresh.start(2), refresh.end(2), PAGE, Context.ATTRIBUTE, quote)
    if b"style" in attributes:
        yield from _style_spots(body, attributes[b"style"])
    if not LAZY_ATTRIBUTES.isdisjoint(attributes):
        yield from _lazy_spots(body, attributes)


def _style_spots(body: bytes, value: _Value) -> Iterator[Spot]:
    """The url() links of CSS in an attribute value."""
    start, end, quote = value
    for spot in css_spots(body, start, end):
        # url(&quot;x.png&quot;): the quotes are written as character references
        inner = _ENTITY_QUOTED.fullmatch(body, spot.start, spot.end)
        url_start, url_end = (inner.start(2), inner.end(2)) if inner else (spot.start, spot.end)
        yield Spot(url_start, url_end, REQUISITE, Context.ATTRIBUTE, quote)


def _lazy_spots(body: bytes, attributes: dict[bytes, _Value]) -> Iterator[Spot]:
    """The image URLs of lazy attributes, on any tag."""
    for name in LAZY_URL_ATTRIBUTES:
        if name in attributes:
            yield _attribute_spot(attributes[name], REQUISITE)
    if LAZY_SRCSET in attributes:
        start, end, quote = attributes[LAZY_SRCSET]
        for candidate_start, candidate_end in srcset_spans(body, start, end):
            yield Spot(candidate_start, candidate_end, REQUISITE, Context.ATTRIBUTE, quote)
    if LAZY_BACKGROUND in attributes:
        start, end, quote = attributes[LAZY_BACKGROUND]
        value = body[start:end].lstrip()
        if value[:4].lower() == b"url(":  # data-bg="url(a.jpg)", as vanilla-lazyload writes it
            yield from _style_spots(body, attributes[LAZY_BACKGROUND])
        else:
            yield Spot(start, end, REQUISITE, Context.ATTRIBUTE, quote)


def _lazy_copies(body: bytes, tag: bytes, attributes: dict[bytes, _Value], name_end: int) -> Iterator[LazyCopy]:
    """Where the offline copy of this tag shows its lazily loaded image (see LazyCopy)."""
    if tag in LAZY_SRC_TAGS:
        source = next((attributes[name] for name in LAZY_URL_ATTRIBUTES if name in attributes), None)
        if source is not None and source[1] > source[0]:
            yield LazyCopy(source, b"src", attributes.get(b"src"), name_end)
        if tag in SRCSET_TAGS and LAZY_SRCSET in attributes:
            yield LazyCopy(attributes[LAZY_SRCSET], b"srcset", attributes.get(b"srcset"), name_end)
    background = attributes.get(LAZY_BACKGROUND)
    style = attributes.get(b"style")
    if background is not None and background[1] > background[0] and \
            (style is None or b"background" not in body[style[0]:style[1]].lower()):
        yield LazyCopy(background, b"style", style, name_end)


def _attribute_spot(value: _Value, kind: LinkKind) -> Spot:
    start, end, quote = value
    return Spot(start, end, kind, Context.ATTRIBUTE, quote)


def _attribute_bytes(body: bytes, value: _Value | None) -> bytes:
    return body[value[0]:value[1]].strip() if value else b""


def _raw_text_end(body: bytes, tag: bytes, position: int) -> int:
    """Where the content of a raw-text element ends: at its end tag, else at the end."""
    match = _RAW_TEXT_END[tag].search(body, position)
    return match.start() if match else len(body)


def srcset_spans(body: bytes, start: int, end: int) -> Iterator[tuple[int, int]]:
    """The spans of the URLs in the srcset value body[start:end] ("a.png 1x, b.png 2x")."""
    position = start
    while position < end:
        while position < end and body[position] in b" \t\n\r\f,":
            position += 1
        url_start = position
        while position < end and body[position] not in b" \t\n\r\f":
            position += 1
        url_end = position
        if body[url_start:url_end].endswith(b","):
            url_end = url_start + len(body[url_start:url_end].rstrip(b","))
        else:  # skip the descriptors, up to the next comma outside parentheses
            depth = 0
            while position < end and (body[position] != ord(",") or depth):
                depth += {ord("("): 1, ord(")"): -1}.get(body[position], 0)
                position += 1
        if url_end > url_start:
            yield url_start, url_end


# -- CSS --------------------------------------------------------------------------------------

def css_spots(body: bytes, start: int = 0, end: int | None = None) -> list[Spot]:
    """The url(...) and @import links of CSS text in body[start:end]."""
    spots = []
    for match in _CSS_LINKS.finditer(body, start, len(body) if end is None else end):
        for group in (1, 2, 3, 4, 5):
            if match.group(group) is not None:
                if match.end(group) > match.start(group):
                    spots.append(Spot(match.start(group), match.end(group), REQUISITE, Context.CSS, b""))
                break
    return spots


# -- values -----------------------------------------------------------------------------------

def spot_value(body: bytes, spot: Spot, encoding: str) -> str:
    """The URL written at `spot`, as a browser reads it (character references decoded)."""
    return read_value(body[spot.start:spot.end], spot.context, encoding)


def read_value(written: bytes, context: Context, encoding: str) -> str:
    """The URL `written` so in `context`, as a browser reads it."""
    text = written.decode(encoding, "replace")
    if context is Context.ATTRIBUTE and "&" in text:
        text = html.unescape(text)
    return text.strip()


def encode_value(url: str, spot: Spot, encoding: str) -> bytes:
    """`url` written so that it reads back as `url` at `spot`."""
    if spot.context is Context.ATTRIBUTE:
        text = url.replace("&", "&amp;")
        if spot.quote == b"'":
            text = text.replace("'", "&#39;")
        elif spot.quote == b'"':
            text = text.replace('"', "&quot;")
        else:  # an unquoted value must not contain what would end it
            text = "".join(f"&#{ord(c)};" if c in " \t\n\r\f\"'=<>`" else c for c in text)
    else:
        text = url.replace("\\", "\\\\").replace('"', "%22").replace("'", "%27").replace(")", "%29") \
            .replace("(", "%28").replace(" ", "%20")
    return text.encode(encoding, "xmlcharrefreplace" if spot.context is Context.ATTRIBUTE else "strict")


# -- encodings --------------------------------------------------------------------------------

def html_encoding(body: bytes, declared: str | None) -> str:
    """The encoding of an HTML document: HTTP header, else byte order mark, else <meta>, else UTF-8."""
    for candidate in (declared, _bom_encoding(body), _meta_charset(body)):
        if candidate and known_codec(candidate):
            return codecs.lookup(candidate).name
    return "utf-8"


def css_encoding(body: bytes, declared: str | None) -> str:
    """The encoding of a stylesheet: HTTP header, else BOM, else @charset, else UTF-8."""
    charset_rule = _CSS_CHARSET.match(body)
    for candidate in (declared, _bom_encoding(body), charset_rule.group(1).decode("ascii", "replace")
                      if charset_rule else None):
        if candidate and known_codec(candidate):
            return codecs.lookup(candidate).name
    return "utf-8"


def ascii_compatible_view(body: bytes, encoding: str) -> tuple[bytes, str, Callable[[bytes], bytes]]:
    """(bytes to tokenize, their encoding, a function turning rewritten bytes back)."""
    if is_ascii_compatible(encoding):
        return body, encoding, lambda rewritten: rewritten
    text = body.decode(encoding, "replace")
    return text.encode("utf-8"), "utf-8", lambda rewritten: rewritten.decode("utf-8").encode(encoding)


@lru_cache(maxsize=64)
def is_ascii_compatible(encoding: str) -> bool:
    sample = "<a href='x' style=\"u\">=/&#;"
    try:
        return sample.encode(encoding) == sample.encode("ascii") and not encoding.startswith("iso2022")
    except (LookupError, UnicodeError):
        return False


@lru_cache(maxsize=64)
def known_codec(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def _bom_encoding(body: bytes) -> str | None:
    for mark, encoding in _BOMS:
        if body.startswith(mark):
            return encoding
    return None


def _meta_charset(body: bytes) -> str | None:
    """The encoding a <meta charset> or <meta http-equiv=Content-Type> near the top declares
    (the HTML standard's prescan looks at the first 1,024 bytes; this allows a long <head>)."""
    match = _META_CHARSET.search(body, 0, 4096)
    return match.group(1).decode("ascii") if match else None
