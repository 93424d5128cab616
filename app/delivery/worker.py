"""Workers: the arq worker (``erp-gateway worker``) and the in-process one (``serve`` alone).

Both are thin wrappers over ``process_delivery`` and ``sweep``.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any

import structlog
from arq import Retry, cron
from arq.connections import RedisSettings, create_pool

from app.config import GatewayConfig
from app.delivery.queue import ArqQueue, InProcessQueue
from app.delivery.service import process_delivery
from app.delivery.sweeper import sweep
from app.models import utcnow
from app.runtime import Runtime, build_runtime
from app.scheduling.jobs import run_due_jobs
from app.settings import Settings

log = structlog.get_logger("gateway.worker")


async def run_once(rt: Runtime, delivery_id: int) -> datetime | None:
    """Process a delivery; return when to run it again, if ever."""
    outcome = await process_delivery(rt, delivery_id)
    return outcome.retry_at if outcome.kind == "retry" else None


# --- in process -----------------------------------------------------------------------------


async def start_in_process(rt: Runtime) -> asyncio.Task[None]:
    """Start the in-process queue and its sweeper; cancel the returned task to stop."""

    async def run(delivery_id: int) -> datetime | None:
        return await run_once(rt, delivery_id)

    queue = InProcessQueue(run, rt.settings.worker_concurrency)
    rt.queue = queue
    queue.start()

    stopping = asyncio.Event()

    async def pause(seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=seconds)

    async def sweeper_loop() -> None:
        while not stopping.is_set():
            try:
                await sweep(rt)
            except Exception:
                log.exception("sweep failed; trying again next interval")
            await pause(rt.settings.sweep_interval_seconds)

    async def scheduler_loop() -> None:
        while not stopping.is_set():
            await scheduled_tick(rt)
            await pause(rt.settings.schedule_tick_seconds)

    async def background() -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(sweeper_loop(), name="sweeper")
            group.create_task(scheduler_loop(), name="scheduler")

    task = asyncio.create_task(background(), name="background")
    _STOP_EVENTS[task] = stopping
    return task


_STOP_EVENTS: dict[asyncio.Task[None], asyncio.Event] = {}


async def scheduled_tick(rt: Runtime) -> dict[str, int]:
    """Run the scheduled jobs that are due; a failing job is logged, never fatal."""
    try:
        return await run_due_jobs(rt)
    except Exception:
        log.exception("scheduled jobs failed; trying again next tick")
        return {}


async def stop_in_process(task: asyncio.Task[None], grace_seconds: float = 5.0) -> None:
    """Let the sweeper and the scheduled jobs finish what they are doing, then stop them.

    Cancelling them mid-transaction could leave a connection holding a lock (SQLite).
    """
    stopping = _STOP_EVENTS.pop(task, None)
    if stopping is not None:
        stopping.set()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(task), timeout=grace_seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# --- arq ------------------------------------------------------------------------------------


async def deliver(ctx: dict[str, Any], delivery_id: int) -> str:
    """arq task: one attempt; a retry goes back to arq with the same job id."""
    rt: Runtime = ctx["runtime"]
    retry_at = await run_once(rt, delivery_id)
    if retry_at is not None:
        raise Retry(defer=max(0.0, (retry_at - utcnow()).total_seconds()))
    return "done"


async def sweep_task(ctx: dict[str, Any]) -> int:
    return await sweep(ctx["runtime"])


async def scheduled_task(ctx: dict[str, Any]) -> dict[str, int]:
    return await scheduled_tick(ctx["runtime"])


async def _startup(ctx: dict[str, Any]) -> None:
    from app.main import load_runtime_inputs
    from app.observability.logging import configure_logging

    settings, config = load_runtime_inputs()
    configure_logging(settings)
    rt = build_runtime(settings, config)
    rt.queue = ArqQueue(ctx["redis"])
    ctx["runtime"] = rt
    if settings.worker_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.worker_metrics_port, addr="0.0.0.0")
    log.info("worker started", connections=[c.id for c in config.connections])


async def _shutdown(ctx: dict[str, Any]) -> None:
    rt: Runtime | None = ctx.get("runtime")
    if rt is not None:
        rt.queue = None  # the pool belongs to arq
        await rt.close()


def use_uvloop() -> None:
    """uvloop, as uvicorn uses for the API: the worker's event loop is its hot path."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it on Linux/macOS
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def worker_settings(settings: Settings, config: GatewayConfig) -> dict[str, Any]:
    """arq worker settings, shaped by our settings (lease = job timeout)."""
    assert settings.redis_url, "the arq worker needs GATEWAY_REDIS_URL"
    step = max(1, int(settings.sweep_interval_seconds))
    return {
        "functions": [deliver],
        "cron_jobs": [
            cron(
                sweep_task,
                second=set(range(0, 60, step)),
                run_at_startup=True,
                unique=True,
                timeout=60,
            ),
            cron(
                scheduled_task,
                second=set(range(0, 60, max(1, int(settings.schedule_tick_seconds)))),
                run_at_startup=True,
                unique=True,
                timeout=max(60, int(settings.lease_seconds)),
            ),
        ],
        "on_startup": _startup,
        "on_shutdown": _shutdown,
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "max_jobs": settings.worker_concurrency,
        "poll_delay": settings.worker_poll_seconds,
        "job_timeout": settings.lease_seconds,
        "keep_result": 0,
        "max_tries": 1_000_000,  # attempts are counted in the database, not by arq
        "retry_jobs": True,
        "handle_signals": True,
    }


async def arq_pool(settings: Settings) -> ArqQueue:
    assert settings.redis_url
    return ArqQueue(await create_pool(RedisSettings.from_dsn(settings.redis_url)))
