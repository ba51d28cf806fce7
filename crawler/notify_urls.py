"""The Apprise URLs of `notify.urls`: `${VAR}` taken from the environment, checked by Apprise,
and shown without credentials.

A URL is kept in the config as written (with its `${VAR}`s), so that no secret sits in the
config model -- nor in what `crawl check`, `crawl config set` or a repr print of it; it is
expanded only to be checked (when the config is read) and to be sent to (at the end of a run).
Whatever is shown of it -- the target in report.json and in the log, an error message -- goes
through `target()` or `redact()` first.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ERRNO = re.compile(r"\[Errno -?\d+\][^'\")\]]*")
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key|auth|sig|user|login|session|code", re.IGNORECASE)
_MASK = "****"


def expand(text: str) -> str:
    """`text` with each `${VAR}` replaced by the environment variable's value. A variable that
    is not set is a ValueError naming it."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set (the URL uses ${{{name}}})")
        return os.environ[name]
    return _VARIABLE.sub(value, text)


def check(text: str) -> str:
    """Validate one notify URL as the config gives it: its variables are set and Apprise can
    send to it. Returns `text` unchanged (still with its `${VAR}`s)."""
    url = expand(text)
    with apprise_log() as messages:
        plugin = instantiate(url)
    if plugin is None:
        why = "; ".join(redact(message, secrets(text)) for message in messages if "Could not load" not in message)
        raise ValueError(f"Apprise cannot send to {redact(rough_target(url), secrets(text))}"
                         f"{': ' + why if why else ' (unknown service, or a malformed URL)'}")
    return text


def instantiate(url: str) -> Any:
    """Apprise's plugin for `url` (None if it cannot read it). Apprise's e-mail plugin imports
    the standard library's imghdr, deprecated since Python 3.11: that warning is Apprise's
    business, not this crawl's, so it is silenced for this one import -- the tests turn every
    other warning into an error."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
        import apprise

        return apprise.Apprise.instantiate(url)


@contextmanager
def apprise_log() -> Iterator[list[str]]:
    """Collect what Apprise logs meanwhile at WARNING and above (why a URL or a message
    failed), and the errno of a failed connection, which it logs at DEBUG. Apprise's log goes
    nowhere else: it may hold parts of URLs."""
    messages: list[str] = []
    handler = _Collect(messages)
    logger = logging.getLogger("apprise")
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


class _Collect(logging.Handler):
    def __init__(self, messages: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self._messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            self._messages.append(message.strip())
        elif errno := _ERRNO.search(message):
            self._messages.append(errno.group(0).strip())


def target(text: str) -> str:
    """Where a notify URL sends, for people: Apprise's privacy form (the tokens a service
    keeps in the path masked), without user, password or query, and with every secret of
    `secrets()` masked."""
    url = expand(text)
    with apprise_log():
        plugin = instantiate(url)
    shown = plugin.url(privacy=True) if plugin is not None else url
    return redact(rough_target(shown), secrets(text))


def rough_target(url: str) -> str:
    """scheme://host[:port]/path of a URL: no user, password, query or fragment."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else _MASK


def secrets(text: str) -> list[str]:
    """What must never be shown of a notify URL: the values of its variables, its user and
    password, and the query values whose names say they are secret (password=, token=...)."""
    found = [os.environ.get(name, "") for name in _VARIABLE.findall(text)]
    try:
        url = expand(text)
    except ValueError:
        return [value for value in found if len(value) > 1]
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    found += [unquote(piece) for piece in userinfo.split(":")] + userinfo.split(":")
    found += [value for key, value in parse_qsl(parts.query) if _SECRET_KEY.search(key)]
    # The longest first: a secret that contains another is masked whole.
    return sorted({value for value in found if len(value) > 1}, key=len, reverse=True)


def redact(message: str, hidden: list[str]) -> str:
    """`message` with every one of `hidden` masked."""
    for secret in hidden:
        message = message.replace(secret, _MASK)
    return message
