#!/usr/bin/env python3
"""Baseline: crawl's own fetcher (crawler/fetcher.py) as it runs today.

16 threads (threads.fetchers), each with its own requests.Session, stream=True and a read
loop over the decoded body, the watchdog guarding every request: the very code the crawler
runs, called on the fixed URL list instead of the frontier's. Only HTTP is measured here;
parsing and writing are the shared consumer's (common.py), the same for every engine.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Consumer, Outcome, Request, common_arguments, main_guard, run_engine

from crawler.config import HttpConfig
from crawler.errors import FetchError
from crawler.fetcher import Fetcher, Follow, Redirected
from crawler.models import CrawlItem, LinkKind, SavedFile


def fetch_all(requests: list[Request], consumer: Consumer, threads: int) -> dict:
    fetcher = Fetcher(HttpConfig(), in_domains=lambda url: True,
                      may_follow=lambda item, target: Follow.NO)  # one hop: the engines compare requests
    lock = threading.Lock()
    todo = iter(requests)

    def work() -> None:
        try:
            while True:
                with lock:
                    req = next(todo, None)
                if req is None:
                    return
                consumer.put(_one(fetcher, req))
        finally:
            fetcher.close()

    workers = [threading.Thread(target=work, name=f"fetcher-{i}") for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    fetcher.shutdown()
    return {}


def _one(fetcher: Fetcher, req: Request) -> Outcome:
    stored = None
    if req.validators:
        stored = SavedFile(url=req.url, path="", status=200, content_type="", size=0, sha256="",
                           etag=req.validators.get("If-None-Match"),
                           last_modified=req.validators.get("If-Modified-Since"),
                           fetched_at=datetime.now(timezone.utc).isoformat())
    try:
        result = fetcher.fetch(CrawlItem(req.url, 0, LinkKind.PAGE), stored)
    except FetchError as exc:
        if exc.status is not None:  # an HTTP error status is a complete answer (a 404 page)
            return Outcome(req.url, status=exc.status)
        return Outcome(req.url, reason=exc.reason, detail=str(exc))
    if isinstance(result, Redirected):
        return Outcome(req.url, status=result.status, location=result.target)
    return Outcome(req.url, status=result.status, body=result.body, etag=result.etag,
                   last_modified=result.last_modified, content_type=result.content_type,
                   http_version=result.http_version)


def main() -> int:
    parser: argparse.ArgumentParser = common_arguments(__doc__ or "")
    parser.add_argument("--threads", type=int, default=16, help="fetcher threads (threads.fetchers)")
    args = parser.parse_args()
    return run_engine("requests", args, lambda reqs, consumer: fetch_all(reqs, consumer, args.threads),
                      {"threads": args.threads})


if __name__ == "__main__":
    main_guard(main)
