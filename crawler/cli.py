"""Command line; signals -> stop; exceptions -> exit codes.

    crawl CONFIG                       crawl (or resume) the site of a config
    crawl demo                         serve the bundled sample site and mirror it
    crawl check CONFIG [URL ...]       is the config valid; would these URLs be crawled, and why
    crawl status CONFIG                is a crawl of it running, how far has it got, how did it end
    crawl diff OUTPUT [OLD] [NEW]      what changed between two snapshots
    crawl schedule CONFIG --at HH:MM   a nightly crontab line or systemd timer
    crawl run-scheduled FOLDER         run every config of a folder on its schedule

`main` is the one place where errors become exit statuses:
0 crawl completed; 1 URLs failed after retries, a start URL failed, the snapshot failed its
health checks, or the output folder is unusable; 2 bad config or usage; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType

from crawler import __version__
from crawler.changes import diff_snapshots, text_diffs
from crawler.check import Checker, describe
from crawler.config import Config, load_config, parse_config
from crawler.demo.server import SiteServer
from crawler.errors import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, CrawlError, UsageError
from crawler.pipeline import Pipeline
from crawler.report import CrawlReport
from crawler.schedule import (
    Scheduler,
    cron_line,
    default_log_file,
    install_cron,
    install_systemd,
    systemd_units,
    unit_name,
)
from crawler.status import crawl_status
from crawler.writer import url_to_path

log = logging.getLogger("crawler")

DEMO_PORT = 8731
EXIT_PIPE_CLOSED = 128 + signal.SIGPIPE  # what the shell reports for any command a pipe cut short


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        command = COMMANDS.get(args[0]) if args else None
        if command is not None:
            make_parser, run = command
            status = run(make_parser().parse_intermixed_args(args[1:]))
        else:
            status = _crawl(_crawl_parser().parse_intermixed_args(args))
        sys.stdout.flush()  # here, where a closed pipe can still be caught
        return status
    except BrokenPipeError:  # `crawl diff OUT | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return EXIT_PIPE_CLOSED
    except CrawlError as error:
        print(f"crawl: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("crawl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as done:  # --help and --version
        return done.code if isinstance(done.code, int) else EXIT_OK


# -- commands -------------------------------------------------------------------------------

def _crawl(args: argparse.Namespace) -> int:
    _setup_logging(args.verbose, args.log_file, args.log_format)
    config = load_config(args.config)
    return _run(config, show_summary=args.verbose > 0 or sys.stdout.isatty(),
                progress_lines=bool(args.log_file) or args.verbose > 0)


def _demo(args: argparse.Namespace) -> int:
    _setup_logging(args.verbose, None, args.log_format)
    config_path = Path(__file__).parent / "demo" / "demo.yaml"
    with _demo_server(args.port) as server:
        if args.serve:
            print(f"serving the sample site at {server.url} (Ctrl-C to stop)", flush=True)
            with _stop_on_signals(lambda: None):
                signal.pause()
            return EXIT_OK
        overrides: dict[str, object] = {"start_urls": [server.url]}
        if args.output:
            overrides["output"] = args.output
        config = parse_config(config_path.read_text(encoding="utf-8"), str(config_path), overrides)
        print(f"serving the sample site at {server.url}; mirroring it to {config.output_dir}",
              flush=True)
        status = _run(config, show_summary=True)
        print(f"open {_index_of(config)} in a browser to read the mirror", flush=True)
        return status


def _diff(args: argparse.Namespace) -> int:
    output = Path(args.output)
    changes, old, new = diff_snapshots(output, args.old, args.new)
    if args.json:
        print(json.dumps({"old": old, "new": new, **changes.to_dict()}, indent=2, ensure_ascii=False))
    else:
        print(f"{old} -> {new}")
        print(changes.summary())
        for title in ("added", "modified", "removed", "noise_only"):
            entries = getattr(changes, title)
            if entries:
                print(f"{title}:")
                for entry in entries:
                    print(f"  {entry['url']}")
    if args.text:
        for diff in text_diffs(output, old, new, changes):
            print(diff)
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    status = crawl_status(load_config(args.config))
    print(json.dumps(status.to_dict(), indent=2) if args.json else status.text())
    return status.exit_code


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    print(f"{args.config}: valid -- {describe(config)}")
    checker = Checker(config, fetch_robots=not args.no_robots)
    verdicts = [checker.verdict(url, as_requisite=args.requisite) for url in args.urls]
    if args.json:
        print(json.dumps([vars(verdict) for verdict in verdicts], indent=2))
    else:
        for verdict in verdicts:
            print(verdict)
    return EXIT_OK


def _schedule(args: argparse.Namespace) -> int:
    config = Path(args.config)
    load_config(config)  # a broken config is an error now, not at 02:00
    log_file = Path(args.log_file) if args.log_file else default_log_file(config)
    if args.systemd:
        units = systemd_units(config, args.at, log_file)
        if args.install:
            folder = install_systemd(units)
            print(f"installed {', '.join(units)} in {folder}; see: systemctl --user list-timers {unit_name(config)}*")
        else:
            for name, text in units.items():
                print(f"# ~/.config/systemd/user/{name}\n{text}")
        return EXIT_OK
    line = cron_line(config, args.at, log_file)
    if args.install:
        install_cron(line, config)
        print(f"installed in your crontab:\n{line}")
    else:
        print(line)
    return EXIT_OK


def _run_scheduled(args: argparse.Namespace) -> int:
    _setup_logging(max(args.verbose, 1), args.log_file, args.log_format)
    scheduler = Scheduler(Path(args.folder), max_runs=args.max_runs)
    for job in scheduler.jobs:
        log.info("%s: %r, next run %s", job.config.name, job.cron, job.next_run.isoformat(timespec="seconds"))
    with _stop_on_signals(scheduler.stop):
        return scheduler.run()


def _demo_server(port: int | None) -> SiteServer:
    """The fixed demo port keeps the mirror in one folder across runs; any free port otherwise."""
    if port is not None:
        return SiteServer(port=port)
    try:
        return SiteServer(port=DEMO_PORT)
    except OSError:
        return SiteServer(port=0)


def _run(config: Config, show_summary: bool, progress_lines: bool = False) -> int:
    """Crawl, with a live display on a terminal (or a progress line in the log every few
    seconds), and turn the report into an exit status."""
    pipeline = Pipeline(config)
    live = sys.stderr.isatty()
    watching: AbstractContextManager[object] = nullcontext()
    if live or progress_lines:
        from crawler.progress import ProgressReporter  # rich: only when someone watches

        watching = ProgressReporter(pipeline.stats, live=live)
    with _stop_on_signals(pipeline.stop), watching:
        report = pipeline.run()
    # Printed on stdout, the summary is not repeated by a console log in text (the log file
    # and JSON logs keep it).
    log.info("%s", report.summary(), extra={SUMMARY_PRINTED: show_summary})
    if show_summary:
        print(report.summary(), flush=True)
    if pipeline.fatal_error is not None:
        raise pipeline.fatal_error
    status = exit_status(report)
    if status == EXIT_FAILURES:  # one line, even without a terminal: cron mails it
        print(f"crawl: {failure_line(report)} (see {Path(report.output) / 'report.json'})",
              file=sys.stderr, flush=True)
    return status


def exit_status(report: CrawlReport) -> int:
    if report.outcome == "interrupted":
        return EXIT_INTERRUPTED
    if report.serious_failures or report.failed_start_urls() or report.published is False:
        return EXIT_FAILURES
    return EXIT_OK


def failure_line(report: CrawlReport) -> str:
    if report.published is False:
        return f"snapshot {report.snapshot} failed its health checks: {'; '.join(report.health_problems or [])}"
    if report.failed_start_urls():
        return f"start URL failed: {', '.join(report.failed_start_urls())}"
    return f"{len(report.serious_failures)} URLs failed after retries"


# -- plumbing ---------------------------------------------------------------------------

@contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """First Ctrl-C or SIGTERM: stop gracefully. Second: leave at once."""
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if len(received) > 1:
            print("crawl: interrupted again, exiting now", file=sys.stderr, flush=True)
            os._exit(EXIT_INTERRUPTED)
        print("crawl: stopping (finishing what is in flight; Ctrl-C again to quit now)",
              file=sys.stderr, flush=True)
        stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class JsonFormatter(logging.Formatter):
    """--log-format json: one JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


SUMMARY_PRINTED = "summary_printed"  # a log record's attribute: the summary is on stdout already


def _setup_logging(verbosity: int, log_file: str | None, log_format: str = "text") -> None:
    """On a terminal: warnings and errors; without one (cron): errors only, so that a quiet
    run sends no mail. -v: progress; -vv: debug. --log-file gets INFO (or more) as well."""
    level = logging.DEBUG if verbosity > 1 else logging.INFO if verbosity == 1 else \
        logging.WARNING if sys.stderr.isatty() else logging.ERROR
    formatter = JsonFormatter() if log_format == "json" else \
        logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(formatter)
    console.setLevel(level)
    if log_format != "json":
        console.addFilter(lambda record: not getattr(record, SUMMARY_PRINTED, False))
    handlers: list[logging.Handler] = [console]
    if log_file:
        try:
            Path(log_file).parent.mkdir(parents=True, exist_ok=True)
            file_handler = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as error:
            raise UsageError(f"--log-file {log_file}: {error.strerror or error}") from None
        file_handler.setFormatter(formatter)
        file_handler.setLevel(min(level, logging.INFO))
        handlers.append(file_handler)
    root = logging.getLogger("crawler")
    for old in root.handlers:
        old.close()
    root.handlers[:] = handlers
    root.setLevel(min(handler.level for handler in handlers))
    root.propagate = False


def _index_of(config: Config) -> str:
    return str(config.output_dir / url_to_path(config.start_urls[0]))


def _crawl_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="crawl", description="Mirror a website to disk through a threaded pipeline.",
        epilog="other commands: crawl demo | check CONFIG [URL ...] | status CONFIG | diff OUTPUT [OLD] [NEW] | "
               "schedule CONFIG --at HH:MM | run-scheduled FOLDER  (crawl COMMAND --help)")
    parser.add_argument("config", help="YAML config file, e.g. configs/site.yaml")
    parser.add_argument("--log-file", help="also log progress and the summary to this file")
    _common_options(parser)
    return parser


def _demo_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="crawl demo",
                             description="Serve the bundled sample site on 127.0.0.1 and mirror it.")
    parser.add_argument("--output", help="mirror folder (default: output/demo)")
    parser.add_argument("--port", type=int, default=None,
                        help=f"port to serve on (default: {DEMO_PORT} if free, else any free port)")
    parser.add_argument("--serve", action="store_true",
                        help="only serve the site until Ctrl-C, to point your own config at it")
    _common_options(parser)
    return parser


def _diff_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="crawl diff", description="What changed between two snapshots.")
    parser.add_argument("output", help="the output folder of a config with snapshots.keep > 0")
    parser.add_argument("old", nargs="?", help="earlier snapshot name (default: the one before NEW)")
    parser.add_argument("new", nargs="?", help="later snapshot name (default: the newest)")
    parser.add_argument("--json", action="store_true", help="print JSON, as in changes.json")
    parser.add_argument("--text", action="store_true",
                        help="also print a unified diff of the visible text of each modified page")
    return parser


def _check_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="crawl check",
                             description="Validate a config and say, for each URL, whether it would be crawled "
                                         "and which rule decides (fetches the hosts' robots.txt).")
    parser.add_argument("config", help="YAML config file")
    parser.add_argument("urls", nargs="*", metavar="URL", help="URLs to judge")
    parser.add_argument("--requisite", action="store_true",
                        help="judge the URLs as a page's images, stylesheets or scripts, not as pages")
    parser.add_argument("--no-robots", action="store_true", help="do not fetch robots.txt")
    parser.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    return parser


def _status_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="crawl status",
                             description="Is a crawl of this config running, and how far has it got; else how "
                                         "did the last one end. Exit 0: running or completed; 1: interrupted "
                                         "or never run.")
    parser.add_argument("config", help="YAML config file")
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    return parser


def _schedule_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="crawl schedule",
                             description="Print (or install) what runs a config every night.")
    parser.add_argument("config", help="YAML config file")
    parser.add_argument("--at", required=True, help="time of day, HH:MM (local time)")
    parser.add_argument("--systemd", action="store_true", help="a systemd user timer instead of a crontab line")
    parser.add_argument("--install", action="store_true", help="install it, not only print it")
    parser.add_argument("--log-file", help="where runs log (default: <output>/crawl.log)")
    return parser


def _run_scheduled_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="crawl run-scheduled",
                             description="Run every config of a folder on its schedule: line, until Ctrl-C.")
    parser.add_argument("folder", help="folder of YAML configs")
    parser.add_argument("--max-runs", type=int, default=None, help="stop after this many runs of each config")
    parser.add_argument("--log-file", help="also log to this file")
    _common_options(parser)
    return parser


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="print the summary even without a terminal; -vv for debug logs")
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="json: one JSON object per log line")
    parser.add_argument("--version", action="version", version=f"crawl {__version__}")


class _ArgumentParser(argparse.ArgumentParser):
    """argparse exits with status 2 by itself; this raises instead, so main() decides."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            print(message, file=sys.stderr)
        raise SystemExit(status if status == 0 else EXIT_USAGE)


COMMANDS: dict[str, tuple[Callable[[], argparse.ArgumentParser], Callable[[argparse.Namespace], int]]] = {
    "demo": (_demo_parser, _demo),
    "check": (_check_parser, _check),
    "status": (_status_parser, _status),
    "diff": (_diff_parser, _diff),
    "schedule": (_schedule_parser, _schedule),
    "run-scheduled": (_run_scheduled_parser, _run_scheduled),
}
