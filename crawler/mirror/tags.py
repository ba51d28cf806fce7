"""Reading HTML tag by tag: what each comment, tag and raw-text element of a document means
for its links.

This is the tokenizer's reference: `read_tags` walks a document from its first byte to its
last, and `skim.html_spots` -- the fast path the crawl uses -- must find exactly what it
finds (tests/test_links.py checks both on random documents). Where it matters here it
follows the HTML Living Standard's tokenizer: comments, raw-text elements (script, style,
...), and the four ways to write an attribute value. Offsets are in bytes of an
ASCII-compatible encoding (see markup.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from crawler.mirror.markup import (
    PAGE,
    REQUISITE,
    Context,
    Document,
    LazyCopy,
    Spot,
    Value,
    css_spots,
    srcset_spans,
)
from crawler.models import LinkKind

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
_BACKGROUND_ONLY = frozenset({b"body", b"table", b"td", b"th"})  # link tags by their background alone
# <link rel=...> values whose target is part of the page rather than a page of its own.
REQUISITE_RELS = frozenset({
    b"stylesheet", b"icon", b"shortcut", b"apple-touch-icon", b"apple-touch-icon-precomposed",
    b"mask-icon", b"preload", b"prefetch", b"modulepreload", b"manifest", b"image_src",
})
# Elements whose content is text, not markup: no tags or comments are recognised inside.
RAW_TEXT = frozenset({b"script", b"style", b"textarea", b"title", b"xmp", b"iframe", b"noembed",
                      b"noframes"})
# A tag that holds no link by its name may hold one in these: style's url(), the lazy ones.
SPECIAL = b"style|" + b"|".join(sorted(LAZY_ATTRIBUTES, key=len, reverse=True))

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
_SPECIAL_ATTRIBUTE = re.compile(rb"(?:" + SPECIAL + rb")\s*=", re.IGNORECASE)
_REFRESH_URL = re.compile(rb"""\s*[\d.]*\s*[;,]?\s*(?:url\s*=\s*)?(["']?)([^"']*)""", re.IGNORECASE)
_ENTITY_QUOTED = re.compile(rb"(&quot;|&#34;|&#x22;|&apos;|&#39;|&#x27;)(.*)\1", re.IGNORECASE | re.DOTALL)


def attributes_without(names: bytes, closed: bool = True) -> bytes:
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


def names(tags: Iterable[bytes]) -> bytes:
    """An alternation of `tags`, the longest first."""
    return b"|".join(sorted(tags, key=len, reverse=True))


# The stretch of a document, from a position, that holds no link: text, comments, end tags,
# and start tags that cannot hold one -- a tag not in LINK_TAGS nor raw text, without a style
# or lazy-image attribute; a body/table/td/th without those nor background. `scan` skips it
# in one match instead of a loop of Python per tag; where it stops, a tag of interest starts.
_NO_LINK = (
    rb"(?:[^<]+"
    rb"|<(?![a-zA-Z!?]|/[a-zA-Z])"  # a "<" that starts no markup is text
    rb"|<!--(?:-?>|.*?(?:--!?>|\Z))"
    rb"|<[!?][^>]*>?"
    rb"|</[a-zA-Z][^>]*>?"
    # the name runs to its end (else the engine could shorten it and read the tag another way)
    rb"|<(?!(?i:" + names(LINK_TAGS | RAW_TEXT | {b"plaintext"}) + rb")(?=[\s/>]|\Z))[a-zA-Z][^\s/>]*(?=[\s/>]|\Z)"
    + attributes_without(SPECIAL) +
    rb"|<(?i:" + names(_BACKGROUND_ONLY) + rb")(?=[\s/>]|\Z)" + attributes_without(SPECIAL + b"|background") +
    rb"){0,256}"  # bounded: the regex engine keeps state for every repetition
)
# A plain <a href>: the attribute once, its value quoted or not, no style or lazy attribute. Its
# whole attribute list is read in the same match as the stretch before it, the URL in group
# 1, 2 or 3 (quoted with ", with ', unquoted). Any other form of <a> is read attribute by
# attribute.
_PLAIN_A = (rb"<(?i:a)(?=[\s/>]|\Z)" + attributes_without(b"href|" + SPECIAL, closed=False)
            + rb"""[\s/]*(?i:href)\s*=\s*(?=\S|\Z)(?:"([^"]*)"|'([^']*)'|(?!["'])([^\s>]*)(?=[\s>]|\Z))"""
            + attributes_without(SPECIAL))
PLAIN_QUOTES = (b"", b'"', b"'", b"")  # the quote of a plain <a href>, by the group of its URL
_TO_NEXT_LINK = re.compile(_NO_LINK + rb"(?:" + _PLAIN_A + rb")?", re.DOTALL)
_NOTHING = re.compile(b"")  # skips nothing: `read_tags(body, skip=False)`


class Found:
    """What a document's tokenizer has found so far: a Document being built."""

    __slots__ = ("base", "lazy", "robots", "spots")

    def __init__(self) -> None:
        self.spots: list[Spot] = []
        self.base: Spot | None = None
        self.lazy: list[LazyCopy] = []
        self.robots: list[bytes] = []

    def document(self) -> Document:
        return Document(self.spots, self.base, tuple(self.lazy), tuple(self.robots))


def read_tags(body: bytes, skip: bool = True) -> Document:
    """Every link of an HTML document, read tag by tag; `skip=False`: without even skipping the
    stretches that `_TO_NEXT_LINK` proves hold no link (the reference the tests compare with)."""
    found = Found()
    scan(body, 0, len(body), found, _TO_NEXT_LINK if skip else _NOTHING)
    return found.document()


def scan(body: bytes, position: int, stop: int, found: Found, skip: re.Pattern[bytes] = _TO_NEXT_LINK) -> int:
    """Read the document tag by tag from `position`, which is outside any tag, until past
    `stop`; returns where it stopped, again outside any tag."""
    length = len(body)
    while position <= stop and position < length:
        stretch = skip.match(body, position)
        assert stretch is not None  # the pattern can match the empty string
        position = stretch.end()
        if stretch.lastindex is not None:  # a plain <a href>
            group = stretch.lastindex
            found.spots.append(Spot(stretch.start(group), stretch.end(group), PAGE, Context.ATTRIBUTE,
                                    PLAIN_QUOTES[group]))
            continue
        markup = _MARKUP.search(body, position)
        if markup is None:
            return length
        position = markup.end()
        if markup.group(1) is not None:
            position = read_tag(body, markup.group(1).lower(), position, found)
    return position


def read_construct(body: bytes, start: int, found: Found) -> int:
    """Read the comment or tag (with the raw text that follows it) at `start`, a "<" outside
    any tag; returns the position after it."""
    markup = _MARKUP.match(body, start)
    if markup is None:  # a "<" that starts no markup: text
        return start + 1
    if markup.group(1) is None:
        return markup.end()
    return read_tag(body, markup.group(1).lower(), markup.end(), found)


def read_tag(body: bytes, tag: bytes, position: int, found: Found) -> int:
    """Read the start tag `tag` whose attribute list begins at `position`, and the raw text
    that follows it if it opens a raw-text element; returns the position after them."""
    # Most tags hold no link: skip them with one match of the whole attribute list (the
    # same grammar as _read_attributes), unless a style or lazy attribute may hold one.
    tag_end = None if tag in LINK_TAGS else _tag_end(body, position)
    if tag_end is None or _SPECIAL_ATTRIBUTE.search(body, position, tag_end):
        name_end = position
        attributes, position = _read_attributes(body, position)
        if tag == b"base" and found.base is None and b"href" in attributes:
            found.base = _attribute_spot(attributes[b"href"], PAGE)
        else:
            found.spots.extend(_tag_spots(body, tag, attributes))
        if not LAZY_ATTRIBUTES.isdisjoint(attributes):
            found.lazy.extend(_lazy_copies(body, tag, attributes, name_end))
        elif tag == b"meta" and _attribute_bytes(body, attributes.get(b"name")).lower() == b"robots":
            found.robots.append(_attribute_bytes(body, attributes.get(b"content")))
    else:
        position = tag_end
    if tag in RAW_TEXT:
        end = raw_text_end(body, tag, position)
        if tag == b"style":
            found.spots.extend(css_spots(body, position, end))
        return end
    if tag == b"plaintext":  # the rest of the document is text
        return len(body)
    return position


def _tag_end(body: bytes, position: int) -> int:
    """Where the start tag whose attribute list begins at `position` ends (after its ">")."""
    while (end := _ATTRIBUTE_RUN.match(body, position).end()) > position:  # type: ignore[union-attr]
        position = end
    return _TAG_CLOSE.match(body, position).end()  # type: ignore[union-attr]


_VALUE_QUOTES = {2: b'"', 3: b"'", 4: b""}  # _ATTRIBUTE's value groups


def _read_attributes(body: bytes, position: int) -> tuple[dict[bytes, Value], int]:
    """The attributes of the start tag whose name ends at `position` (the first of duplicates
    wins, as in browsers), and the position after the tag."""
    attributes: dict[bytes, Value] = {}
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


def _tag_spots(body: bytes, tag: bytes, attributes: dict[bytes, Value]) -> Iterator[Spot]:
    for name, kind in URL_ATTRIBUTES.get(tag, ()):
        if name in attributes:
            yield _attribute_spot(attributes[name], kind)
    if tag in SRCSET_TAGS and b"srcset" in attributes:
        start, end, quote = attributes[b"srcset"]
        for candidate_start, candidate_end in srcset_spans(body, start, end):
            yield Spot(candidate_start, candidate_end, REQUISITE, Context.ATTRIBUTE, quote)
    elif tag == b"link" and b"href" in attributes:
        yield _attribute_spot(attributes[b"href"], link_kind(_attribute_bytes(body, attributes.get(b"rel"))))
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


def _style_spots(body: bytes, value: Value) -> Iterator[Spot]:
    """The url() links of CSS in an attribute value."""
    start, end, quote = value
    for spot in css_spots(body, start, end):
        # url(&quot;x.png&quot;): the quotes are written as character references
        inner = _ENTITY_QUOTED.fullmatch(body, spot.start, spot.end)
        url_start, url_end = (inner.start(2), inner.end(2)) if inner else (spot.start, spot.end)
        yield Spot(url_start, url_end, REQUISITE, Context.ATTRIBUTE, quote)


def _lazy_spots(body: bytes, attributes: dict[bytes, Value]) -> Iterator[Spot]:
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


def _lazy_copies(body: bytes, tag: bytes, attributes: dict[bytes, Value], name_end: int) -> Iterator[LazyCopy]:
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


def link_kind(rel: bytes) -> LinkKind:
    """What a <link href> is, by its rel: a requisite (stylesheet, icon...), else a page."""
    return REQUISITE if REQUISITE_RELS.intersection(rel.lower().split()) else PAGE


def _attribute_spot(value: Value, kind: LinkKind) -> Spot:
    start, end, quote = value
    return Spot(start, end, kind, Context.ATTRIBUTE, quote)


def _attribute_bytes(body: bytes, value: Value | None) -> bytes:
    return body[value[0]:value[1]].strip() if value else b""


def raw_text_end(body: bytes, tag: bytes, position: int) -> int:
    """Where the content of a raw-text element ends: at its end tag, else at the end."""
    match = _RAW_TEXT_END[tag].search(body, position)
    return match.start() if match else len(body)
