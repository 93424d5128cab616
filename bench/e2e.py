"""End to end: orders offered at a fixed rate (open loop, wrk on a schedule) until each is
in the ERP sink; latency from the gateway's own accepted_at / delivered_at."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench.cpu import CpuMeter
from bench.database import Deliveries, e2e_latencies, last_delivery_id, wait_drained
from bench.orders import write_pool
from bench.wrk import WrkResult, run_wrk


@dataclass
class RateRun:
    rate: float
    wrk: WrkResult
    deliveries: Deliveries
    latencies: list[float]
    cpu_seconds: dict[str, float]  # by process, the generator included

    @property
    def cpu_ms_per_order(self) -> dict[str, float]:
        orders = max(self.deliveries.delivered, 1)
        return {name: s * 1000 / orders for name, s in self.cpu_seconds.items()}


def drain_backlog(dsn: str, timeout: float) -> tuple[int, float]:
    """Wait for the worker to deliver what ingest left in the outbox; (orders, seconds)."""
    started = time.perf_counter()
    before = wait_drained(dsn, 0, 0, timeout=0)  # one look: what was delivered already
    state = wait_drained(dsn, 0, 0, timeout)
    return state.delivered - before.delivered, time.perf_counter() - started


def run_rate(
    url: str,
    dsn: str,
    pools: Path,
    meter: CpuMeter,
    *,
    rate: float,
    seconds: float,
    connections: int,
) -> RateRun:
    pool = write_pool(pools / f"e2e-{rate:g}.tsv", f"e2e-{rate:g}", int(rate * seconds * 1.2) + 100)
    after_id = last_delivery_id(dsn)
    before = meter.snapshot()
    result = run_wrk(url, pool, seconds=seconds, connections=connections, rate=rate)
    # the CPU window runs until the last order is delivered: the worker's share comes late
    deliveries = wait_drained(dsn, after_id, result.count(202), timeout=max(120, seconds * 10))
    cpu = meter.delta(before, meter.snapshot())
    cpu["generator"] = result.cpu_seconds
    run = RateRun(rate, result, deliveries, e2e_latencies(dsn, after_id), cpu)
    print(
        f"e2e {rate:g}/s: sent {result.sent}, accepted {result.count(202)}, "
        f"delivered {deliveries.delivered}",
        flush=True,
    )
    return run
