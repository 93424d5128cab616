"""Planning shipments: over-shipment held, carriers mapped, the customer notified by rule."""

from __future__ import annotations

import structlog

from app.flows.plan import PlanContext, Planned, all_of_order, as_is, latest
from app.flows.shipments import rules as shipment_rules
from app.flows.state import mapping_table
from app.models import DeliveryStatus
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.order import Order
from kernel.canonical.shipment import Shipment
from kernel.types import Finding

log = structlog.get_logger("gateway.flows")


async def plan_shipment(ctx: PlanContext, event: CanonicalEvent) -> list[Planned]:
    shipment = event.payload_as(Shipment)
    rules = ctx.rules.shipments
    order = await latest(ctx, shipment.order_key, Order)
    problems: list[str] = []
    if order is not None and not rules.allow_over_shipment:
        earlier = [
            s
            for s in await all_of_order(ctx, shipment.order_key, "shipment", Shipment)
            if s.external_id != shipment.external_id
        ]
        problems = shipment_rules.check_quantities(order, earlier, shipment)
    planned = []
    for route in ctx.order_routes("shipments", shipment.order_key):
        carriers = await mapping_table(ctx.session, route.to, "carrier")
        mapped, unmapped = shipment_rules.map_carriers(shipment, carriers)
        for carrier in unmapped:
            ctx.report(
                Finding(
                    "carrier_unmapped",
                    f"carrier {carrier!r} has no mapping for {route.to}; sent as is "
                    f"(add it with PUT /api/v1/mappings/carrier/{route.to})",
                    {"carrier": carrier},
                ),
                connection_id=route.to,
                entity_key=event.entity_key,
            )
        held = "; ".join(problems) if problems else None
        planned.append(
            as_is(
                route,
                event,
                payload=mapped.model_dump(mode="json"),
                directives={"notify_customer": shipment_rules.should_notify(shipment, rules)},
                depends_on=shipment.order_key,
                status=DeliveryStatus.HELD if held else DeliveryStatus.PENDING,
                held_reason=held,
            )
        )
    return planned
