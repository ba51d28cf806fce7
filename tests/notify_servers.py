"""Real receivers on 127.0.0.1 for the notification tests: a webhook endpoint (what Apprise's
json:// posts to) and an SMTP server (aiosmtpd) for mailto://."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


class Webhook(ThreadingHTTPServer):
    """Records every POST: its path, Authorization user and password, and JSON body."""

    daemon_threads = True

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.posts: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _WebhookHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def __enter__(self) -> Webhook:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.shutdown()
        self.server_close()

    def record(self, post: dict[str, Any]) -> None:
        with self._lock:
            self.posts.append(post)


class _WebhookHandler(BaseHTTPRequestHandler):
    server: Webhook

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        user, password = None, None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        self.server.record({"path": self.path, "user": user, "password": password, "json": json.loads(body)})
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Session(Session):
    """aiosmtpd sets its deprecated Session.login_data itself on every login, warning each
    time: this server never reads it, so it keeps the value without the warning."""

    @property  # type: ignore[override]
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _SMTP(SMTP):
    def _create_session(self) -> Session:
        return _Session(self.loop)


class MailServer(Controller):
    """SMTP on 127.0.0.1 without TLS, AUTH LOGIN/PLAIN with one user; keeps the messages."""

    def __init__(self, user: str, password: str) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.logins: list[tuple[str, str]] = []
        self._user, self._password = user, password
        with socket.socket() as probe:  # aiosmtpd needs a port of its own choosing
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        super().__init__(self, hostname="127.0.0.1", port=port, authenticator=self._authenticate,
                         auth_require_tls=False)

    def factory(self) -> SMTP:
        return _SMTP(self.handler, **self.SMTP_kwargs)

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=(data.login.decode(), data.password.decode()) == (self._user, self._password))

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd's)
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        self.messages.append(email.message_from_bytes(content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"

    def __enter__(self) -> MailServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
