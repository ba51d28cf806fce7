"""How a transfer that did not bring a usable response failed, in words: a FetchError with a
short `reason` to group failures by, whether a retry may help, and the cause in the system's
words ("Connection refused", not libcurl's error number).
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pycurl

from crawler.config import HttpConfig
from crawler.errors import FetchError
from crawler.http.transfer import Exchange

_TLS_ERRORS = frozenset({pycurl.E_SSL_CONNECT_ERROR, pycurl.E_PEER_FAILED_VERIFICATION, pycurl.E_SSL_CERTPROBLEM,
                         pycurl.E_SSL_CIPHER, pycurl.E_SSL_CACERT_BADFILE, pycurl.E_SSL_ISSUER_ERROR,
                         pycurl.E_SSL_PINNEDPUBKEYNOTMATCH, pycurl.E_SSL_INVALIDCERTSTATUS,
                         pycurl.E_SSL_ENGINE_INITFAILED, pycurl.E_USE_SSL_FAILED})
# libcurl's codes pycurl does not name
E_WEIRD_SERVER_REPLY = 8
E_HTTP2_STREAM = 92
# The body was cut: its framing (Content-Length, chunked, an HTTP/2 stream) says so.
_CUT_ERRORS = frozenset({pycurl.E_PARTIAL_FILE, pycurl.E_RECV_ERROR, pycurl.E_HTTP2, E_HTTP2_STREAM})
_INVALID_URL = frozenset({pycurl.E_URL_MALFORMAT, pycurl.E_UNSUPPORTED_PROTOCOL})


def failure(exchange: Exchange, url: str, config: HttpConfig) -> FetchError:
    """The FetchError a failed transfer of `url` is."""
    if exchange.failure is not None:  # stopped by our own write callback
        reason, _, detail = exchange.failure.partition(":")
        if reason == "too_large":
            return FetchError(f"body exceeds max_bytes {config.max_bytes}", url, "too_large")
        return FetchError(f"cannot decode the body: {detail}", url, "decode_error")
    code, message = exchange.error, exchange.error_message
    if code == pycurl.E_OPERATION_TIMEDOUT:
        return _timeout(exchange, url, config)
    if code == pycurl.E_COULDNT_RESOLVE_HOST:
        return FetchError(f"cannot resolve the host name {urlsplit(url).hostname}: {message}", url, "dns_error",
                          retryable=True)
    if code in _TLS_ERRORS:
        return FetchError(f"TLS error: {message}", url, "tls_error")
    if code == pycurl.E_FILESIZE_EXCEEDED:
        return FetchError(f"Content-Length exceeds max_bytes {config.max_bytes}", url, "too_large")
    if (code == pycurl.E_UNSUPPORTED_PROTOCOL and "HTTP/0.9" in message) or \
            (code == E_WEIRD_SERVER_REPLY and not exchange.status):  # no status line could be read
        return FetchError("connection failed: not an HTTP response", url, "connection_error", retryable=True)
    if code in _INVALID_URL:
        return FetchError(f"unusable URL: {message}", url, "invalid_url")
    if code in _CUT_ERRORS and exchange.status:  # the status line came, the whole body did not
        return FetchError(f"connection broke mid-body: {message}", url, "incomplete_body", retryable=True)
    if code == pycurl.E_GOT_NOTHING:
        return FetchError("connection failed: the server closed the connection without answering", url,
                          "connection_error", retryable=True)
    if code == E_WEIRD_SERVER_REPLY or (code == pycurl.E_HTTP2 and not exchange.status):
        return FetchError(f"malformed response: {message}", url, "bad_response")
    return FetchError(f"connection failed: {_cause(exchange)}", url, "connection_error", retryable=True)


def _timeout(exchange: Exchange, url: str, config: HttpConfig) -> FetchError:
    """libcurl says "timed out" for four different limits; which one it was."""
    message = exchange.error_message
    window = low_speed_window(config)
    if message.lower().startswith("operation too slow"):  # the low-speed rule: silence, or a trickle
        if exchange.silent_for >= window / 2 or not exchange.status:
            return FetchError(f"timed out: no data for {window} s", url, "timeout", retryable=True)
        return FetchError(f"the body arrived slower than min_rate ({config.min_rate} bytes/s) for {window} s",
                          url, "too_slow", retryable=True)
    if exchange.lasted >= config.max_time - 0.05:
        return FetchError(f"the response took longer than max_time ({config.max_time:g} s)", url, "too_slow")
    return FetchError(f"timed out: {message}", url, "timeout", retryable=True)  # connecting


def _cause(exchange: Exchange) -> str:
    """The system's words for a failed connection ("Connection refused"), else libcurl's."""
    if exchange.os_errno:
        return os.strerror(exchange.os_errno)
    return exchange.error_message or f"error {exchange.error}"


def low_speed_window(config: HttpConfig) -> int:
    """The seconds over which libcurl measures silence and http.min_rate: http.timeout, in whole
    seconds (libcurl's unit), at least 1."""
    return max(1, round(config.timeout))
