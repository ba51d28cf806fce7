"""requests' and urllib3's exceptions, translated into FetchErrors: a short `reason` to group
failures by, whether a retry may help, and the cause in the system's words.
"""

from __future__ import annotations

import http.client
import re
import socket
from urllib.parse import urlsplit

import requests

from crawler.errors import FetchError


def translate(exc: requests.exceptions.RequestException, url: str) -> FetchError:
    """Map a requests exception to a FetchError reason; network trouble is retryable."""
    innermost = _innermost(exc)
    detail = _cause(innermost)
    errors = requests.exceptions
    if isinstance(exc, errors.Timeout):
        return FetchError(f"timed out: {detail}", url, "timeout", retryable=True)
    if isinstance(exc, errors.SSLError):
        return FetchError(f"TLS error: {detail}", url, "tls_error")
    if isinstance(exc, errors.ChunkedEncodingError):
        return FetchError(f"connection broke mid-body: {detail}", url, "incomplete_body", retryable=True)
    if isinstance(exc, errors.ContentDecodingError):
        return FetchError(f"cannot decode the body: {detail}", url, "decode_error")
    if isinstance(exc, errors.ConnectionError):
        # requests reports a read timeout while streaming as a ConnectionError
        lowered = str(exc).lower()
        if "timed out" in lowered:
            return FetchError(f"timed out: {detail}", url, "timeout", retryable=True)
        if isinstance(innermost.__context__, socket.gaierror) or "failed to resolve" in lowered:
            return FetchError(f"cannot resolve the host name {urlsplit(url).hostname}: {detail}", url,
                              "dns_error", retryable=True)
        return FetchError(f"connection failed: {detail}", url, "connection_error", retryable=True)
    if isinstance(exc, (errors.InvalidURL, errors.InvalidSchema, errors.MissingSchema)):
        return FetchError(f"unusable URL: {detail}", url, "invalid_url")
    if isinstance(exc, errors.InvalidHeader):  # e.g. two Content-Length headers that disagree
        return FetchError(f"malformed response: {detail}", url, "bad_response")
    return FetchError(f"request failed: {detail}", url, "request_error", retryable=True)


def _innermost(exc: requests.exceptions.RequestException) -> BaseException:
    """The error under the wrappers of requests and urllib3 (whose MaxRetryError keeps it as
    `reason`)."""
    inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else exc
    reason = getattr(inner, "reason", None)  # ssl.SSLError has one too: a string
    return reason if isinstance(reason, BaseException) else inner


_POOL_PREFIX = re.compile(r"^\w+\(host='[^']*', port=\d+\): ")


def _cause(error: BaseException) -> str:
    """What went wrong, in the system's words where there are some: "Connection refused", not
    "HTTPConnectionPool(host='x', port=80): Max retries exceeded with url: / (Caused by
    NewConnectionError(...: Failed to establish a new connection: [Errno 111] Connection
    refused'))"."""
    for candidate in (error, error.__context__, *error.args):
        if isinstance(candidate, OSError) and candidate.strerror:
            return candidate.strerror
    if isinstance(error, http.client.BadStatusLine) and not isinstance(error, http.client.RemoteDisconnected):
        return f"not an HTTP response: {error.line[:100]!r}"
    nested = [arg for arg in error.args if isinstance(arg, BaseException)]
    if nested:  # urllib3's ProtocolError("Connection aborted.", the error)
        return _cause(nested[-1])
    return _POOL_PREFIX.sub("", str(error))[:300]
