"""Issue 12, target 5: the outbox and event tables keep their speed at 10 million rows.

The gateway's hot code paths (``bench.hot_queries``: claim, finish, the sweeper, webhook
dedupe, delivery lookups, orders in transit, erasure) run once against a fresh, migrated
database (``bench_big_tables`` on BENCH_PG) while the SQL they send is recorded with its
values. Then the big tables are filled in stages (100,000 rows each, then 1 million, then 10
million: what years of traffic leave behind; the backlog waiting for the ERP's breaker stays
an outage's 10,000 deliveries, so what grows is the history) and after each stage, ANALYZE
taken, every recorded statement is timed with
``EXPLAIN ANALYZE`` (planning + execution, rolled back), for its values and as the generic
plan asyncpg may settle on: one warm-up run, then the median of five.

A statement keeps its speed when at 10 million rows it takes at most twice its time at
100,000 (a difference under half a millisecond counts as none: timer noise). The plan check
at 100,000 rows is a test (``tests/integration/test_query_plans.py``); this pass is the timed
one, too slow for the suite (the fill writes 70 million rows: ~18 min on 2 cores, 21 GiB).

    python -m bench.big_tables [--rows 10000000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg

from app.cli import migrate
from app.configuration.loading import parse_config
from app.runtime import build_runtime
from app.settings import Settings
from bench.database import drop_database, reset_database
from bench.gateway import config_yaml
from bench.hot_queries import (
    BIG_TABLES,
    SEED,
    Recorded,
    explain,
    fill_statements,
    record,
    run_hot_paths,
)

DATABASE = "bench_big_tables"
FIRST_STAGE = 100_000
# the backlog waiting for the ERP is an outage's (10,000 deliveries), the same at every
# stage: what grows is the history, and what is measured is whether that slows the paths
BACKLOG_EVERY = 10
CHUNK = 500_000  # rows per fill statement: progress every few seconds, bounded WAL per commit
RUNS = 5
SLOWER = 2.0  # at most twice as slow as at the first stage…
NOISE_MS = 0.5  # …or less than this slower


@dataclass
class Timed:
    what: str  # the code path
    sql: str  # the statement's head, for the reader
    ms: dict[int, float] = field(default_factory=dict)  # rows → median ms (the slower plan)

    def keeps_speed(self, first: int, last: int) -> bool:
        before, after = self.ms[first], self.ms[last]
        return after <= max(SLOWER * before, before + NOISE_MS)


@dataclass
class BigTablesResult:
    stages: list[int]
    statements: list[Timed]
    fill_seconds: dict[int, float]  # rows → seconds the stage's fill took
    table_mb: dict[str, float]  # each big table with its indexes, at the last stage

    @property
    def slowed(self) -> list[Timed]:
        first, last = self.stages[0], self.stages[-1]
        return [t for t in self.statements if not t.keeps_speed(first, last)]

    @property
    def met(self) -> bool:
        return len(self.stages) > 1 and not self.slowed


def _head(statement: str) -> str:
    text = " ".join(statement.split())
    return text if len(text) <= 70 else text[:67] + "..."


async def _record_hot_paths(dsn: str) -> Recorded:
    """Seed the few rows the code paths find, run them, and keep what they sent to the big
    tables."""
    settings = Settings(
        database_url=dsn.replace("postgresql://", "postgresql+asyncpg://"), redis_url=None
    )
    rt = build_runtime(settings, parse_config(config_yaml("http://127.0.0.1:9"), "bench"))
    try:
        raw = await asyncpg.connect(dsn)
        try:
            for statement in SEED:
                await raw.execute(statement)
        finally:
            await raw.close()
        recorded: Recorded = []
        label = [""]
        record(rt, recorded, label)
        await run_hot_paths(rt, label)
    finally:
        await rt.close()
    return [r for r in recorded if any(t in r[1] for t in BIG_TABLES)]


async def _fill(raw: asyncpg.Connection, first: int, last: int, target: int) -> float:
    started = time.perf_counter()
    for start in range(first, last + 1, CHUNK):
        stop = min(start + CHUNK - 1, last)
        for statement in fill_statements(
            start, stop, waiting_every=BACKLOG_EVERY, waiting_until=FIRST_STAGE
        ):
            await raw.execute(statement)
        print(
            f"big tables: {stop:,} of {target:,} rows each "
            f"({time.perf_counter() - started:.0f} s this stage)",
            flush=True,
        )
    await raw.execute("ANALYZE")  # what autovacuum would have done by the time
    return time.perf_counter() - started


async def _time(raw: asyncpg.Connection, statement: str, params: Any) -> float:
    """Median ms of the slower of the two plans (for these values, generic)."""
    samples: dict[str, list[float]] = {"custom": [], "generic": []}
    for run in range(RUNS + 1):
        for kind, doc in await explain(raw, statement, params, analyze=True):
            if run:  # the first run warms the caches
                samples[kind].append(doc["Planning Time"] + doc["Execution Time"])
    return max(statistics.median(values) for values in samples.values())


async def _sizes(raw: asyncpg.Connection) -> dict[str, float]:
    return {
        table: await raw.fetchval("SELECT pg_total_relation_size($1::regclass)", table) / 2**20
        for table in sorted(BIG_TABLES)
    }


async def measure(dsn: str, rows: int) -> BigTablesResult:
    recorded = await _record_hot_paths(dsn)
    statements = [Timed(what, _head(sql)) for what, sql, _ in recorded]
    stages = [s for s in (FIRST_STAGE, 1_000_000, 10_000_000) if s < rows] + [rows]
    raw = await asyncpg.connect(dsn)
    fill_seconds: dict[int, float] = {}
    try:
        for table in BIG_TABLES:  # the statistics are ours to take, not autovacuum's
            await raw.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")
        filled = 0
        for stage in stages:
            fill_seconds[stage] = await _fill(raw, filled + 1, stage, rows)
            filled = stage
            for timed, (_, sql, params) in zip(statements, recorded, strict=True):
                timed.ms[stage] = await _time(raw, sql, params)
            slowest = max(statements, key=lambda t: t.ms[stage])
            print(
                f"big tables: {stage:,} rows timed; slowest {slowest.what} "
                f"{slowest.ms[stage]:.2f} ms",
                flush=True,
            )
        sizes = await _sizes(raw)
    finally:
        await raw.close()
    return BigTablesResult(stages, statements, fill_seconds, sizes)


def render_big_tables(result: BigTablesResult) -> str:
    stages = result.stages
    first, last = stages[0], stages[-1]
    verdict = "**met**" if result.met else "**missed**"
    heads = " | ".join(f"{s:,} rows" for s in stages)
    lines = [
        f"## The hot queries at {last:,} rows",
        "",
        "Every statement the hot code paths send to the big tables (claim, finish, sweeper, "
        "webhook dedupe, delivery lookups, orders in transit, erasure), recorded as the "
        "gateway runs them, then timed with `EXPLAIN ANALYZE` (planning + execution, rolled "
        "back; the slower of the plan for its values and the generic plan; median of "
        f"{RUNS} after a warm-up) with each big table ({', '.join(sorted(BIG_TABLES))}) "
        f"at {', '.join(f'{s:,}' for s in stages)} rows. Target: at {last:,} rows no "
        f"statement slower than {SLOWER:g}x its time at {first:,} (differences under "
        f"{NOISE_MS} ms count as none), {verdict}.",
        "",
        f"| code path | statement | {heads} | |",
        "|---|---|" + "---:|" * len(stages) + "---|",
    ]
    for t in result.statements:
        times = " | ".join(f"{t.ms[s]:.2f} ms" for s in stages)
        mark = "" if t.keeps_speed(first, last) else "**slower**"
        sql = t.sql.replace("|", "\\|")
        lines.append(f"| {t.what} | `{sql}` | {times} | {mark} |")
    fills = ", ".join(f"{s:,} rows {sec / 60:.1f} min" for s, sec in result.fill_seconds.items())
    size = sum(result.table_mb.values()) / 1024
    biggest = sorted(result.table_mb.items(), key=lambda kv: -kv[1])[:3]
    lines += [
        "",
        f"Filling took {fills} (each stage adds its rows to every big table). At {last:,} "
        f"rows the big tables and their indexes hold {size:.1f} GiB (largest: "
        + ", ".join(f"{name} {mb / 1024:.1f} GiB" for name, mb in biggest)
        + ").",
    ]
    return "\n".join(lines) + "\n"


def run_big_tables(rows: int) -> BigTablesResult:
    dsn = reset_database(DATABASE)
    try:
        migrate(dsn.replace("postgresql://", "postgresql+asyncpg://"))
        return asyncio.run(measure(dsn, rows))
    finally:
        drop_database(DATABASE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run_big_tables(args.rows)
    print(json.dumps(asdict(result), indent=2) if args.json else render_big_tables(result))


if __name__ == "__main__":
    main()
