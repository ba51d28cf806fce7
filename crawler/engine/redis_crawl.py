"""A worker's place in a crawl shared through Redis (state.backend: redis).

Every `crawl CONFIG` run with the same config joins the same crawl: the running one, or a new
one when none runs (join.lua). A worker is registered with an expiry, `state.lease_seconds`
ahead; a heartbeat thread renews it a few times per lease, and with it the lease of every URL
the worker holds. A worker that stops answering -- killed with kill -9, stopped, cut off --
lapses: the next worker to look returns its URLs to the queue, frees its hosts' request slots,
and the crawl goes on without it. If it comes back, its leases are gone: what it was doing is
dropped at the fence (fence.lua), just before a file would take its name.

The crawl is done when no URL is queued and no lease is live; then the first worker to see it
claims the finishing (finish.lua) -- links fixed, manifest, report, changes, snapshot published
-- after the others have left; they exit 0 without writing any of it.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crawler.config import Config
from crawler.engine.redis_link import Scripts, connect, crawl_prefix, wait_until
from crawler.errors import CrawlError, HandedOverError, OutputError

log = logging.getLogger(__name__)

BEATS_PER_LEASE = 4  # a worker renews its lease this often within lease_seconds


@dataclass(frozen=True)
class Joined:
    """What join.lua says of the crawl a worker joined."""

    new: bool  # it began a new crawl (and seeds it)
    started_at: str
    snapshot: str | None
    first_crawl: bool
    others: int  # other live workers when it joined


class SharedCrawl:
    """The connection, this worker's id and registration, and the crawl-wide steps that are
    not the frontier's or the journal's: joining, the heartbeat, finishing, leaving."""

    def __init__(self, config: Config) -> None:
        assert config.state.url is not None  # validated: backend redis has a url
        self.url = config.state.url
        self.lease_ms = int(config.state.lease_seconds * 1000)
        self.prefix = crawl_prefix(config.output_dir)
        self.worker = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"
        self.max_pages = config.scope.max_pages or 0
        self.client: Any = None
        self.scripts: Any = None
        self.generation = ""
        self.over = threading.Event()  # the crawl is finishing (or done) elsewhere: take no more work
        self._quiet = threading.Event()  # set to stop the heartbeat
        self._heart: threading.Thread | None = None
        self._left = False
        self.on_beat: list[Callable[[], None]] = []  # run after each heartbeat (the frontier's reconcile)

    @property
    def keys(self) -> str:
        """The prefix of this crawl's data keys (its generation's)."""
        return f"{self.prefix}{self.generation}:"

    def call(self, script: str, *args: object) -> Any:
        """Run one of the Lua scripts on this crawl's keys."""
        return getattr(self.scripts, script)(self.prefix, self.generation, *args)

    # -- joining and leaving ------------------------------------------------------------------

    def join(self, started_at: str, snapshot: str | None, first_crawl: bool, config_json: str) -> Joined:
        """Connect and join the crawl (HandedOverError if a live worker is finishing it)."""
        self.client = connect(self.url)
        self.scripts = Scripts(self.client)
        answer = self._run_script("join", self.worker, self.lease_ms, self._info(), started_at, snapshot or "",
                                  "1" if first_crawl else "", config_json)
        if answer[0] == "finishing":
            raise HandedOverError(f"the crawl of this output folder is being finished by worker {answer[1]}")
        self.generation = answer[1]
        if answer[0] == "new":
            self._forget_older_crawls()
        self._heart = threading.Thread(target=self._heartbeat, name="lease", daemon=True)
        self._heart.start()
        return Joined(new=answer[0] == "new", started_at=answer[2], snapshot=answer[3] or None,
                      first_crawl=answer[4] == "1", others=int(answer[5]))

    def leave(self, counters: dict[str, int]) -> None:
        """This worker is done: what it still holds goes back to the queue; its counters join
        the crawl's. Idempotent."""
        if self._left or self.scripts is None:
            return
        self._left = True
        self._stop_heartbeat()
        self.call("leave", self.worker, *(part for name, value in counters.items() for part in (name, value)))

    def close(self) -> None:
        self._stop_heartbeat()
        if self.client is not None:
            self.client.close()

    # -- finishing ----------------------------------------------------------------------------

    def claim_finish(self) -> bool:
        """Is finishing the crawl this worker's? (It is done, and no other worker claimed it.)"""
        return self.call("finish", self.worker, self.max_pages) == 1

    def add_counters(self, counters: dict[str, int]) -> None:
        """The finisher's own counters join the crawl's (it does not leave before it is done)."""
        with self.client.pipeline() as pipe:
            for name, value in counters.items():
                pipe.hincrby(f"{self.keys}totals", name, value)
            pipe.execute()

    def wait_for_others(self) -> None:
        """Until every other worker has left: their last fixes of links must be on disk before
        the finisher fixes the rest (a worker that stops answering lapses after its lease)."""
        if not wait_until(lambda: self.call("others", self.worker) == 0, timeout=2 * self.lease_ms / 1000 + 60):
            log.warning("other workers are still registered; finishing without waiting longer")

    # -- fencing ------------------------------------------------------------------------------

    def holds(self, url: str, token: str) -> bool:
        """Is the lease of `url` still this worker's (`token`)?"""
        return self.call("fence", url, token, self.worker) == 1

    def may_rewrite(self) -> bool:
        """Is this worker still one of the crawl's (or its finisher)?"""
        return self.call("fence", "", "", self.worker) == 1

    # -- internals ----------------------------------------------------------------------------

    def _run_script(self, name: str, *args: object) -> Any:
        """A script on the crawl's prefix, before the generation is known (join)."""
        from redis.exceptions import RedisError

        try:
            return getattr(self.scripts, name)(self.prefix, self.generation, *args)
        except RedisError as error:
            raise OutputError(f"the crawl state at {self.url} refused {name}: {error}") from None

    def _info(self) -> str:
        return f"pid {os.getpid()} on {socket.gethostname()}"

    def _heartbeat(self) -> None:
        """Renew this worker's registration (and so its leases) a few times per lease."""
        from redis.exceptions import RedisError  # only a shared crawl needs redis

        period = self.lease_ms / 1000 / BEATS_PER_LEASE
        while not self._quiet.wait(period):
            try:
                self.beat()
                for check in self.on_beat:
                    check()
            except (RedisError, CrawlError) as error:  # the client retried already: keep trying
                log.warning("cannot renew this worker's leases: %s", error)

    def beat(self) -> None:
        """Renew this worker's registration now (registered anew if it had lapsed)."""
        answer = self.call("beat", self.worker, self.lease_ms, self._info())
        if answer == "lost":
            log.warning("this worker was not heard from for longer than state.lease_seconds: the URLs it "
                        "held went to other workers; what it was doing with them is dropped")
        elif answer == "over":
            self.over.set()

    def _stop_heartbeat(self) -> None:
        self._quiet.set()
        if self._heart is not None and self._heart is not threading.current_thread():
            self._heart.join()

    def _forget_older_crawls(self) -> None:
        """A new crawl began: the keys of the crawls before it go (their outlinks stay: the
        new crawl reads unchanged pages' links from them)."""
        current = self.keys
        for key in self.client.scan_iter(match=f"{self.prefix}*", count=1000):
            rest = key[len(self.prefix):]
            generation, colon, _ = rest.partition(":")
            if colon and generation.isdigit() and not key.startswith(current):
                self.client.unlink(key)
