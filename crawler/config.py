"""The config: one frozen, validated `Config` tree of typed sections (scope, threads, http,
politeness, mirror, render, snapshots, notify, state). The sections of what a run keeps and
tells are in config_history.py, rendering's in config_render.py, their base in config_base.py.

Each section is a small pydantic model that rejects unknown keys, so a typo is an error
rather than a silently ignored setting; each field says its unit and what 0 means. Reading
YAML into it, and the messages for what is wrong: config_file.py.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    field_validator,
    model_validator,
)

from crawler import __version__
from crawler.config_base import Regex, Section
from crawler.config_history import NotifyConfig, SnapshotsConfig
from crawler.config_render import RenderConfig
from crawler.urls import InvalidURLError, ascii_host, canonicalize, host_of

DEFAULT_USER_AGENT = f"crawl/{__version__} (website mirroring tool)"
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class ScopeConfig(Section):
    """Which URLs the crawl fetches: hosts, patterns, depth and limits."""

    domains: tuple[str, ...] = ()
    """Hosts whose pages are crawled. `*.example.com` also matches every subdomain; an
    international name may be written in Unicode. Empty: the hosts of the start URLs."""
    include: tuple[Regex, ...] = ()
    """When non-empty, a page URL must match at least one of these (re.search)."""
    exclude: tuple[Regex, ...] = ()
    """A URL matching any of these is never fetched."""
    max_depth: int | None = Field(default=20, ge=0)
    """Link hops from a start URL. 0: the start URLs only. null: no limit."""
    max_pages: int | None = Field(default=100_000, ge=1)
    """Save at most this many HTML pages: those closest to the start URLs, the same ones every
    run of an unchanged site (their images, stylesheets and scripts are fetched too). null: no limit."""
    max_url_length: int = Field(default=2048, ge=16)
    """Longer URLs are not fetched (a crawler trap, or a broken link generator)."""
    max_repeats: int = Field(default=3, ge=0)
    """A URL whose path repeats a sequence of segments this many times in a row
    (/a/b/a/b/a/b/) is a trap and not fetched. 0: no such check."""

    @field_validator("domains")
    @classmethod
    def _normalize_domains(cls, domains: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = []
        for domain in domains:
            name = domain.strip().lower().rstrip(".")
            bare = name.removeprefix("*.")
            if not bare or "/" in bare or ":" in bare or "*" in bare or " " in bare:
                raise ValueError(f"{domain!r} is not a host name (write example.com or *.example.com)")
            if not bare.isascii():  # bücher.example: as URLs name it, xn--bcher-kva.example
                try:
                    name = name[:len(name) - len(bare)] + ascii_host(bare)
                except InvalidURLError:
                    raise ValueError(f"{domain!r} is not a host name") from None
            cleaned.append(name)
        return tuple(cleaned)


class ThreadsConfig(Section):
    """Threads of each pipeline stage."""

    fetchers: int = Field(default=8, ge=1, le=512)
    """Downloads in parallel over HTTP/1.1 (a connection each). Over HTTP/2 a host may have up
    to politeness.per_host downloads in flight as streams of a connection. They are driven by
    one thread (two beside more than one parser or writer): a thread drives many downloads."""
    # One of each by default: the stages share one interpreter lock, and a second parser or
    # writer adds handovers of it (a third more context switches), not speed -- measured 8-12%
    # more CPU and wall on documentation sites (bench/docsite.py, 2026-12-01), and a second
    # thread driving the downloads with them (pipeline.fetch_threads). More writers help where
    # each file takes long to create (a network file system).
    parsers: int = Field(default=1, ge=1, le=64)
    """Threads extracting links (CPU-bound)."""
    writers: int = Field(default=1, ge=1, le=64)
    """Threads saving files (disk-bound)."""
    one_cpu: bool = True
    """While the crawl keeps a CPU busy, run its threads on one CPU (Linux; not while
    rendering: the browser gets them all). They take turns anyway (Python's interpreter lock),
    and a turn handed to another CPU wakes it: 14-28% more CPU, no speed gained. While the crawl
    waits for the network they may run anywhere, so that each response is taken up at once.
    false: the system places them."""


def _readable_file(path: Path) -> Path:
    """A file the crawl reads at its start (a CA bundle, a certificate, cookies): there, now,
    rather than a failure after the output folder was set up."""
    path = path.expanduser().absolute()
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        with path.open("rb"):
            pass
    except OSError as error:
        raise ValueError(f"{path}: cannot read it: {error.strerror or error}") from None
    return path


ReadableFile = Annotated[Path, AfterValidator(_readable_file)]


def _password_env_is_set(name: str) -> None:
    if not os.environ.get(name):
        raise ValueError(f"environment variable {name} (the password) is not set")


class AuthConfig(Section):
    """HTTP basic authentication for the hosts in scope.domains. The password is read from an
    environment variable, so that no secret sits in the config file."""

    username: str = Field(min_length=1)
    """The user name."""
    password_env: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """The environment variable that holds the password."""

    @model_validator(mode="after")
    def _password_is_set(self) -> AuthConfig:
        _password_env_is_set(self.password_env)
        return self

    def credentials(self) -> tuple[str, str]:
        return self.username, os.environ.get(self.password_env, "")

    def __repr__(self) -> str:
        return f"AuthConfig(username={self.username!r}, password_env={self.password_env!r})"


class ClientCertConfig(Section):
    """A client certificate (PEM) for sites that ask for one in the TLS handshake."""

    cert: ReadableFile
    """The certificate file (PEM). Relative paths are taken from the working directory."""
    key: ReadableFile | None = None
    """Its private key (PEM, not encrypted). null: the key is in the `cert` file."""


class HttpConfig(Section):
    """How requests are made: timeouts, retries, size limits, headers."""

    timeout: float = Field(default=30.0, gt=0)
    """Seconds to connect, and seconds of silence allowed while reading (counted in whole
    seconds, at least 1)."""
    max_time: float = Field(default=300.0, gt=0)
    """Seconds one response may take in all, headers and body: a server that trickles bytes
    forever is cut off."""
    min_rate: int = Field(default=1000, ge=0)
    """Bytes per second a body must arrive at, over any `timeout`-long stretch (curl's
    --speed-limit/--speed-time): a slower one is cut as too_slow and retried like a timeout.
    0: no minimum."""
    retries: int = Field(default=3, ge=0, le=20)
    """Tries after the first, for connection errors, timeouts, 429 and 5xx. 0: no retry."""
    retry_backoff: float = Field(default=1.0, ge=0)
    """Seconds before the first retry; doubled for each further one (with jitter)."""
    max_retry_after: float = Field(default=120.0, ge=0)
    """Longest wait a Retry-After header (429, 503) may ask for, in seconds."""
    max_redirects: int = Field(default=20, ge=0, le=100)
    """Redirects followed for one URL; a longer chain fails. 0: redirects are not followed."""
    user_agent: str = DEFAULT_USER_AGENT
    """The User-Agent header. Adding a contact lets a site's operator reach you instead of
    blocking you: "my-archiver/1.0 (+mailto:me@example.com)"."""
    max_bytes: int = Field(default=50_000_000, ge=1)
    """Largest body accepted, counted after decompression. Bigger responses fail."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra request headers, sent only to hosts in scope.domains."""
    auth: AuthConfig | None = None
    """Basic authentication, sent only to hosts in scope.domains."""
    ca_bundle: ReadableFile | None = None
    """A PEM file of certificate authorities trusted in addition to the usual ones (the file
    REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE names, else certifi's): an intranet's own CA."""
    verify: bool = True
    """Check TLS certificates. false: any certificate is accepted (a site whose certificate is
    broken) -- the crawl warns at its start and in report.json."""
    client_cert: ClientCertConfig | None = None
    """A client certificate for sites that require one: {cert: FILE, key: FILE}."""
    cookies_file: ReadableFile | None = None
    """A Netscape/Mozilla cookies.txt (as browser extensions, curl and wget export it), loaded
    at the start; each cookie is sent only where its domain and path say."""

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if "\r" in value or "\n" in value:
                raise ValueError(f"header {name!r} contains a line break")
        return headers

    @field_validator("user_agent")
    @classmethod
    def _check_user_agent(cls, value: str) -> str:
        if not value.strip() or "\r" in value or "\n" in value:
            raise ValueError("must be a non-empty single line")
        return value


class PolitenessConfig(Section):
    """How gently each host is treated."""

    robots: bool = True
    """Obey robots.txt (fetched once per host, before any other URL of that host)."""
    per_host: int = Field(default=4, ge=1, le=512)
    """Requests in flight to one host at most."""
    delay: float = Field(default=0.0, ge=0)
    """Seconds between the starts of two requests to one host (a robots.txt Crawl-delay
    wins when it is longer). 0: no pause."""


class MirrorConfig(Section):
    """What the mirror holds and how it is written."""

    requisites: bool = True
    """Fetch every saved page's images, stylesheets, scripts, fonts and frames, whatever the
    depth and even on other hosts (a CDN). false: they follow the rules of pages."""
    convert_links: bool = True
    """After the crawl, rewrite links in saved HTML and CSS: to a relative path where the target
    was saved, to the absolute URL where it was not."""
    adjust_extension: bool = True
    """Save HTML served without an .html/.htm ending (/about, page.php?id=3) with ".html"
    appended, and CSS without .css with ".css", so a browser opens them from disk."""
    sitemaps: bool = True
    """Read /sitemap.xml of each start host (and the sitemaps robots.txt names) for more pages."""
    revalidate: Literal["auto", "always"] = "auto"
    """On a re-crawl, "always" sends a conditional request for every URL saved before; "auto"
    skips the ones the server said are still fresh (Cache-Control max-age, Expires) and,
    with `heuristic_freshness`, those without such a lifetime for a while after they were
    checked."""
    heuristic_freshness: float = Field(default=0, ge=0)
    """Seconds a response the server gave no lifetime stays fresh (RFC 9111 heuristic: 10%
    of its age since Last-Modified, at most this). 0: such responses are asked about on every
    run, so a file fixed on the site is fetched by the next run."""
    delete_removed: bool = False
    """Plain mirrors (snapshots.keep: 0): delete the files of URLs that are gone from the site
    (404/410, or no longer linked), as rsync --delete does."""


class LoginConfig(Section):
    """A form login before the crawl: the form with a password field on `url` is filled in
    and submitted, and the session cookies it brings are kept for the crawl. Links that would
    log out are not followed."""

    url: str
    """The page whose form (the one with a password field) is submitted."""
    fields: dict[str, str] = Field(default_factory=dict)
    """Fields to fill ({username: alice}); the form's other fields (hidden CSRF tokens) keep
    their values."""
    password_env: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """The environment variable whose value goes into the password field."""
    success_text: str | None = None
    """Text that must appear on the page the login leads to ("Sign out"), else the crawl
    stops with exit 1. null: any answer that is not an error, without the login form."""

    @field_validator("url")
    @classmethod
    def _canonical_url(cls, url: str) -> str:
        try:
            return canonicalize(url.strip())
        except InvalidURLError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _password_is_set(self) -> LoginConfig:
        _password_env_is_set(self.password_env)
        return self

    def password(self) -> str:
        return os.environ.get(self.password_env, "")


class StateConfig(Section):
    """Where the crawl state lives: in the output folder (one machine), or in Redis, shared by
    every worker that runs the same config (several machines, one crawl)."""

    backend: Literal["sqlite", "redis"] = "sqlite"
    """sqlite: .crawl/state.sqlite in the output folder, one worker. redis: the state at `url`,
    shared by every `crawl CONFIG` run with this config (the output folder must be shared too)."""
    url: str | None = None
    """The Redis server of backend: redis, as redis://HOST:6379/0 (rediss:// for TLS)."""
    lease_seconds: float = Field(default=120.0, ge=1)
    """A URL taken by a worker that stops answering (killed, cut off) goes back to the queue
    after this many seconds; a live worker renews its leases well before."""

    @model_validator(mode="after")
    def _url_for_redis(self) -> StateConfig:
        if self.backend == "redis" and not self.url:
            raise ValueError("backend: redis needs url: redis://HOST:6379/0")
        if self.url is not None and not re.match(r"^(redis|rediss|unix)://", self.url):
            raise ValueError(f"{self.url!r} is not a Redis URL (redis://HOST:6379/0)")
        return self


class Config(Section):
    start_urls: tuple[str, ...] = Field(min_length=1)
    """Where the crawl starts: http(s) URLs. A single URL may be written without the list brackets."""
    output: Path | None = None
    """Mirror folder. Relative paths are taken from the working directory.
    Default: output/<host of the first start URL>."""
    scope: ScopeConfig = ScopeConfig()
    threads: ThreadsConfig = ThreadsConfig()
    queue_size: int = Field(default=100, ge=1, le=100_000)
    """Bound of each queue between two stages."""
    http: HttpConfig = HttpConfig()
    login: LoginConfig | None = None
    """A form login before the crawl: {url, fields, password_env, success_text}."""
    politeness: PolitenessConfig = PolitenessConfig()
    mirror: MirrorConfig = MirrorConfig()
    render: RenderConfig = RenderConfig()
    snapshots: SnapshotsConfig = SnapshotsConfig()
    notify: NotifyConfig = NotifyConfig()
    output_formats: tuple[Literal["files", "warc"], ...] = ("files",)
    """What a crawl writes: the mirror's files, and a WARC 1.1 archive of every request and
    response ("warc")."""
    state: StateConfig = StateConfig()
    schedule: str | None = None
    """A cron expression ("0 2 * * *": nightly at 02:00) for `crawl run-scheduled`."""

    @field_validator("output_formats")
    @classmethod
    def _files_always(cls, formats: tuple[str, ...]) -> tuple[str, ...]:
        if "files" not in formats:
            raise ValueError("must include files (the mirror is what the other formats describe)")
        return tuple(dict.fromkeys(formats))

    @field_validator("schedule")
    @classmethod
    def _cron(cls, expression: str | None) -> str | None:
        from croniter import croniter  # only configs with a schedule need it

        if expression is not None and not croniter.is_valid(expression):
            raise ValueError(f"{expression!r} is not a cron expression (minute hour day month weekday)")
        return expression

    @field_validator("start_urls", mode="before")
    @classmethod
    def _one_url_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("start_urls")
    @classmethod
    def _canonical_start_urls(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        canonical = []
        for url in urls:
            try:
                canonical.append(canonicalize(url.strip()))
            except InvalidURLError as exc:
                raise ValueError(f"{url!r}: {exc}") from None
        return tuple(dict.fromkeys(canonical))

    @model_validator(mode="after")
    def _fill_defaults(self) -> Config:
        hosts = tuple(dict.fromkeys(host_of(url) for url in self.start_urls))
        if not self.scope.domains:
            object.__setattr__(self, "scope", self.scope.model_copy(update={"domains": hosts}))
        output = self.output if self.output is not None else Path("output") / hosts[0].replace(":", "_")
        object.__setattr__(self, "output", output.expanduser().absolute())
        return self

    @property
    def output_dir(self) -> Path:
        assert self.output is not None  # filled in by _fill_defaults
        return self.output
