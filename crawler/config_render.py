"""The config section of pages built by JavaScript (render:), and finding the Chromium it drives."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from crawler.config_base import Section

# The Chromiums render.browser: null looks for on PATH, in this order.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
INSTALL_CHROMIUM = "apt-get install chromium"
INSTALL_PLAYWRIGHT = "pip install 'crawl-mirror[render]'"


def find_chromium(path: Path | None) -> Path:
    """The Chromium render.browser names, or the first of CHROMIUM_NAMES on PATH. Raises
    ValueError saying how to get one."""
    if path is not None:
        path = path.expanduser().absolute()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ValueError(f"browser {path} is not an executable file")
        return path
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    raise ValueError(f"a Chromium is needed, and none of {', '.join(CHROMIUM_NAMES)} is on PATH: "
                     f"{INSTALL_CHROMIUM} (or name one in render.browser)")


class RenderConfig(Section):
    """Pages built by JavaScript: rendered in a headless Chromium (driven by Playwright) before
    their links are read, and saved as the reader saw them -- the page after its scripts ran,
    without its scripts."""

    mode: Literal["never", "auto", "always"] = "never"
    """never: no page is rendered and no browser started. auto: an HTML page whose static HTML
    looks like an app shell -- an executable script, and either under 100 characters of visible
    text or an empty mount element such as <div id="root"></div> -- is rendered; the others are
    saved as served. always: every HTML page is rendered. auto and always need Playwright
    (pip install 'crawl-mirror[render]') and a Chromium."""
    browser: Path | None = None
    """The Chromium to drive. null: chromium, chromium-browser or google-chrome, the first on
    PATH (Debian: apt-get install chromium). No browser is ever downloaded."""
    wait: Literal["network_idle", "load"] | float = "network_idle"
    """When a page is taken as the reader sees it: network_idle (its load event, then 500 ms
    without a request -- at most until timeout), load (its load event), or a number: seconds
    after its load event."""
    parallel: int = Field(default=2, ge=1, le=32)
    """Pages rendered at once, each a tab of one browser (a tab may take 50-200 MB)."""
    timeout: float = Field(default=30.0, gt=0)
    """Seconds a page has to load in the browser. One that takes longer (or crashes the browser)
    is saved as its static HTML, with a warning and a render_failed note in the report."""

    @field_validator("wait", mode="before")
    @classmethod
    def _event_or_seconds(cls, wait: Any) -> Any:
        if wait in ("network_idle", "load"):
            return wait
        try:
            seconds = float(wait)
        except (TypeError, ValueError):
            seconds = 0.0
        if not seconds > 0 or isinstance(wait, bool):
            raise ValueError(f"give network_idle, load, or a number of seconds above 0 (got {wait!r})")
        return seconds

    @model_validator(mode="after")
    def _browser_is_there(self) -> RenderConfig:
        """auto and always need Playwright and a Chromium: said now, with how to install them,
        rather than page after page at crawl time. `browser` becomes the Chromium found."""
        if self.mode == "never":
            return self
        if importlib.util.find_spec("playwright") is None:
            raise ValueError(f"mode {self.mode} needs Playwright, which is not installed: {INSTALL_PLAYWRIGHT}")
        try:
            object.__setattr__(self, "browser", find_chromium(self.browser))
        except ValueError as error:
            raise ValueError(f"mode {self.mode}: {error}") from None
        return self
