"""HTTPS for the tests: test CAs and certificates made by trustme, and the test server
(SiteServer: the sample site, or routes) speaking TLS on a loopback address."""

from __future__ import annotations

import ssl
from datetime import datetime, timedelta, timezone
from pathlib import Path

import trustme

from crawler.demo.server import SITE, Route, SiteServer

NAMES = ("127.0.0.1", "127.0.0.2", "localhost")  # the site, another loopback host, the "CDN"


class TlsSiteServer(SiteServer):
    """SiteServer over HTTPS with `cert`; with `client_ca`, a client certificate that CA
    issued is required. Its URLs are https: (the sample site's links too)."""

    def __init__(self, cert: trustme.LeafCert, root: Path | None = SITE, routes: dict[str, Route] | None = None,
                 host: str = "127.0.0.1", client_ca: trustme.CA | None = None,
                 tls_max: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED) -> None:
        super().__init__(root=root, routes=routes, host=host)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.maximum_version = tls_max
        cert.configure_cert(context)
        if client_ca is not None:
            client_ca.configure_trust(context)
            context.verify_mode = ssl.CERT_REQUIRED
        # The handshake happens in the handler's thread, not in the one accepting connections.
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    @property
    def url(self) -> str:
        return super().url.replace("http:", "https:", 1)

    @property
    def cdn_url(self) -> str:
        return f"https://localhost:{self.port}/"

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that refused the certificate: the crawler's side is what the tests check


def leaf(ca: trustme.CA, *names: str, name: str = "site.test", expired: bool = False) -> trustme.LeafCert:
    """A server certificate from `ca` for `names` (default: every loopback name the tests use),
    with `name` as its common name (what a failure's message shows)."""
    now = datetime.now(timezone.utc)
    period = {"not_before": now - timedelta(days=30), "not_after": now - timedelta(days=1)} if expired else {}
    return ca.issue_cert(*(names or NAMES), common_name=name, **period)


def write_ca(ca: trustme.CA, path: Path) -> Path:
    ca.cert_pem.write_to_path(str(path))
    return path
