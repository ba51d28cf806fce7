#!/usr/bin/env python3
"""Run the prototype engines in the shared benchmark lab, beside wget2 and crawl.

The harness (../shared/bench) is read-only and knows only wget, wget2 and crawl, so this
copies it to a scratch folder and adds the engines to the copy:

* crawlers.py: one entry per engine in `registry()` (opt-in names `eng-*`), each running
  `python bench/engines/<engine>.py START_URL --manifest <the site's manifest>`; its
  re-crawl adds `--revalidate` (a conditional request for every URL, as crawl-nightly);
* run.py: one line that tells crawlers.py where the site's manifest is, so the engines
  fetch the same URL list a complete crawl fetches (derived from the manifest, not crawled).

Then it runs the copy's run.sh with the arguments given after `--`, waiting while another
run holds the lab's lock (/run/crawl-bench.lock). Needs root, like the harness.

    sudo .venv/bin/python bench/engines/lab.py -- --tls --latency 0,50 --name engines-tls \\
        --crawlers wget2-t16,crawl,eng-requests,eng-pycurl-t2 --crawl-cmd "$PWD/.venv/bin/crawl"
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(os.path.dirname(REPO), "shared", "bench")
LOCK = "/run/crawl-bench.lock"

# Appended to the copy's crawlers.py. Kept as text so the copy stays a plain harness that
# anyone can read; `registry` is wrapped rather than edited.
ENTRIES = '''

# ---------------------------------------------------------------- prototype engines (bench/engines/lab.py)
SITE_MANIFEST = ""   # set by run.py once the site exists
ENGINES_DIR = {engines!r}
ENGINE_PY = {{"main": {python!r}, "niquests": {niquests_python!r}}}


def _engine(script, venv="main", **opts):
    def argv(ctx, revalidate=False):
        per_host = 64 if ctx.ca_file else 16   # as crawl's generated config: 64 under --tls
        out = [ENGINE_PY[venv], os.path.join(ENGINES_DIR, script), ctx.start_url,
               "--manifest", SITE_MANIFEST, "--per-host", str(opts.get("per_host", per_host))]
        for k, v in opts.items():
            if k != "per_host":
                out += ["--" + k.replace("_", "-")] + ([] if v is True else [str(v)])
        return out + (["--revalidate"] if revalidate else [])
    return argv


def _engine_env(ctx):
    return {{"REQUESTS_CA_BUNDLE": ctx.ca_file}} if ctx.ca_file else {{}}


def _engine_crawler(name, script, venv="main", notes="", **opts):
    argv = _engine(script, venv, **opts)
    conc = opts.get("threads", 16) if script == "requests_engine.py" else None
    return Crawler(name, argv, ENGINE_PY[venv], recrawl=lambda ctx: argv(ctx, True), env=_engine_env,
                   concurrency=lambda ctx: conc or (64 if ctx.ca_file else 16), notes=notes)


ENGINE_CRAWLERS = [
    _engine_crawler("eng-requests", "requests_engine.py", threads=16,
                    notes="crawl's Fetcher (requests, a Session per thread), 16 threads, fixed URL list"),
    _engine_crawler("eng-pycurl-t1", "pycurl_engine.py", threads=1, notes="pycurl multi, 1 thread"),
    _engine_crawler("eng-pycurl-t2", "pycurl_engine.py", threads=2, notes="pycurl multi, 2 threads"),
    _engine_crawler("eng-pycurl-t4", "pycurl_engine.py", threads=4, notes="pycurl multi, 4 threads"),
    _engine_crawler("eng-pycurl-t2-h1", "pycurl_engine.py", threads=2, http1=True,
                    notes="pycurl multi, 2 threads, HTTP/1.1 only"),
    # GIL contention: two threads parsing in pure Python meanwhile, as crawl's parsers do
    _engine_crawler("eng-requests-busy2", "requests_engine.py", threads=16, busy=2,
                    notes="eng-requests with 2 threads holding the GIL (--busy 2)"),
    _engine_crawler("eng-pycurl-t2-busy2", "pycurl_engine.py", threads=2, busy=2,
                    notes="eng-pycurl-t2 with 2 threads holding the GIL (--busy 2)"),
    _engine_crawler("eng-pycurl-t2-busy2-si1", "pycurl_engine.py", threads=2, busy=2, switch_interval=0.001,
                    notes="eng-pycurl-t2-busy2 with sys.setswitchinterval(0.001)"),
    _engine_crawler("eng-pycurl-t2-busy2-si05", "pycurl_engine.py", threads=2, busy=2, switch_interval=0.0005,
                    notes="eng-pycurl-t2-busy2 with sys.setswitchinterval(0.0005)"),
    _engine_crawler("eng-pycurl-t1-busy2", "pycurl_engine.py", threads=1, busy=2,
                    notes="eng-pycurl-t1 with 2 threads holding the GIL (--busy 2)"),
    _engine_crawler("eng-pycurl-t2-busy1", "pycurl_engine.py", threads=2, busy=1,
                    notes="eng-pycurl-t2 with 1 thread holding the GIL (--busy 1)"),
    _engine_crawler("eng-pycurl-t2-busy2-nohdr", "pycurl_engine.py", threads=2, busy=2, no_header_callback=True,
                    notes="diagnostic: eng-pycurl-t2-busy2 without the header callback (no ETag)"),
    _engine_crawler("eng-requests-busy2-si1", "requests_engine.py", threads=16, busy=2, switch_interval=0.001,
                    notes="eng-requests-busy2 with sys.setswitchinterval(0.001)"),
    _engine_crawler("eng-niquests-t1", "niquests_engine.py", "niquests", threads=1,
                    notes="niquests multiplexed, 1 thread"),
    _engine_crawler("eng-niquests-t4", "niquests_engine.py", "niquests", threads=4,
                    notes="niquests multiplexed, 4 threads"),
]
OPT_IN += [c.name for c in ENGINE_CRAWLERS]
_harness_registry = registry


def registry(crawl):  # noqa: F811 (wraps the harness's own)
    return _harness_registry(crawl) + ENGINE_CRAWLERS
'''

RUN_PY_HOOK = ('        root, manifest = synthetic_site(workroot, a.pages, a.seed, server)\n',
               '        root, manifest = synthetic_site(workroot, a.pages, a.seed, server)\n'
               '        C.SITE_MANIFEST = root + ".manifest.json"   # bench/engines/lab.py\n')


def make_copy(dest: str, niquests_python: str) -> None:
    if os.path.exists(dest):
        shutil.rmtree(dest)
    shutil.copytree(SHARED, dest)
    for root, dirs, files in os.walk(dest):  # the shared folder is read-only; the copy need not be
        for name in dirs + files:
            os.chmod(os.path.join(root, name), 0o755)
    # the engines run from a snapshot, so editing bench/engines during a run changes nothing
    engines = os.path.join(dest, "engines")
    os.makedirs(engines)
    for name in os.listdir(HERE):
        if name.endswith(".py") and not name.startswith("test_"):
            shutil.copy(os.path.join(HERE, name), engines)
    with open(os.path.join(dest, "crawlers.py"), "a", encoding="utf-8") as f:
        f.write(ENTRIES.format(engines=engines, python=os.path.join(REPO, ".venv", "bin", "python"),
                               niquests_python=niquests_python))
    path = os.path.join(dest, "run.py")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if RUN_PY_HOOK[0] not in text:
        raise SystemExit("run.py changed: cannot find where the site is made")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.replace(RUN_PY_HOOK[0], RUN_PY_HOOK[1]))


def wait_for_lock(poll: float = 20.0) -> None:
    """The harness takes the lock itself (and gives up at once if it is held): wait until it
    is free, then let go of it just before starting the run."""
    with open(LOCK, "a") as f:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(f, fcntl.LOCK_UN)
                return
            except BlockingIOError:
                print(f"[lab] {LOCK} is held by another run; waiting", file=sys.stderr, flush=True)
                time.sleep(poll)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copy", default="/tmp/bench-engines", help="where the harness copy goes")
    parser.add_argument("--niquests-python", default="/tmp/venv-niquests/bin/python",
                        help="a python whose venv has niquests (it replaces urllib3, so not crawl's venv)")
    parser.add_argument("--tries", type=int, default=30, help="runs started while the lock was free but lost")
    parser.add_argument("harness_args", nargs=argparse.REMAINDER, help="-- then run.sh's arguments")
    args = parser.parse_args()
    harness_args = [a for a in args.harness_args if a != "--"]
    make_copy(args.copy, args.niquests_python)
    for _ in range(args.tries):
        wait_for_lock()
        lost = False
        with subprocess.Popen(["bash", os.path.join(args.copy, "run.sh"), *harness_args],
                              stderr=subprocess.PIPE, text=True) as proc:
            assert proc.stderr is not None
            for line in proc.stderr:  # passed on as it comes: a run takes minutes
                sys.stderr.write(line)
                lost = lost or "holds /run/crawl-bench.lock" in line
        if not lost:
            return proc.returncode
        time.sleep(5)  # another run took the lock between our look and the harness's
    return 1


if __name__ == "__main__":
    sys.exit(main())
