"""One crawl, several workers (state.backend: redis): real worker processes (`python -m
crawler CONFIG`) against a real redis-server and a local site."""

from __future__ import annotations

import hashlib
import itertools
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml

from crawler.cli.main import main
from crawler.demo.server import SiteServer
from crawler.engine.interfaces import NOT_YET
from crawler.engine.redis_link import crawl_prefix
from crawler.engine.run import CrawlRun
from tests import routes
from tests.conftest import assert_spaced, make_config, mirrored_files, read_manifest
from tests.redis_server import RedisServer
from tests.test_resume import assert_same_mirror

PAGES = 60


class Gate:
    """Holds the start page's answer until the test opens it: the workers all join before any
    of them can finish the crawl alone. And, once told to (`hold_after`), holds every answer
    past a number until `release`: the crawl is still under way when the test acts on it,
    however slowly a busy machine runs the test."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.released = threading.Event()
        self._lock = threading.Lock()
        self._left: int | None = None  # answers to give before holding the others

    def route(self, then: routes.Route) -> routes.Route:
        def route(handler: BaseHTTPRequestHandler) -> None:
            self.open.wait(timeout=30)
            then(handler)
        return route

    def holding(self, then: routes.Route) -> routes.Route:
        def route(handler: BaseHTTPRequestHandler) -> None:
            with self._lock:
                hold = self._left is not None and self._left <= 0
                if self._left is not None:
                    self._left -= 1
            if hold:
                self.released.wait(timeout=30)
            then(handler)
        return route

    def hold_after(self, answers: int) -> None:
        with self._lock:
            self._left = answers
        self.released.clear()

    def release(self) -> None:
        with self._lock:
            self._left = None
        self.released.set()


def shared_site(gate: Gate, delay: float = 0.01) -> dict[str, routes.Route]:
    """A tree of pages, each with an image; the start page waits for the gate."""
    site = {}
    for number in range(PAGES):
        children = [f"/gen/{child}.html" for child in (2 * number + 1, 2 * number + 2) if child < PAGES]
        body = routes.page(*children).replace(b"<body>", f'<body><img src="/img/{number}.png">'.encode())
        site[f"/gen/{number}.html"] = routes.html(body, delay=delay)
        site[f"/img/{number}.png"] = routes.raw(bytes([number % 256]) * (300 + number), "image/png")
    site = {path: gate.holding(route) for path, route in site.items()}
    site["/gen/0.html"] = gate.route(site["/gen/0.html"])
    return site


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def server(gate: Gate) -> Iterator[SiteServer]:
    with SiteServer(root=None, routes=shared_site(gate)) as running:
        yield running


def config_file(folder: Path, server: SiteServer, redis_url: str, **sections: object) -> Path:
    data = {"start_urls": [server.url + "gen/0.html"], "output": str(folder / "out"),
            "threads": {"fetchers": 2}, "http": {"timeout": 5, "retries": 0},
            "state": {"backend": "redis", "url": redis_url, "lease_seconds": 2}, **sections}
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def start_worker(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "crawler", str(config), "-v"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def live_workers(redis: RedisServer, output: Path) -> int:
    with redis.client() as client:
        prefix = crawl_prefix(output)
        generation = client.hget(f"{prefix}meta", "gen")
        return int(client.zcard(f"{prefix}{generation}:workers")) if generation else 0


def wait_for(condition: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def run_workers(config: Path, redis: RedisServer, count: int, gate: Gate) -> list[tuple[int, str]]:
    """Start `count` workers, open the gate once all joined; (exit code, stderr) of each."""
    workers = [start_worker(config) for _ in range(count)]
    wait_for(lambda: live_workers(redis, config.parent / "out") == count)
    gate.open.set()
    return [(worker.communicate(timeout=120)[1], worker.returncode)[::-1] for worker in workers]


def under_way(config: Path, redis: RedisServer, count: int, gate: Gate,
              server: SiteServer, answers: int = 20) -> list[subprocess.Popen[str]]:
    """`count` workers, all joined and past their first `answers` requests, the others held
    until `gate.release()`."""
    workers = [start_worker(config) for _ in range(count)]
    wait_for(lambda: live_workers(redis, config.parent / "out") == count)
    before = len(server.request_log())
    gate.hold_after(answers)
    gate.open.set()
    wait_for(lambda: len(server.request_log()) - before > answers)
    return workers


@pytest.fixture
def reference(server: SiteServer, gate: Gate, tmp_path: Path) -> Path:
    """The same site crawled by one process with the embedded state."""
    gate.open.set()
    CrawlRun(make_config(server.url + "gen/0.html", tmp_path / "reference", threads={"fetchers": 2})).run()
    gate.open.clear()
    return tmp_path / "reference"


def test_three_workers_make_the_mirror_one_makes_each_url_fetched_once(
        server: SiteServer, gate: Gate, redis_server: RedisServer, reference: Path, tmp_path: Path) -> None:
    before = server.requests()
    results = run_workers(config_file(tmp_path, server, redis_server.url), redis_server, 3, gate)
    assert [code for code, _ in results] == [0, 0, 0], results
    assert sum("this worker finishes it" in stderr for _, stderr in results) == 1
    out = tmp_path / "out"
    assert_same_mirror(reference, out)
    fetched = server.requests() - before
    assert set(fetched.values()) == {1}, fetched  # every URL once, robots.txt included
    report = json.loads((out / "report.json").read_text())
    assert report["outcome"] == "completed" and report["counts"]["saved"] == len(read_manifest(out))
    assert report["counts"]["failed"] == 0


def test_one_redis_worker_makes_the_same_mirror(server: SiteServer, gate: Gate, redis_server: RedisServer,
                                                reference: Path, tmp_path: Path) -> None:
    gate.open.set()
    assert main([str(config_file(tmp_path, server, redis_server.url))]) == 0
    assert_same_mirror(reference, tmp_path / "out")


@pytest.mark.slow
def test_a_worker_killed_mid_crawl_loses_nothing(server: SiteServer, gate: Gate, redis_server: RedisServer,
                                                reference: Path, tmp_path: Path) -> None:
    workers = under_way(config_file(tmp_path, server, redis_server.url), redis_server, 3, gate, server)
    workers[0].send_signal(signal.SIGKILL)
    gate.release()
    errors = [worker.communicate(timeout=120)[1] for worker in workers]
    assert [worker.returncode for worker in workers] == [-signal.SIGKILL, 0, 0], errors
    assert_same_mirror(reference, tmp_path / "out")


@pytest.mark.slow
def test_every_worker_stopped_then_one_started_goes_on(server: SiteServer, gate: Gate, redis_server: RedisServer,
                                                       reference: Path, tmp_path: Path) -> None:
    config = config_file(tmp_path, server, redis_server.url)
    workers = under_way(config, redis_server, 2, gate, server, answers=60)  # half the site's files
    for worker in workers:
        worker.send_signal(signal.SIGINT)
    errors = [worker.communicate(timeout=60)[1] for worker in workers]
    assert [worker.returncode for worker in workers] == [130, 130], errors
    assert not (tmp_path / "out" / "report.json").exists()  # a stopped worker writes no report
    gate.release()
    before = len(server.request_log())
    resumed = subprocess.run([sys.executable, "-m", "crawler", str(config), "-v"], capture_output=True, text=True,
                             timeout=120, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert "joining the crawl" in resumed.stderr
    assert len(server.request_log()) - before < 2 * PAGES - 20  # it went on: what was saved stays
    assert_same_mirror(reference, tmp_path / "out")


def versioned_page(versions: list[bytes], first_taken: threading.Event) -> routes.Route:
    """Each request gets the next version; the first is held a moment, long enough for the test
    to stop the worker that asked."""
    lock = threading.Lock()

    def route(handler: BaseHTTPRequestHandler) -> None:
        with lock:
            body = versions.pop(0)
        if not first_taken.is_set():
            first_taken.set()
            time.sleep(0.5)
        routes.send(handler, 200, body)
    return route


@pytest.mark.slow
def test_a_worker_stopped_past_its_lease_cannot_overwrite_what_another_wrote(
        redis_server: RedisServer, tmp_path: Path) -> None:
    taken = threading.Event()
    site = {"/": routes.html(routes.page(*[f"/p{n}.html" for n in range(8)], "/slow.html")),
            "/slow.html": versioned_page([routes.page(title="first worker"), routes.page(title="second worker")],
                                         taken),
            **{f"/p{n}.html": routes.html(routes.page(), delay=0.05) for n in range(8)}}
    with SiteServer(root=None, routes=site) as server:
        config = config_file(tmp_path, server, redis_server.url)
        config.write_text(config.read_text().replace("gen/0.html", ""))
        stopped = start_worker(config)
        wait_for(taken.is_set)
        stopped.send_signal(signal.SIGSTOP)
        try:
            second = subprocess.run([sys.executable, "-m", "crawler", str(config)], capture_output=True, text=True,
                                    timeout=60, check=False)
            assert second.returncode == 0, second.stderr
        finally:
            stopped.send_signal(signal.SIGCONT)
        _, stderr = stopped.communicate(timeout=60)
    assert stopped.returncode == 0, stderr
    assert "not saving" in stderr
    out = tmp_path / "out"
    assert b"second worker" in next(out.glob("127.0.0.1*/slow.html")).read_bytes()
    entry = next(entry for entry in read_manifest(out) if entry["url"].endswith("/slow.html"))
    assert entry["sha256"] == hashlib.sha256(routes.page(title="second worker")).hexdigest()


def timed_page(body: bytes, log: list[tuple[float, float]], lock: threading.Lock,
               gate: Gate | None = None) -> routes.Route:
    """Records when each request started and ended (the start page's as it came, before the gate)."""
    def route(handler: BaseHTTPRequestHandler) -> None:
        start = time.monotonic()
        if gate is not None:
            gate.open.wait(timeout=30)
        time.sleep(0.03)
        routes.send(handler, 200, body)
        with lock:
            log.append((start, time.monotonic()))
    return route


DELAY = 0.4


def test_politeness_holds_across_workers(redis_server: RedisServer, tmp_path: Path) -> None:
    log: list[tuple[float, float]] = []
    lock = threading.Lock()
    gate = Gate()
    site = {f"/gen/{n}.html": timed_page(routes.page(*[f"/gen/{c}.html" for c in (2 * n + 1, 2 * n + 2) if c < 15]),
                                         log, lock, gate if n == 0 else None) for n in range(15)}
    with SiteServer(root=None, routes=site) as server:
        config = config_file(tmp_path, server, redis_server.url, mirror={"sitemaps": False},
                             politeness={"robots": False, "per_host": 1, "delay": DELAY},
                             threads={"fetchers": 4})
        results = run_workers(config, redis_server, 3, gate)
    assert [code for code, _ in results] == [0, 0, 0], results
    spans = sorted(log)
    assert len(spans) == 15
    for (_, end), (next_start, _) in itertools.pairwise(spans):
        assert next_start >= end, "two requests to the host overlapped"
    # The server notes a start when its thread gets to it: on a busy machine (four test
    # processes and their browsers on two cores), late by up to ~0.2 s now and then, which
    # shortens its gap to the next: so any k requests must span k - 2 delays at least
    # (assert_spaced). Workers ignoring each other would send some at once.
    assert_spaced([start for start, _ in spans], DELAY)
    assert (spans[-1][0] - spans[0][0]) / (len(spans) - 1) >= DELAY - 0.01


@pytest.mark.slow
def test_a_redis_restart_mid_crawl_is_waited_for(server: SiteServer, gate: Gate, reference: Path,
                                                tmp_path: Path) -> None:
    redis = RedisServer(tmp_path, appendonly=True).start()
    try:
        workers = under_way(config_file(tmp_path, server, redis.url), redis, 2, gate, server)
        redis.stop()
        time.sleep(1.0)
        redis.start()
        gate.release()
        results = [(worker.communicate(timeout=120)[1], worker.returncode)[::-1] for worker in workers]
    finally:
        redis.stop()
    assert [code for code, _ in results] == [0, 0], results
    assert any("not answering" in stderr for _, stderr in results)
    assert_same_mirror(reference, tmp_path / "out")


def test_a_dead_redis_is_one_line_and_touches_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump({"start_urls": ["http://127.0.0.1:9/"], "output": str(tmp_path / "out"),
                                      "state": {"backend": "redis", "url": "redis://127.0.0.1:9/0"}}))
    assert main([str(config)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("crawl: error: cannot reach the crawl state at redis://127.0.0.1:9/0") and \
        error.count("\n") == 1
    assert mirrored_files(tmp_path / "out") == []


def test_status_shows_the_workers_their_leases_and_the_counters(
        server: SiteServer, gate: Gate, redis_server: RedisServer, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = config_file(tmp_path, server, redis_server.url)
    assert main(["status", str(config)]) == 1
    assert "no shared crawl yet" in capsys.readouterr().out
    workers = [start_worker(config) for _ in range(2)]
    try:
        wait_for(lambda: live_workers(redis_server, tmp_path / "out") == 2)
        assert main(["status", str(config), "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert status["state"] == "running" and len(status["workers"]) == 2
        assert sum(worker["leases"] for worker in status["workers"]) == 1  # the start page, held at the gate
        assert status["counters"]["seen"] >= 1 and status["counters"]["in_flight"] == 1
    finally:
        gate.open.set()
        for worker in workers:
            worker.communicate(timeout=120)
    assert main(["status", str(config)]) == 0
    assert "last shared crawl completed" in capsys.readouterr().out


def test_max_pages_is_exact_across_workers(server: SiteServer, gate: Gate, redis_server: RedisServer,
                                           tmp_path: Path) -> None:
    config = config_file(tmp_path, server, redis_server.url, scope={"max_pages": 10})
    results = run_workers(config, redis_server, 2, gate)
    assert [code for code, _ in results] == [0, 0], results
    manifest = read_manifest(tmp_path / "out")
    assert sum(entry["content_type"] == "text/html" for entry in manifest) == 10
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["counts"]["html_pages_saved"] == 10 and report["not_fetched"]


def test_a_lease_whose_answer_was_lost_goes_back_to_the_queue(redis_server: RedisServer, tmp_path: Path) -> None:
    """A take that ran on the server but whose answer never came back (the connection dropped,
    the client retried): the worker holds a lease it does not know of, which would never lapse."""
    from crawler.engine.redis_crawl import SharedCrawl
    from crawler.engine.redis_frontier import RedisFrontier
    from crawler.engine.redis_state import RedisState
    from crawler.models import CrawlItem, LinkKind

    config = make_config("http://127.0.0.1:9/", tmp_path / "out", politeness={"robots": False},
                         state={"backend": "redis", "url": redis_server.url})
    shared = SharedCrawl(config)
    state = RedisState(shared, config.output_dir)
    frontier = RedisFrontier(shared, max_pages=None, per_host=4, per_host_http1=4, delay=0, robots=False,
                             user_agent="test")
    try:
        assert state.open("{}", "now") is None
        assert frontier.add(CrawlItem("http://127.0.0.1:9/a", 0, LinkKind.PAGE))
        assert shared.call("take", shared.worker, 0, 4, 4, 0)[0] == "item"  # its answer "lost"
        assert frontier.get(timeout=0.2) is NOT_YET
        frontier.reconcile()
        item = frontier.get(timeout=1)
        assert isinstance(item, CrawlItem) and item.url == "http://127.0.0.1:9/a"
    finally:
        state.close()



def test_robots_rules_one_worker_learned_are_known_to_the_others(redis_server: RedisServer, tmp_path: Path) -> None:
    from crawler.engine.redis_crawl import SharedCrawl
    from crawler.engine.redis_frontier import RedisFrontier
    from crawler.engine.redis_state import RedisState
    from crawler.http.robots import RobotsRules

    config = make_config("http://127.0.0.1:9/", tmp_path / "out", state={"backend": "redis", "url": redis_server.url})
    workers = [SharedCrawl(config) for _ in range(2)]
    states = [RedisState(shared, config.output_dir) for shared in workers]
    try:
        for state in states:
            state.open("{}", "now")
        first, second = (RedisFrontier(shared, max_pages=None, per_host=4, per_host_http1=4, delay=0, robots=True,
                                       user_agent="crawl") for shared in workers)
        assert first.robots_rules("http://127.0.0.1:9") is None
        first.set_robots("http://127.0.0.1:9/robots.txt", RobotsRules.parse("User-agent: *\nDisallow: /x/", "crawl"))
        rules = second.robots_rules("http://127.0.0.1:9")  # another worker's: read from Redis
        assert rules is not None and not rules.allows("http://127.0.0.1:9/x/a") and rules.allows("http://127.0.0.1:9/y")
    finally:
        for state in states:
            state.close()
