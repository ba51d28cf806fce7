"""A real headless browser for the tests: Debian's Chromium, driven by Playwright.

No browser is downloaded: Playwright launches the system's `chromium` (scripts/test installs
it). Without one the browser tests fail, saying how to install it -- they are never skipped.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

# This machine's closed network refuses Chromium's background connections: they are switched off.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def system_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("no Chromium on PATH: run scripts/test (it installs Debian's chromium), or apt-get install chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """A headless Chromium for the whole session (playwright.sync_api.Browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=system_chromium(), args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()
