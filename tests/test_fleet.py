"""A fleet of configs on a pool of workers (crawl queue / crawl worker, through RQ): real worker
processes against a real redis-server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from crawler.cli.main import main
from crawler.demo.server import SiteServer
from tests import routes
from tests.redis_server import RedisServer

SITES = 5


def fleet_site() -> dict[str, routes.Route]:
    """Five small sites under /s0/ .. /s4/; the last one slow, to be killed mid-crawl."""
    site: dict[str, routes.Route] = {}
    for number in range(SITES):
        slow = number == SITES - 1
        site.update(routes.tree_site(24 if slow else 6, delay=0.05 if slow else 0.0, prefix=f"/s{number}/"))
    return site


def write_configs(folder: Path, server: SiteServer) -> list[Path]:
    configs = []
    for number in range(SITES):
        path = folder / f"site{number}.yaml"
        path.write_text(yaml.safe_dump({
            "start_urls": [f"{server.url}s{number}/0.html"], "output": f"out/site{number}",
            "http": {"timeout": 5, "retries": 0}, "mirror": {"sitemaps": False},
            "politeness": {"robots": False, "per_host": 1}}))
        configs.append(path)
    return configs


def crawl_process_of(config: Path) -> int | None:
    """The pid of the crawl a job runs for `config` (a child of a worker's work horse)."""
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(config).encode() in command and b"worker" not in command:
            return int(proc.name)
    return None


@pytest.mark.slow
def test_five_configs_on_two_workers(redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # the configs' relative output folders lead here, for the workers too
    with redis_server.client() as client:
        client.flushdb()  # only this test's jobs on the queue
    with SiteServer(root=None, routes=fleet_site()) as server:
        configs = write_configs(tmp_path, server)
        assert main(["queue", *map(str, configs), "--redis", redis_server.url]) == 0
        assert main(["queue", str(configs[0]), "--redis", redis_server.url]) == 1
        assert "already queued" in capsys.readouterr().err
        workers = [subprocess.Popen([sys.executable, "-m", "crawler", "worker", "--redis", redis_server.url,
                                     "--burst"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for _ in range(2)]
        slow = configs[-1]
        deadline = time.monotonic() + 60
        while not any(path.startswith(f"/s{SITES - 1}/") for _, path in server.request_log()[3:]):
            assert time.monotonic() < deadline, "the slow job did not start"
            time.sleep(0.02)
        pid = crawl_process_of(slow.resolve())
        assert pid is not None
        subprocess.run(["kill", "-9", str(pid)], check=True)
        outputs = [worker.communicate(timeout=120) for worker in workers]
        assert [worker.returncode for worker in workers] == [0, 0], outputs
        fetched = server.requests()
    for number in range(SITES):
        report = json.loads((tmp_path / "out" / f"site{number}" / "report.json").read_text())
        assert report["outcome"] == "completed", number
    assert all(count == 1 for path, count in fetched.items() if not path.startswith(f"/s{SITES - 1}/"))
    # The killed job was tried again, and went on from where the kill left it.
    assert "resuming the crawl" in (tmp_path / "out" / f"site{SITES - 1}" / "crawl.log").read_text()
    capsys.readouterr()
    assert main(["queue", "--status", "--redis", redis_server.url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == SITES and all(line.startswith("finished") for line in lines), lines
    assert all("exit 0, completed" in line for line in lines), lines


def test_a_wrong_queue_url_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump({"start_urls": ["http://127.0.0.1:9/"]}))
    assert main(["queue", str(config), "--redis", "redis://127.0.0.1:9/0"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("crawl: error: cannot reach the job queue at redis://127.0.0.1:9/0") and \
        error.count("\n") == 1
