"""The exception tree of crawl, and the exit code each one means.

    CrawlError                 exit 1: the crawl could not do its job
     +-- ConfigError           exit 2: the YAML config is unusable (file, key and reason attached)
     +-- UsageError            exit 2: bad command line
     +-- OutputError           exit 1: the output folder is unusable (unwritable, disk full, ...)
     +-- LoginError            exit 1: the login before the crawl did not succeed
     +-- UnsafePathError       a URL would map outside the output folder (a per-URL failure)
     +-- FetchError            one URL could not be fetched (a per-URL failure, never fatal)
     +-- LeaseLostError        a shared crawl's worker lost a URL to another (its work is dropped)
     +-- HandedOverError       exit 0: another worker of a shared crawl is finishing it

Per-URL errors become data in the report; only the errors that make the whole run impossible
reach `cli.main`, which is the one place that turns them into an exit status.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CrawlError(Exception):
    """Root of every error crawl raises on purpose."""

    exit_code = EXIT_FAILURES


class ConfigError(CrawlError):
    """The config file cannot be used. The message names the file and the key."""

    exit_code = EXIT_USAGE


class UsageError(CrawlError):
    exit_code = EXIT_USAGE


class OutputError(CrawlError):
    """The output folder cannot be written (permissions, disk full, not a folder)."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class LoginError(CrawlError):
    """The form login (the config's login:) failed; the crawl does not start."""


class UnsafePathError(CrawlError):
    """A URL cannot be saved without leaving the output folder or following a symlink."""


class LeaseLostError(CrawlError):
    """A worker of a shared crawl (state.backend: redis) no longer holds a URL it was working on:
    it was stopped past its lease, and another worker took the URL. Its work on it is dropped."""


class HandedOverError(CrawlError):
    """Nothing for this worker to do: another worker of the shared crawl is finishing it."""

    exit_code = EXIT_OK


class FetchError(CrawlError):
    """One URL failed. `reason` is a short machine-friendly tag used to group failures."""

    def __init__(self, message: str, url: str, reason: str, *, retryable: bool = False,
                 retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status
        # The redirects followed before it failed, as (source, target): they led to `url`; or,
        # for a redirect loop or too long a chain (reported under its first URL), the chain.
        self.hops: tuple[tuple[str, str], ...] = ()
