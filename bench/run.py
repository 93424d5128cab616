"""Benchmarks on Postgres + Redis, written to docs/benchmarks.md: ingest throughput against
the floor and the generator's ceiling, end-to-end latency at fixed offered rates, CPU per
order by process and database round trips per webhook and per delivery.

    make bench
    python -m bench.run --rates 300,100,25 --seconds 20 --round-seconds 8

Needs wrk and nginx (installed with apt when missing), PostgreSQL (BENCH_PG, default
postgresql://postgres@127.0.0.1:5432; it creates and drops bench_* databases) and Redis
(BENCH_REDIS, default redis://127.0.0.1:6379/1, flushed). Every process runs on loopback.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import httpx
import redis

from bench.cpu import CpuMeter, MachineLoad
from bench.database import drop_database, reset_database
from bench.drain import compare_drains
from bench.e2e import RateRun, drain_backlog, run_rate
from bench.gateway import (
    REDIS,
    gateway_env,
    migrate,
    start_api,
    start_floor,
    start_sink,
    start_worker,
)
from bench.ingest import Endpoints, Load, run_rounds, warm_up
from bench.report import Run, render
from bench.roundtrips import count_round_trips
from bench.scaling import run_scaling
from bench.servers import LOGS, ROOT, Servers, wait_ready
from bench.sqlite_ingest import run_sqlite_rounds
from bench.tools import require_tools, tool_version

PORTS = {
    "null": 8610,
    "floor": 8611,
    "sink": 8612,
    "api": 8613,
    "api counted": 8614,
    "api scaled": 8615,
    "floor sqlite": 8616,
    "api sqlite": 8617,
}
DATABASES = {"gateway": "bench_gateway", "floor": "bench_floor"}
POOLS = LOGS / "pools"  # presigned requests, deleted after the run


def sink_requests(sink_url: str) -> dict[str, int]:
    """The NetSuite simulator's request counts by kind (``PUT salesOrder``...) so far."""
    counts: dict[str, int] = httpx.get(f"{sink_url}/_sim/stats", timeout=10).json()["requests"]
    return counts


def run(args: argparse.Namespace) -> Run:
    servers = Servers()
    redis_client = redis.Redis.from_url(REDIS)
    machine = MachineLoad(set(DATABASES.values()), redis_client)
    machine.start()
    try:
        redis_client.flushdb()
        gateway_dsn = reset_database(DATABASES["gateway"])
        floor_dsn = reset_database(DATABASES["floor"])
        null = servers.nginx(PORTS["null"])
        wait_ready(f"http://127.0.0.1:{PORTS['null']}/")
        floor = start_floor(servers, PORTS["floor"], floor_dsn)
        sink_url = f"http://127.0.0.1:{PORTS['sink']}"
        sink = start_sink(servers, PORTS["sink"])
        env = gateway_env(gateway_dsn, REDIS, sink_url)
        migrate(env)
        api = start_api(servers, PORTS["api"], env)

        def meter(pids: dict[str, int], database: str) -> CpuMeter:
            return CpuMeter(pids, {database}, redis_client, machine.redis_idle_rate)

        endpoints = Endpoints(
            null_url=f"http://127.0.0.1:{PORTS['null']}/webhooks/shop",
            floor_url=f"http://127.0.0.1:{PORTS['floor']}/ingest",
            gateway_url=f"http://127.0.0.1:{PORTS['api']}/webhooks/shop",
            floor_meter=meter({"floor": floor.pid}, DATABASES["floor"]),
            gateway_meter=meter({"API": api.pid}, DATABASES["gateway"]),
        )
        load = Load(args.round_seconds, args.connections, args.threads)
        warm_up(endpoints, POOLS, load)
        rounds = run_rounds(endpoints, POOLS, load, args.rounds)
        servers.stop(floor)
        servers.stop(null)

        worker = start_worker(servers, env)
        drain = drain_backlog(gateway_dsn, timeout=900)
        e2e_meter = meter(
            {"API": api.pid, "worker": worker.pid, "sink": sink.pid}, DATABASES["gateway"]
        )
        sink_before = sink_requests(sink_url)
        rates: list[RateRun] = [
            run_rate(
                endpoints.gateway_url,
                gateway_dsn,
                POOLS,
                e2e_meter,
                rate=rate,
                seconds=args.seconds,
                connections=args.open_connections,
            )
            for rate in args.rates
        ]
        sink_after = sink_requests(sink_url)
        sink_calls = {k: n - sink_before.get(k, 0) for k, n in sink_after.items()}
        sink_orders = sum(rate.deliveries.delivered for rate in rates)
        servers.stop(worker)
        servers.stop(api)
        trips = count_round_trips(
            servers,
            dsn=gateway_dsn,
            redis_url=REDIS,
            sink_url=sink_url,
            api_port=PORTS["api counted"],
            pools=POOLS,
        )
        # last: it leaves its orders in the outbox (no worker runs), which would otherwise
        # be drained while the round-trip pass measures idle traffic
        scaling = run_scaling(servers, PORTS["api scaled"], env, POOLS, load)
        # the scaling pass left its orders in the outbox: cleared before the drains compared
        clearing = start_worker(servers, env, name="worker clearing")
        drain_backlog(gateway_dsn, timeout=900)
        servers.stop(clearing)
        api = start_api(servers, PORTS["api"], env)
        drains = compare_drains(
            servers,
            env,
            gateway_dsn,
            endpoints.gateway_url,
            POOLS,
            seconds=args.round_seconds,
            connections=args.connections,
        )
        servers.stop(api)
        sqlite = run_sqlite_rounds(
            servers, (PORTS["floor sqlite"], PORTS["api sqlite"]), POOLS, load, rounds=2
        )
    finally:
        servers.stop_all()
        machine.stop()
        shutil.rmtree(POOLS, ignore_errors=True)
    if not args.keep_databases:
        for name in DATABASES.values():
            drop_database(name)
        redis_client.flushdb()
    settings = (
        f"closed loop: {args.threads} wrk thread(s), {args.connections} connections, "
        f"{args.rounds} rounds of {args.round_seconds:g} s per endpoint; open loop: "
        f"{args.open_connections} connections, {args.seconds:g} s per rate"
    )
    tools = {"wrk": tool_version("wrk"), "nginx": tool_version("nginx")}
    return Run(
        settings,
        tools,
        rounds,
        drain,
        rates,
        trips,
        machine,
        args.seconds,
        scaling,
        drains,
        sqlite,
        {k: n for k, n in sink_calls.items() if n},
        sink_orders,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--round-seconds", type=float, default=8, help="per endpoint and round")
    parser.add_argument("--connections", type=int, default=32, help="closed loop")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--rates",
        type=lambda text: [float(x) for x in text.split(",")],
        default=[300.0, 150.0, 100.0, 50.0, 25.0],
        help="offered orders/s, comma separated (open loop)",
    )
    parser.add_argument("--seconds", type=float, default=20, help="per offered rate")
    parser.add_argument("--open-connections", type=int, default=64)
    parser.add_argument("--keep-databases", action="store_true")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument(
        "--runs", type=int, default=1, help="the whole benchmark this many times in a row"
    )
    args = parser.parse_args()
    require_tools()
    runs = []
    for n in range(1, args.runs + 1):
        if args.runs > 1:
            print(f"run {n} of {args.runs}", flush=True)
        runs.append(run(args))
    text = render(runs[-1], runs[:-1])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
