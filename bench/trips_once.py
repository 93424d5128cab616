"""The round-trip pass of the benchmark on its own (bench/roundtrips.py), in ~90 seconds:
Postgres and Redis round trips per webhook and per delivery, and what the API and the worker
do per second when idle. Round trips are counted on the wire, so they are deterministic and
a reliable measure on a busy machine (timings are not).

    .venv/bin/python -m bench.trips_once
    .venv/bin/python -m bench.trips_once --count 100 --json

It keeps out of the full benchmark's way, so both can run at once: its own database
(``bench_trips``), Redis database (11), ports (8630-8643) and log directory
(var/bench-trips/). The database is dropped afterwards unless ``--keep-database``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

import bench.gateway
import bench.roundtrips
import bench.servers
from bench.database import drop_database, reset_database
from bench.roundtrips import RoundTrips, Trips, count_round_trips
from bench.servers import ROOT, Servers
from bench.tools import require_tools

LOGS = ROOT / "var" / "bench-trips"


def _redis_db(url: str, db: int) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


def measure(database: str, redis_url: str, base_port: int, count: int, rate: float) -> RoundTrips:
    # the full benchmark's ports, config file and logs are its own; this pass uses others
    bench.servers.LOGS = LOGS
    bench.gateway.LOGS = LOGS
    bench.roundtrips.PROXY_PORTS = {
        "api": (base_port + 10, base_port + 12),
        "worker": (base_port + 11, base_port + 13),
    }
    servers = Servers()
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    dsn = reset_database(database)
    try:
        sink_url = f"http://127.0.0.1:{base_port + 2}"
        bench.gateway.start_sink(servers, base_port + 2)
        bench.gateway.migrate(bench.gateway.gateway_env(dsn, redis_url, sink_url))
        return count_round_trips(
            servers,
            dsn=dsn,
            redis_url=redis_url,
            sink_url=sink_url,
            api_port=base_port + 4,
            pools=LOGS / "pools",
            rate=rate,
            count=count,
        )
    finally:
        servers.stop_all()
        client.flushdb()
        shutil.rmtree(LOGS / "pools", ignore_errors=True)


def _row(name: str, trips: Trips) -> str:
    return (
        f"{name:<34} {trips.postgres:>8.1f} {trips.statements:>8.1f} "
        f"{trips.redis:>8.1f} {trips.commands:>8.1f}"
    )


def render(result: RoundTrips) -> str:
    lines = [
        f"{'':<34} {'pg trips':>8} {'pg stmts':>8} {'rd trips':>8} {'rd cmds':>8}",
        _row(f"per webhook ({result.webhooks})", result.per_webhook),
        _row(f"per hot webhook ({result.hot_webhooks})", result.per_hot_webhook),
        _row(f"per delivery ({result.deliveries})", result.per_delivery),
        _row("API idle, per second", result.idle_api),
        _row("worker idle, per second", result.idle_worker),
    ]
    if result.unreadable:
        lines.append("(a connection was encrypted: its messages are not counted)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", default="bench_trips", help="a bench_* database")
    parser.add_argument("--redis", default=_redis_db(bench.gateway.REDIS, 11))
    parser.add_argument("--base-port", type=int, default=8630)
    parser.add_argument("--count", type=int, default=1000, help="orders in the counted run")
    parser.add_argument("--rate", type=float, default=50, help="orders per second offered")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    args = parser.parse_args()
    require_tools()
    try:
        result = measure(args.database, args.redis, args.base_port, args.count, args.rate)
    finally:
        if not args.keep_database:
            drop_database(args.database)
    if args.json:
        json.dump(dataclasses.asdict(result), sys.stdout, indent=2)
        print()
    else:
        print(render(result))
    print(f"logs: {Path(LOGS).relative_to(ROOT)}/", file=sys.stderr)


if __name__ == "__main__":
    main()
