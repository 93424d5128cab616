"""Ingest throughput, closed loop with wrk, in rounds that alternate the generator's ceiling
(the null endpoint), the floor (bare FastAPI + asyncpg) and the gateway (distinct orders,
then one hot order re-sent under new webhook ids), so drift on the machine hits all alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.cpu import CpuMeter
from bench.orders import write_pool
from bench.wrk import WrkResult, run_wrk

VOID_SHARE = 0.8  # a measurement at 80 % of the generator's ceiling measured the generator
FLOOR_POOL = 4000  # the floor and the null endpoint do not dedupe: a pool may repeat


@dataclass
class Measured:
    wrk: WrkResult
    cpu_seconds: dict[str, float]  # by process, the generator included

    def cpu_ms_per(self, count: int) -> dict[str, float]:
        return {name: s * 1000 / max(count, 1) for name, s in self.cpu_seconds.items()}


@dataclass
class IngestRound:
    ceiling: WrkResult
    floor: Measured
    gateway: Measured
    hot: Measured

    def void(self, measured: Measured) -> bool:
        return measured.wrk.throughput >= VOID_SHARE * self.ceiling.throughput


@dataclass
class Load:
    seconds: float
    connections: int
    threads: int


@dataclass
class Endpoints:
    null_url: str
    floor_url: str
    gateway_url: str
    floor_meter: CpuMeter
    gateway_meter: CpuMeter


def measure(url: str, pool: Path, load: Load, meter: CpuMeter) -> Measured:
    before = meter.snapshot()
    result = run_wrk(
        url, pool, seconds=load.seconds, connections=load.connections, threads=load.threads
    )
    cpu = meter.delta(before, meter.snapshot())
    cpu["generator"] = result.cpu_seconds
    return Measured(result, cpu)


def warm_up(endpoints: Endpoints, pools: Path, load: Load) -> None:
    """Connections, caches and prepared statements ready before anything is measured."""
    warm = Load(2, load.connections, load.threads)
    floor_pool = write_pool(pools / "floor.tsv", "floor", FLOOR_POOL)
    run_wrk(endpoints.null_url, floor_pool, seconds=2, connections=load.connections)
    measure(endpoints.floor_url, floor_pool, warm, endpoints.floor_meter)
    gateway_pool = write_pool(pools / "warm.tsv", "warm", 1000)
    measure(endpoints.gateway_url, gateway_pool, warm, endpoints.gateway_meter)


def run_rounds(endpoints: Endpoints, pools: Path, load: Load, rounds: int) -> list[IngestRound]:
    floor_pool = pools / "floor.tsv"  # written by warm_up
    results: list[IngestRound] = []
    for i in range(1, rounds + 1):
        ceiling = run_wrk(
            endpoints.null_url,
            floor_pool,
            seconds=load.seconds,
            connections=load.connections,
            threads=load.threads,
        )
        floor = measure(endpoints.floor_url, floor_pool, load, endpoints.floor_meter)
        # enough distinct orders that none repeats even at the floor's rate (repeats are
        # counted: the gateway answers them 200 as duplicates)
        size = max(1000, int(floor.wrk.throughput * load.seconds * 1.3))
        distinct = write_pool(pools / f"gateway-{i}.tsv", f"round-{i}", size)
        gateway = measure(endpoints.gateway_url, distinct, load, endpoints.gateway_meter)
        hot_pool = write_pool(pools / f"hot-{i}.tsv", f"hot-{i}", size, hot=True)
        hot = measure(endpoints.gateway_url, hot_pool, load, endpoints.gateway_meter)
        results.append(IngestRound(ceiling, floor, gateway, hot))
        print(
            f"round {i}: ceiling {ceiling.throughput:.0f}/s, floor {floor.wrk.rate:.0f}/s, "
            f"gateway {gateway.wrk.count(202) / gateway.wrk.seconds:.0f}/s, "
            f"hot order {hot.wrk.rate:.0f}/s",
            flush=True,
        )
    return results
