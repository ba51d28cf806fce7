"""`crawl status CONFIG` for a crawl shared through Redis (state.backend: redis): the workers,
the URLs each holds, and the crawl's counters, read from Redis (reads only: it changes
nothing and takes no lease)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from crawler.config import Config
from crawler.engine.redis_link import connect, crawl_prefix

COUNTERS = ("seen", "queued", "retrying", "in_flight", "saved", "failed", "skipped")


@dataclass(frozen=True)
class Worker:
    id: str
    info: str  # pid and host
    leases: int  # URLs it holds
    expires_in: float  # seconds until its registration lapses (negative: lapsed)


@dataclass(frozen=True)
class SharedStatus:
    output: str
    state: str  # running | finishing | completed | never
    started_at: str | None
    snapshot: str | None
    finisher: str | None
    workers: list[Worker] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)  # COUNTERS, and the workers' totals

    @property
    def exit_code(self) -> int:
        return 0 if self.state in ("running", "finishing", "completed") else 1

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def text(self) -> str:
        if self.state == "never":
            return f"{self.output}: no shared crawl yet"
        head = {"running": "shared crawl running", "finishing": f"shared crawl being finished by {self.finisher}",
                "completed": "last shared crawl completed"}.get(self.state, self.state)
        where = f" into snapshot {self.snapshot}" if self.snapshot else ""
        lines = [f"{self.output}: {head} (started {self.started_at}{where})",
                 "  " + ", ".join(f"{self.counters.get(name, 0):,} {name.replace('_', ' ')}" for name in COUNTERS)]
        for worker in self.workers:
            state = f"lease renewed, {worker.expires_in:.0f} s left" if worker.expires_in > 0 else "not answering"
            lines.append(f"  worker {worker.id} ({worker.info}): {worker.leases} URLs held, {state}")
        if self.state == "running" and not self.workers:
            lines.append("  no worker: start `crawl CONFIG` to go on")
        return "\n".join(lines)


def shared_status(config: Config) -> SharedStatus:
    assert config.state.url is not None
    output = str(config.output_dir)
    prefix = crawl_prefix(config.output_dir)
    with connect(config.state.url, patience=5) as client:
        meta = client.hgetall(f"{prefix}meta")
        if not meta:
            return SharedStatus(output, "never", None, None, None)
        keys = f"{prefix}{meta.get('gen', '')}:"
        seconds, micros = client.time()
        now = seconds * 1000 + micros // 1000
        info = client.hgetall(f"{keys}winfo")
        workers = [Worker(worker, info.get(worker, ""), int(client.scard(f"{keys}wl:{worker}")), (expiry - now) / 1000)
                   for worker, expiry in client.zrange(f"{keys}workers", 0, -1, withscores=True)]
        counts = {name: int(value) for name, value in client.hgetall(f"{keys}counts").items()}
        counters = {"seen": client.scard(f"{keys}seen"), "queued": counts.get("nreq", 0) + counts.get("npage", 0),
                    "retrying": client.zcard(f"{keys}retries"), "in_flight": client.hlen(f"{keys}leases"),
                    "saved": client.hlen(f"{keys}saved"), "failed": client.hlen(f"{keys}failures"),
                    "skipped": client.hlen(f"{keys}skipped"),
                    **{name: int(value) for name, value in client.hgetall(f"{keys}totals").items()}}
    return SharedStatus(output, meta.get("status", "never"), meta.get("started_at"), meta.get("snapshot") or None,
                        meta.get("finisher"), workers, counters)
