"""Baseline for the ingest benchmark: a bare FastAPI endpoint doing one asyncpg INSERT.

Run: python -m bench.baseline_app --port P --dsn postgresql://postgres@127.0.0.1/db
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dsn", required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.dsn),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
