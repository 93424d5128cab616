"""The FastAPI app: factory and lifespan (runtime, shared httpx client, in-process worker)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from app.config import GatewayConfig, load_config
from app.db import transaction
from app.errors import install_error_handlers
from app.mappings.service import seed_from_config
from app.observability.logging import configure_logging
from app.runtime import Runtime, build_runtime
from app.settings import Settings, get_settings

log = structlog.get_logger("gateway")


def load_runtime_inputs() -> tuple[Settings, GatewayConfig]:
    settings = get_settings()
    return settings, load_config(settings.config)


async def start_runtime(
    settings: Settings, config: GatewayConfig, *, with_worker: bool
) -> tuple[Runtime, object]:
    """Build the runtime, seed mappings, attach a queue. Returns (runtime, stop handle)."""
    rt = build_runtime(settings, config)
    async with transaction(rt.sessions) as session:
        seeded = await seed_from_config(session, config)
    if seeded:
        log.info("mappings seeded from config", count=seeded)
    handle: object = None
    if settings.redis_url:
        from app.delivery.worker import arq_pool

        rt.queue = await arq_pool(settings)
    elif with_worker:
        from app.delivery.worker import start_in_process

        handle = await start_in_process(rt)
    return rt, handle


def create_app(settings: Settings | None = None, config: GatewayConfig | None = None) -> FastAPI:
    settings = settings or get_settings()
    config = config if config is not None else load_config(settings.config)
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt, sweeper = await start_runtime(settings, config, with_worker=True)
        app.state.runtime = rt
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
            if sweeper is not None:
                from app.delivery.worker import stop_in_process

                await stop_in_process(sweeper)  # type: ignore[arg-type]
            await rt.close()

    app = FastAPI(
        title="erp-gateway",
        version="0.1.0",
        description="Durable integration gateway between storefronts and ERPs. "
        "Operator API under /api/v1 (Authorization: Bearer <key>).",
        lifespan=lifespan,
    )
    app.state.api_keys = settings.parsed_api_keys()
    install_error_handlers(app)

    from app.erasure.router import router as erasure_router
    from app.health import router as health_router
    from app.ingest.router import router as ingest_router
    from app.ops.router import router as ops_router

    app.include_router(ingest_router)
    app.include_router(health_router)
    app.include_router(ops_router, prefix="/api/v1")
    app.include_router(erasure_router, prefix="/api/v1")
    return app
