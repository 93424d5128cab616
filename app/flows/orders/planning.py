"""Planning orders: tax source, required mappings, guests, amendments; the customer first."""

from __future__ import annotations

from typing import Any

import structlog

from app.flows.orders import rules as order_rules
from app.flows.plan import PlanContext, Planned, as_is, older_than_known, previous_payload
from app.models import DeliveryStatus
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.order import Order
from kernel.mappings import order_mapping_keys
from kernel.types import Finding

log = structlog.get_logger("gateway.flows")


async def plan_order(ctx: PlanContext, event: CanonicalEvent) -> list[Planned]:
    if event.type != "order.cancelled":  # a cancel is never skipped, whatever its time
        stale = await older_than_known(ctx, event)
        if stale is not None:
            return stale
    order = event.payload_as(Order)
    rules = ctx.rules.orders
    directives: dict[str, Any] = {
        "tax_source": rules.tax_source,
        "tax_tolerance": str(rules.tax_tolerance),
        "amendments": rules.amendments,
    }
    if rules.required_mappings and event.type != "order.cancelled":
        # resolved (or parked for) by the delivery engine, like the connector's own needs
        directives["required_mappings"] = {
            kind: keys
            for kind, keys in order_mapping_keys(order, rules.required_mappings).items()
            if keys
        }
    dead_reason: str | None = None
    guest = order_rules.guest_decision(order, rules)
    if guest.action == "reject" and event.type == "order.created":
        dead_reason = guest.reason
        ctx.report(
            Finding("guest_rejected", guest.reason, {"order": order.number}),
            entity_key=event.entity_key,
        )
    elif guest.action == "shared_account":
        directives["guest_customer_id"] = rules.guest_account_id
    elif guest.action == "not_guest" and ctx.rules.customers.match_on:
        # the ERP connector looks for this person among the ERP's own customers (a sales
        # rep's record the gateway never saw) before it makes one: kernel.matching
        customers = ctx.rules.customers
        directives["customer_match"] = {
            "on": list(customers.match_on),
            "default_country": customers.default_country_code,
            "ambiguous": customers.ambiguous_match,
        }
    if event.type == "order.updated":
        before = await previous_payload(ctx, event, Order)
        if before is not None:
            amendment = order_rules.diff_orders(before, order)
            directives["amendment"] = sorted(amendment.kinds)
            directives["amendment_details"] = amendment.details
    planned = []
    for route in ctx.routes("orders"):
        planned.append(
            as_is(
                route,
                event,
                directives=directives,
                # the customer goes first when a customer sync to this ERP is still running
                depends_on=order.customer_key if guest.action != "shared_account" else None,
                status=DeliveryStatus.DEAD if dead_reason else DeliveryStatus.PENDING,
                dead_reason=dead_reason,
            )
        )
    return planned
