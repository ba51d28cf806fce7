"""report.json, and the summary a run ends with."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from crawler.history.changes import Changes
from crawler.mirror.offline import OfflineLinks
from crawler.models import Failure
from crawler.output_folder import SNAPSHOTS
from crawler.tally import STAGES, Tally
from crawler.urls import origin_of

REPORT_VERSION = 1
BUSY = 0.7  # a stage whose threads worked this share of the run held the others back


@dataclass
class CrawlReport:
    start_urls: list[str]
    output: str
    started_at: datetime
    finished_at: datetime
    outcome: str  # "completed", "interrupted", "aborted", or "unreachable" (completed, but no start URL answered)
    tally: Tally
    skipped: dict[str, str]  # URL -> scope rule
    not_fetched: list[str]  # admitted but never fetched (a stop, or max_pages reached)
    fatal_error: str | None = None
    offline_links: OfflineLinks | None = None
    resumed_from: str | None = None  # when this run went on with an interrupted crawl: its start
    snapshot: str | None = None  # snapshot mode: this run's snapshot
    changes: Changes | None = None  # against the crawl before (completed crawls)
    health_problems: list[str] | None = None  # snapshot mode: why it did not become latest
    published: bool | None = None  # snapshot mode: it is `latest` now
    cpu_seconds: float = 0.0  # this run's, user + system, all threads
    files_this_run: int = 0  # saved by this run (a resumed crawl's earlier runs aside)
    slots: dict[str, int] = field(default_factory=dict)  # stage -> items its threads can work on at once
    stage_busy: dict[str, float] = field(default_factory=dict)  # stage -> item-seconds its threads worked (this run)
    content_types: dict[str, list[int]] = field(default_factory=dict)  # type -> [files, bytes] of the mirror
    # A worker of a shared crawl (state.backend: redis) that did not finish it: this report is of
    # its own part, and is written nowhere (the finisher's is the crawl's); no message is sent.
    worker_part: bool = False
    notifications: list[dict[str, object]] = field(default_factory=list)  # {target, ok, error} of each message
    warnings: list[str] = field(default_factory=list)  # what the run warned of at its start (http.verify: false)

    @property
    def serious_failures(self) -> list[Failure]:
        """Failures that make the exit code 1: all but broken links (4xx other than 429) and
        failures of other hosts' resources (a CDN, an analytics script)."""
        return [f for f in self.tally.failures if f.is_serious]

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def start_url_failures(self) -> dict[str, Failure]:
        """Why start URLs were not saved: their own failure, or that of their host's robots.txt
        when it kept them out (it failed: nothing of the host is fetched)."""
        failures = {f.url: f for f in self.tally.failures}
        causes = {}
        for url in self.start_urls:
            failure = failures.get(url)
            if failure is None and self.skipped.get(url) == "robots_unavailable":
                failure = failures.get(origin_of(url) + "/robots.txt")
            if failure is not None:
                causes[url] = failure
        return causes

    def unreachable(self) -> bool:
        """Nothing saved, and no start URL got an answer (connection refused, DNS, TLS...)."""
        causes = self.start_url_failures()
        return self.tally.files_saved == 0 and len(causes) == len(self.start_urls) and \
            all(failure.status is None for failure in causes.values())

    def busy_shares(self) -> dict[str, float]:
        """How much of what each stage could do at once it did, on average over this run (a
        fetcher drives many downloads at once: each is a slot)."""
        return {stage: min(1.0, self.stage_busy.get(stage, 0.0) / (self.slots[stage] * self.duration_s))
                for stage in STAGES if self.slots.get(stage) and self.duration_s > 0}

    def bound_by(self) -> str | None:
        """What held the run's speed back, read from how busy each stage was over the whole run
        (a slow stage downstream keeps the ones before it waiting on a full queue, so it is
        looked for first). None when there is nothing to go by."""
        shares = self.busy_shares()
        if not shares or self.duration_s < 1:
            return None
        if shares.get("write", 0) >= BUSY:
            return "writing: link conversion and files"
        if shares.get("parse", 0) >= BUSY:
            return "parsing (CPU)"
        if shares.get("render", 0) >= BUSY:
            return "rendering pages in the browser (render.parallel at once)"
        if shares.get("fetch", 0) >= BUSY:
            return "the network and the site's answers (the fetchers were waiting on responses)"
        return ("politeness or discovery (the fetchers were mostly idle: URLs waited for their host's turn -- "
                "robots.txt, per_host, delay, Crawl-delay -- or for new links to be found)")

    def to_dict(self) -> dict[str, object]:
        tally = self.tally
        links = self.offline_links or OfflineLinks()
        failures = sorted(tally.failures, key=lambda f: f.url)
        arrivals: dict[str, list[str]] = {}  # URL -> the URLs that redirect to it
        for source, target in dict.fromkeys(tally.aliases):
            arrivals.setdefault(target, []).append(source)
        return {
            "report_version": REPORT_VERSION,
            "outcome": self.outcome,
            "start_urls": self.start_urls,
            "output": self.output,
            "started_at": _iso(self.started_at),
            "resumed_crawl_started_at": self.resumed_from,
            "snapshot": self.snapshot,
            "published_as_latest": self.published,
            "health_problems": self.health_problems,
            "changes": self.changes.to_dict()["summary"] if self.changes is not None else None,
            "finished_at": _iso(self.finished_at),
            "duration_s": round(self.duration_s, 3),
            "counts": self.counts(),
            "bytes_downloaded": tally.bytes_downloaded,
            "offline_links_ok": links.ok,
            "offline_links_total": links.total,
            "offline_links": links.to_dict(),
            "pages_per_second": round(self.files_this_run / self.duration_s, 1) if self.duration_s else None,
            "cpu_seconds": round(self.cpu_seconds, 2),
            "cpu_seconds_per_1000_pages": round(1000 * self.cpu_seconds / self.files_this_run, 2)
            if self.files_this_run else None,
            "skipped_by_rule": dict(Counter(self.skipped.values()).most_common()),
            "failures_by_reason": dict(Counter(f.reason for f in failures).most_common()),
            "failures": [_failure_dict(f, _redirect_chain(f.url, arrivals)) for f in failures],
            # Every URL the crawl found but did not save, and why: failures above, and these.
            "skipped": [{"url": url, "rule": rule} for url, rule in sorted(self.skipped.items())],
            "redirected": [{"url": source, "to": target} for source, target in sorted(set(tally.aliases))],
            "not_fetched": [{"url": url, "reason": "max_pages" if self.outcome == "completed" else self.outcome}
                            for url in sorted(self.not_fetched)],
            "parse_errors": [_failure_dict(f) for f in tally.parse_errors],
            # Pages the browser could not render (render.mode), saved as served.
            "render_failed": [_failure_dict(f) for f in sorted(tally.render_failures, key=lambda f: f.url)],
            "start_urls_failed": [{**_failure_dict(failure), "url": url}
                                  for url, failure in self.start_url_failures().items()],
            "fatal_error": self.fatal_error,
            "stage_busy_share": {stage: round(share, 3) for stage, share in self.busy_shares().items()},
            "bound_by": self.bound_by(),
            "content_types": {kind: {"files": files, "bytes": size} for kind, (files, size) in
                              sorted(self.content_types.items(), key=lambda item: -item[1][1])},
            "notifications": self.notifications,
            "warnings": self.warnings,
        }

    def counts(self) -> dict[str, int]:
        tally = self.tally
        return {
            "fetched": tally.requests_ok,
            "saved": tally.files_saved,
            "html_pages_saved": tally.html_pages_saved,
            "failed": len(tally.failures),
            "failed_broken_links": sum(f.is_client_error for f in tally.failures),
            "failed_off_site": sum(f.off_site and not f.is_client_error for f in tally.failures),
            "skipped_by_scope": sum(not rule.startswith("robots") for rule in self.skipped.values()),
            "skipped_by_robots": sum(rule.startswith("robots") for rule in self.skipped.values()),
            "redirects": tally.redirects,
            "retries": tally.retries,
            "not_modified": tally.not_modified,
            "reused_without_request": tally.reused_fresh,
            "not_fetched": len(self.not_fetched),
            "parse_errors": len(tally.parse_errors),
            "rendered": tally.pages_rendered,
            "render_failed": len(tally.render_failures),
            "browser_requests": tally.browser_requests,  # made for rendered pages (not in "fetched")
        }

    def log_fields(self) -> dict[str, object]:
        """The summary as fields, for JSON logs: what report.json says, without the URL lists."""
        links = self.offline_links or OfflineLinks()
        return {"outcome": self.outcome, "output": self.output, "mirror": str(self.mirror), "snapshot": self.snapshot,
                "counts": self.counts(), "bytes_downloaded": self.tally.bytes_downloaded,
                "duration_s": round(self.duration_s, 3), "offline_links_ok": links.ok,
                "offline_links_total": links.total,
                "failures_by_reason": dict(Counter(f.reason for f in self.tally.failures).most_common()),
                "changes": self.changes.to_dict()["summary"] if self.changes is not None else None,
                "published_as_latest": self.published, "fatal_error": self.fatal_error}

    @property
    def mirror(self) -> Path:
        """The folder this run's mirror is in: the output folder, or its snapshot's."""
        return Path(self.output) / SNAPSHOTS / self.snapshot if self.snapshot else Path(self.output)

    def to_json(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n").encode()

    def summary(self) -> str:
        """Two or three lines for the terminal at the end of a run."""
        tally = self.tally
        rate = self.files_this_run / self.duration_s if self.duration_s else 0.0
        lines = [
            f"{self.outcome}: {tally.files_saved} files saved ({tally.html_pages_saved} HTML pages), "
            f"{_megabytes(tally.bytes_downloaded)}, {self.duration_s:.1f} s, {rate:.1f} files/s",
            f"failed: {len(tally.failures)} ({len(self.serious_failures)} after retries, "
            f"{sum(f.is_client_error for f in tally.failures)} broken links, "
            f"{sum(f.off_site and not f.is_client_error for f in tally.failures)} on other hosts); "
            f"skipped by scope or robots.txt: {len(self.skipped)}; not fetched: {len(self.not_fetched)}",
            f"mirror: {self.mirror}",
        ]
        if self.offline_links is not None and self.offline_links.total:
            links = self.offline_links
            lines.append(f"links that work offline: {links.ok}/{links.total} "
                         f"({100 * links.ok / links.total:.1f}%)")
        if tally.pages_rendered or tally.render_failures:
            lines.append(rendered_line(tally))
        if tally.failures:
            reasons = Counter(f.reason for f in tally.failures).most_common(5)
            lines.append("failures by reason: " + ", ".join(f"{r} {n}" for r, n in reasons))
        if self.fatal_error:
            lines.append(f"stopped by: {self.fatal_error}")
        lines += [f"WARNING: {warning}" for warning in self.warnings]
        if self.changes is not None:
            lines.append(self.changes.summary())
        if self.snapshot is not None and self.published is not None:
            lines.append(f"snapshot {self.snapshot}: " + ("published as latest" if self.published else
                         "NOT published, failed health checks: " + "; ".join(self.health_problems or [])))
        return "\n".join(lines)


def rendered_line(tally: Tally) -> str:
    """What render.mode did, in words."""
    failed = len(tally.render_failures)
    return f"rendered in the browser: {tally.pages_rendered} pages ({tally.browser_requests} requests, " \
           f"{_megabytes(tally.browser_bytes)} for them)" + \
        (f"; {failed} could not be (render_failed: saved as served)" if failed else "")


def _failure_dict(failure: Failure, redirected_from: list[str] | None = None) -> dict[str, object]:
    """`redirected_from`: the URLs whose redirects led to it, in order (for a failure at the
    end of a redirect chain)."""
    record = {key: value for key, value in asdict(failure).items() if value is not None}
    if redirected_from:
        record["redirected_from"] = redirected_from
    return record


def _redirect_chain(url: str, arrivals: dict[str, list[str]]) -> list[str]:
    """The URLs that redirect, directly or through others, to `url`; the first of a chain first."""
    chain, seen, waiting = [], {url}, [url]
    while waiting:
        for source in arrivals.get(waiting.pop(), ()):
            if source not in seen:
                seen.add(source)
                chain.append(source)
                waiting.append(source)
    return chain[::-1]


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def _megabytes(count: int) -> str:
    return f"{count / 1_000_000:.1f} MB"
