"""Running crawls nightly: a crontab line or a systemd user timer (`crawl schedule`), or one
long-lived process for machines without cron (`crawl run-scheduled`).

A scheduled run writes exactly where `crawl CONFIG` run by hand from the same folder writes:
it runs in the folder `crawl schedule` (or `crawl run-scheduled`) was run from, so that a
relative `output:` means the same at 02:00 as at the terminal. (cron would start it in $HOME.)

Scheduled runs log to a file (--log-file) and print nothing but errors, so cron mails the
operator only when a crawl failed.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from crawler.config_file import load_config
from crawler.errors import ConfigError, CrawlError, UsageError
from crawler.output_folder import LATEST, LOG, REPORT

log = logging.getLogger(__name__)

CRON_MARK = "# crawl:"
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def command_line(config: Path, log_file: Path, settings: Sequence[str] = ()) -> list[str]:
    """How a scheduled run is started: this very Python and crawl, absolute paths, and the
    --set KEY=VALUE options the schedule was made with."""
    return [sys.executable, "-m", "crawler", str(config.resolve()), "--log-file", str(log_file.resolve()),
            *(option for setting in settings for option in ("--set", setting))]


def default_log_file(config: Path, overrides: dict[str, Any] | None = None) -> Path:
    return load_config(config, overrides).output_dir / LOG


def cron_line(config: Path, at: str, log_file: Path, settings: Sequence[str] = ()) -> str:
    """The crontab line: into the folder the schedule is made from, then crawl."""
    hour, minute = _at(at)
    command = f"cd {shlex.quote(str(Path.cwd()))} && exec {shlex.join(command_line(config, log_file, settings))}"
    return f"{minute} {hour} * * * {_cron_escaped(command)} {_cron_mark(config)}"


def _cron_mark(config: Path) -> str:
    """The comment that ends the line of a config: an installed line for it is replaced."""
    return _cron_escaped(f"{CRON_MARK}{config.resolve()}")


def _cron_escaped(text: str) -> str:
    """cron ends a command at its first "%" (what follows is its input), unless escaped."""
    return text.replace("%", "\\%")


def systemd_units(config: Path, at: str, log_file: Path, settings: Sequence[str] = ()) -> dict[str, str]:
    """The files of a systemd user service and the timer that starts it every night."""
    hour, minute = _at(at)
    name = unit_name(config)
    command = shlex.join(command_line(config, log_file, settings))
    return {
        f"{name}.service": (f"[Unit]\nDescription=crawl {config.name}\n\n[Service]\nType=oneshot\n"
                            f"WorkingDirectory={Path.cwd()}\nExecStart={command}\n"),
        f"{name}.timer": (f"[Unit]\nDescription=nightly crawl {config.name}\n\n[Timer]\n"
                          f"OnCalendar=*-*-* {hour:02d}:{minute:02d}:00\nPersistent=true\n\n"
                          "[Install]\nWantedBy=timers.target\n"),
    }


def unit_name(config: Path) -> str:
    return "crawl-" + re.sub(r"[^A-Za-z0-9_.-]", "-", config.resolve().stem)


def install_cron(line: str, config: Path) -> None:
    """Add `line` to the user's crontab, replacing an earlier line for the same config."""
    crontab = shutil.which("crontab")
    if crontab is None:
        raise CrawlError("no crontab command on this machine: use --systemd, or crawl run-scheduled")
    current = subprocess.run([crontab, "-l"], capture_output=True, text=True, check=False)
    lines = current.stdout.splitlines() if current.returncode == 0 else []
    mark = _cron_mark(config)
    kept = [existing for existing in lines if not existing.endswith(mark)]
    result = subprocess.run([crontab, "-"], input="\n".join([*kept, line]) + "\n", capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        raise CrawlError(f"crontab refused the line: {result.stderr.strip()}")


def install_systemd(units: dict[str, str]) -> Path:
    folder = Path.home() / ".config" / "systemd" / "user"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in units.items():
        (folder / name).write_text(text)
    systemctl = shutil.which("systemctl")
    timer = next(name for name in units if name.endswith(".timer"))
    if systemctl is None:
        raise CrawlError(f"units written to {folder}, but there is no systemctl to enable {timer}")
    for command in (["--user", "daemon-reload"], ["--user", "enable", "--now", timer]):
        result = subprocess.run([systemctl, *command], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise CrawlError(f"systemctl {' '.join(command)} failed: {result.stderr.strip()}")
    return folder


def _at(at: str) -> tuple[int, int]:
    match = _TIME.match(at)
    if match is None:
        raise UsageError(f"--at {at!r}: give a time of day as HH:MM, e.g. 02:00")
    return int(match.group(1)), int(match.group(2))


# -- run-scheduled ----------------------------------------------------------------------------

@dataclass
class Job:
    config: Path
    cron: str
    log_file: Path
    next_run: datetime
    process: subprocess.Popen[bytes] | None = None
    runs: int = 0
    skipped: int = 0
    history: list[int] = field(default_factory=list)  # exit codes


class Scheduler:
    """Runs every config of a folder on its `schedule:`, each run a separate process in the
    folder the scheduler was started from (where relative paths of the configs lead), never two
    runs of one config at once (a run still going when the next is due skips that one)."""

    def __init__(self, folder: Path, max_runs: int | None = None,
                 enqueue: Callable[[Path], str | None] | None = None) -> None:
        """`enqueue(config)`: put a due run on a job queue instead of running it here (returns
        why it was refused, if it was: a run of the config still queued or going)."""
        self._workdir = Path.cwd()
        self._enqueue = enqueue
        self.jobs = self._load(folder)
        self._max_runs = max_runs
        # Guards the jobs' processes; signalled when a run ends or the scheduler must stop.
        self._changed = threading.Condition()
        self._stopping = False

    def run(self) -> int:
        """Until stopped (or every job ran `max_runs` times); 0 if every run succeeded."""
        with self._changed:
            while not self._stopping and not self._all_done():
                now = datetime.now().astimezone()
                for job in self.jobs:
                    if job.next_run <= now and self._wants_more(job):
                        self._start(job, now)
                waits = [(job.next_run - now).total_seconds() for job in self.jobs if self._wants_more(job)]
                self._changed.wait(timeout=max(0.0, min(waits)) if waits else None)
            running = [job for job in self.jobs if job.process is not None]
        for job in running:
            if job.process is not None:
                job.process.wait()
        return 0 if all(code == 0 for job in self.jobs for code in job.history) else 1

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()

    def _wants_more(self, job: Job) -> bool:
        return self._max_runs is None or job.runs + job.skipped < self._max_runs

    def _all_done(self) -> bool:
        return self._max_runs is not None and all(
            not self._wants_more(job) and job.process is None for job in self.jobs)

    def _start(self, job: Job, now: datetime) -> None:
        """Caller holds the condition."""
        job.next_run = _next(job.cron, now)
        if self._enqueue is not None:
            refused = self._enqueue(job.config)
            if refused:
                job.skipped += 1
                log.warning("%s: not queued: %s", job.config.name, refused)
            else:
                job.runs += 1
                log.info("%s: queued run %d", job.config.name, job.runs)
            return
        if job.process is not None:
            job.skipped += 1
            log.warning("%s: the previous run is still going; skipping this one", job.config.name)
            return
        job.runs += 1
        log.info("%s: starting run %d", job.config.name, job.runs)
        job.process = subprocess.Popen(command_line(job.config, job.log_file), cwd=self._workdir)
        threading.Thread(target=self._await, args=(job, job.process), daemon=True,
                         name=f"await-{job.config.name}").start()

    def _await(self, job: Job, process: subprocess.Popen[bytes]) -> None:
        code = process.wait()
        with self._changed:
            job.process = None
            job.history.append(code)
            log.info("%s: %s", job.config.name, run_summary(job.config, code))
            self._changed.notify_all()

    @staticmethod
    def _load(folder: Path) -> list[Job]:
        if not folder.is_dir():
            raise UsageError(f"{folder} is not a folder of configs")
        jobs = []
        now = datetime.now().astimezone()
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            try:
                config = load_config(path)
            except ConfigError as error:
                log.error("skipping %s: %s", path.name, error)
                continue
            if config.schedule:
                jobs.append(Job(path, config.schedule, config.output_dir / LOG,
                                _next(config.schedule, now)))
        if not jobs:
            raise UsageError(f"no config in {folder} has a schedule: line")
        return jobs


def _next(cron: str, after: datetime) -> datetime:
    from croniter import croniter  # only run-scheduled needs it: not imported by every crawl

    return croniter(cron, after).get_next(datetime)  # type: ignore[no-any-return]


def run_summary(config: Path, code: int) -> str:
    """One line about a finished run: its exit code and its report's counts."""
    try:
        output = load_config(config).output_dir
        report_path = output / LATEST / REPORT
        if not report_path.exists():
            report_path = output / REPORT
        report = json.loads(report_path.read_text(encoding="utf-8"))
        counts = report["counts"]
        return (f"exit {code}, {report['outcome']}: {counts['saved']} files saved, "
                f"{counts['failed']} failed, changes {report.get('changes')}")
    except (OSError, ValueError, KeyError, CrawlError):
        return f"exit {code}"
