"""What a command does with its process: where its logs go (the console, a log file; text or
JSON), and the signals it answers (Ctrl-C and SIGTERM: a crawl stops gracefully, a server ends).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType

from crawler.errors import EXIT_INTERRUPTED, UsageError
from crawler.logs import ENDING, FIELDS


@contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
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


@contextmanager
def noting_stop_signals(received: list[int]) -> Iterator[None]:
    """Ctrl-C and SIGTERM noted in `received`, not raised: a server's normal end, not an
    interruption. (Set before the server says it is up: a signal never finds it unguarded.)"""
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class JsonFormatter(logging.Formatter):
    """--log-format json: one JSON object per line, for log collectors. A record with fields
    (the summary: outcome, counts...; a failure: url, reason) has them as keys of their own,
    and the first line of its message."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        fields = getattr(record, FIELDS, None)
        if fields:
            entry["message"] = entry["message"].partition("\n")[0]
            entry.update((key, value) for key, value in fields.items() if key not in entry)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


SUMMARY_PRINTED = "summary_printed"  # a log record's attribute: the summary is on stdout already


def setup_logging(verbosity: int, log_file: str | None, log_format: str = "text") -> None:
    """On a terminal: warnings and errors; without one (cron): errors only, so that a quiet
    run sends no mail. -v: progress; -vv: debug. --log-file gets INFO (or more) as well."""
    level = logging.DEBUG if verbosity > 1 else logging.INFO if verbosity == 1 else \
        logging.WARNING if sys.stderr.isatty() else logging.ERROR
    formatter = JsonFormatter() if log_format == "json" else \
        logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(formatter)
    console.setLevel(level)
    if log_format != "json":  # what the command prints itself, a console log in text leaves out
        console.addFilter(lambda record: not getattr(record, SUMMARY_PRINTED, False)
                          and not getattr(record, ENDING, False))
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
