"""Concurrency slots for remote systems that count calls in flight (NetSuite: per account),
shared by every worker process through Redis, or in-process when embedded (``limiter``,
``redis_slots``). Connectors see them as ``kernel.contract.ConcurrencyLimiter``."""

from __future__ import annotations

from app.limits.limiter import GatewayLimiter
from app.settings import Settings

__all__ = ["GatewayLimiter", "build_limiter", "slot_wait_seconds"]


def slot_wait_seconds(settings: Settings) -> float:
    """How long a call may wait for a slot: a quarter of the delivery's lease (the arq job's
    time limit too), so a delivery of a few calls that each waited still ends inside it."""
    return settings.lease_seconds / 4


def build_limiter(settings: Settings) -> GatewayLimiter:
    return GatewayLimiter(settings.redis_url, max_wait_seconds=slot_wait_seconds(settings))
