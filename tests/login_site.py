"""A site behind a login, for the tests: a form with a CSRF token tied to a cookie, a session
cookie, members' pages that send you to the login page when the session is gone, links that
log out, and a page that ends the session once (as a session that expires mid-crawl)."""

from __future__ import annotations

import secrets
import threading
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from tests import routes

USER, PASSWORD = "alice", "correct horse"
LOGIN_PAGE = """<!DOCTYPE html><html><head><title>Log in</title></head><body>
<form action="/search" method="get"><input name="q"></form>
<form action="/login" method="post" class="login">
  <input type="hidden" name="csrf" value="{csrf}">
  <input type="text" name="username"> <input type="password" name="password">
  <input type="checkbox" name="remember" value="yes" checked> <input type="checkbox" name="spam" value="yes">
  <select name="lang"><option value="en">English</option><option value="fr" selected>French</option></select>
  <button type="submit" name="action" value="login">Log in</button><button type="submit" name="other">x</button>
</form></body></html>"""
MEMBERS = """<!DOCTYPE html><html><body><p>Welcome {user}. <a href="/logout">Log out</a></p>
<a href="/members/a.html">A</a> <a href="/members/b.html">B</a> <a href="/account/end">Sign out</a>
<a href="/members/log-book.html">the log book</a></body></html>"""


class LoginSite:
    """The routes of a site whose /members/ pages need a session."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.csrf: dict[str, str] = {}  # pre-session cookie -> the token its form holds
        self.sessions: set[str] = set()
        self.logins: list[dict[str, list[str]]] = []  # the forms posted, as parsed
        self.seen: list[dict[str, str]] = []  # every request's path and headers
        self.expire_once = {"/members/b.html"}  # these end the session the first time they are asked for
        self.always_expire: set[str] = set()  # and these every time

    def routes(self) -> dict[str, routes.Route]:
        members = {path: self._members(body) for path, body in {
            "/members/": MEMBERS, "/members/a.html": "<p>page a of {user}</p>",
            "/members/b.html": "<p>page b of {user}</p>", "/members/log-book.html": "<p>log book</p>"}.items()}
        return {"/login": self._login, "/logout": self._logout, "/account/end": self._logout, **members}

    def _login(self, handler: BaseHTTPRequestHandler) -> None:
        self._note(handler)
        cookies = _cookies(handler)
        if handler.command == "GET":
            pre = secrets.token_hex(8)
            with self._lock:
                self.csrf[pre] = secrets.token_hex(8)
            routes.send(handler, 200, LOGIN_PAGE.format(csrf=self.csrf[pre]).encode(),
                        headers={"Set-Cookie": f"pre={pre}; Path=/; HttpOnly"})
            return
        form = parse_qs(handler.rfile.read(int(handler.headers["Content-Length"])).decode())
        with self._lock:
            self.logins.append(form)
            good = (form.get("csrf") == [self.csrf.get(cookies.get("pre", ""))] and form.get("username") == [USER]
                    and form.get("password") == [PASSWORD])
        if not good:
            routes.send(handler, 200, b"<p>Wrong user name or password.</p>" + LOGIN_PAGE.format(csrf="").encode())
            return
        session = secrets.token_hex(16)
        with self._lock:
            self.sessions.add(session)
        routes.send(handler, 302, b"", headers={"Location": "/members/",
                                                 "Set-Cookie": f"session={session}; Path=/; HttpOnly"})

    def _logout(self, handler: BaseHTTPRequestHandler) -> None:
        self._note(handler)
        with self._lock:
            self.sessions.discard(_cookies(handler).get("session", ""))
        routes.send(handler, 302, b"", headers={"Location": "/login"})

    def _members(self, body: str) -> routes.Route:
        def route(handler: BaseHTTPRequestHandler) -> None:
            self._note(handler)
            session = _cookies(handler).get("session", "")
            path = handler.path.split("?")[0]
            with self._lock:
                if path in self.expire_once or path in self.always_expire:
                    self.expire_once.discard(path)
                    self.sessions.discard(session)
                valid = session in self.sessions
            if not valid:
                routes.send(handler, 302, b"", headers={"Location": f"/login?next={path}"})
            else:
                routes.send(handler, 200, body.format(user=USER).encode())
        return route

    def _note(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.seen.append({"path": handler.path, **{k.lower(): v for k, v in handler.headers.items()}})

    def paths(self) -> list[str]:
        with self._lock:
            return [request["path"] for request in self.seen]


def _cookies(handler: BaseHTTPRequestHandler) -> dict[str, str]:
    jar = SimpleCookie(handler.headers.get("Cookie", ""))
    return {name: morsel.value for name, morsel in jar.items()}
