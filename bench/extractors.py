"""CPU time per page to find the links of HTML pages, by extractor (the README's table).

    python bench/extractors.py FOLDER [--pages 500]

FOLDER holds the pages, e.g. the shared benchmark's generated site
(/tmp/crawl-bench/sites/synthetic-p2000-s1) or one `bench/run.py --keep` left behind.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from bs4 import BeautifulSoup, SoupStrainer
from lxml import etree
from lxml import html as lxml_html

from crawler.mirror.skim import html_spots
from crawler.mirror.tags import read_tags

LINK_TAGS = ["a", "link", "img", "script", "source", "iframe", "style"]


def per_page_ms(bodies: list[bytes], extract: Callable[[bytes], object], rounds: int) -> float:
    """The best of `rounds` passes over the pages, in CPU milliseconds per page."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for body in bodies:
            extract(body)
        best = min(best, time.process_time() - start)
    return best * 1000 / len(bodies)


def lxml_etree_links(body: bytes) -> list[str | None]:
    tree = etree.fromstring(body, etree.HTMLParser())
    return [element.get("href") or element.get("src") for element in tree.iter(*LINK_TAGS)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--pages", type=int, default=500)
    args = parser.parse_args()
    bodies = [path.read_bytes() for path in sorted(args.folder.rglob("*.html"))[:args.pages]]
    if not bodies:
        parser.error(f"no .html files under {args.folder}")
    strainer = SoupStrainer(LINK_TAGS)
    extractors: list[tuple[str, Callable[[bytes], object], int]] = [
        ("beautifulsoup4 + html.parser, SoupStrainer",
         lambda b: BeautifulSoup(b, "html.parser", parse_only=strainer), 1),
        ("beautifulsoup4 + lxml, SoupStrainer", lambda b: BeautifulSoup(b, "lxml", parse_only=strainer), 1),
        ("lxml.html iterlinks()", lambda b: list(lxml_html.fromstring(b).iterlinks()), 3),
        ("lxml.etree, link-carrying tags", lxml_etree_links, 3),
        ("crawler.mirror.tags.read_tags (tag by tag)", read_tags, 3),
        ("crawler.mirror.skim.html_spots", html_spots, 3),
    ]
    print(f"{len(bodies)} pages, {sum(map(len, bodies)) / len(bodies) / 1024:.1f} KB each on average")
    for name, extract, rounds in extractors:
        print(f"{name:45} {per_page_ms(bodies, extract, rounds):6.3f} ms/page")


if __name__ == "__main__":
    main()
