"""Workers: the arq worker (``erp-gateway worker``) and the in-process one (``serve`` alone).

Both are thin wrappers over ``process_delivery`` and ``sweep``. The arq worker survives its
infrastructure: when Redis goes away it keeps the deliveries it holds going, reconnects
with backoff and carries on; SIGTERM stops it taking work, lets what is in flight finish
within a grace period and hands the rest back at once (no lease left to expire).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from datetime import datetime
from typing import Any
from wsgiref.simple_server import WSGIServer

import structlog
from arq import Retry, cron
from arq.connections import ArqRedis
from arq.worker import Worker
from prometheus_client import start_http_server

from app.config import GatewayConfig
from app.delivery.arq_jobs import DeliveryWorker
from app.delivery.heartbeat import HeartbeatState, heartbeat_loop
from app.delivery.queue import ArqQueue, InProcessQueue
from app.delivery.service import process_delivery
from app.delivery.sweeper import sweep
from app.heap import freeze_startup_heap
from app.models import utcnow
from app.observability import metrics
from app.runtime import Runtime, build_runtime
from app.scheduling.jobs import run_due_jobs
from app.settings import Settings

log = structlog.get_logger("gateway.worker")

# Redis reads of a running worker: long enough for a busy Redis, short enough that a hung
# one is noticed (and the worker reconnects) within seconds.
WORKER_REDIS_TIMEOUT_SECONDS = 5.0
RECONNECT_MAX_SECONDS = 30.0


async def run_once(rt: Runtime, delivery_id: int) -> datetime | None:
    """Process a delivery; return when to run it again, if ever."""
    outcome = await process_delivery(rt, delivery_id)
    return outcome.retry_at if outcome.kind == "retry" else None


async def background_loop(
    name: str, step: Callable[[], Any], interval: float, stopping: asyncio.Event
) -> None:
    """Run ``step`` every ``interval`` seconds until ``stopping``; a failing step is logged
    and tried again next time, never fatal."""
    while not stopping.is_set():
        try:
            await step()
        except Exception as exc:
            log.warning(f"{name} failed; trying again next interval", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=interval)


# --- in process -----------------------------------------------------------------------------


class InProcessWorker:
    """The embedded default: a queue in this process, its sweeper, scheduled jobs, heartbeat."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.stopping = asyncio.Event()
        self.queue = InProcessQueue(self._run, rt.settings.worker_concurrency)
        self._task: asyncio.Task[None] | None = None

    async def _run(self, delivery_id: int) -> datetime | None:
        return await run_once(self.rt, delivery_id)

    def start(self) -> None:
        self.rt.queue = self.queue
        self.queue.start()
        settings = self.rt.settings

        async def background() -> None:
            async with asyncio.TaskGroup() as group:
                group.create_task(
                    background_loop(
                        "sweep",
                        lambda: sweep(self.rt),
                        settings.sweep_interval_seconds,
                        self.stopping,
                    )
                )
                group.create_task(
                    background_loop(
                        "scheduled jobs",
                        lambda: run_due_jobs(self.rt),
                        settings.schedule_tick_seconds,
                        self.stopping,
                    )
                )
                group.create_task(
                    heartbeat_loop(self.rt, "in-process", lambda: "consuming", self.stopping)
                )

        self._task = asyncio.create_task(background(), name="in-process-worker")

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Let the sweeper, scheduled jobs and deliveries in progress finish (cancelling them
        mid-transaction could leave SQLite locked), then stop."""
        grace = self.rt.settings.worker_grace_seconds if grace_seconds is None else grace_seconds
        self.stopping.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._task), timeout=grace)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.queue.close(grace)


async def scheduled_tick(rt: Runtime) -> dict[str, int]:
    """Run the scheduled jobs that are due; a failing job is logged, never fatal."""
    try:
        return await run_due_jobs(rt)
    except Exception:
        log.exception("scheduled jobs failed; trying again next tick")
        return {}


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


def use_uvloop() -> None:
    """uvloop, as uvicorn uses for the API: the worker's event loop is its hot path."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it on Linux/macOS
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def worker_options(settings: Settings) -> dict[str, Any]:
    """arq Worker options, shaped by our settings (lease = job timeout)."""
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
        "max_jobs": settings.worker_concurrency,
        "poll_delay": settings.worker_poll_seconds,
        "job_timeout": settings.lease_seconds,
        "keep_result": 0,
        "max_tries": 1_000_000,  # attempts are counted in the database, not by arq
        "retry_jobs": True,
        "handle_signals": False,  # ours: stop taking work, finish, hand back the rest
    }


class ArqWorker:
    """``erp-gateway worker``: arq's worker, kept alive across Redis outages."""

    def __init__(self, settings: Settings, config: GatewayConfig) -> None:
        assert settings.redis_url, "the arq worker needs GATEWAY_REDIS_URL"
        self.settings = settings
        self.rt = build_runtime(settings, config)
        self.rt.queue = ArqQueue.connect_lazily(settings.redis_url)
        self.stopping = asyncio.Event()
        self.state: HeartbeatState = "starting"
        self._state_changed = asyncio.Event()  # the heartbeat reports a change at once
        self._connected_once = False
        # deliveries of a connection that broke: they go on while the worker reconnects
        self._orphans: set[asyncio.Task[Any]] = set()

    def _set_state(self, state: HeartbeatState) -> None:
        if state != self.state:
            self.state = state
            self._state_changed.set()

    def _on_signal(self, signum: int) -> None:
        if not self.stopping.is_set():
            log.info("worker stopping", signal=signal.Signals(signum).name)
        self.stopping.set()

    def _arq(self) -> Worker:
        assert self.settings.redis_url
        pool = ArqRedis.from_url(
            self.settings.redis_url,
            socket_timeout=WORKER_REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=WORKER_REDIS_TIMEOUT_SECONDS,
        )
        worker = DeliveryWorker(
            **worker_options(self.settings),
            redis_pool=pool,
            ctx={"runtime": self.rt},
            on_startup=self._connected,  # type: ignore[arg-type]
        )
        worker.idle_poll_seconds = self.settings.worker_idle_poll_seconds
        return worker

    async def _connected(self, _: dict[str, Any]) -> None:
        self._set_state("consuming")
        if self._connected_once:
            log.info("worker reconnected to Redis; consuming again")
        else:
            self._connected_once = True
            freeze_startup_heap()
            log.info("worker started", connections=[c.id for c in self.rt.config.connections])

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        heartbeat = asyncio.create_task(
            heartbeat_loop(self.rt, "arq", self._state, self.stopping, self._state_changed)
        )
        delay = 1.0
        try:
            while not self.stopping.is_set():
                worker = self._arq()
                main = asyncio.create_task(worker.main(), name="arq-main")
                stop = asyncio.create_task(self.stopping.wait())
                await asyncio.wait({main, stop}, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                if self.stopping.is_set():
                    await self._stop_gracefully(worker, main)
                    break
                delay = await self._reconnect_later(worker, main, delay)
        finally:
            self.stopping.set()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await self.rt.close()

    def _state(self) -> HeartbeatState:
        return "stopping" if self.stopping.is_set() else self.state

    async def _reconnect_later(
        self, worker: Worker, main: asyncio.Task[None], delay: float
    ) -> float:
        """arq's loop ended (Redis went away or hung): keep what is in flight going, wait, retry.

        In-flight deliveries only need the database; they go on beside the next connection
        (their arq bookkeeping may fail: the database is the truth and the sweeper redoes it).
        """
        error = main.exception() if not main.cancelled() else None
        was_consuming = self.state == "consuming"
        self._set_state("queue_unreachable")
        in_flight = [t for t in worker.tasks.values() if not t.done()]
        log.warning(
            "Redis unreachable; deliveries in flight go on, the worker reconnects",
            error=repr(error),
            in_flight=len(in_flight),
            retry_in_seconds=delay,
        )
        self._orphans.update(in_flight)
        for task in in_flight:
            task.add_done_callback(self._orphans.discard)
        closing = asyncio.create_task(_close_when_done(worker, in_flight))
        self._orphans.add(closing)
        closing.add_done_callback(self._orphans.discard)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=delay)
        return 1.0 if was_consuming else min(delay * 2, RECONNECT_MAX_SECONDS)

    async def _stop_gracefully(self, worker: Worker, main: asyncio.Task[None]) -> None:
        """Stop taking work; finish in-flight deliveries within the grace period; hand back
        the rest (their leases are released at once, so another worker takes them now)."""
        worker.allow_pick_jobs = False
        grace = self.settings.worker_grace_seconds
        # the worker's own cron jobs (sweeper, scheduler) finish the same way, counted apart:
        # the operator reads these counts as deliveries
        scheduled = {t for job_id, t in worker.tasks.items() if job_id.startswith("cron:")}
        in_flight = [t for t in (*worker.tasks.values(), *self._orphans) if not t.done()]
        log.info(
            "worker stopping: no new work; finishing deliveries in flight",
            in_flight=len([t for t in in_flight if t not in scheduled]),
            scheduled_jobs=len([t for t in in_flight if t in scheduled]),
            grace_seconds=grace,
        )
        finished, unfinished = (
            await asyncio.wait(in_flight, timeout=grace) if in_flight else (set(), set())
        )
        for task in unfinished:
            task.cancel()  # process_delivery hands its delivery back before it ends
        await asyncio.gather(*unfinished, return_exceptions=True)
        main.cancel()
        await asyncio.gather(main, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(worker.pool.aclose(), WORKER_REDIS_TIMEOUT_SECONDS)
        log.info(
            "worker stopped",
            finished_in_flight=len(finished - scheduled),
            handed_back=len(unfinished - scheduled),
            scheduled_jobs_cut_short=len(unfinished & scheduled),
        )


async def _close_when_done(worker: Worker, tasks: list[asyncio.Task[Any]]) -> None:
    """Close a broken connection's pool once the deliveries that used it are done."""
    if tasks:
        await asyncio.wait(tasks)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(worker.pool.aclose(), WORKER_REDIS_TIMEOUT_SECONDS)


def serve_worker_metrics(port: int, addr: str = "0.0.0.0") -> WSGIServer:
    """This worker's own metrics (deliveries, attempts, polls, findings) on ``port``, in a
    thread; the gauges read from the database are the API's to serve (``DATABASE_GAUGES``)."""
    server, _ = start_http_server(port, addr=addr, registry=metrics.ProcessMetrics())
    return server


def run_arq_worker(settings: Settings, config: GatewayConfig) -> None:
    """Run the arq worker until SIGTERM/SIGINT (uvloop when available)."""
    use_uvloop()

    async def main() -> None:
        if settings.worker_metrics_port:
            serve_worker_metrics(settings.worker_metrics_port)
        await ArqWorker(settings, config).run()

    asyncio.run(main())
