"""The command line's grammar: one argparse parser per command (cli.py runs them).

Every parser reads options anywhere among the positionals (`crawl check CONFIG --requisite
URL`), and raises UsageError instead of exiting, so that `cli.main` alone decides statuses.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

from crawler import __version__
from crawler.errors import EXIT_USAGE, UsageError

DEMO_PORT = 8731
SERVE_PORT = 8000


def crawl_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="crawl", description="Mirror a website to disk through a threaded pipeline.",
        epilog="other commands: crawl demo | init URL | check CONFIG [URL ...] | status CONFIG | "
               "diff OUTPUT [OLD] [NEW] | serve OUTPUT | schedule CONFIG --at HH:MM | run-scheduled FOLDER | "
               "queue CONFIG... --redis URL | worker --redis URL | config set CONFIG KEY=VALUE  (crawl COMMAND --help)")
    parser.add_argument("config", metavar="CONFIG|URL",
                        help="YAML config file, e.g. configs/site.yaml; or the URL of a site to mirror with the "
                             "defaults (crawl init URL writes a config to start from)")
    parser.add_argument("-o", "--output", help="mirror folder (default: the config's output, or output/<host>)")
    parser.add_argument("--log-file", help="also log progress and the summary to this file")
    _settings_option(parser)
    _common_options(parser)
    return parser


def init_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="crawl init",
                             description="Write a config for a site: every key with its default and what it "
                                         "means, to edit (or change with crawl config set) and run.")
    parser.add_argument("url", help="where the crawl starts, e.g. https://example.com/")
    parser.add_argument("-o", "--config", help="the file to write (default: <host>.yaml)")
    parser.add_argument("--output", help="the mirror folder it names (default: output/<host>)")
    return parser


def demo_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="crawl demo",
                             description="Serve the bundled sample site on 127.0.0.1 and mirror it.")
    parser.add_argument("-o", "--output", help="mirror folder (default: output/demo)")
    parser.add_argument("--port", type=int, default=None,
                        help=f"port to serve on (default: {DEMO_PORT} if free, else any free port)")
    parser.add_argument("--serve", action="store_true",
                        help="only serve the site until Ctrl-C, to point your own config at it")
    _settings_option(parser)
    _common_options(parser)
    return parser


def diff_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="crawl diff", description="What changed between two snapshots, or what the "
                                                            "last run of a plain mirror changed.")
    parser.add_argument("output", metavar="CONFIG|OUTPUT", help="a config, or the output folder it writes to")
    parser.add_argument("old", nargs="?", help="earlier snapshot name (default: the one before NEW)")
    parser.add_argument("new", nargs="?", help="later snapshot name (default: the newest)")
    parser.add_argument("--json", action="store_true", help="print JSON, as in changes.json")
    parser.add_argument("--text", action="store_true",
                        help="also print a unified diff of the visible text of each modified page")
    return parser


def serve_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="crawl serve",
                             description="Browse a mirror and its history in a web browser: the timeline of runs, "
                                         "each snapshot as the site was that night, every version of a URL and "
                                         "what changed. Read-only; runs until Ctrl-C (exit 0).")
    parser.add_argument("output", metavar="CONFIG|OUTPUT", help="a config, or the output folder it writes to")
    parser.add_argument("--port", type=port, default=SERVE_PORT, help=f"port to listen on (default: {SERVE_PORT}; "
                                                                     "0: any free port)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only)")
    _common_options(parser)
    return parser


def port(text: str) -> int:
    """A TCP port number, 0 (any free one) to 65535."""
    number = int(text)
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port number (0 to 65535)")
    return number


def check_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="crawl check",
                             description="Validate a config and say, for each URL, whether it would be crawled "
                                         "and which rule decides (fetches the hosts' robots.txt).")
    parser.add_argument("config", help="YAML config file")
    parser.add_argument("urls", nargs="*", metavar="URL", help="URLs to judge")
    parser.add_argument("--requisite", action="store_true",
                        help="judge the URLs as a page's images, stylesheets or scripts, not as pages")
    parser.add_argument("--no-robots", action="store_true", help="do not fetch robots.txt")
    parser.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    _settings_option(parser)
    return parser


def status_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="crawl status",
                             description="Is a crawl of this config running, and how far has it got; else how "
                                         "did the last one end. Exit 0: running or completed; 1: interrupted "
                                         "or never run.")
    parser.add_argument("config", metavar="CONFIG|OUTPUT", help="a config, or the output folder it writes to")
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    _settings_option(parser)
    return parser


def schedule_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="crawl schedule",
                             description="Print (or install) what runs a config every night.")
    parser.add_argument("config", help="YAML config file")
    parser.add_argument("--at", required=True, help="time of day, HH:MM (local time)")
    parser.add_argument("--systemd", action="store_true", help="a systemd user timer instead of a crontab line")
    parser.add_argument("--install", action="store_true", help="install it, not only print it")
    parser.add_argument("--log-file", help="where runs log (default: <output>/crawl.log)")
    _settings_option(parser, "for every scheduled run")
    return parser


def run_scheduled_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="crawl run-scheduled",
                             description="Run every config of a folder on its schedule: line, until Ctrl-C.")
    parser.add_argument("folder", help="folder of YAML configs")
    parser.add_argument("--max-runs", type=int, default=None, help="stop after this many runs of each config")
    parser.add_argument("--log-file", help="also log to this file")
    _redis_option(parser, required=False, what="enqueue each due config on the job queue in Redis (crawl worker "
                                                "runs it) instead of running it here")
    _common_options(parser)
    return parser


def queue_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="crawl queue",
                             description="Put one crawl job per config on the job queue in Redis, for `crawl worker` "
                                         "processes to run (refused for a config whose crawl is queued or running); "
                                         "with --status, list the jobs and how they ended.")
    parser.add_argument("configs", nargs="*", metavar="CONFIG", help="YAML config files")
    _redis_option(parser)
    parser.add_argument("--status", action="store_true", help="list queued, running, failed and finished jobs")
    _settings_option(parser, "for every job")
    return parser


def worker_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="crawl worker",
                             description="Run crawl jobs from the queue in Redis, one at a time, each in a process "
                                         "of its own, until stopped.")
    _redis_option(parser)
    parser.add_argument("--burst", action="store_true", help="stop once the queue is empty")
    _common_options(parser)
    return parser


def config_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="crawl config",
                             description="Change settings of a config file for good, keeping its comments and "
                                         "layout: crawl config set configs/site.yaml snapshots.keep=30")
    parser.add_argument("action", choices=["set"], help="set: write KEY=VALUE settings into the file")
    parser.add_argument("config", help="YAML config file")
    parser.add_argument("settings", nargs="+", metavar="KEY=VALUE",
                        help="a dotted key and a YAML value, as --set takes them")
    return parser


def _settings_option(parser: argparse.ArgumentParser, scope: str = "for this run") -> None:
    parser.add_argument("--set", action="append", default=[], dest="settings", metavar="KEY=VALUE",
                        help=f"change a setting of the config {scope}, e.g. --set snapshots.keep=30 "
                             "(any dotted key; the value is read as YAML; repeatable)")


def _redis_option(parser: argparse.ArgumentParser, required: bool = True,
                  what: str = "the Redis of the job queue") -> None:
    parser.add_argument("--redis", required=required, metavar="URL", help=f"{what}: redis://HOST:6379/0")


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="print the summary even without a terminal; -vv for debug logs")
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="json: one JSON object per log line")
    parser.add_argument("--version", action="version", version=f"crawl {__version__} ({_html_reader()})")


def _html_reader() -> str:
    """Which reader finds the links of HTML pages: the C extension, or Python when it was not
    built (setup.py). Looked up without importing it: --version is built for every command."""
    if importlib.util.find_spec("crawler.mirror._skim") is not None:
        return "HTML links read in C"
    return "HTML links read in Python: the C extension was not built, reading is 3-7x slower"


class _ArgumentParser(argparse.ArgumentParser):
    """argparse exits with status 2 by itself; this raises instead, so main() decides."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            print(message, file=sys.stderr)
        raise SystemExit(status if status == 0 else EXIT_USAGE)
