"""Notifications: one message per run that `notify.when` asks for, to each of `notify.urls`,
through Apprise (e-mail, webhooks, chat services: one URL syntax, no client of our own).

Which runs send one:
  changes   a completed run whose changes.json has pages added, modified or removed (a first
            crawl adds every page: it sends one too)
  failure   a run that ends with exit status 1: URLs failed after retries, a start URL failed
            or the site could not be reached, the run was aborted (a full disk), the snapshot
            failed its health checks
  always    every run that ends with a report: those above, quiet ones, interrupted ones

It is sent once the crawl state says how the crawl ended, so nothing a notifier does can
change the outcome, the exit status, or what the next run resumes. What became of each
message goes into report.json (`notifications`: the target without credentials, ok, error)
and, for a message that could not be delivered, into the log as a warning.
"""

from __future__ import annotations

import itertools
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from crawler.config_history import NotifyConfig
from crawler.errors import CrawlError
from crawler.history.report import CrawlReport
from crawler.mirror.writer import Writer
from crawler.models import Failure
from crawler.notify_urls import apprise_log, expand, instantiate, redact, secrets, target
from crawler.output_folder import REPORT, REPORT_HTML

log = logging.getLogger(__name__)

FIRST = 10  # failed URLs of each reason a message names (report.summary() names the first changes)
TITLE_CAUSE = 80  # characters of the cause of a failure in the title
_OUTPUT_ERRORS = {"No space left on device": "disk full", "Disk quota exceeded": "disk quota exceeded",
                  "Read-only file system": "output folder read-only", "Permission denied": "output folder not writable"}


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    failed: bool


def notify_run(config: NotifyConfig, report: CrawlReport, *, name: str, failure: str | None) -> None:
    """Send the run's message, if `config.when` asks for one, and record what became of it in
    the report and its report.json. `failure`: why the run ends with exit status 1, in one
    line (None: it does not). `name`: the config's short name, for the title."""
    if not config.urls or not wanted(config.when, report, failure):
        return
    report.notifications = send(config.urls, message(report, name=name, failure=failure))
    try:
        Writer(report.mirror).write_metadata(REPORT, report.to_json())
    except (OSError, CrawlError) as error:
        log.warning("cannot record the notifications in %s: %s", report.mirror / REPORT, error)


def wanted(when: Sequence[str], report: CrawlReport, failure: str | None) -> bool:
    """Does the run match `when`? A run may match both `changes` and `failure` (pages changed,
    and one failed): it sends one message, whose title says it failed."""
    return "always" in when or (failure is not None and "failure" in when) or \
        ("changes" in when and report.outcome == "completed" and _changed(report) > 0)


def _changed(report: CrawlReport) -> int:
    changes = report.changes
    return len(changes.added) + len(changes.modified) + len(changes.removed) if changes is not None else 0


def message(report: CrawlReport, *, name: str, failure: str | None) -> Message:
    """Title: `crawl NAME: 3 modified, 1 added, 1 removed`, `crawl NAME: FAILED (cause)`...
    Body: why it failed, the run's summary (with the first changes), the failed URLs by
    reason, and where report.html is."""
    lines = [f"FAILED: {failure}", ""] if failure else []
    lines += [report.summary(), *_failures(report.tally.failures), "", f"report: {report.mirror / REPORT_HTML}"]
    return Message(f"crawl {name}: {_headline(report, failure)}", "\n".join(lines), failed=failure is not None)


def _headline(report: CrawlReport, failure: str | None) -> str:
    if failure is not None:
        cause = " ".join(failure.split())
        if report.fatal_error:  # "cannot write to PATH: No space left on device"
            cause = report.fatal_error.rpartition(": ")[2]
            cause = _OUTPUT_ERRORS.get(cause, cause)
        return f"FAILED ({cause if len(cause) <= TITLE_CAUSE else cause[:TITLE_CAUSE - 3] + '...'})"
    changes = report.changes
    if report.outcome != "completed" or changes is None:
        return report.outcome
    counts = [f"{len(records)} {kind}" for kind, records in
              (("modified", changes.modified), ("added", changes.added), ("removed", changes.removed)) if records]
    if not counts:
        return "completed, no changes"
    return ", ".join(counts) + (" (first crawl)" if changes.compared_with is None else "")


def _failures(failures: Sequence[Failure]) -> list[str]:
    """The failed URLs, grouped by reason (the first few of each)."""
    groups: dict[str, list[Failure]] = defaultdict(list)
    for failure in sorted(failures, key=lambda f: f.url):
        groups[failure.reason].append(failure)
    lines = []
    for reason, members in sorted(groups.items(), key=lambda item: -len(item[1])):
        lines.append(f"{reason} ({len(members)}):")
        lines += [f"  {f.url}" + (f" (linked from {f.referrer})" if f.referrer else "")
                  for f in itertools.islice(members, FIRST)]
        if len(members) > FIRST:
            lines.append(f"  ... and {len(members) - FIRST} more")
    return ["", "failed URLs by reason:", *lines] if lines else []


def send(urls: Sequence[str], sent: Message) -> list[dict[str, object]]:
    """Send `sent` to each URL; what became of each: {target, ok, error}. Never raises."""
    return [_deliver(text, sent) for text in urls]


def _deliver(text: str, sent: Message) -> dict[str, object]:
    hidden = secrets(text)
    try:
        shown = target(text)
    except ValueError:  # a variable unset since the config was read
        shown = "(a notify URL whose variables are not set)"
    error = None
    try:
        with apprise_log() as messages:
            plugin = instantiate(expand(text))
            delivered = plugin is not None and plugin.notify(body=sent.body, title=sent.title,
                                                             notify_type="failure" if sent.failed else "info")
        if not delivered:
            error = "; ".join(dict.fromkeys(messages)) or "not delivered"
    except Exception as exc:  # a notifier's bug must not cost the run its outcome, or the others their message
        error = f"{type(exc).__name__}: {exc}"
    if error is not None:
        error = redact(error, hidden)
        log.warning("notification to %s failed: %s", shown, error)
    return {"target": shown, "ok": error is None, "error": error}
