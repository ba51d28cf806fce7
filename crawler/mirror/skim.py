"""The link spots of an HTML document, found by reading only the places where a link can be.

`tags.read_tags` reads a document tag by tag. Pages of API documentation highlight their
code with thousands of <span class="..."> each, and reading those was most of a crawl's CPU.
Only a few tags can hold a link, and their names -- or the names of the attributes that hold
one -- can be searched for at C speed (a regular expression over the document, bytes.find),
without reading the tags in between. What a search finds, a *hit*, is only a candidate: "<a "
or "style" can stand in a comment, a script, an attribute value or the text. Each hit is
therefore placed before it is read, with what the bytes just before it prove:

- The reading goes from hit to hit. At each, `position` is outside any tag (the document's
  start, or the end of what was read last), and no hit lies between it and the hit: so no
  comment, raw-text element or tag that can hold a link starts there -- nothing but text,
  end tags and tags without links.
- In such a stretch, a ">" ends the tag it is in, unless it lies inside a quoted attribute
  value. A quoted value opens with a quote right after "=" (and white space) and runs to the
  next such quote: if the ">" lay inside one, the last quote of that kind before it would
  have opened it. So when neither the last '"' nor the last "'" before a ">" follows an "=",
  that ">" is outside any value and the byte after it is outside any tag; then the first "<"
  that starts markup between there and the hit, if any, opens the tag holding the hit (no
  ">" comes between to close it); if there is none, the hit is outside any tag.
- When a quote before the ">" does follow an "=" (a value with a ">" in it, or just text such
  as `x="`), the stretch up to the hit is read tag by tag (`tags.scan`), which is exact
  whatever it holds.

A hit outside any tag is read as the comment or tag it starts (a plain <a href> straight from
the search's match); a hit inside a tag makes that tag be read; either way by the code of
`tags`, so the spots are those `tags.read_tags` finds. tests/test_links.py checks that on
random documents, and bench/tokenizer_check.py on real documentation sites.

That is `python_spots`. The crawl reads with `compiled_spots` when the C extension `_skim`
(built at install, see setup.py) is there: it reads every tag in C -- three to seven times
faster, large pages without the GIL -- and hands the few tags whose links take more than
looking up an attribute (<meta>, <base>, <style>, srcsets, style and lazy attributes) back to
`tags`. The extension also resolves plain relative links (`resolve_plain`, used by links.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable

from crawler.mirror.markup import PAGE, Context, Document, Spot
from crawler.mirror.tags import (
    LAZY_ATTRIBUTES,
    LINK_TAGS,
    RAW_TEXT,
    SRCSET_TAGS,
    URL_ATTRIBUTES,
    Found,
    link_kind,
    raw_text_end,
    read_construct,
    scan,
)
from crawler.models import LinkKind

# The attributes that give each tag a link, or for <meta> a robots directive: a tag with none
# of them holds nothing a style or lazy attribute would not show (those are searched for
# separately, below).
_LINK_ATTRIBUTES: dict[bytes, frozenset[bytes]] = {
    tag: frozenset({name for name, _ in URL_ATTRIBUTES.get(tag, ())} | ({b"srcset"} if tag in SRCSET_TAGS else set())
                   | {b"link": {b"href"}, b"base": {b"href"}, b"input": {b"src"},
                      b"meta": {b"content", b"name"}}.get(tag, set()))
    for tag in LINK_TAGS}
# Tags whose one URL attribute is read straight from the search's match when it is their only
# link attribute: its value is in one of three groups (quoted with ", with ', unquoted). The
# kind of a <link> depends on its rel, which the match captures too.
_ONE_LINK: dict[bytes, LinkKind | None] = {
    tag: attributes[0][1] for tag, attributes in URL_ATTRIBUTES.items()} | {b"link": None}
assert all(kind == attributes[0][1] for attributes in URL_ATTRIBUTES.values() for _, kind in attributes)

# The grammar of tags._ATTRIBUTE for lowercased bytes, with possessive repetitions: each piece
# of a tag can be read one way only, so the engine never backtracks into it. At most 64
# attributes per repetition, as in tags._ATTRIBUTE_RUN; a longer tag is read by tags.
_NAME = rb"[^\s/>][^\s/>=]*+"
_VALUE = rb"""(?:\s*+=\s*+(?:"[^"]*+"?|'[^']*+'?|[^\s>]*+))?+"""
_CLOSE = rb"[\s/]*+(?:>|\Z)"
_END = rb"(?=[\s/>]|\Z)"  # the end of a tag's name


def _alternation(names: Iterable[bytes]) -> bytes:
    return b"|".join(sorted(names, key=len, reverse=True))


def _attributes_except(names: Iterable[bytes]) -> bytes:
    """Up to 64 attributes, none called one of `names`."""
    return rb"(?:[\s/]*+(?!(?:" + _alternation(names) + rb")(?:[\s/>=]|\Z))" + _NAME + _VALUE + rb"){0,64}+"


def _value_of(attributes: Iterable[bytes], group: bytes) -> bytes:
    """One of `attributes` with its value, in the groups `group`_1, _2, _3 by its quote."""
    return (rb"[\s/]*+(?:" + _alternation(attributes) + rb""")\s*+=\s*+(?:"(?P<%s_1>[^"]*+)"|'(?P<%s_2>[^']*+)'"""
            rb"""|(?!["'])(?P<%s_3>[^\s>]*+))""" % (group, group, group))


def _tag_hit(tag: bytes) -> bytes:
    """What follows "<" in a hit for the start tag `tag`: a tag that holds a link attribute,
    read from the match when it holds one only; and any raw-text element."""
    hit = tag + _END
    attributes = _LINK_ATTRIBUTES.get(tag, frozenset())
    if tag == b"link":  # its rel, if it has one with a value
        hit += rb"(?:(?=" + _attributes_except({b"rel"}) + _value_of({b"rel"}, b"rel") + rb"))?"
    if tag not in _LINK_ATTRIBUTES:  # other raw text, plaintext: always a hit
        return hit
    # without a link attribute, no hit; with one alone, its value in the match
    without = rb"(?!" + _attributes_except(attributes) + _CLOSE + rb")"
    if tag not in _ONE_LINK:
        return hit + without
    url = {name for name, _ in URL_ATTRIBUTES.get(tag, ((b"href", PAGE),))}
    one_link = _attributes_except(attributes) + _value_of(url, tag) + _attributes_except(attributes) + _CLOSE
    if tag in RAW_TEXT:
        return hit + rb"(?:" + one_link + rb")?"
    return hit + rb"(?:" + one_link + rb"|" + without + rb")"


def _tag_hits() -> re.Pattern[bytes]:
    """Comments, doctypes and the like, raw-text elements, and tags that hold a link attribute.
    A trie by first letter: the engine tries it at every "<", which must fail fast."""
    by_letter: dict[bytes, list[bytes]] = {}
    for tag in sorted(RAW_TEXT | {b"plaintext"} | LINK_TAGS, key=len, reverse=True):
        by_letter.setdefault(tag[:1], []).append(_tag_hit(tag)[1:])
    letters = b"".join(sorted(by_letter))
    trie = b"|".join(letter + rb"(?:" + b"|".join(rests) + rb")" for letter, rests in sorted(by_letter.items()))
    return re.compile(rb"<(?=[!?" + letters + rb"])(?:[!?]|" + trie + rb")")


OneLink = tuple[LinkKind | None, bytes, bytes | None, int | None]


@functools.cache
def _tag_search() -> tuple[re.Pattern[bytes], list[OneLink | None]]:
    """The search for tag hits, in the lowercased document, and by group of the search: for a
    URL's, (its kind (None: by the rel), its quote, the raw-text element it opens, the rel's
    first group); for any other, None. Compiled when first needed (12 ms): a crawl that reads
    with the C extension never needs it."""
    tag_hits = _tag_hits()
    one_link_groups: list[OneLink | None] = [None] * (tag_hits.groups + 1)
    for tag, kind in _ONE_LINK.items():
        for number, quote in (1, b'"'), (2, b"'"), (3, b""):
            one_link_groups[tag_hits.groupindex[f"{tag.decode()}_{number}"]] = (
                kind, quote, tag if tag in RAW_TEXT else None, tag_hits.groupindex["rel_1"] if kind is None else None)
    return tag_hits, one_link_groups


# Attributes that give a link to any tag: style's url(), lazily loaded images. Searched for as
# bytes, in the lowercased document.
_ATTRIBUTE_HITS = (b"style", b"data-")
assert all(name.startswith(b"data-") for name in LAZY_ATTRIBUTES)
_MARKUP_START = re.compile(rb"<(?:[a-zA-Z!?]|/[a-zA-Z])")  # as tags._MARKUP reads a "<"
_EQUALS_OR_SPACE = frozenset(b"= \t\n\r\f\v")  # what precedes a quote that opens a value
_OUTSIDE, _UNKNOWN = -1, -2  # where a hit is, besides in the tag at an offset
_ATTRIBUTE = Context.ATTRIBUTE
# Spot(...) runs the Python __new__ that NamedTuple generates: twice as slow, for every link
_new_tuple = tuple.__new__


def python_spots(body: bytes) -> Document:
    """Every link of an HTML document (ASCII-compatible encoding), in document order: what
    `tags.read_tags` finds."""
    lowered = body.lower()  # the same offsets; no case-insensitive search needed
    tag_hits, one_link_groups = _tag_search()
    found = Found()
    add = found.spots.append
    attribute_hits = _AttributeHits(lowered)
    next_attribute = attribute_hits.first_from(0)
    position, length = 0, len(body)
    searching = True
    while searching:
        searching = False
        for match in tag_hits.finditer(lowered, position):
            hit, end = match.span()
            if next_attribute < hit:  # attribute hits come first
                position, next_attribute = _read_attribute_hits(body, position, hit, attribute_hits, found)
            if hit < position:  # inside what was just read: search again from its end
                searching = True
                break
            if hit > position:
                holder = _holder(body, position, hit)
                if holder != _OUTSIDE:
                    position = scan(body, position, hit, found) if holder == _UNKNOWN else \
                        read_construct(body, holder, found)
                    searching = True  # this match may have read past where the holder ends
                    break
            group = match.lastindex  # the URL's, if the tag holds one link (else maybe a <link>'s rel)
            one_link = one_link_groups[group] if group is not None else None
            if one_link is not None and next_attribute >= end:  # no style or lazy attribute either
                kind, quote, raw_text, rel = one_link
                start, stop = match.span(group)
                add(_new_tuple(Spot, (start, stop, kind or link_kind(_group_value(match, rel)), _ATTRIBUTE, quote)))
                position = end if raw_text is None else raw_text_end(body, raw_text, end)
            else:  # reads at least as far as the match went: later matches stand
                position = read_construct(body, hit, found)
    position, _ = _read_attribute_hits(body, position, length, attribute_hits, found)
    return found.document()


def _read_attribute_hits(body: bytes, position: int, before: int, attribute_hits: _AttributeHits,
                         found: Found) -> tuple[int, int]:
    """Read the attribute hits before `before`; the position after them and the next hit."""
    hit = attribute_hits.first_from(position)
    while hit < before:
        holder = _holder(body, position, hit)
        if holder == _UNKNOWN:
            position = scan(body, position, hit, found)
        elif holder == _OUTSIDE:
            position = hit + 1  # text
        else:
            position = read_construct(body, holder, found)
        hit = attribute_hits.first_from(position)
    return position, hit


class _AttributeHits:
    """Where the names in _ATTRIBUTE_HITS occur, in order; searched for lazily, so that a
    page full of them costs no list as long as the page."""

    def __init__(self, lowered: bytes) -> None:
        self._lowered = lowered
        self._beyond = len(lowered) + 1
        self._next = [-1] * len(_ATTRIBUTE_HITS)  # per name, the occurrence found last

    def first_from(self, position: int) -> int:
        """The first occurrence of any of the names at or after `position` (beyond the end: none)."""
        for index, at in enumerate(self._next):
            if at < position:
                found = self._lowered.find(_ATTRIBUTE_HITS[index], position)
                self._next[index] = found if found >= 0 else self._beyond
        return min(self._next)


def _group_value(match: re.Match[bytes], first: int | None) -> bytes:
    """The value of an attribute captured in the groups `first`, +1, +2 (by its quote), or b""."""
    return next((value for value in match.groups()[first - 1:first + 2] if value is not None), b"") \
        if first is not None else b""


def _holder(body: bytes, position: int, hit: int) -> int:
    """Where the tag or end tag holding `hit` starts, _OUTSIDE of any, or _UNKNOWN (see the
    module's docstring). `position` is outside any tag, and no hit lies before `hit` after it."""
    close = hit - 1 if body[hit - 1] == 62 else body.rfind(b">", position, hit)  # 62: ">", before most tags
    if close >= 0:
        if not _outside_values(body, position, close):
            return _UNKNOWN
        if close == hit - 1:
            return _OUTSIDE
        position = close + 1
    start = body.find(b"<", position, hit)
    while start >= 0:
        if _MARKUP_START.match(body, start):  # "<x" right before an attribute hit: its tag's name
            return start
        start = body.find(b"<", start + 1, hit)
    return _OUTSIDE


def _outside_values(body: bytes, position: int, close: int) -> bool:
    """Is the ">" at `close` outside any quoted attribute value? Only a value opened after
    `position` (outside any tag) can hold it, by the last quote of its kind before it."""
    for quote in b'"', b"'":
        at = body.rfind(quote, position, close)
        if at > position and body[at - 1] in _EQUALS_OR_SPACE and _may_open_value(body, position, at):
            return False
    return True


def _may_open_value(body: bytes, position: int, quote: int) -> bool:
    """Does the quote at `quote` follow an "=" and white space (looking back to `position`)?"""
    before = body[max(position, quote - 64):quote].rstrip()
    return before.endswith(b"=") if before else quote - 64 > position  # all white space: who knows


try:
    from crawler.mirror import _skim
except ImportError:  # installed without a C compiler
    _skim = None  # type: ignore[assignment]


def compiled_spots(body: bytes) -> Document:
    """What `python_spots` finds, read by the C extension: the tags it settles, and those it
    hands back read here by `tags.read_construct`, in document order."""
    spots, handed_back = _skim.read(body if type(body) is bytes else bytes(body))
    if not handed_back:
        return Document(spots, None)
    found = Found()
    done = 0
    for before, position in handed_back:  # position: a tag's "<", read after spots[:before]
        found.spots.extend(spots[done:before])
        done = before
        read_construct(body, position, found)
    found.spots.extend(spots[done:])
    return found.document()


if _skim is not None:
    _skim.setup(Spot, PAGE, LinkKind.REQUISITE, _ATTRIBUTE, b'"', b"'", b"")
    html_spots = compiled_spots
else:
    html_spots = python_spots
COMPILED = _skim is not None  # does the crawl read HTML in C? (crawl --version says)
# resolve(origin, folder path, written) -> (canonical URL, fragment) of a plain relative link,
# or None: links.py resolves the others (see _skim.c).
resolve_plain: Callable[[str, str, bytes], tuple[str, str] | None] | None = \
    _skim.resolve if _skim is not None else None
PLAIN_LINK_BYTES: bytes = _skim.PLAIN_BYTES if _skim is not None else b""  # what a plain link is made of
