"""Crawl a real documentation site from a local nginx, beside wget2: the "large real pages"
figures of docs/performance.md.

    python bench/docsite.py FOLDER [--runs 2] [--wget2] [--crawl-cmd "CMD" ...]

Starts nginx (Debian's package) on a free port of 127.0.0.1, serving FOLDER with gzip as the
web serves documentation; crawls it with this checkout's crawl (16 fetchers, per_host 64, the
harness's HTTPS settings) into a folder on tmpfs, and with wget2 (`--mirror -p -k -E -np`, 16
threads) if asked; prints, per run, wall and CPU seconds (user + system of the crawler and its
children) and the files saved. Each --crawl-cmd is another build run alternately with this one,
its config file's path appended: `--crawl-cmd "env PYTHONPATH=/tmp/old python -m crawler"`
measures a checkout of an older commit (`git worktree add /tmp/old COMMIT`) in the same
sitting -- on a shared machine, only figures of one sitting compare.

Debian packages with large documentation sites: python3-doc (/usr/share/doc/python3.11/html:
530 pages, 135 over 100 KB), rust-doc (/usr/share/doc/rust-doc/html: 22,256 files),
postgresql-doc-15 (/usr/share/doc/postgresql-doc-15/html).
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMPFS = Path("/dev/shm")  # the output on tmpfs: the disk's speed is not what is measured


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def nginx(folder: Path, work: Path) -> Iterator[str]:
    """nginx serving `folder` on 127.0.0.1; yields its URL."""
    port = free_port()
    config = work / "nginx.conf"
    config.write_text(f"""daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 1024; }}
http {{
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on; keepalive_requests 100000;
  gzip on; gzip_types text/css application/javascript text/plain;
  server {{ listen 127.0.0.1:{port}; root {folder.resolve()}; disable_symlinks off; }}
}}
""")
    server = subprocess.Popen(["nginx", "-c", str(config)], stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):  # up within a second or so
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.wait()


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of `command` with its children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def files_under(folder: Path) -> int:
    return sum(len(names) for _, _, names in os.walk(folder))


def crawl_once(command: list[str], url: str, work: Path) -> tuple[float, float, int]:
    output = Path(tempfile.mkdtemp(prefix="docsite-crawl-", dir=TMPFS))
    config = work / "docsite.yaml"
    config.write_text(f"start_urls: [{url}]\noutput: {output}\nthreads: {{fetchers: 16}}\n"
                      "politeness: {per_host: 64}\n")
    try:
        wall, cpu = timed([*command, str(config)], work)
        # the mirror: its hosts' folders (not the reports beside them, nor the crawl state)
        return wall, cpu, sum(files_under(host) for host in output.iterdir() if host.is_dir() and host.name != ".crawl")
    finally:
        shutil.rmtree(output, ignore_errors=True)


def wget2_once(url: str) -> tuple[float, float, int]:
    output = Path(tempfile.mkdtemp(prefix="docsite-wget2-", dir=TMPFS))
    try:
        wall, cpu = timed(["wget2", "-q", "--mirror", "-p", "-k", "-E", "-np", "--max-threads=16", url], output)
        return wall, cpu, files_under(output)
    finally:
        shutil.rmtree(output, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--runs", type=int, default=2, help="rounds of every crawler (default 2)")
    parser.add_argument("--wget2", action="store_true", help="crawl it with wget2 too, once")
    parser.add_argument("--crawl-cmd", action="append", default=[], metavar="CMD",
                        help="another crawl to run alternately (its config's path is appended)")
    args = parser.parse_args()
    if shutil.which("nginx") is None:
        sys.exit("docsite: nginx is not installed (apt-get install nginx)")
    crawlers = {"crawl": [sys.executable, "-m", "crawler"]} | {cmd: shlex.split(cmd) for cmd in args.crawl_cmd}
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        with nginx(args.folder, work) as url:
            print(f"{args.folder}: {url}")
            for round_number in range(1, args.runs + 1):
                for name, command in crawlers.items():
                    wall, cpu, files = crawl_once(command, url, work)
                    print(f"  round {round_number} {name:40.40} wall {wall:6.2f} s  CPU {cpu:6.2f} s  {files} files")
            if args.wget2:
                wall, cpu, files = wget2_once(url)
                print(f"  wget2 -t16{'':33} wall {wall:6.2f} s  CPU {cpu:6.2f} s  {files} files")


if __name__ == "__main__":
    main()
