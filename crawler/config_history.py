"""The config sections of what a run keeps and tells: snapshots (with the noise to ignore when
pages are compared, and the health a snapshot needs to become `latest`) and notifications."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from crawler.config_base import Regex, Section
from crawler.notify_urls import check as _check_notify_url


class IgnoreRule(Section):
    """One kind of noise to leave out when comparing pages: elements or text."""

    css: str | None = None
    """A CSS selector: matching elements are removed (a rotating ad slot, a footer timestamp)."""
    regex: Regex | None = None
    """A regular expression: matching text of the page source is removed (a CSRF token)."""

    @model_validator(mode="after")
    def _exactly_one(self) -> IgnoreRule:
        if (self.css is None) == (self.regex is None):
            raise ValueError("give either css: or regex:, not both or neither")
        return self


class HealthConfig(Section):
    """What a snapshot must pass to become `latest`."""

    start_urls: bool = True
    """Every start URL was saved."""
    min_pages_ratio: float = Field(default=0.5, ge=0, le=1)
    """HTML pages saved, at least this share of the previous snapshot's."""
    max_failed_ratio: float = Field(default=0.2, ge=0, le=1)
    """Failed fetches (after retries, broken links aside) below this share of all fetches."""


class SnapshotsConfig(Section):
    """Dated snapshots of every run, and what changed between them."""

    keep: int = Field(default=0, ge=0)
    """Dated snapshots kept in output/snapshots/, each a complete mirror (unchanged files are
    hard links to the previous one). 0: one plain mirror, updated in place."""
    ignore: tuple[IgnoreRule, ...] = ()
    """Noise removed before pages are compared, so that "modified" means a meaningful change."""
    health: HealthConfig = HealthConfig()


NotifyWhen = Literal["changes", "failure", "always"]


class NotifyConfig(Section):
    """Messages about each run, through Apprise (e-mail, webhooks, Slack, Matrix, ntfy, Teams...:
    one URL syntax). A message that cannot be delivered never changes the crawl's outcome."""

    urls: tuple[Annotated[str, AfterValidator(_check_notify_url)], ...] = ()
    """Apprise URLs, one message to each: "mailto://user:${SMTP_PASSWORD}@mail.example.com?to=ops@example.com",
    "json://hooks.example.com/crawl". ${VAR} is the environment variable VAR, so that no secret
    sits in this file. Empty: no notifications."""
    when: tuple[NotifyWhen, ...] = ("changes", "failure")
    """Which runs send a message: "changes" (a completed run that added, modified or removed
    pages), "failure" (a run that ends with exit status 1), "always" (every run, interrupted
    ones too)."""
