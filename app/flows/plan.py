"""What planning works with: the outbox rows to write (``Planned``), the context of one
recording transaction (``PlanContext``), and the lookups several flows share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import GatewayConfig, Route
from app.flows.rules import RulesConfig, effective_rules
from app.flows.state import canonical_payloads, newer_version, previous_payloads
from app.models import DeliveryStatus, utcnow
from app.runtime import Runtime
from kernel.canonical.events import CanonicalEvent
from kernel.types import Finding

log = structlog.get_logger("gateway.flows")


HIGH_PRIORITY = 10


@dataclass
class Planned:
    """One outbox row to write for one route."""

    destination: str
    flow: str
    event_type: str
    entity_key: str
    payload: dict[str, Any] | None = None  # None: the canonical event's payload as stored
    directives: dict[str, Any] | None = None
    depends_on: str | None = None
    status: str = DeliveryStatus.PENDING
    held_reason: str | None = None
    dead_reason: str | None = None
    # an update older than a version already recorded: stored, never sent
    superseded_reason: str | None = None
    priority: int = 0
    delay_seconds: float = 0.0
    # a level (stock, price): a newer value replaces every undelivered older one
    supersedes: bool = False
    # what the claim reads with the lease (app/delivery/lookup.py); set once routed
    lookup: dict[str, list[Any]] | None = None


@dataclass
class PlanContext:
    session: AsyncSession
    config: GatewayConfig
    rules: RulesConfig
    source: str
    now: datetime
    sides: dict[str, str]  # connection id → "store" | "erp"
    findings: list[tuple[Finding, str | None, str | None]] = field(default_factory=list)

    def report(
        self, finding: Finding, *, connection_id: str | None = None, entity_key: str | None = None
    ) -> None:
        self.findings.append((finding, connection_id, entity_key))

    def routes(self, flow: str) -> list[Route]:
        return self.config.routes_from(self.source, flow)

    def order_routes(self, flow: str, order_key: str) -> list[Route]:
        """Routes of ``flow`` for something about one order (a shipment, an RMA, a credit
        memo): a store hears only of its own orders (``<store>:order:<id>``), never of another
        store's or of an order entered in the ERP, which it would refuse or, worse, mix up."""
        owner = order_key.partition(":order:")[0]
        return [
            route
            for route in self.routes(flow)
            if self.sides.get(route.to) != "store" or route.to == owner
        ]


def as_is(route: Route, event: CanonicalEvent, **extra: Any) -> Planned:
    return Planned(
        destination=route.to,
        flow=route.flow,
        event_type=event.type,
        entity_key=event.entity_key,
        **extra,
    )


async def older_than_known(ctx: PlanContext, event: CanonicalEvent) -> list[Planned] | None:
    """An update older than one already recorded (webhooks arrive out of order): stored for
    the record, planned as superseded so it can never overwrite the newer version."""
    newer = await newer_version(ctx.session, event)
    if newer is None:
        return None
    reason = (
        f"older than the version of {newer.isoformat()} already recorded "
        f"(this one is of {event.occurred_at.isoformat()}); not sent"
    )
    log.info("out-of-order update superseded", entity_key=event.entity_key, newer=str(newer))
    return [
        as_is(route, event, status=DeliveryStatus.SUPERSEDED, superseded_reason=reason)
        for route in ctx.routes(event.flow)
    ]


async def previous_payload(ctx: PlanContext, event: CanonicalEvent, model: type[Any]) -> Any:
    """The entity as the event before this one described it (for amendments)."""
    for payload in await previous_payloads(ctx.session, event):
        try:
            return model.model_validate(payload)
        except ValueError:
            return None
    return None


async def latest(ctx: PlanContext, entity_key: str, model: type[Any]) -> Any:
    payloads = await canonical_payloads(ctx.session, entity_key=entity_key, newest=1)
    if not payloads:
        return None
    try:
        return model.model_validate(payloads[0])
    except ValueError:
        return None


async def all_of_order(
    ctx: PlanContext, order_key: str, entity_type: str, model: type[Any]
) -> list[Any]:
    payloads = await canonical_payloads(
        ctx.session, entity_type=entity_type, order_key=order_key, newest=500
    )
    latest: dict[str, Any] = {}
    for payload in reversed(payloads):  # oldest first; later versions replace earlier ones
        try:
            item = model.model_validate(payload)
        except ValueError:
            continue
        latest[item.external_id] = item
    return list(latest.values())


async def plan_context_for(session: AsyncSession, rt: Runtime, source: str) -> PlanContext:
    """A planning context outside ingest (delivery-time hooks, scheduled jobs)."""
    return PlanContext(
        session=session,
        config=rt.config,
        rules=await effective_rules(session, rt.config.rules),
        source=source,
        now=utcnow(),
        sides=rt.sides,
    )
