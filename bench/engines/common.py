"""What every prototype engine shares, so that only the HTTP part differs between them.

* the URL list: derived from the benchmark site's manifest (no crawl), in the order a crawl
  meets kinds of files (robots.txt, the start page, pages and their requisites, ?ref=
  variants, the 404s): the same 2,333 requests wget2 -t16 makes on the default site;
* `Outcome`: what an engine reports per URL (status, decoded body, the headers a crawler
  needs, or a failure reason in words);
* the consumer: fetchers put outcomes on a *bounded* queue, one consumer thread saves the
  bodies under the output folder (so the harness's "complete %" checks every byte arrived)
  and records the validators, as crawl's fetch -> parse/write pipeline does;
* the nightly re-crawl: `--revalidate` reads the records of the first pass and asks about
  every URL with If-None-Match / If-Modified-Since;
* the summary: one JSON line on stdout (requests, statuses, failures, CPU per request).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from urllib.parse import unquote, urlsplit

RECORDS_DIR = ".engine"  # inside the output folder: the harness counts it as files, like crawl's .crawl/
RECORDS = "records.jsonl"
QUEUE_SIZE = 100  # crawl's default queue_size: the bounded page queue between fetchers and parsers


@dataclass(frozen=True, slots=True)
class Request:
    url: str
    # If-None-Match / If-Modified-Since for a conditional request (the nightly re-crawl)
    validators: dict[str, str] | None = None


@dataclass(slots=True)
class Outcome:
    """One URL's result. `reason` is None for a complete response (any status), else a word:
    connection_error, dns_error, timeout, too_slow, tls_error, incomplete_body, too_large,
    decode_error, interrupted, invalid_url."""

    url: str
    status: int = 0
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None
    location: str | None = None  # the absolute redirect target (3xx), never followed by the engine
    retry_after: str | None = None
    http_version: str = ""
    reason: str | None = None
    detail: str = ""
    extra: dict[str, object] = field(default_factory=dict)


def common_arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("start_url", help="the site's root, e.g. https://10.200.0.2/")
    parser.add_argument("--manifest", required=True, help="the harness's <site>.manifest.json")
    parser.add_argument("--out", default=".", help="output folder (default: the current one)")
    parser.add_argument("--revalidate", action="store_true",
                        help="nightly re-crawl: a conditional request for every URL of the previous run")
    parser.add_argument("--per-host", type=int, default=16, help="requests in flight to the host at most")
    parser.add_argument("--limit", type=int, default=0, help="only the first N URLs (a quick try)")
    parser.add_argument("--busy", type=int, default=0,
                        help="threads that parse HTML in pure Python meanwhile, as crawl's parsers hold the GIL")
    parser.add_argument("--switch-interval", type=float, default=0.0,
                        help="sys.setswitchinterval (s); 0: Python's default (0.005)")
    return parser


def url_list(manifest_path: str, start_url: str) -> list[str]:
    """The URLs a complete mirror of the benchmark site requests, in crawl order."""
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    root = start_url.rstrip("/")
    paths = ["/robots.txt", "/"]
    # index.html is "/" (what the nav links to); the walk lists it under its file name
    paths += ["/" + p for p in manifest["required"] if p != "index.html"]
    paths += manifest["query_variants"]   # ?ref= copies of 25 pages: distinct URLs, real requests
    paths += manifest["broken_links"]     # the 22 links to missing files: 404s every crawler asks
    return [root + p for p in paths]


def requests_for(args: argparse.Namespace) -> list[Request]:
    urls = url_list(args.manifest, args.start_url)
    if args.limit:
        urls = urls[: args.limit]
    if not args.revalidate:
        return [Request(u) for u in urls]
    previous = load_records(args.out)
    out = []
    for u in urls:
        rec = previous.get(u, {})
        validators = {}
        if rec.get("etag"):
            validators["If-None-Match"] = rec["etag"]
        if rec.get("last_modified"):
            validators["If-Modified-Since"] = rec["last_modified"]
        out.append(Request(u, validators or None))
    return out


def load_records(out: str) -> dict[str, dict]:
    path = os.path.join(out, RECORDS_DIR, RECORDS)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return {rec["url"]: rec for rec in map(json.loads, f)}


def local_path(out: str, url: str) -> str | None:
    """Where a body is saved: out/<host>/<path>, "/" and "dir/" as index.html. ?query variants
    are not saved (the plain page is); the harness only checks the manifest's files."""
    parts = urlsplit(url)
    if parts.query:
        return None
    path = unquote(parts.path)
    if path.endswith("/"):
        path += "index.html"
    rel = os.path.normpath(path.lstrip("/"))
    if rel.startswith(".."):
        return None
    return os.path.join(out, parts.hostname or "host", rel)


class Consumer:
    """The stage after the fetchers: a bounded queue and one thread that saves bodies and
    keeps the records. A full queue holds the fetchers back (as crawl's page queue does)."""

    def __init__(self, out: str, revalidate: bool) -> None:
        self.queue: queue.Queue[Outcome | None] = queue.Queue(QUEUE_SIZE)
        self._out = out
        self._revalidate = revalidate
        self._previous = load_records(out) if revalidate else {}
        self.records: dict[str, dict] = {}
        self.statuses: Counter[int] = Counter()
        self.reasons: Counter[str] = Counter()
        self.protocols: Counter[str] = Counter()
        self.body_bytes = 0
        self.failures: list[dict] = []
        self._thread = threading.Thread(target=self._run, name="consumer", daemon=True)
        self._thread.start()

    def put(self, outcome: Outcome) -> None:
        self.queue.put(outcome)

    def close(self) -> None:
        self.queue.put(None)
        self._thread.join()
        self._save_records()

    def _run(self) -> None:
        made: set[str] = set()
        while (o := self.queue.get()) is not None:
            if o.reason is not None:
                self.reasons[o.reason] += 1
                if len(self.failures) < 20:
                    self.failures.append({"url": o.url, "reason": o.reason, "detail": o.detail[:200]})
                continue
            self.statuses[o.status] += 1
            self.protocols[o.http_version] += 1
            self.body_bytes += len(o.body)
            rec = {"url": o.url, "status": o.status, "bytes": len(o.body), "etag": o.etag,
                   "last_modified": o.last_modified, "content_type": o.content_type, "location": o.location}
            if o.status == 304:  # keep what the first pass learnt; the stored file stays as it is
                rec = {**self._previous.get(o.url, {}), "status": 304}
            self.records[o.url] = rec
            if o.status == 200:
                path = local_path(self._out, o.url)
                if path is not None:
                    folder = os.path.dirname(path)
                    if folder not in made:
                        os.makedirs(folder, exist_ok=True)
                        made.add(folder)
                    with open(path, "wb") as f:
                        f.write(o.body)

    def _save_records(self) -> None:
        folder = os.path.join(self._out, RECORDS_DIR)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, RECORDS), "w", encoding="utf-8") as f:
            for rec in self.records.values():
                f.write(json.dumps(rec) + "\n")


def run_engine(name: str, args: argparse.Namespace, fetch_all: Callable[[list[Request], Consumer], dict],
               settings: dict[str, object]) -> int:
    """Fetch every URL through `fetch_all` (which puts one Outcome per request on the consumer
    and returns engine figures), then print the summary line."""
    requests = requests_for(args)
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    consumer = Consumer(args.out, args.revalidate)
    busy = Busy(args.busy)
    started = time.monotonic()
    cpu0 = _cpu()
    figures = fetch_all(requests, consumer)
    consumer.close()
    wall = time.monotonic() - started
    parsed = busy.stop()
    if args.busy:
        figures = {**figures, "busy_threads": args.busy, "busy_pages_parsed_per_s": round(parsed / wall, 1),
                   "switch_interval": sys.getswitchinterval()}
    cpu = _cpu()  # includes interpreter start-up and imports, as the harness's figure does
    fetch_cpu = cpu - cpu0  # from the first request to the last record saved
    summary = {
        "engine": name, "settings": settings, "revalidate": args.revalidate,
        "requests": len(requests), "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
        "fetch_cpu_s": round(fetch_cpu, 3),
        "fetch_cpu_ms_per_request": round(1000 * fetch_cpu / max(1, len(requests)), 3),
        "statuses": {str(k): v for k, v in sorted(consumer.statuses.items())},
        "failures": dict(consumer.reasons), "failure_examples": consumer.failures,
        "protocols": dict(consumer.protocols), "body_bytes": consumer.body_bytes, **figures,
    }
    with open(os.path.join(args.out, RECORDS_DIR, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary), flush=True)
    # incomplete crawls (any failure) exit 1 so the harness notes them
    return 1 if consumer.reasons else 0


class Busy:
    """Threads that do what crawl's parsers do to the GIL: tokenize a 20 KB page in Python, over
    and over, until stopped. How many pages they got through says what the engine left them."""

    PAGE = ("<html><head><title>t</title></head><body>"
            + "".join(f'<p class="c{i}">text <a href="/docs/page-{i}.html#top">link {i}</a> '
                      f'<img src="../img/i{i}.png" srcset="../img/i{i}@2x.png 2x"></p>\n' for i in range(200))
            + "</body></html>")
    TAG = re.compile(r"<([a-zA-Z][^\s>/]*)([^>]*)>")
    ATTR = re.compile(r'([a-zA-Z-]+)="([^"]*)"')

    def __init__(self, threads: int) -> None:
        self._stop = threading.Event()
        self._counts = [0] * threads
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self, index: int) -> None:
        while not self._stop.is_set():
            links = []
            for tag in self.TAG.finditer(self.PAGE):  # a Python loop per tag: the GIL, held
                for name, value in self.ATTR.findall(tag.group(2)):
                    if name in ("href", "src", "srcset"):
                        links.append(value.split("#", 1)[0])
            self._counts[index] += 1

    def stop(self) -> int:
        self._stop.set()
        for t in self._threads:
            t.join()
        return sum(self._counts)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def as_dict(items: Iterable[Outcome]) -> list[dict]:
    return [asdict(o) for o in items]


def main_guard(main: Callable[[], int]) -> None:
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
