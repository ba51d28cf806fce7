"""One HTTP request in flight on a libcurl handle: its callbacks, the body decoded as it
arrives, and what it ended as.

Content-Encoding is decoded here rather than by libcurl: libcurl accepts a gzip stream cut
short inside intact HTTP framing as complete, while zlib and brotli say whether the stream
reached its end -- a body that did not is never saved. Decoding as the bytes arrive also lets
http.max_bytes stop a compression bomb at the limit (counted after decompression).
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field

import pycurl

ENCODINGS = "gzip, deflate, br"  # what we say we accept, and decode


class ContentDecoder:
    """gzip, deflate (zlib-wrapped, or raw as some servers send it) or br, fed as it arrives."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._gzip = coding in ("gzip", "x-gzip")
        self._brotli = None
        self._zlib = None
        if coding == "br":
            import brotli  # only a server that sends br needs it

            self._brotli = brotli.Decompressor()
        else:
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS if self._gzip else zlib.MAX_WBITS)
        self._first = True

    def feed(self, data: bytes, room: int) -> bytes:
        """The decoded bytes of `data`: at most `room` (one more means the limit is crossed).
        Raises ValueError for a body that is not what its Content-Encoding says."""
        if self._brotli is not None:
            try:  # a bounded output: a br bomb stops at the limit too
                return bytes(self._brotli.process(data, output_buffer_limit=room))
            except Exception as exc:  # brotli.error
                raise ValueError(f"not a br stream: {exc}") from None
        assert self._zlib is not None
        try:
            out = self._zlib.decompress(data, room)
        except zlib.error as exc:
            if not self._first or self._gzip:
                raise ValueError(f"not a {self.coding} stream: {exc}") from None
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate
            out = self._decompress(data, room)
        self._first = False
        # Concatenated gzip members are one body; bytes after the last one are ignored, as
        # browsers do.
        while self._gzip and self._zlib.eof and self._zlib.unused_data[:2] == b"\x1f\x8b" and len(out) < room:
            rest = self._zlib.unused_data
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += self._decompress(rest, room - len(out))
        return out

    def _decompress(self, data: bytes, room: int) -> bytes:
        assert self._zlib is not None
        try:
            return self._zlib.decompress(data, room)
        except zlib.error as exc:
            raise ValueError(f"not a {self.coding} stream: {exc}") from None

    @property
    def complete(self) -> bool:
        """Did the stream reach the end its format marks?"""
        if self._brotli is not None:
            return bool(self._brotli.is_finished())
        assert self._zlib is not None
        return self._zlib.eof


@dataclass
class Exchange:
    """What a finished transfer brought: the final response's status line and headers (as
    sent: bytes, repeated ones kept apart), the decoded body, or why it failed."""

    status: int
    status_line: str = ""
    headers: list[tuple[str, bytes]] = field(default_factory=list)  # (lower-case name, raw value)
    body: bytes = b""
    http_version: str = "HTTP/1.1"
    request_headers: dict[str, str] | None = None  # as sent, when recorded (the WARC)
    error: int = 0  # libcurl's error code, 0: none
    error_message: str = ""
    failure: str | None = None  # our own reason, when the transfer was stopped by us
    silent_for: float = 0.0  # seconds since the last byte came, when it ended
    lasted: float = 0.0  # seconds from its start to its end
    os_errno: int = 0  # the system's error, when the connection failed
    tls_verify_result: int = 0  # OpenSSL's verdict on the certificate (X509_V_ERR_*), when it failed
    tls_subject: str = ""  # the server certificate's subject, when the transfer failed

    def header(self, name: str) -> str | None:
        """A header's value as text (repeats joined with ", "), None if absent."""
        values = self.header_values(name)
        return ", ".join(values) if values else None

    def header_values(self, name: str) -> list[str]:
        return [value.decode("latin-1") for key, value in self.headers if key == name]

    def header_dict(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for key, raw in self.headers:
            value = raw.decode("latin-1")
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return merged


_HTTP_VERSIONS = {pycurl.CURL_HTTP_VERSION_1_0: "HTTP/1.0", pycurl.CURL_HTTP_VERSION_1_1: "HTTP/1.1",
                  pycurl.CURL_HTTP_VERSION_2_0: "HTTP/2", pycurl.CURL_HTTP_VERSION_3: "HTTP/3"}


class Transfer:
    """One request on one easy handle (reused for request after request). libcurl calls
    `write` with each piece of body and `header` with each header line."""

    __slots__ = ("_decoder", "_lines", "_parsed", "_request_lines", "chunks", "failure", "handle", "last_data", "limit",
                 "posted", "size", "started", "tag")

    def __init__(self, handle: pycurl.Curl, limit: int, record_request: bool = False) -> None:
        """`limit`: http.max_bytes, decoded; `record_request`: keep the request's headers as
        sent (for the WARC record)."""
        self.handle = handle
        self.limit = limit
        self._lines: list[bytes] = []
        self._parsed: tuple[int, tuple[str, list[tuple[str, bytes]]]] | None = None  # see _headers
        self._request_lines: list[bytes] = []
        self.chunks: list[bytes] = []
        self._decoder: ContentDecoder | None = None
        self.failure: str | None = None
        self.size = 0
        self.started = self.last_data = 0.0
        self.tag: object = None  # whose request this is
        self.posted = False  # its last request was a POST (a login's)
        # Set once per handle: the bound methods stay valid while the handle is reused.
        handle.setopt(pycurl.WRITEFUNCTION, self.write)
        handle.setopt(pycurl.HEADERFUNCTION, self._lines.append)  # a C call: no bytecode per line
        if record_request:
            handle.setopt(pycurl.VERBOSE, 1)
            handle.setopt(pycurl.DEBUGFUNCTION, self._debug)

    def reset(self, tag: object) -> None:
        self.tag = tag
        self._lines.clear()
        self._parsed = None
        self._request_lines.clear()
        self.chunks = []
        self._decoder = None
        self.failure = None
        self.size = 0
        self.started = self.last_data = time.monotonic()

    def write(self, data: bytes) -> int | None:
        """libcurl's write callback. Returning 0 (not len(data)) aborts the transfer: that is
        how a body stops at http.max_bytes, or at bytes that cannot be decoded."""
        self.last_data = time.monotonic()
        if not self.chunks and self._decoder is None:
            coding = _content_encoding(self._headers()[1])
            if coding in ("gzip", "x-gzip", "deflate", "br"):
                self._decoder = ContentDecoder(coding)
            elif coding not in ("", "identity"):
                self.failure = f"decode_error:Content-Encoding {coding} is not one we asked for"
                return 0
        if self._decoder is not None:
            try:
                data = self._decoder.feed(data, self.limit - self.size + 1)
            except ValueError as exc:
                self.failure = f"decode_error:{exc}"
                return 0
        self.size += len(data)
        if self.size > self.limit:
            self.failure = "too_large:"
            return 0
        self.chunks.append(data)
        return None

    def _headers(self) -> tuple[str, list[tuple[str, bytes]]]:
        """_final_headers of the lines so far, parsed once for as many lines: the body's first
        piece and the end of the transfer both ask (trailers, after the body, add lines)."""
        if self._parsed is None or self._parsed[0] != len(self._lines):
            self._parsed = (len(self._lines), _final_headers(self._lines))
        return self._parsed[1]

    def _debug(self, kind: int, data: bytes) -> None:
        if kind == pycurl.INFOTYPE_HEADER_OUT:
            self._request_lines.append(data)

    def exchange(self, error: int, message: str) -> Exchange:
        """What the transfer ended as (`error`: libcurl's code, 0 for none)."""
        handle = self.handle
        status = handle.getinfo(pycurl.RESPONSE_CODE)
        status_line, headers = self._headers()
        if error == 0 and self._decoder is not None and not self._decoder.complete:
            error, message = pycurl.E_PARTIAL_FILE, f"the {self._decoder.coding} stream ends before its end"
        # libcurl's own clock: how long the transfer ran, and how long it had been silent when
        # it ended -- not when this thread got round to asking (later, on a busy machine).
        lasted = handle.getinfo(pycurl.TOTAL_TIME)
        return Exchange(status=status, status_line=status_line, headers=headers, body=b"".join(self.chunks),
                        http_version=_HTTP_VERSIONS.get(handle.getinfo(pycurl.INFO_HTTP_VERSION), "HTTP/1.1"),
                        request_headers=_request_headers(self._request_lines) if self._request_lines else None,
                        error=error, error_message=message, failure=self.failure,
                        silent_for=max(0.0, self.started + lasted - self.last_data), lasted=lasted,
                        os_errno=handle.getinfo(pycurl.OS_ERRNO) if error else 0,
                        tls_verify_result=handle.getinfo(pycurl.SSL_VERIFYRESULT) if error else 0,
                        tls_subject=_certificate_subject(handle) if error else "")


def _certificate_subject(handle: pycurl.Curl) -> str:
    """The subject of the server's certificate (libcurl's CERTINFO, collected before the
    certificate is judged), "" when none came."""
    try:
        chain = handle.getinfo(pycurl.INFO_CERTINFO)
    except pycurl.error:
        return ""
    for name, value in chain[0] if chain else ():
        if name == "Subject":
            return str(value)
    return ""


def _final_headers(lines: list[bytes]) -> tuple[str, list[tuple[str, bytes]]]:
    """The status line and headers of the final response (after any 1xx, or a proxy's answer
    to CONNECT)."""
    start, status_line = 0, ""
    for number, line in enumerate(lines):
        if line.startswith(b"HTTP/"):
            start, status_line = number + 1, line.decode("latin-1").strip()
    headers = []
    for line in lines[start:]:
        name, colon, value = line.partition(b":")
        if colon:
            headers.append((name.strip().lower().decode("latin-1"), value.strip()))
    return status_line, headers


def _content_encoding(headers: list[tuple[str, bytes]]) -> str:
    codings = [value.decode("latin-1").strip().lower() for name, value in headers if name == "content-encoding"]
    return codings[-1] if codings else ""


def _request_headers(chunks: list[bytes]) -> dict[str, str]:
    """The last request's headers as libcurl wrote them (an HTTP/1.1-style block, for HTTP/2
    too)."""
    block = chunks[-1].decode("latin-1")
    headers = {}
    for line in block.split("\r\n")[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip()] = value.strip()
    return headers
