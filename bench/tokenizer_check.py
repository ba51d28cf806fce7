"""Do the HTML tokenizer's fast paths find exactly what reading every tag finds, on real pages?

    python bench/tokenizer_check.py FOLDER... [--sample 5000] [--against main]

For every .html file under each FOLDER (or a random --sample of them, the same each run),
compares `skim.compiled_spots` (the crawl's, when the C extension is built), `skim.python_spots`
(the Python skim), `tags.read_tags` (tag by tag, skipping stretches without links) and
`tags.read_tags(skip=False)` (every tag: the reference) -- and the targets of the links as
resolved with the C extension's resolver of plain links and without it; with --against
REF, also the html_spots of markup.py as committed at that git revision (before the
tokenizer was split, it was there). Prints, per folder, the pages compared, those that
differ, and CPU milliseconds per page of each. Exits 1 if any page differs.

Debian packages with large documentation sites: python3-doc (/usr/share/doc/python3.11/html,
Sphinx), rust-doc (/usr/share/doc/rust-doc/html, rustdoc), postgresql-doc-15
(/usr/share/doc/postgresql-doc-15/html, DocBook).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crawler.mirror import links, skim, tags

Reader = Callable[[bytes], object]


def committed_html_spots(revision: str) -> Reader:
    """html_spots from crawler/mirror/markup.py at `revision`, loaded as a module of its own."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(["git", "-C", str(root), "show", f"{revision}:crawler/mirror/markup.py"],
                            capture_output=True, text=True, check=True).stdout
    module = types.ModuleType(f"markup_at_{revision}")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{revision}:crawler/mirror/markup.py", "exec"), module.__dict__)
    return module.html_spots  # type: ignore[no-any-return]


def comparable(document: Any) -> tuple[object, ...]:
    """A Document as plain values: the committed module's Spot and Context are other classes."""
    def spot(value: Any) -> object:
        return None if value is None else (value.start, value.end, value.kind.value, value.context.value, value.quote)

    return [spot(item) for item in document.spots], spot(document.base), \
        [tuple(copy) for copy in document.lazy], tuple(document.robots)


def resolved_differently(body: bytes, url: str) -> bool:
    """Do the page's links resolve to other targets with the C extension than without?"""
    with_c = links.parse_document(body, url, "text/html")
    plain, links.resolve_plain = links.resolve_plain, None
    try:
        without = links.parse_document(body, url, "text/html")
    finally:
        links.resolve_plain = plain
    return with_c is not None and without is not None and with_c.targets != without.targets


def check(folder: Path, sample: int | None, readers: dict[str, Reader]) -> int:
    paths = sorted(folder.rglob("*.html"))
    if sample is not None and len(paths) > sample:
        paths = sorted(random.Random(14).sample(paths, sample))
    seconds = dict.fromkeys(readers, 0.0)
    differ = 0
    for path in paths:
        body = path.read_bytes()
        found = {}
        for name, read in readers.items():
            start = time.process_time()
            found[name] = comparable(read(body))
            seconds[name] += time.process_time() - start
        reference = found["every tag"]
        wrong = [name for name, document in found.items() if document != reference]
        if skim.COMPILED and resolved_differently(body, "https://docs.example/" + path.relative_to(folder).as_posix()):
            wrong.append("resolved by the C extension")
        if wrong:
            differ += 1
            print(f"  differs: {path} ({', '.join(wrong)})")
    size = sum(path.stat().st_size for path in paths) / max(len(paths), 1) / 1024
    times = ", ".join(f"{name} {seconds[name] * 1000 / max(len(paths), 1):.3f}" for name in readers)
    print(f"{folder}: {len(paths)} pages ({size:.1f} KB each on average), {differ} differ; ms/page: {times}")
    return differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--sample", type=int, help="compare this many pages per folder, chosen at random")
    parser.add_argument("--against", metavar="REV", help="also compare with markup.html_spots at this git revision")
    args = parser.parse_args()
    readers: dict[str, Reader] = {
        "every tag": lambda body: tags.read_tags(body, skip=False),
        "tag by tag": tags.read_tags,
        "skim": skim.python_spots,
    }
    if skim.COMPILED:
        readers["compiled"] = skim.compiled_spots
    if args.against:
        readers[args.against] = committed_html_spots(args.against)
    differ = sum(check(folder, args.sample, readers) for folder in args.folders)
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
