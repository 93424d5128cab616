"""Memory over a long run: the API's and the worker's resident memory while many distinct
orders (100,000 by default) go from webhook to the NetSuite sink.

The orders are sent in ten equal parts, each offered at a fixed rate (open loop) and drained
before the next; both processes' RSS is read after each part. The first reading after the
warm-up is the baseline: memory is flat when every later reading stays within ±10% of it
(what leaks grows with the orders; what a cache or an allocator holds stays level)."""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.cpu import tree
from bench.database import drop_database, reset_database, wait_drained
from bench.gateway import gateway_env, migrate, start_api, start_sink, start_worker
from bench.orders import write_pool
from bench.servers import LOGS, Servers
from bench.tools import require_tools
from bench.wrk import run_wrk

PARTS = 10
FLAT_SHARE = 0.10  # ±10% of the baseline
DATABASE = "bench_memory"
PORTS = {"sink": 8630, "api": 8631}
# a Redis database of its own (flushed): the arq queue must not be shared with another run
REDIS = os.environ.get("BENCH_REDIS_MEMORY", "redis://127.0.0.1:6379/2")


@dataclass
class Reading:
    orders: int  # delivered so far, the warm-up included
    api_mb: float
    worker_mb: float


@dataclass
class MemoryResult:
    orders: int
    rate: float
    seconds: float
    readings: list[Reading]  # the first is the baseline, taken after the warm-up
    lost: int  # orders accepted (202) but not delivered once drained

    def growth(self, process: str) -> float:
        """Largest departure from the baseline, as a share of it (positive: grew)."""
        values = [getattr(r, f"{process}_mb") for r in self.readings]
        base = values[0]
        worst = max(values[1:], key=lambda v: abs(v - base), default=base)
        return (worst - base) / base if base else 0.0

    def flat(self, process: str) -> bool:
        return abs(self.growth(process)) <= FLAT_SHARE


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children, in MiB (0 for a process that is gone)."""
    total_kb = 0
    for member in tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


def _send(url: str, dsn: str, pools: Path, run: str, count: int, rate: float) -> tuple[int, int]:
    """Offer about ``count`` orders at ``rate`` (whole seconds of it); wait until they are
    delivered. (orders offered, accepted but not delivered)"""
    seconds = max(1, round(count / rate))  # wrk takes whole seconds
    count = round(rate * seconds)
    pool = write_pool(pools / "memory.tsv", run, count)
    before = wait_drained(dsn, 0, 0, timeout=5)
    result = run_wrk(url, pool, seconds=seconds, connections=32, rate=rate)
    accepted = result.count(202)
    after = wait_drained(dsn, 0, before.total + accepted, timeout=max(300, count / 10))
    return count, max(0, before.delivered + accepted - after.delivered)


def _read(orders: int, api_pid: int, worker_pid: int) -> Reading:
    reading = Reading(orders, rss_mb(api_pid), rss_mb(worker_pid))
    print(
        f"memory: {orders} orders, API {reading.api_mb:.1f} MiB, "
        f"worker {reading.worker_mb:.1f} MiB",
        flush=True,
    )
    return reading


def run_memory(
    servers: Servers,
    dsn: str,
    env: dict[str, str],
    api_port: int,
    pools: Path,
    *,
    orders: int,
    rate: float,
) -> MemoryResult:
    url = f"http://127.0.0.1:{api_port}/webhooks/shop"
    api = start_api(servers, api_port, env, name="api-memory")
    worker = start_worker(servers, env, name="worker-memory")
    started = time.perf_counter()
    sent, _ = _send(url, dsn, pools, "memory-warm", max(200, orders // PARTS // 5), rate)
    readings = [_read(sent, api.pid, worker.pid)]
    lost = 0
    for i in range(1, PARTS + 1):
        count, missing = _send(url, dsn, pools, f"memory-{i}", orders // PARTS, rate)
        sent += count
        lost += missing
        readings.append(_read(sent, api.pid, worker.pid))
    servers.stop(worker)
    servers.stop(api)
    return MemoryResult(orders, rate, time.perf_counter() - started, readings, lost)


def render_memory(result: MemoryResult) -> str:
    lines = [
        f"## Memory over {result.orders:,} orders",
        "",
        f"Distinct orders offered at {result.rate:g}/s (open loop) in {PARTS} parts, each "
        "delivered to the NetSuite sink before the next; one API process and one worker. "
        "Resident memory (RSS) after each part; the first row, after the warm-up, is the "
        f"baseline. Target: every later reading within ±{FLAT_SHARE:.0%} of it.",
        "",
        "| orders delivered | API MiB | worker MiB |",
        "|---:|---:|---:|",
    ]
    lines += [f"| {r.orders:,} | {r.api_mb:.1f} | {r.worker_mb:.1f} |" for r in result.readings]
    verdict = {True: "met", False: "**missed**"}
    lines += [
        "",
        f"Largest change from the baseline: API {result.growth('api'):+.1%} "
        f"({verdict[result.flat('api')]}), worker {result.growth('worker'):+.1%} "
        f"({verdict[result.flat('worker')]}). Orders accepted but not delivered: "
        f"{result.lost}. Run time {result.seconds / 60:.1f} min.",
    ]
    return "\n".join(lines) + "\n"


def measure_memory(orders: int, rate: float) -> MemoryResult:
    """The whole pass on its own database, Redis database and ports (dropped after)."""
    servers = Servers()
    try:
        dsn = reset_database(DATABASE)
        redis.Redis.from_url(REDIS).flushdb()
        sink_url = f"http://127.0.0.1:{PORTS['sink']}"
        start_sink(servers, PORTS["sink"])
        env = gateway_env(dsn, REDIS, sink_url)
        migrate(env)
        pools = LOGS / "memory-pools"
        result = run_memory(servers, dsn, env, PORTS["api"], pools, orders=orders, rate=rate)
    finally:
        servers.stop_all()
    drop_database(DATABASE)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=60, help="offered orders/s")
    args = parser.parse_args()
    require_tools()
    print(render_memory(measure_memory(args.orders, args.rate)))


if __name__ == "__main__":
    main()
