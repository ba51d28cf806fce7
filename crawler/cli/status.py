"""`crawl status CONFIG`: how the crawl of a config stands, asked from another shell.

A nightly crawl runs under cron, with no terminal to watch. This reads what the crawl
journals as it goes (the crawl state, which SQLite lets others read while it is written)
and the lock that names the running process: is a crawl running, since when and how far
has it got; else how did the last one end. It only reads: it takes no lock and writes
nothing, so it can never get in a crawl's way.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from crawler.config import Config
from crawler.errors import OutputError
from crawler.output_folder import LOCK_FILE, REPORT, SNAPSHOTS, STATE_DIR, STATE_FILE

RUNNING, INTERRUPTED, COMPLETED, NEVER = "running", "interrupted", "completed", "never"
UNREACHABLE = "unreachable"  # the last crawl ended, but no start URL got an answer


@dataclass(frozen=True)
class CrawlStatus:
    output: str
    state: str  # running | interrupted (the next run resumes it) | completed | unreachable | never
    pid: int | None  # of the running crawl
    started_at: str | None
    snapshot: str | None  # the snapshot the crawl writes into (snapshot mode)
    urls_seen: int
    urls_pending: int  # admitted, not fetched (or not written) yet; once the crawl ended: left out by max_pages
    files_saved: int
    bytes_saved: int
    failures: int
    skipped: int
    report: dict[str, object] | None  # outcome, finished_at... of report.json (while running: the run before)

    @property
    def exit_code(self) -> int:
        """0: a crawl is running or the last one completed; 1: it did not (or none ran)."""
        return 0 if self.state in (RUNNING, COMPLETED) else 1

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def text(self) -> str:
        if self.state == NEVER:
            return f"{self.output}: no crawl yet"
        where = f" into snapshot {self.snapshot}" if self.snapshot else ""
        started = _moment(self.started_at)
        head = {
            RUNNING: f"crawl running (pid {self.pid}) since {started}{where}",
            INTERRUPTED: f"crawl started {started}{where} was interrupted; the next run resumes it",
            COMPLETED: f"last crawl started {started}{where} completed",
            UNREACHABLE: f"last crawl started {started}{where} could not reach the site: {self._causes()}",
        }[self.state]
        # A crawl that ended waits for nothing: what it did not fetch, max_pages left out.
        pending = f"{self.urls_pending:,} URLs waiting, " if self.state in (RUNNING, INTERRUPTED) else \
            f"{self.urls_pending:,} not fetched (max_pages), " if self.urls_pending else ""
        lines = [f"{self.output}: {head}",
                 f"  {self.files_saved:,} files saved ({self.bytes_saved / 1e6:,.1f} MB), "
                 f"{pending}{self.urls_seen:,} seen, {self.failures:,} failed, {self.skipped:,} skipped"]
        if self.report and self.state != RUNNING:
            lines.append(f"  report: {self.report.get('outcome')} at {self.report.get('finished_at')}, "
                         f"{self.report.get('duration_s')} s")
        return "\n".join(lines)


    def _causes(self) -> str:
        failed = self.report.get("start_urls_failed") if self.report else None
        if not isinstance(failed, list):
            return "?"
        return "; ".join(f"{entry.get('url')}: {entry.get('message')}" for entry in failed)


def _moment(iso: str | None) -> str:
    """"2026-11-26 02:00:03 UTC (3 h 12 min ago)" from an ISO 8601 time."""
    try:
        moment = datetime.fromisoformat(iso or "")
    except ValueError:
        return iso or "?"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    minutes = max(0, int((datetime.now(timezone.utc) - moment).total_seconds()) // 60)
    ago = f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
    return f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC ({ago} ago)"


def crawl_status(target: Config | Path) -> CrawlStatus:
    """The status of the crawl of a config, or of the output folder it writes to."""
    output = target.output_dir if isinstance(target, Config) else target
    state_file = output / STATE_DIR / STATE_FILE
    if not state_file.is_file():
        return CrawlStatus(str(output), NEVER, None, None, None, 0, 0, 0, 0, 0, 0, None)
    try:
        meta, counts = _read_state(state_file)
    except sqlite3.Error as exc:
        raise OutputError(f"cannot read the crawl state {state_file}: {exc}", str(state_file)) from None
    snapshot = meta.get("snapshot") or None
    pid = _running_pid(output / STATE_DIR / LOCK_FILE)
    state = RUNNING if pid is not None else COMPLETED if meta.get("status") == "completed" else INTERRUPTED
    report_root = output / SNAPSHOTS / snapshot if snapshot else output
    report = _report(report_root / REPORT)
    if state == COMPLETED and report and report.get("outcome") == UNREACHABLE:
        state = UNREACHABLE
    return CrawlStatus(str(output), state, pid, meta.get("started_at"), snapshot, *counts, report=report)


def _read_state(path: Path) -> tuple[dict[str, str], tuple[int, int, int, int, int, int]]:
    # Read-only: a status query must not create, lock or change the state of a crawl.
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        meta = dict(db.execute("SELECT key, value FROM meta"))

        def one(sql: str) -> int:
            return int(db.execute(sql).fetchone()[0] or 0)

        counts = (one("SELECT COUNT(*) FROM urls"), one("SELECT COUNT(*) FROM urls WHERE done = 0"),
                  one("SELECT COUNT(*) FROM saved"), one("SELECT SUM(size) FROM saved"),
                  one("SELECT COUNT(*) FROM failures"), one("SELECT COUNT(*) FROM skipped"))
    finally:
        db.close()
    return meta, counts


def _running_pid(lock: Path) -> int | None:
    """The pid the lock names, if that process is alive. (A crawl removes its lock when it
    ends; one killed outright leaves it behind, naming a process that is gone.)"""
    try:
        pid = int(lock.read_text().strip())
        os.kill(pid, 0)
    except PermissionError:  # alive, run by another user
        return pid
    except (OSError, ValueError):
        return None
    try:  # where /proc tells, the pid must still be a crawl (pids are reused)
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid
    return pid if b"crawl" in command else None


def _report(path: Path) -> dict[str, object] | None:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    keys = ("outcome", "started_at", "finished_at", "duration_s", "pages_per_second", "offline_links_ok",
            "offline_links_total", "fatal_error", "start_urls_failed")
    return {key: report.get(key) for key in keys}
