"""``serve --workers N``: accepted webhooks per second with N API processes on one port,
closed loop with the same wrk settings as the ingest rounds (distinct orders, no worker)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.gateway import start_api
from bench.ingest import Load
from bench.orders import write_pool
from bench.servers import Servers
from bench.wrk import WrkResult, run_wrk


@dataclass
class ScalingRun:
    processes: int
    wrk: WrkResult

    @property
    def accepted_per_second(self) -> float:
        return self.wrk.count(202) / max(self.wrk.seconds, 1e-9)


def run_scaling(
    servers: Servers,
    port: int,
    env: dict[str, str],
    pools: Path,
    load: Load,
    processes: tuple[int, ...] = (1, 2),
) -> list[ScalingRun]:
    runs = []
    for n in processes:
        api = start_api(servers, port, env, name=f"api x{n}", workers=n)
        url = f"http://127.0.0.1:{port}/webhooks/shop"
        warm = write_pool(pools / f"scale-warm-{n}.tsv", f"scale-warm-{n}", 1000)
        run_wrk(url, warm, seconds=2, connections=load.connections, threads=load.threads)
        pool = write_pool(pools / f"scale-{n}.tsv", f"scale-{n}", 6000)
        result = run_wrk(
            url, pool, seconds=load.seconds, connections=load.connections, threads=load.threads
        )
        servers.stop(api)
        runs.append(ScalingRun(n, result))
        print(f"serve --workers {n}: {runs[-1].accepted_per_second:.0f} accepted/s", flush=True)
    return runs
