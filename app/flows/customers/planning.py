"""Planning customers: field ownership, echo suppression, duplicates linked (not created),
erase requests passed on.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.dbutil import insert_ignore
from app.flows.customers import rules as customer_rules
from app.flows.plan import PlanContext, Planned, as_is, older_than_known, previous_payload
from app.flows.state import entity_has_link
from app.models import CustomerMatch, utcnow
from kernel.canonical.customer import Customer, ErasureRequest
from kernel.canonical.events import CanonicalEvent
from kernel.types import Finding

log = structlog.get_logger("gateway.flows")


async def plan_customer(ctx: PlanContext, event: CanonicalEvent) -> list[Planned]:
    stale = await older_than_known(ctx, event)
    if stale is not None:
        return stale
    customer = event.payload_as(Customer)
    rules = ctx.rules.customers
    side = ctx.sides.get(ctx.source, "store")
    before = await previous_payload(ctx, event, Customer)
    if before is not None and _owned(before, side, rules) == _owned(customer, side, rules):
        # Nothing this side owns changed: typically the echo of our own write coming back
        # as a webhook. Sending it on would bounce between the systems for ever.
        log.info("customer change without owned fields; not sent", entity_key=event.entity_key)
        return []
    keys = customer_rules.match_keys(customer, rules)
    index = await _customer_index(ctx.session, keys, exclude=event.entity_key)
    match = customer_rules.find_duplicate(keys, index)
    await _remember_match_keys(ctx.session, keys, event.entity_key)
    fields = sorted(customer_rules.writable_fields(side, rules))  # type: ignore[arg-type]
    planned = []
    for route in ctx.routes("customers"):
        directives: dict[str, Any] = {"fields": fields}
        if match is not None:
            matched_key, other_customer = match
            remote = await entity_has_link(ctx.session, route.to, "customer", other_customer)
            if remote is not None:
                # the same person is already in the destination: link, do not create
                directives["link_to"] = remote
                await _link_customer(ctx.session, route.to, event.entity_key, remote)
                ctx.report(
                    Finding(
                        "duplicate_customer_linked",
                        f"customer {event.entity_key} matches {other_customer} on {matched_key}; "
                        f"linked to {route.to} customer {remote} instead of creating a new one",
                        {"match": matched_key, "remote_id": remote},
                    ),
                    connection_id=route.to,
                    entity_key=event.entity_key,
                )
        planned.append(as_is(route, event, directives=directives))
    return planned


def _owned(customer: Customer, side: str, rules: customer_rules.CustomerRules) -> dict[str, Any]:
    view = customer_rules.owned_view(customer, side, rules)  # type: ignore[arg-type]
    view.pop("updated_at", None)
    return view


async def _customer_index(
    session: AsyncSession, keys: list[str], *, exclude: str
) -> dict[str, str]:
    if not keys:
        return {}
    rows = await session.execute(
        sa.select(col(CustomerMatch.match_key), col(CustomerMatch.customer_key))
        .where(col(CustomerMatch.match_key).in_(keys), col(CustomerMatch.customer_key) != exclude)
        .order_by(col(CustomerMatch.id))
    )
    index: dict[str, str] = {}
    for key, customer in rows:
        index.setdefault(key, customer)
    return index


async def _remember_match_keys(session: AsyncSession, keys: list[str], customer_key: str) -> None:
    if not keys:
        return
    await insert_ignore(
        session,
        CustomerMatch,
        [{"match_key": k, "customer_key": customer_key, "updated_at": utcnow()} for k in keys],
        key=["match_key", "customer_key"],
    )


async def _link_customer(
    session: AsyncSession, connection_id: str, customer_key: str, remote_id: str
) -> None:
    from app.models import EntityLink

    await insert_ignore(
        session,
        EntityLink,
        {
            "connection_id": connection_id,
            "entity_type": "customer",
            "our_key": customer_key,
            "remote_id": remote_id,
            "updated_at": utcnow(),
        },
        key=["connection_id", "entity_type", "our_key"],
    )


async def plan_erasure(ctx: PlanContext, event: CanonicalEvent) -> list[Planned]:
    """Pass the request on to every route; the gateway's own copies are scrubbed by the
    erasure job (app/erasure), in the background, not inside this (webhook) transaction.
    The recorder has registered the request for it; the job reports ``customer_erased``."""
    request = event.payload_as(ErasureRequest)
    log.info(
        "erase request accepted; the erasure job scrubs the stored data",
        entity_key=event.entity_key,
        reason=request.reason,
    )
    return [as_is(route, event) for route in ctx.routes("customers")]
