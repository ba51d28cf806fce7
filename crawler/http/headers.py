"""What HTTP headers mean to a mirror: media type and charset, Retry-After, the validators of a
conditional request, and how long a response may be reused without asking again (RFC 9111).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from crawler.models import SavedFile


def parse_content_type(header: str) -> tuple[str, str | None]:
    """("text/html", "utf-8") from "text/html; charset=UTF-8"."""
    media_type, _, params = header.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'").lower()
    return media_type.strip().lower(), charset


def parse_retry_after(header: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return float(header)
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def fresh_until(headers: Mapping[str, str], now: datetime, heuristic: float) -> datetime | None:
    """Until when a response may be reused without asking the server again (RFC 9111):
    Cache-Control max-age, else Expires, else -- for a response with Last-Modified -- a tenth
    of its age, at most `heuristic` seconds. None: it must be revalidated every time."""
    directives = {}
    for part in headers.get("Cache-Control", "").lower().split(","):
        name, _, value = part.strip().partition("=")
        directives[name] = value.strip('"')
    if "no-store" in directives or "no-cache" in directives:
        return None
    if directives.get("max-age", "").isdigit():
        age = int(directives["max-age"])
        return now + timedelta(seconds=age) if age > 0 else None
    expires = http_date(headers.get("Expires"))
    if expires is not None:
        served = http_date(headers.get("Date")) or now
        return now + (expires - served) if expires > served else None
    modified = http_date(headers.get("Last-Modified"))
    if modified is None or heuristic <= 0:
        return None
    lifetime = min(heuristic, max(0.0, (now - modified).total_seconds()) / 10)
    return now + timedelta(seconds=lifetime) if lifetime > 0 else None


def http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def validators(stored: SavedFile) -> dict[str, str] | None:
    headers = {}
    if stored.etag:
        headers["If-None-Match"] = stored.etag
    if stored.last_modified:
        headers["If-Modified-Since"] = stored.last_modified
    return headers or None


def utf8_header(value: str) -> str:
    """http.client reads header bytes as Latin-1; a server sending a raw UTF-8 Location (as
    many do, and browsers read it so) meant UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:  # not UTF-8 bytes (or not from bytes at all): as it was read
        return value
