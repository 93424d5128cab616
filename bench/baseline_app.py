"""Baseline for the ingest benchmark: a bare FastAPI endpoint doing one INSERT (asyncpg on
Postgres, or aiosqlite on a SQLite file with the gateway's own pragmas, committed each time).

Run: python -m bench.baseline_app --port P --dsn postgresql://postgres@127.0.0.1/db
     python -m bench.baseline_app --port P --sqlite var/bench/floor.db
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiosqlite
import asyncpg
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


def create_app(dsn: str) -> FastAPI:
    pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(dsn, min_size=5, max_size=10)
        await pool.execute(
            "CREATE TABLE IF NOT EXISTS baseline_events "
            "(id bigserial primary key, received_at timestamptz default now(), body bytea)"
        )
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/ingest")
    async def ingest(request: Request) -> JSONResponse:
        body = await request.body()
        assert pool is not None
        event_id = await pool.fetchval(
            "INSERT INTO baseline_events (body) VALUES ($1) RETURNING id", body
        )
        return JSONResponse({"event_ids": [event_id]}, status_code=202)

    return app


def create_sqlite_app(path: str) -> FastAPI:
    db: aiosqlite.Connection | None = None
    writing = asyncio.Lock()  # one connection: each insert and its commit in turn

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal db
        db = await aiosqlite.connect(path)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000"):
            await db.execute(f"PRAGMA {pragma}")
        await db.execute(
            "CREATE TABLE IF NOT EXISTS baseline_events (id integer primary key, "
            "received_at text default CURRENT_TIMESTAMP, body blob)"
        )
        await db.commit()
        yield
        await db.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/ingest")
    async def ingest(request: Request) -> JSONResponse:
        body = await request.body()
        assert db is not None
        async with writing:
            cursor = await db.execute(
                "INSERT INTO baseline_events (body) VALUES (?) RETURNING id", (body,)
            )
            (event_id,) = await cursor.fetchone() or (None,)
            await db.commit()
        return JSONResponse({"event_ids": [event_id]}, status_code=202)

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--dsn")
    target.add_argument("--sqlite", help="a SQLite file")
    args = parser.parse_args()
    uvicorn.run(
        create_sqlite_app(args.sqlite) if args.sqlite else create_app(args.dsn),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
