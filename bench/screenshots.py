"""The README's screenshot of report.html: `python bench/screenshots.py [--out docs/img]`.

Crawls tests/report_site.py's bookshop on 127.0.0.1 twice -- two nights of snapshots, the
second with pages modified, added and removed -- opens the second night's report.html in the
headless Chromium the browser tests use (tests/browser.py), with the first modified page's
diff unfolded, and saves the top of it as report.png. Run it by hand when the report's looks
change; the tests do not.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.config_file import parse_config  # noqa: E402 (after the path to the project)
from crawler.demo.server import SiteServer  # noqa: E402
from crawler.engine.run import CrawlRun  # noqa: E402
from tests.browser import CHROMIUM_FLAGS, system_chromium  # noqa: E402
from tests.report_site import Bookshop  # noqa: E402

WIDTH, HEIGHT = 960, 1500  # the part of the page shown: figures, bound by, the picture, the first changes
MAX_BYTES = 150_000


def two_nights(output: Path) -> Path:
    """Crawl the bookshop twice into `output` (snapshots); the second night's report.html."""
    shop = Bookshop()
    with SiteServer(root=None, routes=shop.routes()) as server:
        yaml = (f"start_urls: [{server.url}]\noutput: {output}\nsnapshots: {{keep: 7}}\n"
                "politeness: {delay: 0.1}\nhttp: {timeout: 5, retries: 0}\n")
        for night in (1, 2):
            if night == 2:
                shop.next_night()
            report = CrawlRun(parse_config(yaml, "books.yaml")).run()
    return report.mirror / "report.html"


def screenshot(page_file: Path, png: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=system_chromium(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.goto(page_file.as_uri())
            page.evaluate("document.querySelector('details').open = true")
            page.screenshot(path=str(png), clip={"x": 0, "y": 0, "width": WIDTH, "height": HEIGHT})
        finally:
            browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="folder of the PNG")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        png = args.out / "report.png"
        screenshot(two_nights(Path(folder) / "books"), png)
    size = png.stat().st_size
    print(f"wrote {png} ({size:,} bytes)")
    if size > MAX_BYTES:
        print(f"larger than {MAX_BYTES:,} bytes: show less of the page (HEIGHT)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
