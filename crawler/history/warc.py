"""WARC 1.1 output (output_formats: [files, warc]): the crawl as standard web-archive records.

Each download becomes a request record and a response record; content unchanged since the
crawl before (a 304, or a 200 with the same SHA-256) becomes a revisit record pointing at the
earlier capture, so the archive of a mostly unchanged night stays small. Payload digests are
SHA-256 (the manifest's), which is what lets a revisit name the capture it repeats. Bodies
are recorded as the crawler used them, decoded: Content-Encoding is dropped and
Content-Length set to match. Credentials (Authorization, the configured http.headers) and
cookies (Cookie, Set-Cookie: a session's are as good as a password) are never written.
"""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from crawler import __version__
from crawler.models import Response, SavedFile

_HOP_BY_HOP = frozenset({"content-encoding", "transfer-encoding", "content-length", "connection", "keep-alive"})
_SECRET = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


class WarcArchive:
    """One gzipped WARC file, appended to by the writer threads."""

    def __init__(self, path: Path, secret_headers: Iterable[str], info: dict[str, str]) -> None:
        self.path = path
        self._secret = {name.lower() for name in secret_headers} | _SECRET
        # Guards the file: records are written whole, one at a time.
        self._lock = threading.Lock()
        self._stream = open(path, "ab")  # noqa: SIM115 - open for the whole crawl, closed by close()
        self._writer = WARCWriter(self._stream, gzip=True, warc_version="1.1")
        self._write(self._writer.create_warcinfo_record(path.name, {
            "software": f"crawl/{__version__}", "format": "WARC File Format 1.1", **info}))

    def record(self, response: Response, entry: SavedFile, revisit_of: SavedFile | None) -> None:
        """The exchange that produced `response`: a full capture, or a revisit of an earlier
        identical one. Copies reused without asking the server leave no record."""
        if response.stored is not None and response.headers is None:
            return  # fresh copy, no request was made
        date = (entry.checked_at or entry.fetched_at).replace("+00:00", "Z")
        digest = "sha256:" + base64.b32encode(bytes.fromhex(entry.sha256)).decode()
        request = self._request_record(response, date)
        if revisit_of is not None:
            record = self._writer.create_revisit_record(
                response.url, digest, revisit_of.url, revisit_of.fetched_at.replace("+00:00", "Z"),
                http_headers=self._response_headers(response, None), warc_headers_dict={"WARC-Date": date})
        else:
            record = self._writer.create_warc_record(
                response.url, "response", payload=io.BytesIO(response.body), length=len(response.body),
                http_headers=self._response_headers(response, len(response.body)),
                warc_headers_dict={"WARC-Date": date, "WARC-Payload-Digest": digest})
        with self._lock:
            if request is not None:
                self._writer.write_record(request)
            self._writer.write_record(record)

    def close(self) -> None:
        with self._lock:
            self._stream.close()

    def _request_record(self, response: Response, date: str):  # type: ignore[no-untyped-def]
        if response.request_headers is None:
            return None
        parts = urlsplit(response.url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = [(name, value) for name, value in response.request_headers.items()
                   if name.lower() not in self._secret]
        if not any(name.lower() == "host" for name, _ in headers):
            headers.insert(0, ("Host", parts.netloc))
        http = StatusAndHeaders(f"GET {target} {response.http_version}", headers, is_http_request=True)
        return self._writer.create_warc_record(response.url, "request", http_headers=http,
                                               warc_headers_dict={"WARC-Date": date})

    def _response_headers(self, response: Response, length: int | None) -> StatusAndHeaders:
        status = 200 if response.status == 304 else response.status
        headers = [(name, value) for name, value in (response.headers or {}).items()
                   if name.lower() not in _HOP_BY_HOP and name.lower() not in self._secret]
        if length is not None:
            headers.append(("Content-Length", str(length)))
        return StatusAndHeaders(f"{status} {response.reason or 'OK'}", headers, protocol=response.http_version)

    def _write(self, record: object) -> None:
        with self._lock:
            self._writer.write_record(record)
