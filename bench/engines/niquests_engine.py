#!/usr/bin/env python3
"""niquests engine: the requests-compatible library with HTTP/2 multiplexing.

Why this one as the third: it is the closest to what crawl has (a drop-in replacement for
requests: Session, PreparedRequest, cookie jar, proxies from the environment, the same
exceptions), and its multiplexed mode keeps many requests in flight on one HTTP/2
connection from *synchronous* code. If its CPU per request were low enough, the fetcher
would change least. HTTP/2 framing is jh2 (Python with a compiled HPACK), TLS is Python's
`ssl`, so the question is how much the GIL still carries.

A few threads, each with a multiplexed Session: a window of requests is sent (lazy
responses), and the oldest is gathered before another is sent.

niquests needs urllib3-future, which installs itself *as* `urllib3` and so replaces the
urllib3 that requests uses: run this from its own venv (see README.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections import deque

import niquests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Consumer, Outcome, Request, common_arguments, main_guard, run_engine

USER_AGENT = "crawl-engine-bench/0.1"


def fetch_all(requests: list[Request], consumer: Consumer, threads: int, per_host: int) -> dict:
    lock = threading.Lock()
    todo = deque(requests)
    window = max(1, -(-per_host // threads))
    verify = os.environ.get("REQUESTS_CA_BUNDLE") or True

    def take() -> Request | None:
        with lock:
            return todo.popleft() if todo else None

    def work() -> None:
        # HTTP/1.1 needs a connection per request in flight; on HTTP/2 the streams share one
        with niquests.Session(multiplexed=True, disable_http3=True, pool_connections=1,
                              pool_maxsize=window) as session:
            session.headers["User-Agent"] = USER_AGENT
            pending: deque[tuple[Request, niquests.Response]] = deque()
            while True:
                while len(pending) < window and (req := take()) is not None:
                    headers = dict(req.validators or {})
                    pending.append((req, session.get(req.url, headers=headers, allow_redirects=False,
                                                     verify=verify, timeout=30)))
                if not pending:
                    return
                req, resp = pending.popleft()
                session.gather(resp)
                consumer.put(_outcome(req, resp))

    workers = [threading.Thread(target=work, name=f"niquests-{i}") for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {"window_per_thread": window}


def _outcome(req: Request, resp: niquests.Response) -> Outcome:
    try:
        body = resp.content or b""
    except niquests.RequestException as exc:
        return Outcome(req.url, reason="connection_error", detail=str(exc))
    version = {11: "HTTP/1.1", 20: "HTTP/2", 30: "HTTP/3"}.get(getattr(resp.raw, "version", 0), "?")
    h = resp.headers
    return Outcome(req.url, status=resp.status_code or 0, body=body, etag=h.get("ETag"),
                   last_modified=h.get("Last-Modified"), content_type=h.get("Content-Type"),
                   location=h.get("Location"), http_version=version)


def main() -> int:
    parser: argparse.ArgumentParser = common_arguments(__doc__ or "")
    parser.add_argument("--threads", type=int, default=4, help="threads, each with a multiplexed Session")
    args = parser.parse_args()
    return run_engine("niquests", args,
                      lambda reqs, consumer: fetch_all(reqs, consumer, args.threads, args.per_host),
                      {"threads": args.threads, "per_host": args.per_host, "niquests": niquests.__version__})


if __name__ == "__main__":
    main_guard(main)
