"""render.mode auto: does a page's static HTML look like an app shell, which only its scripts fill?

The rule, in order:

1. No executable script -- no <script> whose type is absent, empty, `module` or a JavaScript
   type (`application/ld+json`, templates and other data blocks do not count) -- : static.
   Nothing could change the page in a browser.
2. An empty mount element -- an element whose id is one of MOUNT_IDS (`root`, `app`,
   `__next`, ...), or an <app-root> (Angular), with nothing inside but whitespace and
   comments -- : an app shell.
3. Fewer than MIN_TEXT characters of visible text: an app shell; more: static. Visible text
   is the text of the document outside comments and the elements a reader never sees as
   text (<script>, <style>, <noscript> -- shown only when scripts are off --, <template>,
   <title>), tags dropped, whitespace not counted (a character reference counts as written).

A page with a script and a full text (a server-rendered app, a blog with analytics) is saved
as served: it reads the same without its scripts. The check reads bytes with a few regular
expressions and C-speed byte operations, so that it costs a static page next to nothing
(~60 us for 20 KB of HTML; see the README's render section).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MIN_TEXT = 100  # characters of visible text below which a page with a script is a shell (a nav and a line: more)
MOUNT_IDS = ("root", "app", "__next", "__nuxt", "___gatsby", "svelte")

_SCRIPT = re.compile(rb"<script(?=[\s/>])([^>]*)>", re.IGNORECASE)
_TYPE = re.compile(rb"""\stype\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_CODE_TYPE = re.compile(rb"^(?:module|(?:text|application)/(?:x-)?(?:java|ecma)script(?:\s*;.*)?)$", re.IGNORECASE)
_IDS = b"|".join(re.escape(name.encode()) for name in MOUNT_IDS)
_MOUNT = re.compile(
    rb"<(?:(app-root)|([a-z][a-z0-9-]*)(?=[\s/])[^>]*?\sid\s*=\s*([\"']?)(?:" + _IDS + rb")\3(?=[\s/>]))[^>]*>"
    rb"(?:\s|<!--.*?-->)*</(?:\1|\2)\s*>", re.IGNORECASE | re.DOTALL)
# What is not visible text: comments, hidden elements with their content, tags.
_HIDDEN = re.compile(rb"<!--.*?(?:-->|\Z)|<(script|style|noscript|template|title)(?=[\s/>])[^>]*>.*?(?:</\1\s*>|\Z)"
                     rb"|<[^>]*>?", re.IGNORECASE | re.DOTALL)
_NOT_COUNTED = bytes(range(0x80, 0xC0)) + b" \t\n\r\f\v"


@dataclass(frozen=True)
class ShellVerdict:
    render: bool
    why: str


def app_shell(body: bytes) -> ShellVerdict:
    """Whether render.mode auto renders this HTML, and why (in words, for `crawl check`)."""
    if not any(_is_code(match.group(1)) for match in _SCRIPT.finditer(body)):
        return ShellVerdict(False, "static HTML: no script")
    mount = _MOUNT.search(body)
    if mount is not None:
        return ShellVerdict(True, f"an app shell: an empty mount element {_opening(mount.group(0))}")
    text = visible_text(body)
    if text < MIN_TEXT:
        return ShellVerdict(True, f"an app shell: a script, and {text} characters of visible text "
                                  f"(under {MIN_TEXT})")
    return ShellVerdict(False, f"static HTML: a script, but {text} characters of visible text ({MIN_TEXT} or more)")


def visible_text(body: bytes) -> int:
    """Characters of visible text, whitespace aside: bytes, less the continuation bytes of
    UTF-8 sequences (a multi-byte character counts once; a character reference as written)."""
    return len(_HIDDEN.sub(b"", body).translate(None, _NOT_COUNTED))


def _is_code(attributes: bytes) -> bool:
    found = _TYPE.search(attributes)
    if found is None:
        return True
    kind = (found.group(1) or found.group(2) or found.group(3) or b"").strip()
    return not kind or _CODE_TYPE.match(kind) is not None


def _opening(element: bytes) -> str:
    return element[:element.index(b">") + 1].decode("ascii", "replace")
