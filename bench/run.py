"""Benchmarks on Postgres + Redis: ingest throughput against a bare baseline, and order
end-to-end latency at a fixed offered rate. Results go to docs/benchmarks.md.

    make bench                     # defaults below
    python -m bench.run --orders-per-second 100 --seconds 20 --ingest-requests 3000

Needs PostgreSQL (BENCH_PG, default postgresql://postgres@127.0.0.1:5432) and Redis
(BENCH_REDIS, default redis://127.0.0.1:6379/14). Every process runs on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import hashlib
import hmac
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis

from bench.loadgen import LoadResult, closed_loop, open_loop, percentile

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "shopify_orders_create.json"
SECRET = "bench-secret"
NS = {
    "account_id": "1234567",
    "consumer_key": "ck",
    "consumer_secret": "cs",
    "token_id": "tk",
    "token_secret": "ts",
}
PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14")
LOGS = ROOT / "var" / "bench"


# --- processes ------------------------------------------------------------------------------


class Procs:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, name: str, args: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        LOGS.mkdir(parents=True, exist_ok=True)
        log = (LOGS / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                self.stop(proc)


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"not ready: {url} (logs in {LOGS})")


# --- payloads -------------------------------------------------------------------------------

_SAMPLE = json.loads(FIXTURE.read_text())


def order_request(url: str, run: str) -> Any:
    def make(i: int) -> tuple[str, bytes, dict[str, str]]:
        order = copy.deepcopy(_SAMPLE)
        order["id"] = int(hashlib.sha256(f"{run}-{i}".encode()).hexdigest()[:12], 16)
        order["name"] = f"#B{i}"
        order["line_items"] = [
            dict(order["line_items"][0], sku="BENCH-SKU-1"),
            dict(order["line_items"][1], sku="BENCH-SKU-2"),
        ]
        body = json.dumps(order).encode()
        sig = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
        return (
            url,
            body,
            {
                "Content-Type": "application/json",
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Hmac-Sha256": sig,
                "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                "X-Shopify-Shop-Domain": "bench.myshopify.com",
            },
        )

    return make


def config_yaml(netsuite_url: str) -> str:
    creds = ", ".join(f"{k}: {v}" for k, v in NS.items())
    return f"""
connections:
  - {{id: shop, type: shopify, base_url: "https://bench.myshopify.com",
     credentials: {{webhook_secret: {SECRET}, access_token: x}}}}
  - id: erp
    type: netsuite
    base_url: {netsuite_url}
    credentials: {{{creds}}}
    options: {{discount_item_id: "900"}}
    delivery: {{max_concurrency: 16, request_timeout_seconds: 10}}
routes:
  - {{flow: orders, from: shop, to: erp}}
mappings:
  sku: {{erp: {{BENCH-SKU-1: "1042", BENCH-SKU-2: "959"}}}}
"""


# --- phases ---------------------------------------------------------------------------------


async def reset_database(name: str) -> str:
    conn = await asyncpg.connect(f"{PG}/postgres")
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return f"{PG}/{name}"


async def e2e_latencies(dsn: str, since: datetime) -> tuple[list[float], int]:
    conn = await asyncpg.connect(dsn)
    rows = await conn.fetch(
        "SELECT status, EXTRACT(EPOCH FROM (delivered_at - accepted_at)) AS s "
        "FROM deliveries WHERE accepted_at >= $1",
        since,
    )
    await conn.close()
    done = [float(r["s"]) for r in rows if r["status"] == "delivered"]
    return done, len(rows)


async def wait_drained(dsn: str, expected: int, timeout: float) -> int:
    """Wait until ``expected`` deliveries exist and none is still on its way; return delivered."""
    conn = await asyncpg.connect(dsn)
    deadline = time.monotonic() + timeout
    delivered = 0
    while time.monotonic() < deadline:
        row = await conn.fetchrow(
            "SELECT count(*) AS total, count(*) FILTER (WHERE status='delivered') AS delivered, "
            "count(*) FILTER (WHERE status IN ('pending','in_flight')) AS open FROM deliveries"
        )
        delivered = int(row["delivered"])
        if row["total"] >= expected and row["open"] == 0:
            break
        await asyncio.sleep(0.2)
    await conn.close()
    return delivered


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class RateRun:
    rate: float
    offered: LoadResult
    latencies: list[float]
    stored: int
    cpu_ms_per_order: dict[str, float]


def measure_rate(
    dsn: str, rate: float, seconds: float, already: int, pids: dict[str, int]
) -> RateRun:
    """Offer ``rate`` orders/s for ``seconds``; latency of each and CPU per order by process."""
    since = datetime.now(UTC)
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    own_before = sum(os.times()[:2])
    make = order_request("http://127.0.0.1:8613/webhooks/shop", f"e2e-{rate}")
    offered = asyncio.run(open_loop(make, rate=rate, total=int(rate * seconds)))
    asyncio.run(wait_drained(dsn, already + offered.ok, timeout=300))
    latencies, stored = asyncio.run(e2e_latencies(dsn, since))
    per_order = max(offered.ok, 1)
    cpu = {
        name: (cpu_seconds(pid) - cpu_before[name]) * 1000 / per_order for name, pid in pids.items()
    }
    cpu["load generator"] = (sum(os.times()[:2]) - own_before) * 1000 / per_order
    return RateRun(rate, offered, latencies, stored, cpu)


def run(args: argparse.Namespace) -> dict[str, Any]:
    procs = Procs()
    results: dict[str, Any] = {}
    try:
        redis.Redis.from_url(REDIS).flushdb()
        gw_dsn = asyncio.run(reset_database("gw_bench"))
        base_dsn = asyncio.run(reset_database("gw_bench_baseline"))
        gw_url_db = gw_dsn.replace("postgresql://", "postgresql+asyncpg://")

        # 1. baseline: bare FastAPI + one asyncpg INSERT per request
        baseline = procs.start(
            "baseline", ["-m", "bench.baseline_app", "--port", "8611", "--dsn", base_dsn]
        )
        wait_ready("http://127.0.0.1:8611/docs")
        make_base = order_request("http://127.0.0.1:8611/ingest", "base")
        asyncio.run(closed_loop(make_base, concurrency=args.concurrency, total=200))  # warm-up

        # 2. gateway ingest (no worker yet: the accepted orders wait in the outbox)
        simulator = procs.start(
            "netsuite",
            [
                "-m",
                "simulators.netsuite.simulator",
                "--port",
                "8612",
                "--concurrency-limit",
                "64",
                "--items",
                "1042,959,900",
                *[arg for k, v in NS.items() for arg in (f"--{k.replace('_', '-')}", v)],
            ],
        )
        wait_ready("http://127.0.0.1:8612/_sim/stats")
        config = LOGS / "bench-config.yaml"
        config.write_text(config_yaml("http://127.0.0.1:8612"))
        env = {
            "GATEWAY_DATABASE_URL": gw_url_db,
            "GATEWAY_REDIS_URL": REDIS,
            "GATEWAY_CONFIG": str(config),
            "GATEWAY_LOG_FORMAT": "json",
            "GATEWAY_LOG_LEVEL": "WARNING",
            "GATEWAY_WORKER_CONCURRENCY": "32",
        }
        subprocess.run(
            [sys.executable, "-m", "app.cli", "migrate"],
            cwd=ROOT,
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        gateway = procs.start("gateway", ["-m", "app.cli", "serve", "--port", "8613"], env)
        wait_ready("http://127.0.0.1:8613/readyz")
        make_gw = order_request("http://127.0.0.1:8613/webhooks/shop", "ingest")
        asyncio.run(closed_loop(make_gw, concurrency=args.concurrency, total=200))
        # Alternate baseline and gateway rounds so disk and CPU drift hit both alike.
        per_round = args.ingest_requests // INGEST_ROUNDS
        rounds = []
        for _ in range(INGEST_ROUNDS):
            base = asyncio.run(
                closed_loop(make_base, concurrency=args.concurrency, total=per_round)
            )
            ingest = asyncio.run(
                closed_loop(make_gw, concurrency=args.concurrency, total=per_round)
            )
            rounds.append((base, ingest))
        procs.stop(baseline)
        results["rounds"] = rounds
        ingest_total = sum(gw.ok for _, gw in rounds)

        # 3. drain that backlog with a worker, then measure latency at a fixed rate
        worker = procs.start("worker", ["-m", "app.cli", "worker"], env)
        backlog = ingest_total + 200
        drain_started = time.perf_counter()
        drained = asyncio.run(wait_drained(gw_dsn, backlog, timeout=600))
        results["drain"] = (drained, time.perf_counter() - drain_started)
        watched = {"gateway": gateway.pid, "worker": worker.pid, "simulator": simulator.pid}
        results["e2e"] = []
        for rate in (args.orders_per_second, args.sustained_rate):
            run_result = measure_rate(gw_dsn, rate, args.seconds, backlog, watched)
            backlog += run_result.offered.ok
            results["e2e"].append(run_result)
        return results
    finally:
        procs.stop_all()


CPU_COLUMNS = ("gateway", "worker", "simulator", "load generator")
INGEST_ROUNDS = 3


def report(args: argparse.Namespace, r: dict[str, Any]) -> str:
    rounds: list[tuple[LoadResult, LoadResult]] = r["rounds"]
    drained, drain_seconds = r["drain"]
    ratios = sorted(gw.rate / base.rate for base, gw in rounds if base.rate)
    ratio = ratios[len(ratios) // 2]
    round_rows = "\n".join(
        f"| {i} | {base.ok}/{base.sent} | {base.rate:.0f} | {gw.ok}/{gw.sent} | {gw.rate:.0f} | "
        f"{gw.rate / base.rate:.2f}x |"
        for i, (base, gw) in enumerate(rounds, start=1)
    )
    ok_ingest = "met" if ratio >= 0.5 else "MISSED"
    rows, cpu_rows = [], []
    target = r["e2e"][0]
    for run_ in r["e2e"]:
        p50, p95, p99 = (percentile(run_.latencies, p) * 1000 for p in (50, 95, 99))
        rows.append(
            f"| {run_.rate:.0f}/s | {run_.offered.sent} | {run_.offered.errors} | "
            f"{len(run_.latencies)} / {run_.stored} | {p50:.0f} ms | {p95:.0f} ms | {p99:.0f} ms |"
        )
        cpu_rows.append(
            f"| {run_.rate:.0f}/s | "
            + " | ".join(f"{run_.cpu_ms_per_order[k]:.1f}" for k in CPU_COLUMNS)
            + " |"
        )
    target_p99 = percentile(target.latencies, 99) * 1000
    ok_p99 = "met" if target_p99 <= 500 else "MISSED"
    cpu_per_order = sum(target.cpu_ms_per_order.values())
    cores_needed = cpu_per_order * target.rate / 1000
    return f"""# Benchmarks

Run `make bench` (or `python -m bench.run`) on a machine with PostgreSQL and Redis on
loopback; it writes this file. Everything (load generator, gateway, arq worker, NetSuite
simulator, Postgres, Redis) shares the one machine.

Last run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, {os.cpu_count()} cores,
Python {platform.python_version()}; concurrency {args.concurrency}, {args.ingest_requests} requests per endpoint in {INGEST_ROUNDS} rounds.

## Ingest: signed Shopify order webhooks accepted per second

Baseline: a bare FastAPI endpoint doing one asyncpg INSERT of the body. Gateway: `POST
/webhooks/shop` (HMAC check, dedupe, raw + canonical + outbox rows in one transaction,
enqueue after commit). Rounds alternate so drift hits both alike.

| round | baseline 2xx | baseline/s | gateway 2xx | gateway/s | ratio |
|---:|---:|---:|---:|---:|---:|
{round_rows}

Gateway / baseline, median of the rounds = **{ratio:.2f}x** (target ≥ 0.5x: {ok_ingest}).

## End to end: webhook accepted → sales order in the NetSuite simulator

Open loop (a fixed offered rate, whatever the response times), {args.seconds:.0f} s per rate,
one arq worker on Redis. Latency is `delivered_at - accepted_at` of each delivery (2 NetSuite
calls per order: the customer and the sales order upserts, each signed with TBA).

| offered | sent | errors | delivered | p50 | p95 | p99 |
|---|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

CPU milliseconds per order, by process (Postgres and Redis not counted):

| offered | {" | ".join(CPU_COLUMNS)} |
|---|{"---:|" * len(CPU_COLUMNS)}
{chr(10).join(cpu_rows)}

p99 target ≤ 500 ms at {target.rate:.0f} orders/s: {ok_p99}. At {target.rate:.0f} orders/s these
processes alone need {cpu_per_order:.0f} ms x {target.rate:.0f}/s = {cores_needed:.1f} cores of the
{os.cpu_count()} this machine has (Postgres and Redis come on top); {_load_note(cores_needed)}
One worker process drains about {drained / drain_seconds:.0f} orders/s here.

Backlog drain (the {drained} orders accepted during the ingest runs, one worker):
{drained / drain_seconds:.0f} orders/s.
"""


def _load_note(cores_needed: float) -> str:
    """What the CPU budget means for the latency figures above."""
    cores = os.cpu_count() or 1
    if cores_needed >= cores * 0.8:
        return (
            "the machine is saturated, so the worker queue grows and latency is queueing "
            "time; the lower rate's row shows the figures below saturation."
        )
    return (
        "the tail comes from bursts of the open-loop arrivals and the machine's other load "
        "(both databases share its cores), not from a growing queue."
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ingest-requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--orders-per-second", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument(
        "--sustained-rate", type=float, default=25, help="a second, lower rate to measure"
    )
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    text = report(args, run(args))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
