"""A fleet of nightly configs on a pool of workers, through RQ (Redis Queue).

    crawl queue CONFIG... --redis URL      one crawl job per config on the queue "crawl"
    crawl worker --redis URL               run jobs, one at a time, until stopped
    crawl run-scheduled DIR --redis URL    enqueue each config when its schedule is due
    crawl queue --status --redis URL       queued, running, failed and finished jobs

A job is `crawl CONFIG` in a process of its own (RQ forks a work horse per job, which runs the
crawl as a child process that dies with it), in the folder the job was queued from -- where
the config's relative paths lead -- so a crash takes down one job, never the worker. A job's
id comes from the config's output folder: the same folder is never crawled by two jobs at
once, and a second enqueue while one is queued or running is refused. A job whose crawl died
(killed, or its worker lost) is retried up to JOB_RETRIES times; each try resumes from the
crawl state the one before left. The configs and output folders must be at the same paths
on every worker machine (a shared filesystem).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crawler.cli.schedule import command_line, run_summary
from crawler.config_file import load_config
from crawler.errors import EXIT_INTERRUPTED, CrawlError, UsageError
from crawler.output_folder import LOG

log = logging.getLogger(__name__)

QUEUE = "crawl"
JOB_RETRIES = 3  # tries after the first for a job whose crawl died
JOB_TIMEOUT = 24 * 3600  # seconds a crawl job may run
ACTIVE = ("queued", "started", "deferred", "scheduled")


class CrawlDiedError(CrawlError):
    """A job's crawl process ended without finishing (killed, or interrupted): RQ retries it."""


def job_id(output: Path) -> str:
    """The id of the crawl job of an output folder (RQ ids: letters, digits, - and _)."""
    return "crawl-" + hashlib.sha256(str(output.absolute()).encode()).hexdigest()[:20]


def connection(url: str) -> Any:
    """RQ's Redis connection (bytes, as RQ wants them), which answered a PING. The caller
    closes it (`with connection(url) as client:`): a scheduler enqueues for days."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5)
        client.ping()
    except (redis.RedisError, ValueError) as error:
        raise UsageError(f"cannot reach the job queue at {url}: {' '.join(str(error).split())}") from None
    return client


@dataclass(frozen=True)
class Enqueued:
    config: Path
    job: str
    refused: str | None = None  # why it was not queued


def enqueue(configs: Sequence[Path], url: str, settings: Sequence[str] = ()) -> list[Enqueued]:
    """One job per config, each refused if its output folder's job is queued or running."""
    from rq import Queue, Retry

    with connection(url) as client:
        queue = Queue(QUEUE, connection=client)
        results = []
        for config in configs:
            output = load_config(config, _overrides(settings)).output_dir  # a broken config is an error now
            ident = job_id(output)
            # One enqueuer at a time per job: the check and the enqueue are one step.
            with client.lock(f"crawl:fleet:enqueue:{ident}", timeout=30, blocking_timeout=30):
                status = _status_of(client, ident)
                if status in ACTIVE:
                    results.append(Enqueued(config, ident, f"a crawl of {output} is already {status} (job {ident})"))
                    continue
                queue.enqueue("crawler.cli.fleet.run_job", str(config.resolve()), str(Path.cwd()), list(settings),
                              job_id=ident, job_timeout=JOB_TIMEOUT, retry=Retry(max=JOB_RETRIES),
                              result_ttl=7 * 24 * 3600, failure_ttl=7 * 24 * 3600,
                              meta={"config": str(config.resolve()), "output": str(output)},
                              description=f"crawl {config.name}")
            results.append(Enqueued(config, ident))
        return results


def run_job(config: str, workdir: str, settings: list[str]) -> dict[str, object]:
    """A job: `crawl CONFIG` as a child process (in `workdir`), which ends with the job's
    process if that is killed. Its exit status and one line about it are the job's result; a
    crawl that died is raised, for RQ to retry."""
    log_file = load_config(config, _overrides(settings)).output_dir / LOG
    process = subprocess.run(command_line(Path(config), log_file, settings), cwd=workdir, check=False,
                             preexec_fn=_die_with_parent)
    code = process.returncode
    if code < 0 or code == EXIT_INTERRUPTED:
        how = f"signal {signal.Signals(-code).name}" if code < 0 else "an interruption"
        raise CrawlDiedError(f"the crawl of {config} was ended by {how}; its next try resumes it")
    return {"exit": code, "summary": run_summary(Path(config), code)}


def work(url: str, burst: bool = False) -> None:
    """Run jobs until stopped (with `burst`: until the queue is empty)."""
    from rq import Queue, Worker

    with connection(url) as client:
        Worker([Queue(QUEUE, connection=client)], connection=client).work(burst=burst, logging_level="WARNING")


def status_lines(url: str) -> list[str]:
    """One line per job the queue knows: its state, its config, and how it ended."""
    from rq import Queue
    from rq.job import Job
    from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

    lines = []
    with connection(url) as client:
        queue = Queue(QUEUE, connection=client)
        for state, ids in (("queued", queue.get_job_ids()),
                           ("scheduled", ScheduledJobRegistry(queue=queue).get_job_ids()),
                           ("running", StartedJobRegistry(queue=queue).get_job_ids()),
                           ("failed", FailedJobRegistry(queue=queue).get_job_ids()),
                           ("finished", FinishedJobRegistry(queue=queue).get_job_ids())):
            for job in Job.fetch_many(ids, connection=client):
                if job is not None:
                    lines.append(f"{state:9} {job.meta.get('config', job.id)}  {_outcome(job, state)}".rstrip())
    return lines or ["no crawl jobs"]


def _outcome(job: Any, state: str) -> str:
    if state == "finished":
        result = job.return_value()
        return str(result.get("summary", "")) if isinstance(result, dict) else ""
    if state == "failed":
        error = (job.latest_result().exc_string if job.latest_result() else "") or ""
        return error.strip().splitlines()[-1] if error.strip() else ""
    return f"retries left: {job.retries_left}" if job.retries_left is not None and job.retries_left < JOB_RETRIES \
        else ""


def _status_of(client: Any, ident: str) -> str | None:
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        return str(Job.fetch(ident, connection=client).get_status().value)
    except NoSuchJobError:
        return None


def _overrides(settings: Sequence[str]) -> dict[str, object]:
    from crawler.config_file import parse_setting

    return dict(parse_setting(text) for text in settings)


def _die_with_parent() -> None:
    """In the crawl's process, before it runs: a SIGTERM when the job's process dies (Linux),
    so that a killed job leaves no crawl behind to hold its output folder."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
