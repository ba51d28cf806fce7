"""How a shared crawl (state.backend: redis) scales from one worker to three on this machine.

    .venv/bin/python bench/workers.py [--pages 800] [--latency 0.05]

A local site of `pages` HTML pages (a tree, each with a small image) answering after `latency`
seconds, a redis-server on a free port, and 1, 2 and 3 workers (`python -m crawler CONFIG`,
real processes) crawling it together, twice: with a per-host limit (politeness.per_host: 4,
which holds for all workers together) and without one to speak of (per_host: 64). Prints
files per second from the first request to the last worker's exit. Results: bench/workers.md.
"""

from __future__ import annotations

import argparse
import http.server
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import yaml

from crawler.demo.server import SiteServer


def site(pages: int, latency: float) -> dict[str, object]:
    def page(number: int) -> bytes:
        links = "".join(f'<a href="/p/{child}.html">{child}</a>' for child in (2 * number + 1, 2 * number + 2)
                        if child < pages)
        return f'<html><body><img src="/i/{number}.png">{links}</body></html>'.encode()

    def answer(body: bytes, kind: str, delay: float) -> object:
        def route(handler: http.server.BaseHTTPRequestHandler) -> None:
            time.sleep(delay)
            handler.send_response(200)
            handler.send_header("Content-Type", kind)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        return route

    routes = {f"/p/{n}.html": answer(page(n), "text/html", latency) for n in range(pages)}
    routes.update({f"/i/{n}.png": answer(bytes(200 + n % 100), "image/png", latency) for n in range(pages)})
    return routes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def crawl(workers: int, per_host: int, server: SiteServer, redis_url: str, folder: Path) -> tuple[float, int]:
    """(seconds, files) of one shared crawl by `workers` processes."""
    out = folder / f"out-{workers}-{per_host}"
    config = folder / f"c-{workers}-{per_host}.yaml"
    config.write_text(yaml.safe_dump({
        "start_urls": [server.url + "p/0.html"], "output": str(out), "scope": {"max_pages": None},
        "threads": {"fetchers": 16}, "politeness": {"robots": False, "per_host": per_host},
        "mirror": {"sitemaps": False}, "state": {"backend": "redis", "url": redis_url, "lease_seconds": 30}}))
    before = len(server.request_log())
    processes = [subprocess.Popen([sys.executable, "-m", "crawler", str(config)]) for _ in range(workers)]
    for process in processes:
        process.wait()
    log = server.request_log()[before:]
    ended = time.monotonic()
    return ended - log[0][0], len(log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=800)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    port = free_port()
    server_process = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
                                      stdout=subprocess.DEVNULL)
    try:
        while True:
            try:
                redis.Redis(port=port).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        with SiteServer(root=None, routes=site(args.pages, args.latency)) as server:  # type: ignore[arg-type]
            print(f"{args.pages} pages + {args.pages} images, {args.latency * 1000:.0f} ms each")
            print("per_host  workers  seconds  files/s")
            total_files = 0
            for per_host in (4, 64):
                for workers in (1, 2, 3):
                    seconds, files = crawl(workers, per_host, server, f"redis://127.0.0.1:{port}/0", folder)
                    total_files += files
                    print(f"{per_host:8}  {workers:7}  {seconds:7.1f}  {files / seconds:7.0f}", flush=True)
            # What each file costs the Redis server (its CPU, polling of idle workers included):
            # the ceiling of a fleet of workers sharing one Redis.
            info = redis.Redis(port=port).info()
            scripts = info.get("cmdstat_evalsha", {}).get("calls", 0) if "cmdstat_evalsha" in info else \
                redis.Redis(port=port).info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
            busy = float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
            print(f"redis: {scripts / total_files:.1f} scripts and {busy / total_files * 1e6:.0f} us of CPU per file "
                  f"(one Redis core: at most ~{total_files / busy:,.0f} files/s)")
    finally:
        server_process.terminate()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
