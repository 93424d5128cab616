"""Planning: what one canonical event becomes for each route, after its flow's rules.

Called inside the transaction that stores the event (ingest, polling, scheduled jobs), so an
event, its deliveries and the state the rules keep (stock levels, accepted prices, customer
matches, findings) commit together or not at all. Each flow plans in its own package
(``app/flows/<flow>/planning.py``); this module only dispatches.
"""

from __future__ import annotations

from typing import Any

from app.flows.customers import planning as customers_planning
from app.flows.inventory import planning as inventory_planning
from app.flows.orders import planning as orders_planning
from app.flows.plan import PlanContext, Planned, as_is
from app.flows.products import planning as products_planning
from app.flows.returns import planning as returns_planning
from app.flows.shipments import planning as shipments_planning
from kernel.canonical.events import CanonicalEvent


async def plan_event(ctx: PlanContext, event: CanonicalEvent) -> list[Planned]:
    """The deliveries one event makes, with the rules of its flow applied."""
    planner = _PLANNERS.get(event.type)
    if planner is None:
        return [as_is(route, event) for route in ctx.routes(event.flow)]
    result: list[Planned] = await planner(ctx, event)
    return result


_PLANNERS: dict[str, Any] = {
    "order.created": orders_planning.plan_order,
    "order.updated": orders_planning.plan_order,
    "order.cancelled": orders_planning.plan_order,
    "inventory.level_changed": inventory_planning.plan_inventory_level,
    "product.upserted": products_planning.plan_product,
    "price.changed": products_planning.plan_price,
    "customer.upserted": customers_planning.plan_customer,
    "customer.erase_requested": customers_planning.plan_erasure,
    "shipment.created": shipments_planning.plan_shipment,
    "shipment.updated": shipments_planning.plan_shipment,
    "return.requested": returns_planning.plan_return,
    "return.updated": returns_planning.plan_return,
    "refund.created": returns_planning.plan_money_back,
    "credit_memo.created": returns_planning.plan_money_back,
}
