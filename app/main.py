"""The FastAPI app: factory and lifespan (runtime, shared httpx client, in-process worker)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import structlog
from fastapi import Depends, FastAPI

from app.api.docs import install_docs
from app.api.limits import RequestLimits
from app.api.openapi import install_openapi
from app.api.query_params import reject_unknown_query_params
from app.api.request_id import RequestContext
from app.api.timing import RequestTiming
from app.config import GatewayConfig, load_config
from app.console import install_console
from app.db import transaction
from app.delivery.queue import ArqQueue
from app.delivery.sweeper import sweep
from app.delivery.worker import InProcessWorker, background_loop
from app.errors import install_error_handlers
from app.heap import freeze_startup_heap
from app.mappings.service import seed_from_config
from app.observability.logging import configure_logging
from app.runtime import Runtime, build_runtime
from app.settings import Settings, get_settings
from kernel.contract import Connector

log = structlog.get_logger("gateway")


def load_runtime_inputs() -> tuple[Settings, GatewayConfig]:
    settings = get_settings()
    return settings, load_config(settings.config)


class Background:
    """What runs beside the API in ``serve``: the in-process worker (embedded), or with Redis
    a sweeper that queues what webhooks left behind while Redis was away."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.stopping = asyncio.Event()
        self._worker: InProcessWorker | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, *, with_worker: bool) -> None:
        if not with_worker:
            return
        if self.rt.settings.redis_url:
            self._task = asyncio.create_task(
                background_loop(
                    "sweep",
                    lambda: sweep(self.rt),
                    self.rt.settings.sweep_interval_seconds,
                    self.stopping,
                ),
                name="sweeper",
            )
        else:
            self._worker = InProcessWorker(self.rt)
            self._worker.start()

    async def stop(self) -> None:
        self.stopping.set()
        if self._worker is not None:
            await self._worker.stop()
        if self._task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._task, timeout=self.rt.settings.worker_grace_seconds)


async def start_runtime(
    settings: Settings,
    config: GatewayConfig,
    *,
    with_worker: bool,
    connectors: Mapping[str, Connector] | None = None,
) -> tuple[Runtime, Background]:
    """Build the runtime, seed mappings, attach a queue and what runs in the background.

    With Redis the queue connects on first use: ``serve`` starts and accepts webhooks into
    the outbox while Redis is down; its sweeper queues them once Redis is back.
    """
    rt = build_runtime(settings, config, connectors)
    async with transaction(rt.sessions) as session:
        seeded = await seed_from_config(session, config)
    if seeded:
        log.info("mappings seeded from config", count=seeded)
    if settings.redis_url:
        rt.queue = ArqQueue.connect_lazily(settings.redis_url)
    background = Background(rt)
    background.start(with_worker=with_worker)
    return rt, background


def create_app(
    settings: Settings | None = None,
    config: GatewayConfig | None = None,
    connectors: Mapping[str, Connector] | None = None,
) -> FastAPI:
    """The gateway app; ``connectors`` replaces built connectors by connection id (tests)."""
    settings = settings or get_settings()
    config = config if config is not None else load_config(settings.config)
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt, background = await start_runtime(
            settings, config, with_worker=True, connectors=connectors
        )
        app.state.runtime = rt
        freeze_startup_heap()
        mode = "arq (redis)" if settings.redis_url else "in-process"
        log.info(
            "gateway started",
            delivery=mode,
            connections=[c.id for c in config.connections],
            database=settings.database_url.split("://", 1)[0],
        )
        try:
            yield
        finally:
            await background.stop()
            await rt.close()

    app = FastAPI(
        title="erp-gateway",
        version="0.1.0",
        description="Durable integration gateway between storefronts and ERPs. "
        "Operator API under /api/v1 (`Authorization: Bearer <key>`).",
        lifespan=lifespan,
        docs_url=None,  # app.api.docs serves them with files of its own, no CDN
        redoc_url=None,
    )
    install_docs(app)
    install_openapi(app)
    app.state.api_keys = settings.parsed_api_keys()
    install_error_handlers(app)
    # sizes, read deadlines and the API key, before any route reads a body
    app.add_middleware(RequestLimits, settings=settings, api_keys=app.state.api_keys)
    # request durations per route, including refusals by the limits
    app.add_middleware(RequestTiming)
    # outermost: request id, JSON 500 for anything unexpected, 5xx metrics
    app.add_middleware(RequestContext)

    from app.erasure.router import router as erasure_router
    from app.health import router as health_router
    from app.incidents.router import router as incidents_router
    from app.ingest.router import router as ingest_router
    from app.ops.router import router as ops_router

    app.include_router(ingest_router)
    app.include_router(health_router)
    # every /api/v1 route: a query parameter it does not take is a 422. On these routers,
    # not app-wide: the webhook route would pay for resolving it (~10% of a webhook's CPU)
    for api_router in (ops_router, erasure_router, incidents_router):
        app.include_router(
            api_router, prefix="/api/v1", dependencies=[Depends(reject_unknown_query_params)]
        )
    install_console(app)
    return app
