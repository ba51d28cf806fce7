"""What the engine-independent side of fetching decides: when to retry a failure, and what to
do with a redirect.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field
from typing import Protocol

from crawler.urls import host_of


@dataclass(frozen=True)
class RetryPolicy:
    """How many times, and after how long, a retryable failure is tried again."""

    retries: int
    backoff: float  # seconds before the first retry; doubles each time
    # A host name that does not resolve rarely starts resolving a few seconds later (a dead
    # third-party host, a typo): one more try covers a resolver hiccup without stalling the end
    # of the crawl on backoffs.
    dns_retries: int = 1

    def delay(self, attempt: int, retry_after: float | None = None, reason: str = "") -> float | None:
        """Seconds to wait before retry number `attempt + 1`, or None to give up."""
        if attempt >= (min(self.retries, self.dns_retries) if reason == "dns_error" else self.retries):
            return None
        # "Equal jitter": never less than half the exponential step, so a server that asked
        # for a pause gets one, but fetchers that failed together do not retry together.
        step = self.backoff * (2 ** attempt)
        delay = step / 2 + random.uniform(0, step / 2)
        return max(delay, retry_after or 0.0)


class Follow(enum.Enum):
    """What to do with a redirect: follow it now, leave it to the frontier, or drop it."""

    NOW = "now"
    LATER = "later"  # another host: its robots.txt and politeness apply, so it queues
    NO = "no"  # out of scope, disallowed, or already fetched


@dataclass(frozen=True, slots=True)
class Redirected:
    """`source` redirects to `target`, which this fetch did not follow."""

    source: str
    target: str
    status: int
    follow: Follow


@dataclass
class SecureHosts:
    """The downgrade rule: a host that answered over HTTPS never gets http.headers or
    credentials over plain HTTP -- not through a redirect from HTTPS to HTTP, nor through a
    plain-HTTP link to it -- as a browser that knows a host speaks HTTPS would not send them
    in clear (HSTS). Cookies marked Secure are libcurl's to withhold, and it does."""

    _hosts: set[str] = field(default_factory=set)  # set.add and `in` are atomic: no lock

    def answered(self, url: str) -> None:
        """`url` brought an answer (any status)."""
        if url.startswith("https:"):
            self._hosts.add(host_of(url))

    def in_clear(self, url: str) -> bool:
        """Would a request for `url` send to such a host in clear?"""
        return url.startswith("http:") and host_of(url) in self._hosts


class Session(Protocol):
    """A crawl behind a login (login.py): a redirect to its login page means it expired."""

    generation: int  # how many times it logged in

    def is_login_page(self, url: str) -> bool: ...

    def renew(self, generation: int) -> None:
        """Log in again if the session of `generation` is still the current one; raises
        LoginError if that fails."""
