"""Command line; signals -> stop; exceptions -> exit codes.

    crawl CONFIG                       crawl (or resume) the site of a config
    crawl URL [-o DIR]                 mirror a site with the defaults
    crawl init URL [-o CONFIG]         write a config for a site, every key explained
    crawl demo                         serve the bundled sample site and mirror it
    crawl check CONFIG [URL ...]       is the config valid; would these URLs be crawled, and why
    crawl status CONFIG|OUTPUT         is a crawl of it running, how far has it got, how did it end
    crawl diff CONFIG|OUTPUT [OLD] [NEW]  what changed between two snapshots (or in a plain mirror's last run)
    crawl serve CONFIG|OUTPUT          browse the mirror and its history in a web browser (until Ctrl-C)
    crawl schedule CONFIG --at HH:MM   a nightly crontab line or systemd timer
    crawl run-scheduled FOLDER         run every config of a folder on its schedule (--redis URL: enqueue it)
    crawl queue CONFIG... --redis URL  one crawl job per config on a job queue (--status: list the jobs)
    crawl worker --redis URL           run crawl jobs from the queue, each in a process of its own
    crawl config set CONFIG KEY=VALUE  change a setting of a config file for good
Commands that take a config take `--set KEY=VALUE` too: a setting for this run only.

`main` is the one place where errors become exit statuses:
0 crawl completed; 1 URLs failed after retries, a start URL failed, the site could not be
reached, the snapshot failed its health checks, or the output folder is unusable; 2 bad
config or usage; 130 interrupted; 141 the output was closed early (`crawl diff | head`).
`crawl serve` runs until Ctrl-C (or SIGTERM), its normal end: 0; 1 if it cannot listen.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from crawler.cli import arguments, fleet
from crawler.cli.arguments import DEMO_PORT
from crawler.cli.check import Checker, describe
from crawler.cli.config_edit import LABEL, set_in_file
from crawler.cli.logs_and_signals import SUMMARY_PRINTED, noting_stop_signals, setup_logging, stop_on_signals
from crawler.cli.schedule import (
    Scheduler,
    cron_line,
    default_log_file,
    install_cron,
    install_systemd,
    systemd_units,
    unit_name,
)
from crawler.cli.status import crawl_status
from crawler.cli.template import write_config
from crawler.config import Config
from crawler.config_file import load_config, parse_config, parse_setting
from crawler.demo.server import SiteServer
from crawler.engine.run import CrawlRun
from crawler.errors import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK, ConfigError, CrawlError, UsageError
from crawler.history.changes import diff_output
from crawler.history.notify import notify_run
from crawler.history.report import CrawlReport
from crawler.logs import FIELDS
from crawler.mirror.paths import url_to_path
from crawler.urls import InvalidURLError, canonicalize

log = logging.getLogger("crawler")

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")  # `crawl URL`: a scheme, not a file name
EXIT_PIPE_CLOSED = 128 + signal.SIGPIPE  # what the shell reports for any command a pipe cut short


def run() -> int:
    """The `crawl` command (and `python -m crawler`): `main` on the process's arguments, then
    a quick exit."""
    status = main()
    # At exit Python collects reference cycles among everything still alive, again and again
    # as it empties the modules: 40-50 ms after a crawl (docs/performance.md). Nothing left
    # needs it -- files, the crawl state and the logs are closed or flushed by now, and Python
    # does not promise a cycle's finalizers at exit anyway -- so what is alive is set aside.
    gc.freeze()
    return status


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        command = COMMANDS.get(args[0]) if args else None
        if command is not None:
            make_parser, run = command
            status = run(make_parser().parse_intermixed_args(args[1:]))
        else:
            status = _crawl(arguments.crawl_parser().parse_intermixed_args(args))
        sys.stdout.flush()  # here, where a closed pipe can still be caught
        return status
    except BrokenPipeError:  # `crawl diff OUT | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return EXIT_PIPE_CLOSED
    except CrawlError as error:
        print(f"crawl: {'error: ' if error.exit_code != EXIT_OK else ''}{error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("crawl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as done:  # --help and --version
        return done.code if isinstance(done.code, int) else EXIT_OK


# -- commands -------------------------------------------------------------------------------

def _crawl(args: argparse.Namespace) -> int:
    setup_logging(args.verbose, args.log_file, args.log_format)
    overrides = {**_settings(args), **({"output": args.output} if args.output else {})}
    if _URL.match(args.config):  # a quick mirror with the defaults, as `wget -m URL`
        try:
            start = canonicalize(args.config)
        except InvalidURLError as error:
            raise UsageError(f"{args.config}: {error}") from None
        config = parse_config("", start, {**overrides, "start_urls": [start]})
    elif not Path(args.config).exists() and not args.config.endswith((".yaml", ".yml")):
        raise ConfigError(f"{args.config}: no such config file (to mirror a site: crawl https://SITE/ [-o FOLDER]; "
                          "to write a config for it: crawl init https://SITE/)")
    else:
        config = load_config(args.config, overrides)
    return _run(config, show_summary=args.verbose > 0 or sys.stdout.isatty(),
                progress_lines=bool(args.log_file) or args.verbose > 0,
                name=None if _URL.match(args.config) else Path(args.config).stem)


def _demo(args: argparse.Namespace) -> int:
    setup_logging(args.verbose, None, args.log_format)
    config_path = Path(__file__).parent.parent / "demo" / "demo.yaml"
    with _demo_server(args.port) as server:
        if args.serve:
            print(f"serving the sample site at {server.url} (Ctrl-C to stop)", flush=True)
            with stop_on_signals(lambda: None):
                signal.pause()
            return EXIT_OK
        overrides: dict[str, object] = {**_settings(args), "start_urls": [server.url]}
        if args.output:
            overrides["output"] = args.output
        config = parse_config(config_path.read_text(encoding="utf-8"), str(config_path), overrides)
        print(f"serving the sample site at {server.url}; mirroring it to {config.output_dir}",
              flush=True)
        status = _run(config, show_summary=True)
        print(f"open {_index_of(config)} in a browser to read the mirror", flush=True)
        return status


def _diff(args: argparse.Namespace) -> int:
    output = _output_folder(args.output)
    diff = diff_output(output, args.old, args.new)
    changes, old, new = diff.changes, diff.old, diff.new
    if args.json:
        print(json.dumps({"old": old, "new": new, **changes.to_dict()}, indent=2, ensure_ascii=False))
    else:
        print(f"{old} -> {new}")
        print(changes.headline())
        for title in ("added", "modified", "removed", "noise_only"):
            entries = getattr(changes, title)
            if entries:
                print(f"{title}:")
                for entry in entries:
                    print(f"  {entry['url']}")
    if args.text:
        for text in diff.text_diffs():
            print(text)
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from crawler.cli.serve import HistoryServer  # http.server and the pages: only this command needs them

    setup_logging(args.verbose, None, args.log_format)
    output = _output_folder(args.output)
    stopped: list[int] = []
    with noting_stop_signals(stopped), HistoryServer(output, args.host, args.port) as server:
        print(f"serving {output} at {server.url} (Ctrl-C to stop)", flush=True)
        while not stopped:
            time.sleep(0.2)
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    target = Path(args.config)
    if target.is_file():
        config = load_config(target, _settings(args))
        if config.state.backend == "redis":  # the crawl's state is in Redis, not in the folder
            from crawler.cli.shared_status import shared_status

            shared = shared_status(config)
            print(json.dumps(shared.to_dict(), indent=2) if args.json else shared.text())
            return shared.exit_code
    status = crawl_status(target if target.is_dir() else _output_folder(args.config, _settings(args)))
    print(json.dumps(status.to_dict(), indent=2) if args.json else status.text())
    return status.exit_code


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config, _settings(args))
    print(f"{args.config}: valid -- {describe(config)}")
    checker = Checker(config, fetch_robots=not args.no_robots)
    verdicts = [checker.verdict(url, as_requisite=args.requisite) for url in args.urls]
    if args.json:
        print(json.dumps([verdict.to_dict() for verdict in verdicts], indent=2))
    else:
        for verdict in verdicts:
            print(verdict)
    return EXIT_OK


def _schedule(args: argparse.Namespace) -> int:
    config = Path(args.config)
    overrides = _settings(args)
    load_config(config, overrides)  # a broken config is an error now, not at 02:00
    log_file = Path(args.log_file) if args.log_file else default_log_file(config, overrides)
    if args.systemd:
        units = systemd_units(config, args.at, log_file, args.settings)
        if args.install:
            folder = install_systemd(units)
            print(f"installed {', '.join(units)} in {folder}; see: systemctl --user list-timers {unit_name(config)}*")
        else:
            for name, text in units.items():
                print(f"# ~/.config/systemd/user/{name}\n{text}")
        return EXIT_OK
    line = cron_line(config, args.at, log_file, args.settings)
    if args.install:
        install_cron(line, config)
        print(f"installed in your crontab:\n{line}")
    else:
        print(line)
    return EXIT_OK


def _run_scheduled(args: argparse.Namespace) -> int:
    setup_logging(max(args.verbose, 1), args.log_file, args.log_format)
    launch = None
    if args.redis:
        fleet.connection(args.redis).close()  # a wrong URL is said now, not at 02:00

        def launch(config: Path) -> str | None:
            return fleet.enqueue([config], args.redis)[0].refused
    scheduler = Scheduler(Path(args.folder), max_runs=args.max_runs, enqueue=launch)
    for job in scheduler.jobs:
        log.info("%s: %r, next run %s", job.config.name, job.cron, job.next_run.isoformat(timespec="seconds"))
    with stop_on_signals(scheduler.stop):
        return scheduler.run()


def _queue(args: argparse.Namespace) -> int:
    if args.status:
        print("\n".join(fleet.status_lines(args.redis)))
        return EXIT_OK
    if not args.configs:
        raise UsageError("give the configs to queue, or --status (see crawl queue --help)")
    status = EXIT_OK
    for result in fleet.enqueue([Path(config) for config in args.configs], args.redis, args.settings):
        if result.refused:
            print(f"crawl: {result.config}: not queued: {result.refused}", file=sys.stderr)
            status = EXIT_FAILURES
        else:
            print(f"{result.config}: queued (job {result.job})")
    return status


def _worker(args: argparse.Namespace) -> int:
    setup_logging(max(args.verbose, 1), None, args.log_format)
    fleet.work(args.redis, burst=args.burst)
    return EXIT_OK


def _init(args: argparse.Namespace) -> int:
    path = Path(args.config) if args.config else None
    path = write_config(args.url, path, args.output)
    print(f"wrote {path}: every key with its default and what it means; edit it (or: crawl config set {path} "
          f"KEY=VALUE), then run: crawl {path}")
    return EXIT_OK


def _config_set(args: argparse.Namespace) -> int:
    settings = dict(parse_setting(text, LABEL) for text in args.settings)
    before = load_config(args.config)
    after = set_in_file(Path(args.config), settings)
    for key in settings:
        print(f"{args.config}: {key}: {_value_at(before, key)} -> {_value_at(after, key)}")
    return EXIT_OK


def _output_folder(target: str, overrides: dict[str, object] | None = None) -> Path:
    """The output folder a command is about: given as such, or as the config that names it."""
    path = Path(target)
    if path.is_dir():
        return path
    if not path.exists():
        raise UsageError(f"{target}: no such config file or output folder")
    return load_config(path, overrides).output_dir


def _settings(args: argparse.Namespace) -> dict[str, object]:
    """The --set KEY=VALUE options of a command, as overrides of its config."""
    return dict(parse_setting(text) for text in args.settings)


def _value_at(config: Config, key: str) -> str:
    """A config's value at a dotted key, as JSON (what the file says, in one line)."""
    value: object = config.model_dump(mode="json")
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return json.dumps(value, ensure_ascii=False)


def _demo_server(port: int | None) -> SiteServer:
    """The fixed demo port keeps the mirror in one folder across runs; any free port otherwise."""
    if port is not None:
        return SiteServer(port=port)
    try:
        return SiteServer(port=DEMO_PORT)
    except OSError:
        return SiteServer(port=0)


def _run(config: Config, show_summary: bool, progress_lines: bool = False, name: str | None = None) -> int:
    """Crawl, with a live display on a terminal (or a progress line in the log every few
    seconds), send the notification, and turn the report into an exit status. `name`: the
    config's, in the notification's title (its file name without .yaml; default: the output
    folder's name)."""
    crawl = CrawlRun(config)
    live = sys.stderr.isatty()
    watching: AbstractContextManager[object] = nullcontext()
    if live or progress_lines:
        from crawler.cli.progress import ProgressReporter  # rich: only when someone watches

        watching = ProgressReporter(crawl.stats, live=live)
    with stop_on_signals(crawl.stop), watching:
        report = crawl.run()
    # Printed on stdout, the summary is not repeated by a console log in text (the log file
    # and JSON logs keep it; JSON logs as fields).
    log.info("%s", report.summary(), extra={SUMMARY_PRINTED: show_summary, FIELDS: report.log_fields()})
    if show_summary:
        print(report.summary(), flush=True)
    # Once the crawl state says how the crawl ended: a notifier cannot change that, nor the exit status.
    fatal = crawl.fatal_error
    status = EXIT_FAILURES if fatal is not None else exit_status(report)
    failure = (str(fatal) if fatal is not None else failure_line(report)) if status == EXIT_FAILURES else None
    if not report.worker_part:  # the worker that finished a shared crawl sends its message
        notify_run(config.notify, report, name=name or config.output_dir.name, failure=failure)
    if fatal is not None:
        raise fatal
    if status == EXIT_FAILURES:  # one line, even without a terminal: cron mails it
        print(f"crawl: {failure_line(report)} (see {report.mirror / 'report.json'})",  # a snapshot's own
              file=sys.stderr, flush=True)
    elif status == EXIT_INTERRUPTED:  # a terminal shows the summary; cron and scripts see this
        print("crawl: interrupted; run the same command again to resume", file=sys.stderr, flush=True)
    return status


def exit_status(report: CrawlReport) -> int:
    if report.outcome == "interrupted":
        return EXIT_INTERRUPTED
    if report.serious_failures or report.start_url_failures() or report.published is False:
        return EXIT_FAILURES
    return EXIT_OK


def failure_line(report: CrawlReport) -> str:
    if report.published is False:
        return f"snapshot {report.snapshot} failed its health checks: {'; '.join(report.health_problems or [])}"
    causes = "; ".join(f"{url}: {failure.message}" for url, failure in report.start_url_failures().items())
    if report.outcome == "unreachable":
        return f"could not reach the site: {causes}"
    if causes:
        return f"start URL failed: {causes}"
    failed = len(report.serious_failures)
    return f"{failed} URL{'s' if failed != 1 else ''} failed after retries"


def _index_of(config: Config) -> str:
    return str(config.output_dir / url_to_path(config.start_urls[0]))


COMMANDS: dict[str, tuple[Callable[[], argparse.ArgumentParser], Callable[[argparse.Namespace], int]]] = {
    "demo": (arguments.demo_parser, _demo),
    "check": (arguments.check_parser, _check),
    "status": (arguments.status_parser, _status),
    "diff": (arguments.diff_parser, _diff),
    "serve": (arguments.serve_parser, _serve),
    "schedule": (arguments.schedule_parser, _schedule),
    "run-scheduled": (arguments.run_scheduled_parser, _run_scheduled),
    "queue": (arguments.queue_parser, _queue),
    "worker": (arguments.worker_parser, _worker),
    "config": (arguments.config_parser, _config_set),
    "init": (arguments.init_parser, _init),
}
