"""/healthz (process up), /readyz (what works: accepting webhooks, delivering), /metrics.

None of them waits on Redis for long: the Redis check has a short timeout; the gauges of
/metrics (queues, breakers, polls, findings, workers) come from the database.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import sqlalchemy as sa
import structlog
from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import RuntimeDep
from app.delivery.heartbeat import live_workers
from app.delivery.queue import ArqQueue
from app.observability import metrics as app_metrics
from app.observability.snapshot import refresh_database_gauges

log = structlog.get_logger("gateway.health")
router = APIRouter(tags=["health"])

DATABASE_TIMEOUT_SECONDS = 2.0


@router.get(
    "/healthz",
    summary="Liveness: the process answers",
    description="Always 200 while the process runs; /readyz says whether it can work.",
)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: can the gateway accept webhooks, and can it deliver?",
    description="`accepting`: the database answers, so webhooks are stored (the outbox). "
    "`delivering`: besides, a worker is consuming (with Redis: Redis answers and a worker "
    "reported in the last 15 s). 503 when not accepting; with `?scope=delivery`, also 503 "
    "when not delivering (for alerts on stuck delivery, not for load balancers).",
)
async def readyz(
    rt: RuntimeDep, scope: Literal["accept", "delivery"] = Query(default="accept")
) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT_SECONDS):
            async with rt.sessions() as session:
                await session.execute(sa.text("SELECT 1"))
                workers = await live_workers(session)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
        workers = []
    accepting = checks["database"] == "ok"
    if isinstance(rt.queue, ArqQueue):
        try:
            await rt.queue.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
        consuming = [w for w in workers if w.state == "consuming"]
        checks["workers"] = (
            f"ok: {len(consuming)} consuming"
            if consuming
            else "error: no worker consuming"
            + (f" ({', '.join(sorted({w.state for w in workers}))})" if workers else "")
        )
        delivering = accepting and checks["redis"] == "ok" and bool(consuming)
    else:
        checks["workers"] = "ok: in process"
        delivering = accepting
    status = "ready" if delivering else ("degraded" if accepting else "not ready")
    ok = delivering if scope == "delivery" else accepting
    return JSONResponse(
        {"status": status, "accepting": accepting, "delivering": delivering, "checks": checks},
        status_code=200 if ok else 503,
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(rt: RuntimeDep) -> Response:
    """Always answers: a database that is down or slow leaves its gauges at their last
    values (``gateway_metrics_database_fresh`` 0) instead of failing the scrape, which would
    hide the process's own metrics exactly during an outage."""
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT_SECONDS):
            await refresh_database_gauges(rt)
    except (TimeoutError, sa.exc.SQLAlchemyError, OSError) as exc:
        app_metrics.DATABASE_GAUGES_FRESH.set(0)
        log.warning(
            "metrics scrape: database gauges not refreshed; serving their last values",
            error=type(exc).__name__,
        )
    else:
        app_metrics.DATABASE_GAUGES_FRESH.set(1)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
