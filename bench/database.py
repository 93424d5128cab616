"""The benchmark's own Postgres databases (bench_*), and what the gateway wrote into them."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

import asyncpg

PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")


def reset_database(name: str) -> str:
    """Drop and create ``name`` (always a bench_* database); return its DSN."""
    assert name.startswith("bench_"), name

    async def reset() -> None:
        conn = await asyncpg.connect(f"{PG}/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(reset())
    return f"{PG}/{name}"


def drop_database(name: str) -> None:
    assert name.startswith("bench_"), name

    async def drop() -> None:
        conn = await asyncpg.connect(f"{PG}/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


@dataclass
class Deliveries:
    total: int
    delivered: int
    open: int  # pending or in flight


async def _deliveries(dsn: str, after_id: int) -> Deliveries:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS total, count(*) FILTER (WHERE status = 'delivered') AS delivered,"
            " count(*) FILTER (WHERE status IN ('pending', 'in_flight')) AS open"
            " FROM deliveries WHERE id > $1",
            after_id,
        )
    finally:
        await conn.close()
    return Deliveries(int(row["total"]), int(row["delivered"]), int(row["open"]))


def last_delivery_id(dsn: str) -> int:
    async def last() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM deliveries"))
        finally:
            await conn.close()

    return asyncio.run(last())


def wait_drained(dsn: str, after_id: int, expected: int, timeout: float) -> Deliveries:
    """Wait until ``expected`` deliveries after ``after_id`` exist and none is still open."""
    deadline = time.monotonic() + timeout
    while True:
        state = asyncio.run(_deliveries(dsn, after_id))
        if (state.total >= expected and state.open == 0) or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def delivery_spread(dsn: str, after_id: int) -> float:
    """Seconds from the first to the last delivery after ``after_id`` (the gateway's own
    delivered_at): how long the deliveries took, without what came before the first."""

    async def fetch() -> float:
        conn = await asyncpg.connect(dsn)
        try:
            value = await conn.fetchval(
                "SELECT EXTRACT(EPOCH FROM max(delivered_at) - min(delivered_at)) FROM deliveries"
                " WHERE id > $1 AND status = 'delivered'",
                after_id,
            )
        finally:
            await conn.close()
        return float(value or 0)

    return asyncio.run(fetch())


def e2e_latencies(dsn: str, after_id: int) -> list[float]:
    """Seconds from the gateway accepting each order to its delivery (the gateway's own
    accepted_at and delivered_at), for the deliveries after ``after_id`` that were delivered."""

    async def fetch() -> list[float]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT EXTRACT(EPOCH FROM (delivered_at - accepted_at)) AS s FROM deliveries"
                " WHERE id > $1 AND status = 'delivered'",
                after_id,
            )
        finally:
            await conn.close()
        return [float(r["s"]) for r in rows]

    return asyncio.run(fetch())


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def count_rows(dsn: str, table: str) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
        finally:
            await conn.close()

    return asyncio.run(count())
