"""URL canonicalization: one spelling per resource, so the frontier's dedup is a set lookup.

`canonicalize` follows RFC 3986 normalization plus what browsers do for http(s) URLs:
lower-case scheme and host, an international host name in its ASCII form (IDNA as browsers
apply it: UTS #46, non-transitional -- faß.de is xn--fa-hia.de, not fass.de), no default port,
no fragment, `.`/`..` segments removed (also when written `%2e`), percent-escapes upper-cased, unreserved characters
decoded, characters that may not appear in a URL (spaces, non-ASCII, quotes) encoded as UTF-8,
`\\` read as `/`. The query keeps its order: servers may care about it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote, urljoin, urlsplit

import idna

SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# A %XX escape, or a character that may not stand unescaped in a path or query
# (RFC 3986 pchar + "/" + "?"); a lone "%" is one of those.
_ESCAPE_OR_SPECIAL = re.compile(r"%[0-9A-Fa-f]{2}|[^A-Za-z0-9\-._~!$&'()*+,;=:@/?]")
_HOST_CHARS = re.compile(r"^[a-z0-9._-]+$")
_STRIP_INSIDE = re.compile(r"[\t\n\r]")  # browsers drop these anywhere in a URL
_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))
_HAS_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*:")


class InvalidURLError(ValueError):
    """Not an absolute http(s) URL we can fetch."""


def clean_href(href: str) -> str:
    """What a browser does to an attribute value before parsing it as a URL."""
    href = href.strip(_C0_AND_SPACE)
    return _STRIP_INSIDE.sub("", href) if "\t" in href or "\n" in href or "\r" in href else href


class BaseURL:
    """A URL that links resolve against, split once into the parts `resolve` takes from it:
    a page resolves all its links against one."""

    __slots__ = ("_folder", "_origin", "_scheme", "url")

    def __init__(self, url: str) -> None:
        self.url = url
        self._scheme = url[: url.find(":") + 1]
        self._origin = url[: url.find("/", url.find("//") + 2)]
        path = url.split("?", 1)[0]
        self._folder = path[: path.rfind("/") + 1]

    @property
    def origin(self) -> str:
        """scheme://host[:port]"""
        return self._origin

    @property
    def folder_path(self) -> str:
        """The path of the folder a relative link starts from: "/a/b/" for /a/b/c.html?q."""
        return self._folder[len(self._origin):]

    def is_canonical(self) -> bool:
        try:
            return canonicalize(self.url) == self.url
        except InvalidURLError:
            return False

    def resolve(self, href: str) -> str:
        """The canonical absolute URL `href` points to from here. Raises InvalidURLError."""
        href = href.strip()
        # The same link appears on many pages; what it resolves to depends on only part of the
        # base, so the cache key keeps only that part and one answer serves all those pages.
        if _HAS_SCHEME.match(href):
            context = ""
        elif href.startswith(("//", "\\\\")):
            context = self._scheme
        elif href.startswith(("/", "\\")):
            context = self._origin
        elif not href or href[0] in "?#":
            context = self.url
        else:
            context = self._folder
        return _resolve(context, href)


def resolve(base: str, href: str) -> str:
    """The canonical absolute URL `href` points to from `base`. Raises InvalidURLError."""
    return BaseURL(base).resolve(href)


@lru_cache(maxsize=4096)  # bounded: on a big site the hot links stay, the rest goes
def _resolve(context: str, href: str) -> str:
    return canonicalize(urljoin(context, clean_href(href).replace("\\", "/")))


@lru_cache(maxsize=4096)  # bounded: on a big site the hot links stay, the rest goes
def canonicalize(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidURLError(f"not an http(s) URL: {url[:200]!r}")
    netloc = _canonical_netloc(parts.netloc, scheme, url)
    path = _remove_dot_segments(_normalize_escapes(parts.path.replace("\\", "/"))) or "/"
    query = _normalize_escapes(parts.query) if parts.query else ""
    return f"{scheme}://{netloc}{path}?{query}" if query else f"{scheme}://{netloc}{path}"


def host_of(url: str) -> str:
    """The host name of a canonical URL, without port."""
    netloc = url.split("/", 3)[2]
    if netloc.startswith("["):
        return netloc[: netloc.index("]") + 1]
    return netloc.rsplit(":", 1)[0] if ":" in netloc else netloc


def origin_of(url: str) -> str:
    """scheme://host[:port] of a canonical URL."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def host_key(url: str) -> str:
    """host[:port] of a canonical URL: what identifies one server."""
    return url.split("/", 3)[2]


def _canonical_netloc(netloc: str, scheme: str, url: str) -> str:
    hostport = netloc.rpartition("@")[2]  # credentials in links are dropped, never sent
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise InvalidURLError(f"bad IPv6 host in {url[:200]!r}")
        host, port_text = hostport[: end + 1].lower(), hostport[end + 1:].removeprefix(":")
    else:
        host, _, port_text = hostport.partition(":")
        host = _idna(host.lower().rstrip("."), url)
    if not host:
        raise InvalidURLError(f"no host in {url[:200]!r}")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise InvalidURLError(f"bad port {port_text!r} in {url[:200]!r}")
        port = int(port_text)
        if port != DEFAULT_PORTS[scheme]:
            return f"{host}:{port}"
    return host


def _idna(host: str, url: str) -> str:
    if "%" in host:  # b%C3%BCcher.example: a browser reads the escapes first
        try:
            host = unquote(host, errors="strict").lower()
        except UnicodeDecodeError:
            raise InvalidURLError(f"bad host name in {url[:200]!r}") from None
    if host.isascii():
        if not _HOST_CHARS.match(host):
            raise InvalidURLError(f"bad host name in {url[:200]!r}")
        return host
    return ascii_host(host, url)


@lru_cache(maxsize=1024)
def ascii_host(host: str, url: str = "") -> str:
    """The ASCII (punycode) form of an international host name, as browsers write it: UTS #46
    non-transitional; a name IDNA 2008 refuses but browsers take (a symbol, an emoji) in its
    IDNA 2003 form. Raises InvalidURLError."""
    try:
        return idna.encode(host, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        pass
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidURLError(f"bad international host name in {url[:200] or host!r}") from None


def _normalize_escapes(text: str) -> str:
    if not _ESCAPE_OR_SPECIAL.search(text):
        return text
    return _ESCAPE_OR_SPECIAL.sub(_fix_one, text)


def _fix_one(match: re.Match[str]) -> str:
    token = match.group()
    if len(token) == 3:  # a %XX escape
        char = chr(int(token[1:], 16))
        return char if char in _UNRESERVED else token.upper()
    if token == "%":  # a lone percent sign
        return "%25"
    return "".join(f"%{byte:02X}" for byte in token.encode("utf-8", "surrogatepass"))


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, which also keeps a path from climbing above the root."""
    if "." not in path:
        return path
    segments = path.split("/")
    output: list[str] = []
    for segment in segments[1:] if path.startswith("/") else segments:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    if segments[-1] in (".", ".."):
        output.append("")  # "/a/b/.." names the folder "/a/"
    return "/" + "/".join(output)
