"""Ingest on the embedded default (SQLite, no Redis: `make run` as it comes) against a SQLite
floor: the same closed loop, rounds alternating floor and gateway.

The gateway's ERP is a closed port here: its in-process worker finds it unreachable and its
breaker opens; from then on the worker claims each new delivery and defers it until the ERP
is back (two writes per webhook beside ingest's, on the one SQLite file), as it would during
an ERP outage. The Postgres rounds run with no worker at all."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from bench.gateway import gateway_env, migrate, start_api
from bench.ingest import FLOOR_POOL, Load
from bench.orders import write_pool
from bench.servers import LOGS, Servers, wait_ready
from bench.wrk import WrkResult, run_wrk

CLOSED_PORT = 9  # discard: nothing listens on it here


@dataclass
class SqliteRound:
    floor: WrkResult
    gateway: WrkResult

    @property
    def ratio(self) -> float:
        accepted = self.gateway.count(202) / max(self.gateway.seconds, 1e-9)
        return accepted / max(self.floor.rate, 1e-9)


def _sqlite_env(path: Path) -> dict[str, str]:
    env = gateway_env("postgresql://unused/unused", "", f"http://127.0.0.1:{CLOSED_PORT}")
    env["GATEWAY_DATABASE_URL"] = f"sqlite+aiosqlite:///{path}"
    del env["GATEWAY_REDIS_URL"]  # the embedded default: deliveries run in process
    return env


def run_sqlite_rounds(
    servers: Servers, ports: tuple[int, int], pools: Path, load: Load, rounds: int = 2
) -> list[SqliteRound]:
    floor_port, api_port = ports
    folder = LOGS / "sqlite"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    floor = servers.python(
        "floor-sqlite",
        [
            "-m",
            "bench.baseline_app",
            "--port",
            str(floor_port),
            "--sqlite",
            str(folder / "floor.db"),
        ],
    )
    wait_ready(f"http://127.0.0.1:{floor_port}/docs")
    env = _sqlite_env(folder / "gateway.db")
    migrate(env)
    api = start_api(servers, api_port, env, name="api-sqlite")
    floor_url = f"http://127.0.0.1:{floor_port}/ingest"
    gateway_url = f"http://127.0.0.1:{api_port}/webhooks/shop"
    floor_pool = write_pool(pools / "sqlite-floor.tsv", "sqlite-floor", FLOOR_POOL)
    run_wrk(floor_url, floor_pool, seconds=2, connections=load.connections)
    warm = write_pool(pools / "sqlite-warm.tsv", "sqlite-warm", 1000)
    run_wrk(gateway_url, warm, seconds=2, connections=load.connections)
    results = []
    for i in range(1, rounds + 1):
        measured_floor = run_wrk(
            floor_url, floor_pool, seconds=load.seconds, connections=load.connections
        )
        size = max(1000, int(measured_floor.rate * load.seconds * 1.3))
        pool = write_pool(pools / f"sqlite-{i}.tsv", f"sqlite-{i}", size)
        gateway = run_wrk(gateway_url, pool, seconds=load.seconds, connections=load.connections)
        results.append(SqliteRound(measured_floor, gateway))
        print(
            f"sqlite round {i}: floor {measured_floor.rate:.0f}/s, "
            f"gateway {gateway.count(202) / gateway.seconds:.0f}/s",
            flush=True,
        )
    servers.stop(api)
    servers.stop(floor)
    return results
