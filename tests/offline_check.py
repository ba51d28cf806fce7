"""An independent reader of a mirror on disk, for fidelity tests.

It shares no code with the crawler: links are read with the standard library's HTML parser
and regular expressions, and resolved the way a browser resolves links in a file:// page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

LINK_ATTRIBUTES = {"href", "src", "poster", "data", "background", "lowsrc"}
CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]*?)\1\s*\)|@import\s+(['"])([^'"]+)\3""", re.IGNORECASE)
CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
SKIP = ("#", "mailto:", "javascript:", "data:", "tel:")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag != "base":
            self.links += [value for name, value in values.items() if name in LINK_ATTRIBUTES and value]
        if "srcset" in values:
            self.links += [part.strip().split()[0] for part in values["srcset"].split(",") if part.strip()]
        if "style" in values:
            self.links += css_links(values["style"])
        if tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            url = re.search(r"url\s*=\s*['\"]?([^'\"]+)", values.get("content", ""), re.IGNORECASE)
            if url:
                self.links.append(url.group(1).strip())
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.links += css_links(data)


def css_links(text: str) -> list[str]:
    text = CSS_COMMENT.sub("", text)
    return [match.group(2) or match.group(4) for match in CSS_URL.finditer(text)
            if (match.group(2) or match.group(4))]


def html_links(text: str) -> list[str]:
    parser = _Links()
    parser.feed(text)
    parser.close()
    return parser.links


@dataclass
class MirrorCheck:
    files: set[str] = field(default_factory=set)  # relative paths of every file
    local_ok: list[tuple[str, str]] = field(default_factory=list)  # (file, link)
    local_broken: list[tuple[str, str]] = field(default_factory=list)
    absolute: list[tuple[str, str]] = field(default_factory=list)  # (file, absolute URL)


def check_mirror(root: Path, encodings: dict[str, str] | None = None) -> MirrorCheck:
    """Read every .html/.htm/.css file under root and resolve its links on disk."""
    result = MirrorCheck(files={p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()})
    for relative in sorted(result.files):
        if not relative.endswith((".html", ".htm", ".css")):
            continue
        raw = (root / relative).read_bytes()
        text = raw.decode((encodings or {}).get(relative, "utf-8"), "replace")
        links = css_links(text) if relative.endswith(".css") else html_links(text)
        for link in links:
            if not link or link.startswith(SKIP):
                continue
            if link.startswith("//") or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", link):
                result.absolute.append((relative, link))
                continue
            path = unquote(urlsplit(link).path)
            if not path:
                result.local_ok.append((relative, link))
                continue
            target = (root / relative).parent / path
            resolved_ok = not path.startswith("/") and target.resolve().is_file() and \
                root.resolve() in target.resolve().parents
            (result.local_ok if resolved_ok else result.local_broken).append((relative, link))
    return result
