"""Command line: `crawl CONFIG`, `crawl demo`; signals -> stop; exceptions -> exit codes.

`main` is the one place where errors become exit statuses:
0 crawl completed; 1 URLs failed after retries, a start URL failed, or the output folder is
unusable; 2 bad config or usage; 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from crawler import __version__
from crawler.config import Config, load_config, parse_config
from crawler.demo.server import SiteServer
from crawler.errors import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, CrawlError, UsageError
from crawler.pipeline import Pipeline
from crawler.report import CrawlReport
from crawler.writer import url_to_path

log = logging.getLogger("crawler")

DEMO_PORT = 8731

def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] == "demo":
            return _demo(_demo_parser().parse_args(args[1:]))
        return _crawl(_crawl_parser().parse_args(args))
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
    _setup_logging(args.verbose)
    config = load_config(args.config)
    return _run(config, show_summary=args.verbose > 0 or sys.stdout.isatty())


def _demo(args: argparse.Namespace) -> int:
    _setup_logging(args.verbose)
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


def _demo_server(port: int | None) -> SiteServer:
    """The fixed demo port keeps the mirror in one folder across runs; any free port otherwise."""
    if port is not None:
        return SiteServer(port=port)
    try:
        return SiteServer(port=DEMO_PORT)
    except OSError:
        return SiteServer(port=0)


def _run(config: Config, show_summary: bool) -> int:
    pipeline = Pipeline(config)
    with _stop_on_signals(pipeline.stop):
        report = pipeline.run()
    if show_summary:
        print(report.summary(), flush=True)
    if pipeline.fatal_error is not None:
        raise pipeline.fatal_error
    return exit_status(report)


def exit_status(report: CrawlReport) -> int:
    if report.outcome == "interrupted":
        return EXIT_INTERRUPTED
    if report.serious_failures or report.failed_start_urls() or report.published is False:
        return EXIT_FAILURES
    return EXIT_OK


# -- plumbing ---------------------------------------------------------------------------

@contextmanager
def _stop_on_signals(stop: object) -> Iterator[None]:
    """First Ctrl-C or SIGTERM: stop gracefully. Second: leave at once."""
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if len(received) > 1:
            print("crawl: interrupted again, exiting now", file=sys.stderr, flush=True)
            os._exit(EXIT_INTERRUPTED)
        print("crawl: stopping (finishing what is in flight; Ctrl-C again to quit now)",
              file=sys.stderr, flush=True)
        stop()  # type: ignore[operator]

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger("crawler")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _index_of(config: Config) -> str:
    return str(config.output_dir / url_to_path(config.start_urls[0]))


def _crawl_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="crawl", description="Mirror a website to disk through a threaded pipeline.",
        epilog="commands: 'crawl demo' mirrors the bundled sample site (no network needed).")
    parser.add_argument("config", help="YAML config file, e.g. configs/site.yaml")
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


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="print the summary even without a terminal; -vv for debug logs")
    parser.add_argument("--version", action="version", version=f"crawl {__version__}")


class _ArgumentParser(argparse.ArgumentParser):
    """argparse exits with status 2 by itself; this raises instead, so main() decides."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            print(message, file=sys.stderr)
        raise SystemExit(status if status == 0 else EXIT_USAGE)
