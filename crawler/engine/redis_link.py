"""The connection to the Redis server that holds a shared crawl (state.backend: redis).

One client per worker process, shared by its threads (redis-py pools connections). Every
command is retried with backoff while the server is away -- restarting, or loading its
append-only file -- so a Redis restart pauses the crawl instead of ending it; only a server
gone for longer than REDIS_PATIENCE stops it (with what it did kept, to resume).

The crawl's keys start with "crawl:<id>:", the id a digest of the output folder's absolute
path: every worker must see the shared output folder under the same path. Each change of the
shared state is one Lua script (crawler/engine/lua/), so no two workers ever see it half-done.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from crawler.errors import OutputError

log = logging.getLogger(__name__)

REDIS_PATIENCE = 300.0  # seconds a running crawl waits for an absent Redis before it stops
WARN_EVERY = 10.0  # seconds between two warnings that Redis is not answering
_LUA = Path(__file__).parent / "lua"


def crawl_prefix(output: Path) -> str:
    """The key prefix of the crawl writing into `output`."""
    digest = hashlib.sha256(str(output.absolute()).encode()).hexdigest()[:16]
    return f"crawl:{digest}:"


class PatientRetry:
    """redis-py's retry policy, with a warning when the server first goes missing."""

    @staticmethod
    def make(url: str, patience: float) -> Any:
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        said = [0.0]  # when the warning was last logged: every thread waits, one line says so

        class _Retry(Retry):
            def call_with_retry(self, do: Callable[[], Any], fail: Callable[..., Any], *args: Any,
                                **kwargs: Any) -> Any:
                def failed(error: Exception, *more: Any) -> None:
                    if time.monotonic() - said[0] > WARN_EVERY:
                        said[0] = time.monotonic()
                        log.warning("Redis at %s is not answering (%s); waiting for it", url, error)
                    fail(error, *more) if more else fail(error)
                return super().call_with_retry(do, failed, *args, **kwargs)

        # 0.05 s doubling to 2 s: a restart costs a second or two; then a try every 2 s.
        return _Retry(ExponentialBackoff(cap=2.0, base=0.05), retries=max(1, int(patience / 2) + 6))


def connect(url: str, patience: float = REDIS_PATIENCE) -> Any:
    """A client for `url` that has answered a PING (OutputError, in one line, if it does not:
    a wrong URL or a server that is down is said at once, before anything is touched)."""
    import redis
    from redis.exceptions import BusyLoadingError, RedisError

    try:
        client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5, socket_timeout=60,
                                      health_check_interval=30, retry=PatientRetry.make(url, patience),
                                      retry_on_error=[BusyLoadingError, ConnectionError, TimeoutError])
        probe = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5, socket_timeout=10)
        try:
            probe.ping()
        finally:
            probe.close()
    except (RedisError, ValueError, OSError) as error:
        raise OutputError(f"cannot reach the crawl state at {url}: {_one_line(error)}") from None
    return client


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


@cache
def _source(name: str) -> str:
    return (_LUA / "lib.lua").read_text() + "\n" + (_LUA / f"{name}.lua").read_text()


class Scripts:
    """The Lua scripts, registered with one client; each is called as
    `scripts.take(prefix, generation, *args)` and runs atomically on the server."""

    NAMES = ("take", "admit", "settle", "release", "adopt", "claim", "skip", "robots", "drop", "join",
             "beat", "leave", "finish", "fence", "others", "saved", "moved")

    def __init__(self, client: Any) -> None:
        self._scripts = {name: client.register_script(_source(name)) for name in self.NAMES}

    def __getattr__(self, name: str) -> Callable[..., Any]:
        script = self.__dict__.get("_scripts", {}).get(name)
        if script is None:
            raise AttributeError(name)
        return lambda *args: script(args=[str(arg) for arg in args])


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
    """Poll `condition` until it holds (True) or `timeout` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True
