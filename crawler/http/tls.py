"""TLS for the crawl: which certificate authorities are trusted, whether certificates are
checked at all, the client certificate, and what a failed handshake was, in words.

The CAs: the file REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE names, else certifi's (the wheel's
libcurl looks for Red Hat's path) -- and, with http.ca_bundle, that file's CAs *as well*: both
are written into one PEM file for the crawl (a temporary file, removed when the crawl's engine
goes). One file rather than the PEM text handed to libcurl as a blob: libcurl caches the
certificate store it reads from a file, while a blob is parsed again for every connection
(about 4 ms each, measured).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import weakref
from pathlib import Path

import certifi
import pycurl

from crawler.config import HttpConfig
from crawler.errors import FetchError
from crawler.http.transfer import Exchange

VERIFY_OFF_WARNING = ("http.verify is false: TLS certificates are not checked, so anyone between this machine "
                      "and the site could have served what was saved")

TLS_ERRORS = frozenset({pycurl.E_SSL_CONNECT_ERROR, pycurl.E_PEER_FAILED_VERIFICATION, pycurl.E_SSL_CERTPROBLEM,
                        pycurl.E_SSL_CIPHER, pycurl.E_SSL_CACERT_BADFILE, pycurl.E_SSL_ISSUER_ERROR,
                        pycurl.E_SSL_PINNEDPUBKEYNOTMATCH, pycurl.E_SSL_INVALIDCERTSTATUS,
                        pycurl.E_SSL_ENGINE_INITFAILED, pycurl.E_USE_SSL_FAILED})
# OpenSSL's verify results (X509_V_ERR_*) that mean the certificate's time is over, or not yet.
_EXPIRED = frozenset({9, 10})  # not yet valid, has expired
# ... that mean no trusted CA vouches for it: self-signed, an unknown issuer, an untrusted root.
_UNTRUSTED = frozenset({2, 18, 19, 20, 21, 24, 27})
_HOSTNAME_WORDS = ("subject name", "does not match target host", "no alternative certificate")
# The server wanted a client certificate and did not get one it accepts (TLS 1.3 says so
# after the handshake, as an alert when the response is read).
_CLIENT_CERT_WORDS = ("certificate required", "alert bad certificate", "alert unknown ca")


def default_ca_file() -> str:
    """The CA bundle used when http.ca_bundle adds none: the environment's, else certifi's."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()


class TlsOptions:
    """What every libcurl handle of a crawl is told about TLS."""

    def __init__(self, config: HttpConfig) -> None:
        self.verify = config.verify
        self.ca_file = default_ca_file()
        if config.ca_bundle is not None:
            self.ca_file = _combined_bundle(Path(self.ca_file), config.ca_bundle)
            weakref.finalize(self, _remove, self.ca_file)
        self._client_cert = config.client_cert

    def apply(self, handle: pycurl.Curl) -> None:
        handle.setopt(pycurl.CAINFO, self.ca_file)
        handle.setopt(pycurl.OPT_CERTINFO, 1)  # the certificate's subject, for a failure's message
        if not self.verify:
            handle.setopt(pycurl.SSL_VERIFYPEER, 0)
            handle.setopt(pycurl.SSL_VERIFYHOST, 0)
        if self._client_cert is not None:
            handle.setopt(pycurl.SSLCERT, str(self._client_cert.cert))
            handle.setopt(pycurl.SSLCERTTYPE, "PEM")
            handle.setopt(pycurl.SSLKEY, str(self._client_cert.key or self._client_cert.cert))
            handle.setopt(pycurl.SSLKEYTYPE, "PEM")


def _combined_bundle(default: Path, extra: Path) -> str:
    """A PEM file of both bundles' certificates, readable by this user only."""
    handle, name = tempfile.mkstemp(prefix="crawl-ca-", suffix=".pem")
    with os.fdopen(handle, "wb") as out:
        for part in (default, extra):
            out.write(part.read_bytes().rstrip(b"\n") + b"\n")
    return name


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def tls_failure(exchange: Exchange, url: str) -> FetchError | None:
    """The FetchError of a failed TLS handshake, by what was wrong: tls_untrusted, tls_expired,
    tls_hostname, or tls_error; None if the failure was not about TLS."""
    message, result = exchange.error_message, exchange.tls_verify_result
    subject = f" (certificate: {exchange.tls_subject})" if exchange.tls_subject else ""
    lowered = message.lower()
    if exchange.error == pycurl.E_PEER_FAILED_VERIFICATION:
        if any(words in lowered for words in _HOSTNAME_WORDS):
            return FetchError(f"TLS certificate is for another host name: {message}{subject}", url, "tls_hostname")
        if result in _EXPIRED:
            return FetchError(f"TLS certificate {_reason(message)}{subject}", url, "tls_expired")
        if result in _UNTRUSTED:
            return FetchError(f"TLS certificate not trusted: {_reason(message)}{subject}", url, "tls_untrusted")
        return FetchError(f"TLS certificate rejected: {message}{subject}", url, "tls_error")
    if any(words in lowered for words in _CLIENT_CERT_WORDS) and url.startswith("https:"):
        return FetchError(f"TLS: the server wants a client certificate it accepts (http.client_cert): {message}",
                          url, "tls_error")
    if exchange.error in TLS_ERRORS:
        return FetchError(f"TLS error: {message}{subject}", url, "tls_error")
    return None


def _reason(message: str) -> str:
    """OpenSSL's words in libcurl's message: "certificate has expired (10)" -> "has expired"."""
    text = message.rpartition("verify result: ")[2] or message
    text = text.rsplit(" (", 1)[0] if text.endswith(")") else text
    return text.removeprefix("certificate ")
