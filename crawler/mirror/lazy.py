"""Lazily loaded images in the offline copy of a page.

A page that loads its images lazily names them in data-src, data-srcset, data-bg... and lets
a script move them into src, srcset or a background when they scroll into view. Converted,
those attributes name the saved files; and so that the saved page shows the images whether
or not its script runs from disk -- and before anything scrolls -- each such image gets the
converted value where a browser shows it without a script: src (over the placeholder it had,
if any), srcset, or a background-image added to its style. A script that moves them later
moves the same values. The page's other bytes stay as served.
"""

from __future__ import annotations

from crawler.mirror.markup import Context, LazyCopy, Spot, encode_value, read_value
from crawler.models import LinkKind

Replacement = tuple[Spot, bytes]
_CSS = Spot(0, 0, LinkKind.REQUISITE, Context.CSS, b"")


def lazy_replacements(view: bytes, encoding: str, copies: tuple[LazyCopy, ...],
                      replacements: list[Replacement]) -> list[Replacement]:
    """`replacements` (each link spot's new bytes) with each copy's value written where a
    browser shows it; the replacements of the placeholders it overwrites are dropped."""
    for copy in copies:
        start, end, _ = copy.source
        text = read_value(_converted(view, start, end, replacements), Context.ATTRIBUTE, encoding)
        if not text:
            continue
        if copy.name == b"style":
            css = text if text[:4].lower() == "url(" else \
                f'url("{encode_value(text, _CSS, encoding).decode(encoding)}")'
            text = f"background-image: {css}"
        if copy.target is None:  # a new attribute, right after the tag's name
            value = encode_value(text, Spot(0, 0, LinkKind.REQUISITE, Context.ATTRIBUTE, b'"'), encoding)
            replacements.append((_at(copy.insert_at), b" " + copy.name + b'="' + value + b'"'))
            continue
        target_start, target_end, quote = copy.target
        spot = Spot(target_start, target_end, LinkKind.REQUISITE, Context.ATTRIBUTE, quote)
        if copy.name == b"style":  # the background goes after the declarations it has
            replacements.append((_at(target_end), encode_value(f"; {text}", spot, encoding)))
            continue
        new = encode_value(text, spot, encoding)
        replacements = [(old, data) for old, data in replacements
                        if not target_start <= old.start < target_end or old.start == old.end]
        if new != view[target_start:target_end]:
            replacements.append((spot, new))
    return replacements


def _converted(view: bytes, start: int, end: int, replacements: list[Replacement]) -> bytes:
    """view[start:end] with the replacements that fall in it applied."""
    parts, position = [], start
    for spot, new in sorted(((spot, new) for spot, new in replacements if start <= spot.start and spot.end <= end),
                            key=lambda item: item[0].start):
        parts += [view[position:spot.start], new]
        position = spot.end
    parts.append(view[position:end])
    return b"".join(parts)


def _at(position: int) -> Spot:
    """A place to insert bytes at."""
    return Spot(position, position, LinkKind.REQUISITE, Context.ATTRIBUTE, b'"')
