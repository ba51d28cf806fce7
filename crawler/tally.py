"""Counting what a crawl does: each worker thread's `Tally`, and the `Stats` a progress
display reads while the crawl runs.

Each worker thread owns one `Tally` and is the only thread writing to it, so counting takes
no lock; the tallies are added up once every thread has been joined.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from crawler.models import Failure

STAGES = ("fetch", "render", "parse", "write")  # "render": only with render.mode auto or always


@dataclass
class Stats:
    """A crawl in progress, as a progress display shows it."""

    elapsed: float
    saved: int
    discovered: int
    bytes: int
    errors: int
    busy: dict[str, int]  # stage -> items its threads work on now
    threads: dict[str, int]  # stage -> items its threads can work on at once (a fetcher drives many)
    queued: dict[str, int]  # queue -> items waiting in it
    queue_size: int
    frontier: int = 0  # URLs waiting in the frontier for a fetcher (and their host's turn)
    retrying: int = 0  # URLs waiting out a retry delay
    held: int = 0  # pages max_pages holds back: waiting for the pages before them, or left out
    page_limit_reached: bool = False  # max_pages is used up (by pages saved, or in flight)


@dataclass
class Tally:
    requests_ok: int = 0  # responses received and kept (after redirects)
    bytes_downloaded: int = 0
    files_saved: int = 0
    html_pages_saved: int = 0
    redirects: int = 0  # redirects to a URL fetched elsewhere, or not followed
    retries: int = 0
    not_modified: int = 0  # 304 answers: the stored copy was kept
    reused_fresh: int = 0  # stored copies still fresh: not even asked for
    pages_rendered: int = 0  # pages saved as a browser rendered them
    browser_requests: int = 0  # what rendering them cost the sites (requests_ok: the fetchers')
    browser_bytes: int = 0
    failures: list[Failure] = field(default_factory=list)
    parse_errors: list[Failure] = field(default_factory=list)
    render_failures: list[Failure] = field(default_factory=list)  # pages saved as served: not rendered
    aliases: list[tuple[str, str]] = field(default_factory=list)  # (redirecting URL, its target)
    stage: str = ""  # of the thread that owns it
    busy: int = 0  # the items that thread is working on now (a fetcher drives many at once)
    slots: int = 1  # the items it can work on at once
    busy_seconds: float = 0.0  # item-seconds: `busy` added up over the run (what the run was bound by)
    _since: float = 0.0  # when `busy` last changed

    def working_on(self, items: int) -> None:
        """From now on the thread works on `items` items (0: it waits for work)."""
        now = time.monotonic()
        if self._since:
            self.busy_seconds += self.busy * (now - self._since)
        self.busy = items
        self._since = now

    def counters(self) -> dict[str, int]:
        """The counters that add up over the runs of one crawl (kept in its state)."""
        return {"requests_ok": self.requests_ok, "bytes_downloaded": self.bytes_downloaded,
                "redirects": self.redirects, "retries": self.retries, "not_modified": self.not_modified,
                "reused_fresh": self.reused_fresh, "pages_rendered": self.pages_rendered,
                "browser_requests": self.browser_requests, "browser_bytes": self.browser_bytes}

    def merge(self, other: Tally) -> None:
        self.requests_ok += other.requests_ok
        self.bytes_downloaded += other.bytes_downloaded
        self.files_saved += other.files_saved
        self.html_pages_saved += other.html_pages_saved
        self.redirects += other.redirects
        self.retries += other.retries
        self.not_modified += other.not_modified
        self.reused_fresh += other.reused_fresh
        self.pages_rendered += other.pages_rendered
        self.browser_requests += other.browser_requests
        self.browser_bytes += other.browser_bytes
        self.failures.extend(other.failures)
        self.parse_errors.extend(other.parse_errors)
        self.render_failures.extend(other.render_failures)
        self.aliases.extend(other.aliases)
