"""The form login before a crawl (the config's `login:`), and logging in again when the site
says the session is gone.

Logging in is what a browser does: GET the login page, take the form that has a password
field, keep every value it holds (hidden CSRF tokens, a "remember me" already ticked), fill in
`fields` and the password, and submit it as the form says (its method and action). It goes
through the crawl's own engine, so the session cookies it brings land in the jar every fetch
uses. The login page is not subject to robots.txt: the user asked for it by name.

The password and the cookies are secrets: no message here holds either.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from crawler.config import LoginConfig
from crawler.errors import FetchError, LoginError
from crawler.http.fetcher import Fetcher
from crawler.http.policy import Follow
from crawler.models import CrawlItem, LinkKind, Response
from crawler.urls import InvalidURLError, resolve

log = logging.getLogger(__name__)

_NOT_SENT = frozenset({"submit", "image", "button", "reset", "file"})  # input types a form does not send as such


@dataclass(frozen=True)
class LoginForm:
    action: str  # where it is submitted
    method: str  # "get" or "post"
    fields: list[tuple[str, str]]  # what it sends as it stands, in order
    password: str  # the name of its password field


class Login:
    """The session of a crawl behind a login. Thread-safe: fetcher threads may find it
    expired at once; one logs in again, the others wait and retry."""

    def __init__(self, config: LoginConfig, fetcher: Fetcher) -> None:
        self._config = config
        # Redirects of the login are followed wherever they lead (the crawl's redirect rule
        # would claim their targets as fetched).
        self._fetcher = fetcher.following(lambda item, target: Follow.NOW)
        self._lock = threading.Lock()
        self.generation = 0  # how many times it logged in
        parts = urlsplit(config.url)
        self._login_page = (parts.scheme, parts.netloc, parts.path)

    def is_login_page(self, url: str) -> bool:
        """Does `url` lead to the login page (whatever its query: ?next=/page)?"""
        parts = urlsplit(url)
        return (parts.scheme, parts.netloc, parts.path) == self._login_page

    def log_in(self) -> None:
        """Log in, or raise LoginError with what went wrong, in one line."""
        with self._lock:
            self._log_in()

    def renew(self, generation: int) -> None:
        """The session of `generation` expired: log in again, unless another thread has since."""
        with self._lock:
            if generation == self.generation:
                log.warning("the session expired: logging in again at %s", self._config.url)
                self._log_in()

    def _log_in(self) -> None:
        page = self._get(self._config.url)
        form = login_form(page)
        if form is None:
            raise LoginError(f"login: no form with a password field on {page.url}")
        answer = self._submit(form, page.charset or "utf-8")
        text = answer.body.decode(answer.charset or "utf-8", "replace")
        expected = self._config.success_text
        if expected is not None and expected not in text:
            raise LoginError(f"login at {self._config.url} failed: {expected!r} is not on the page it led to "
                             f"({_without_query(answer.url)})")
        if expected is None and login_form(answer) is not None:
            raise LoginError(f"login at {self._config.url} failed: the page it led to ({_without_query(answer.url)}) "
                             "asks for the password again")
        self.generation += 1
        log.info("logged in at %s", self._config.url)

    def _submit(self, form: LoginForm, charset: str) -> Response:
        filled = {**self._config.fields, form.password: self._config.password()}
        values = [(name, value) for name, value in form.fields if name not in filled] + list(filled.items())
        encoded = urlencode(values, encoding=charset, errors="xmlcharrefreplace")
        if form.method == "post":
            return self._get(form.action, encoded.encode("ascii"))
        parts = urlsplit(form.action)
        return self._get(urlunsplit((parts.scheme, parts.netloc, parts.path, encoded, "")))

    def _get(self, url: str, form: bytes | None = None) -> Response:
        try:
            result = self._fetcher.fetch(CrawlItem(url, 0, LinkKind.PAGE), form=form)
        except FetchError as error:
            raise LoginError(f"login: {_without_query(url)}: {error}") from None
        assert isinstance(result, Response)  # every redirect is followed
        return result


def _without_query(url: str) -> str:
    """A URL fit for a message: a form sent with GET has the password in its query."""
    return url.split("?", 1)[0]


def login_form(page: Response) -> LoginForm | None:
    """The first form of the page with a password field, as a browser would submit it."""
    from bs4 import BeautifulSoup  # a login reads one page: not imported by every crawl

    soup = BeautifulSoup(page.body, "html.parser", from_encoding=page.charset)
    base_tag = soup.find("base", href=True)
    base = page.url
    if base_tag is not None:
        with contextlib.suppress(InvalidURLError):
            base = resolve(page.url, str(base_tag["href"]))
    for form in soup.find_all("form"):
        password = form.find("input", attrs={"type": lambda kind: (kind or "").lower() == "password"})
        if password is None or not password.get("name"):
            continue
        try:
            action = resolve(base, str(form.get("action") or page.url))
        except InvalidURLError:
            action = page.url
        method = "post" if str(form.get("method", "get")).lower() == "post" else "get"
        return LoginForm(action, method, _values(form), str(password["name"]))
    return None


def _values(form: object) -> list[tuple[str, str]]:
    """The (name, value) pairs a form sends as it stands: its named, enabled controls; ticked
    boxes only; a select's chosen option; the first submit button with a name (the one
    pressed)."""
    values: list[tuple[str, str]] = []
    pressed = False
    for control in form.find_all(["input", "select", "textarea", "button"]):  # type: ignore[attr-defined]
        name = control.get("name")
        if not name or control.has_attr("disabled"):
            continue
        kind = str(control.get("type", "submit" if control.name == "button" else "text")).lower()
        if control.name == "select":
            chosen = control.find("option", selected=True) or control.find("option")
            if chosen is not None:
                values.append((name, str(chosen.get("value", chosen.get_text()))))
        elif control.name == "textarea":
            values.append((name, control.get_text()))
        elif kind == "submit" and not pressed:
            pressed = True
            values.append((name, str(control.get("value", ""))))
        elif kind in ("checkbox", "radio"):
            if control.has_attr("checked"):
                values.append((name, str(control.get("value", "on"))))
        elif kind not in _NOT_SENT:
            values.append((name, str(control.get("value", ""))))
    return values
