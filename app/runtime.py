"""Everything a process needs to move data, built once at start and shared.

The API process (``serve``) and the arq worker build the same Runtime; connectors get the
one shared httpx client; the queue is arq on Redis or the in-process queue.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import GatewayConfig
from app.connections import build_connector
from app.db import make_engine, make_sessionmaker
from app.delivery.breakers import BreakerRegistry
from app.delivery.capture import make_http_client
from app.limits import GatewayLimiter, build_limiter
from app.settings import Settings
from app.tokens import DatabaseTokenStore, token_cipher
from kernel.contract import Connector

if TYPE_CHECKING:
    from app.delivery.queue import DeliveryQueue


@dataclass
class Runtime:
    settings: Settings
    config: GatewayConfig
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    connectors: dict[str, Connector]
    breakers: BreakerRegistry
    # the connections' OAuth tokens, shared with every other process on the database
    tokens: DatabaseTokenStore
    # concurrency slots per remote account (NetSuite), shared with every other process
    # through Redis when configured, else in this process
    limiter: GatewayLimiter
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    queue: DeliveryQueue | None = None
    _limits: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    _next_call: dict[str, float] = field(default_factory=dict)

    _health_written: dict[str, float] = field(default_factory=dict)

    def health_due(self, destination: str, *, ok: bool) -> bool:
        """Record errors always, successes at most once a second per destination.

        ``last_success_at`` is for people; writing the same row on every delivery would
        serialize workers on it for nothing.
        """
        if not ok:
            return True
        now = time.monotonic()
        if now - self._health_written.get(destination, 0.0) < 1.0:
            return False
        self._health_written[destination] = now
        return True

    async def rate_limit(self, destination: str) -> None:
        """Wait for this destination's next call slot (``max_requests_per_second``)."""
        per_second = self.config.policy_for(destination).max_requests_per_second
        if per_second is None:
            return
        loop = asyncio.get_running_loop()
        slot = max(loop.time(), self._next_call.get(destination, 0.0))
        self._next_call[destination] = slot + 1.0 / per_second
        if slot > loop.time():
            await asyncio.sleep(slot - loop.time())

    def concurrency_limit(self, destination: str) -> asyncio.Semaphore:
        """Caps deliveries in flight to one destination from this process
        (``max_concurrency``); an account's limit across processes is ``limiter``'s."""
        limit = self._limits.get(destination)
        if limit is None:
            limit = asyncio.Semaphore(self.config.policy_for(destination).max_concurrency)
            self._limits[destination] = limit
        return limit

    @property
    def sides(self) -> dict[str, str]:
        """connection id → "store" or "erp" (who owns which customer fields, etc.)."""
        return {cid: conn.side for cid, conn in self.connectors.items()}

    def connector(self, connection_id: str) -> Connector | None:
        return self.connectors.get(connection_id)

    def require_queue(self) -> DeliveryQueue:
        if self.queue is None:
            raise RuntimeError("the delivery queue is not started")
        return self.queue

    async def close(self) -> None:
        if self.queue is not None:
            await self.queue.close()
        await self.http.aclose()
        await self.breakers.close()
        await self.limiter.close()
        await self.engine.dispose()


def build_runtime(
    settings: Settings,
    config: GatewayConfig,
    connectors: Mapping[str, Connector] | None = None,
) -> Runtime:
    """The runtime of one process. ``connectors`` replaces the connectors built from the
    config for those connection ids (tests inject their fakes here, at build time)."""
    engine = make_engine(settings)
    sessions = make_sessionmaker(engine)
    tokens = DatabaseTokenStore(sessions, token_cipher(settings))
    timeout = max(
        (config.policy_for(c.id).request_timeout_seconds for c in config.connections),
        default=config.delivery.request_timeout_seconds,
    )
    http = make_http_client(timeout)
    limiter = build_limiter(settings)
    given = dict(connectors or {})
    built = {
        c.id: given.get(c.id)
        or build_connector(
            c,
            http,
            config.policy_for(c.id).request_timeout_seconds,
            tokens=tokens,
            limiter=limiter,
        )
        for c in config.connections
    }
    return Runtime(
        settings=settings,
        config=config,
        engine=engine,
        sessions=sessions,
        http=http,
        connectors=built,
        breakers=BreakerRegistry(config, settings.redis_url),
        tokens=tokens,
        limiter=limiter,
    )
