"""Where the links are in HTML and CSS bytes: one tokenizer for both extraction and rewriting.

The tokenizers return each link as a *spot*: the byte span of one URL inside the document,
with the kind of link it is. Link extraction reads the URLs at the spots; link conversion
replaces exactly those bytes and leaves every other byte of the file as it was. Using the
same spots for both guarantees that every link that was followed is also rewritten. No HTML
library reports source offsets of attribute values, which is why wget, wget2 and HTTrack
carry tokenizers of their own for this job too. This module holds what they share -- spots,
CSS, reading and writing a value, encodings; HTML is read by `skim.html_spots` (the fast
path) and `tags.read_tags` (tag by tag, its reference).

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
from collections.abc import Callable, Iterator
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


Value = tuple[int, int, bytes]  # start, end, quote of an attribute value


class LazyCopy(NamedTuple):
    """A lazily loaded image, as its offline copy shows it: the value of a lazy attribute
    (`source`: data-src, data-srcset, data-bg...), once its links are converted, goes into the
    attribute `name` that a browser shows without the page's script -- src, srcset, or style
    for a background -- over its value `target`, or, when the tag has none, as a new attribute
    at `insert_at`. A style keeps its value: the background is added at its end."""

    source: Value
    name: bytes
    target: Value | None
    insert_at: int


@dataclass(frozen=True, slots=True)
class Document:
    """The spots of one HTML document, its <base href> spot if any, its lazily loaded images,
    and the content of its <meta name="robots"> tags."""

    spots: list[Spot]
    base: Spot | None
    lazy: tuple[LazyCopy, ...] = ()
    robots: tuple[bytes, ...] = ()


_CSS_LINKS = re.compile(
    rb"""/\*.*?(?:\*/|\Z)"""  # a comment: skipped
    rb"""|url\(\s*(?:"([^"]*)"|'([^']*)'|([^)"'\s]*))\s*\)"""
    rb"""|@import\s+(?:"([^"]*)"|'([^']*)')""",
    re.IGNORECASE | re.DOTALL,
)
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
         (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
# <meta charset="x">, and the charset= inside <meta http-equiv="Content-Type" content="...">
_META_CHARSET = re.compile(rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_:.+-]+)""", re.IGNORECASE)
_CSS_CHARSET = re.compile(rb'^@charset\s+"([^"]+)"\s*;')


# -- srcset -----------------------------------------------------------------------------------

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


_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))


@lru_cache(maxsize=64)
def reads_ascii_as_ascii(encoding: str) -> bool:
    """Does `encoding` read every printable ASCII byte as that character? (Not Shift_JIS-2004
    or Shift_JISX0213, where "~" is an overline, nor cp864, where "%" is another sign.) Then a
    link written in plain ASCII bytes can be read, or compared, as those bytes."""
    try:
        return _PRINTABLE_ASCII.decode(encoding) == _PRINTABLE_ASCII.decode("ascii")
    except (LookupError, UnicodeError):
        return False


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
