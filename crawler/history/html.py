"""HTML for people: the pieces report.html and `crawl serve` share.

Everything a crawled site sends (titles, URLs, text, diffs) is untrusted: it goes into a page
only through `text()` (escaped, quotes too, so it is safe in an attribute as well) or `url()`
(which refuses schemes that run code). Pages are self-contained -- inline CSS, no script, no
request to anywhere -- so a report opened from disk shows the same as one served.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from urllib.parse import quote

_IGNORED_IN_URLS = re.compile(r"[\t\n\r]")
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")

STYLE = """
:root { color-scheme: light dark; --fg: #1d1f21; --bg: #fff; --muted: #666; --line: #ddd;
        --add: #e6ffed; --add-fg: #22863a; --del: #ffeef0; --del-fg: #b31d28; --accent: #0366d6; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6e6e6; --bg: #16181a; --muted: #9a9a9a; --line: #333;
          --add: #12331c; --add-fg: #7ee787; --del: #3c1618; --del-fg: #ff9492; --accent: #58a6ff; } }
body { font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg);
       max-width: 72rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem;
     border-bottom: 1px solid var(--line); padding-bottom: .2rem; }
a { color: var(--accent); } .muted { color: var(--muted); }
table { border-collapse: collapse; width: 100%; } td, th { text-align: left; padding: .25rem .5rem;
        border-bottom: 1px solid var(--line); vertical-align: top; } th { font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.url { word-break: break-all; } code, pre { font: 13px/1.4 ui-monospace, monospace; }
pre.diff { overflow-x: auto; padding: .5rem; border: 1px solid var(--line); }
pre.diff .add { background: var(--add); color: var(--add-fg); display: block; }
pre.diff .del { background: var(--del); color: var(--del-fg); display: block; }
pre.diff .hunk { color: var(--muted); display: block; }
details > summary { cursor: pointer; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: .6rem; font-size: .85em; border: 1px solid; }
.ok { color: var(--add-fg); } .bad { color: var(--del-fg); }
"""


def text(value: object) -> str:
    """Any value, as text in HTML (and in a quoted attribute)."""
    return html.escape(str(value), quote=True)


def url(value: str) -> str:
    """A link target for an href: http(s) and relative links as they are (escaped); anything
    that could run code (javascript:, data:, vbscript:...) becomes a harmless "#". Read as a
    browser reads it: tabs and line breaks anywhere, and leading spaces, do not count."""
    cleaned = _IGNORED_IN_URLS.sub("", value).lstrip("".join(map(chr, range(0x21))))
    scheme = _SCHEME.match(cleaned)
    if scheme and scheme.group(1).lower() not in ("http", "https"):
        return "#"
    return text(value)


def path_link(path: str) -> str:
    """A relative link to a file of the output folder, from a page at its top: each segment
    percent-escaped (a mirror path may hold "?", "#", "%" and spaces)."""
    return text("/".join(quote(segment, safe="") for segment in path.split("/")))


def page(title: str, body: str) -> str:
    """A whole page: `title` is escaped here; `body` is HTML made with the functions above."""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
            f"img-src data:\">"
            f"<title>{text(title)}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")


def diff_html(lines: Iterable[str]) -> str:
    """A unified diff (difflib's lines) as a coloured, escaped <pre>."""
    out = []
    for line in lines:
        kind = "hunk" if line.startswith("@@") else "add" if line.startswith("+") else \
            "del" if line.startswith("-") else ""
        if line.startswith(("+++", "---")):
            kind = "hunk"
        out.append(f'<span class="{kind}">{text(line)}</span>' if kind else text(line))
    return '<pre class="diff">' + "\n".join(out) + "</pre>"


def bar_chart(label: str, rows: Sequence[tuple[str, float, str]], width: int = 640) -> str:
    """An inline SVG of horizontal bars, one per (name, value, value as shown) row, longest
    value full width. `label` says what it shows (for screen readers too); names are escaped."""
    row_height, name_width, value_width = 22, 190, 90
    bar_width = width - name_width - value_width
    top = max((value for _, value, _ in rows), default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" '
             f'height="{row_height * len(rows) + 4}" viewBox="0 0 {width} {row_height * len(rows) + 4}">'
             f"<title>{text(label)}</title>"]
    for number, (name, value, shown) in enumerate(rows):
        y = number * row_height + 2
        length = max(1.0, bar_width * value / top) if value else 0.0
        parts.append(f'<text x="{name_width - 8}" y="{y + 15}" text-anchor="end">{text(name[:40])}</text>'
                     f'<rect x="{name_width}" y="{y + 3}" width="{length:.1f}" height="{row_height - 6}" rx="2"/>'
                     f'<text x="{name_width + length + 6:.1f}" y="{y + 15}">{text(shown)}</text>')
    return "".join(parts) + "</svg>"
