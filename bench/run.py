"""A benchmark anyone can run: no root, no extra tools.

    python bench/run.py [--pages 2000] [--delay 20] [--fetchers 16] [--page-kb 20] [--recrawl]
                        [--scripts] [--set KEY=VALUE ...]

Generates a site (a tree of pages, each with ~30 links, an image and the site's stylesheet;
with --scripts, a script too, as analytics are), serves it from a separate process on
127.0.0.1 with a fixed delay before every response (a stand-in for network latency), runs
`crawl` on it end to end, and prints wall time, pages per second, CPU milliseconds per page
and peak memory -- for the first crawl and, with --recrawl, for a second one over the same
mirror. Peak memory is the crawl's process; and the crawl with every process it started (a
browser, with render.mode), their proportional set sizes added up, sampled every 0.1 s.
--set KEY=VALUE changes the crawl's config, as crawl's own --set does (render.mode=auto).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

WORDS = tuple(
    "mirror crawl fetch parse write queue thread frontier robots sitemap snapshot archive "  # noqa: SIM905
    "offline link page site host cache retry delay polite stream buffer socket".split())


def generate(root: Path, pages: int, page_kb: int, seed: int = 1, scripts: bool = False) -> None:
    """A site of `pages` HTML pages in folders of 50, ~30 links each, ~`page_kb` KB each;
    `scripts`: each with a script, as analytics are."""
    rng = random.Random(seed)
    (root / "static").mkdir(parents=True, exist_ok=True)
    (root / "static" / "site.css").write_text("body{font:16px sans-serif;background:url(bg.png)}\n")
    (root / "static" / "stats.js").write_text("document.documentElement.dataset.seen = Date.now();\n")
    script = "<script src='/static/stats.js' async></script>" if scripts else ""
    (root / "static" / "bg.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(2000)))
    images = 50
    for number in range(images):
        (root / "static" / f"img{number}.png").write_bytes(
            b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(3000 + 100 * number)))
    filler = " ".join(rng.choice(WORDS) for _ in range(page_kb * 150))
    for number in range(pages):
        links = {child for child in (2 * number + 1, 2 * number + 2) if child < pages}
        links |= {rng.randrange(pages) for _ in range(28)}
        anchors = "".join(f'<li><a href="{_href(number, target)}">page {target}</a></li>' for target in sorted(links))
        html = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Page {number}</title>"
                f"<link rel='stylesheet' href='/static/site.css'>{script}</head><body><h1>Page {number}</h1>"
                f"<img src='/static/img{number % images}.png' alt=''><ul>{anchors}</ul>"
                f"<p>{filler[: page_kb * 1000 - 2000]}</p></body></html>")
        path = root / _path(number)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html)


def _path(number: int) -> str:
    return "index.html" if number == 0 else f"section-{number // 50}/page-{number}.html"


def _href(source: int, target: int) -> str:
    return "/" + ("" if target == 0 else _path(target))


def crawl(config: Path, label: str, settings: list[str]) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    command = [sys.executable, "-m", "crawler", str(config), *(f"--set={setting}" for setting in settings)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = TreeMemory(process.pid)
    peak.start()
    _, stderr = process.communicate()
    wall = time.monotonic() - started
    peak.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode not in (0, 1):
        sys.exit(f"{label}: crawl exited {process.returncode}: {stderr}")
    report = json.loads((Path(yaml.safe_load(config.read_text())["output"]) / "report.json").read_text())
    saved = report["counts"]["saved"]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    figures = {"wall_s": wall, "files": saved, "pages_per_s": saved / wall,
               "cpu_ms_per_page": 1000 * cpu / max(saved, 1), "peak_rss_mb": after.ru_maxrss / 1024,
               "peak_tree_pss_mb": peak.peak / 1024, "rendered": report["counts"].get("rendered", 0),
               "requests": report["counts"]["fetched"] + report["counts"]["not_modified"]}
    rendered = f", {figures['rendered']} rendered" if figures["rendered"] else ""
    print(f"{label:9} {wall:7.2f} s  {figures['pages_per_s']:8.1f} pages/s  {figures['cpu_ms_per_page']:6.2f} "
          f"CPU ms/page  {figures['peak_rss_mb']:6.1f} MB peak RSS ({figures['peak_tree_pss_mb']:.1f} MB PSS with the "
          f"processes it started)  {saved} files, {report['counts']['fetched']} downloaded, "
          f"{report['counts']['not_modified']} not modified{rendered}")
    return figures


class TreeMemory(threading.Thread):
    """The most memory a process and its descendants used at once: their proportional set
    sizes (shared pages split between the processes sharing them), in KB, added up."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self._pid = pid
        self._done = threading.Event()
        self.peak = 0

    def run(self) -> None:
        while not self._done.wait(0.1):
            self.peak = max(self.peak, sum(_pss(pid) for pid in _tree(self._pid)))

    def stop(self) -> None:
        self._done.set()
        self.join()


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, waiting = [], [root]
    while waiting:
        pid = waiting.pop()
        found.append(pid)
        waiting += children.get(pid, [])
    return found


def _pss(pid: int) -> int:
    try:
        for text in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if text.startswith("Pss:"):
                return int(text.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--page-kb", type=int, default=20)
    parser.add_argument("--delay", type=float, default=20.0, help="milliseconds before each response")
    parser.add_argument("--fetchers", type=int, default=16)
    parser.add_argument("--recrawl", action="store_true", help="crawl a second time over the same mirror")
    parser.add_argument("--keep", action="store_true", help="keep the generated site and mirror")
    parser.add_argument("--scripts", action="store_true", help="a script on every page, as analytics are")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                        help="a config setting for the crawl, as crawl --set takes it: render.mode=auto")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="crawl-bench-"))
    site = work / "site"
    started = time.monotonic()
    generate(site, args.pages, args.page_kb, scripts=args.scripts)
    print(f"site: {args.pages} pages of ~{args.page_kb} KB{' with a script' if args.scripts else ''} in "
          f"{time.monotonic() - started:.1f} s; {args.delay:g} ms per response; {args.fetchers} fetchers"
          + "".join(f"; {setting}" for setting in args.settings))
    server = subprocess.Popen([sys.executable, str(Path(__file__).parent / "serve.py"), str(site),
                               str(args.delay / 1000)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        config = work / "bench.yaml"
        config.write_text(yaml.safe_dump({
            "start_urls": [url], "output": str(work / "mirror"),
            "threads": {"fetchers": args.fetchers, "parsers": 2, "writers": 2},
            "politeness": {"per_host": args.fetchers}, "scope": {"max_depth": None, "max_pages": None}}))
        crawl(config, "crawl", args.settings)
        if args.recrawl:
            crawl(config, "re-crawl", args.settings)
    finally:
        server.terminate()
        server.wait()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept in {work}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
