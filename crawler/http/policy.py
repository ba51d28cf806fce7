"""What the engine-independent side of fetching decides: when to retry a failure, and what to
do with a redirect.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass


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
