"""Planning: what one canonical event becomes for each route, after the business rules.

Called inside the transaction that stores the event (ingest, polling, scheduled jobs), so an
event, its deliveries and the state the rules keep (stock levels, accepted prices, customer
matches, findings) commit together or not at all. Each flow has one planning function here;
the rules themselves are plain functions in the flow modules next to this one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.canonical.customer import Customer, ErasureRequest
from app.canonical.events import CanonicalEvent
from app.canonical.inventory import InventoryLevel, StockAvailability
from app.canonical.order import Order
from app.canonical.product import Price
from app.canonical.returns import CreditMemo, Refund, Return
from app.canonical.shipment import Shipment
from app.config import GatewayConfig, Route
from app.dbutil import insert_for
from app.flows import customers as customer_rules
from app.flows import inventory as inventory_rules
from app.flows import orders as order_rules
from app.flows import pricing as pricing_rules
from app.flows import returns as return_rules
from app.flows import shipments as shipment_rules
from app.flows.rules import RulesConfig
from app.flows.state import (
    booked_units,
    canonical_payloads,
    entity_has_link,
    mapping_table,
    newer_version,
    orders_in_transit,
    stock_levels_for,
    upsert_stock_level,
)
from app.models import (
    CustomerMatch,
    DeliveryStatus,
    PriceRecord,
    SentPrice,
    utcnow,
)
from connectors.base import Finding

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


@dataclass
class PlanContext:
    session: AsyncSession
    config: GatewayConfig
    rules: RulesConfig
    source: str
    now: datetime
    sides: dict[str, str]  # connection id → "store" | "erp"
    skip_price_guard: bool = False
    findings: list[tuple[Finding, str | None, str | None]] = field(default_factory=list)

    def report(
        self, finding: Finding, *, connection_id: str | None = None, entity_key: str | None = None
    ) -> None:
        self.findings.append((finding, connection_id, entity_key))

    def routes(self, flow: str) -> list[Route]:
        return self.config.routes_from(self.source, flow)


async def plan_event(ctx: PlanContext, event: CanonicalEvent) -> list[Planned]:
    """The deliveries one event makes, with the rules of its flow applied."""
    planner = _PLANNERS.get(event.type)
    if planner is None:
        return [_as_is(route, event) for route in ctx.routes(event.flow)]
    return await planner(ctx, event)


def _as_is(route: Route, event: CanonicalEvent, **extra: Any) -> Planned:
    return Planned(
        destination=route.to,
        flow=route.flow,
        event_type=event.type,
        entity_key=event.entity_key,
        **extra,
    )


# --- orders ---------------------------------------------------------------------------------


async def _older_than_known(ctx: PlanContext, event: CanonicalEvent) -> list[Planned] | None:
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
        _as_is(route, event, status=DeliveryStatus.SUPERSEDED, superseded_reason=reason)
        for route in ctx.routes(event.flow)
    ]


async def _plan_order(ctx: PlanContext, event: CanonicalEvent) -> list[Planned]:
    if event.type != "order.cancelled":  # a cancel is never skipped, whatever its time
        stale = await _older_than_known(ctx, event)
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
            for kind, keys in order_rules.mapping_keys(order, list(rules.required_mappings)).items()
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
    if event.type == "order.updated":
        before = await _previous_payload(ctx, event, Order)
        if before is not None:
            amendment = order_rules.diff_orders(before, order)
            directives["amendment"] = sorted(amendment.kinds)
            directives["amendment_details"] = amendment.details
    planned = []
    for route in ctx.routes("orders"):
        planned.append(
            _as_is(
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


async def _previous_payload(ctx: PlanContext, event: CanonicalEvent, model: type[Any]) -> Any:
    """The entity as the event before this one described it (for amendments)."""
    payloads = await canonical_payloads(ctx.session, entity_key=event.entity_key, newest=2)
    # the newest is this event itself (already inserted)
    for payload in payloads[1:]:
        try:
            return model.model_validate(payload)
        except ValueError:
            return None
    return None


# --- inventory ------------------------------------------------------------------------------


async def _plan_inventory_level(ctx: PlanContext, event: CanonicalEvent) -> list[Planned]:
    level = event.payload_as(InventoryLevel)
    if not await upsert_stock_level(ctx.session, level):
        log.info(
            "older stock level ignored; a newer one is already known",
            sku=level.sku,
            location=level.location,
            as_of=level.as_of.isoformat(),
        )
        return []
    return await availability_deliveries(ctx, level.source, level.sku, level.as_of)


async def availability_deliveries(
    ctx: PlanContext, source: str, sku: str, as_of: datetime
) -> list[Planned]:
    """Sellable quantity of ``sku`` (and of the bundles it is part of) for every store."""
    rules = ctx.rules.inventory
    planned: list[Planned] = []
    skus = [sku, *inventory_rules.bundles_containing(sku, rules)]
    for route in ctx.config.routes_from(source, "inventory"):
        locations = await mapping_table(ctx.session, route.to, "location")
        in_transit = (
            await orders_in_transit(ctx.session, route.to, source)
            if rules.subtract_orders_in_transit
            else {}
        )
        for target in skus:
            items = await _availability_of(ctx, source, target, locations, as_of)
            for item in items:
                item = _minus_in_transit(item, in_transit, rules)
                planned.append(_availability_delivery(ctx, route, source, item))
    return planned


async def availability_now(
    ctx: PlanContext, store: str, planned: StockAvailability
) -> tuple[StockAvailability, Decimal | None] | None:
    """Stock of one SKU for one store as of now, and the baseline its delta is taken from.

    The baseline is the ERP's raw sellable quantity (not floored at 0) plus this store's
    orders the ERP has booked: the store's own sales do not move it, ERP-side changes do.
    None when the SKU's location is no longer mapped (the planned value then stands).
    """
    rules = ctx.rules.inventory
    source = ctx.source
    locations = await mapping_table(ctx.session, store, "location")
    items = await _availability_of(ctx, source, planned.sku, locations, ctx.now)
    item = next((i for i in items if i.location == planned.location), None)
    if item is None:
        return None
    if not rules.subtract_orders_in_transit:
        return item, None
    in_transit = await orders_in_transit(ctx.session, store, source)
    levels = (await stock_levels_for(ctx.session, source, [planned.sku])).get(planned.sku, [])
    # the ERP's clock and ours differ a little: count an order as in a level only when it
    # was booked well before the level's time (counting it too late is the safe side)
    cutoff = min((lv.as_of for lv in levels), default=ctx.now) - timedelta(
        seconds=rules.erp_clock_margin_seconds
    )
    in_level, not_yet = await booked_units(ctx.session, store, source, planned.sku, cutoff)
    if not_yet:
        in_transit = {**in_transit, planned.sku: in_transit.get(planned.sku, Decimal(0)) + not_yet}
    item = _minus_in_transit(item, in_transit, rules)
    if rules.push_mode != "delta" or item.location is not None or planned.sku in rules.bundles:
        return item, None
    raw = sum(
        (lv.on_hand - lv.allocated - lv.reserved - lv.damaged - lv.quarantined for lv in levels),
        Decimal(0),
    ) - rules.safety_stock_for(planned.sku)
    return item, raw + in_level


def _minus_in_transit(
    item: StockAvailability,
    in_transit: dict[str, Decimal],
    rules: inventory_rules.InventoryRules,
) -> StockAvailability:
    """What the store sold that the ERP does not know yet is not sellable again."""
    units = in_transit.get(item.sku, Decimal(0))
    for component, per_bundle in rules.bundles.get(item.sku, {}).items():
        # a bundle is short by the components its own and its parts' orders took
        if per_bundle > 0:
            units = max(units, in_transit.get(component, Decimal(0)) / per_bundle)
    if units <= 0 or item.location is not None:
        return item
    available = max(Decimal(0), item.available - units.to_integral_value(rounding="ROUND_CEILING"))
    return item.model_copy(
        update={
            "available": available,
            "status": item.status if available > 0 else "out_of_stock",
            "notes": [
                *item.notes,
                f"{units} sold in the store and not yet in the ERP; not offered again",
            ],
        }
    )


async def _availability_of(
    ctx: PlanContext, source: str, sku: str, locations: dict[str, str], as_of: datetime
) -> list[StockAvailability]:
    rules = ctx.rules.inventory
    components = rules.bundles.get(sku)
    if not components:
        levels = await stock_levels_for(ctx.session, source, [sku])
        items = inventory_rules.availability(
            sku, levels.get(sku, []), rules, locations, source=source, as_of=as_of
        )
        for item in items:
            for note in item.notes:
                if "ERP reports" in note:
                    ctx.report(
                        Finding("negative_stock", note, {"sku": sku}),
                        entity_key=f"{source}:product:{sku}",
                    )
        return items
    # A bundle: as many as its scarcest component allows, per resulting location.
    per_component: dict[str, dict[str | None, Decimal]] = {}
    levels = await stock_levels_for(ctx.session, source, list(components))
    for component in components:
        for item in inventory_rules.availability(
            component, levels.get(component, []), rules, locations, source=source, as_of=as_of
        ):
            per_component.setdefault(component, {})[item.location] = item.available
    where = sorted({loc for found in per_component.values() for loc in found}, key=str)
    result = []
    for location in where or [None]:
        available = inventory_rules.bundle_available(
            components,
            {c: found[location] for c, found in per_component.items() if location in found},
        )
        result.append(
            StockAvailability(
                source=source,
                sku=sku,
                location=location,
                available=available,
                status="in_stock" if available > 0 else "out_of_stock",
                as_of=as_of,
                notes=[f"bundle of {', '.join(f'{q} x {c}' for c, q in components.items())}"],
            )
        )
    return result


def _availability_delivery(
    ctx: PlanContext, route: Route, source: str, item: StockAvailability
) -> Planned:
    rules = ctx.rules.inventory
    fast = item.sku in rules.high_velocity_skus
    return Planned(
        destination=route.to,
        flow="inventory",
        event_type="inventory.availability_changed",
        entity_key=item.entity_key,
        payload=item.model_dump(mode="json"),
        depends_on=f"{source}:product:{item.sku}",
        priority=HIGH_PRIORITY if fast else 0,
        delay_seconds=0.0 if fast else rules.normal_delay_seconds,
        supersedes=True,
    )


# --- products and prices --------------------------------------------------------------------


async def _plan_product(ctx: PlanContext, event: CanonicalEvent) -> list[Planned]:
    stale = await _older_than_known(ctx, event)
    if stale is not None:
        return stale
    return [_as_is(route, event) for route in ctx.routes("products")]


async def _plan_price(ctx: PlanContext, event: CanonicalEvent) -> list[Planned]:
    # an older price arriving late must neither go out nor replace a newer held one
    stale = await _older_than_known(ctx, event)
    if stale is not None:
        return stale
    price = event.payload_as(Price)
    rules = ctx.rules.pricing
    prepared = pricing_rules.prepare_price(price, rules, ctx.now)
    await _remember_price(ctx, price, prepared.next_change_at)
    for note in prepared.notes:
        ctx.report(
            Finding("price_adjusted", note, {"sku": price.sku, "currency": price.currency}),
            entity_key=event.entity_key,
        )
    planned = []
    for route in ctx.routes("products"):
        previous = await _sent_price(ctx, route.to, price)
        decision = pricing_rules.price_guard(previous, prepared.effective, rules)
        held = decision.hold and rules.guard_enabled and not ctx.skip_price_guard
        if not held:
            await accept_price(ctx.session, route.to, price.sku, price.currency, prepared.effective)
        planned.append(
            _as_is(
                route,
                event,
                payload=prepared.price.model_dump(mode="json"),
                directives={
                    "effective_price": str(prepared.effective),
                    "previous_price": None if previous is None else str(previous),
                },
                depends_on=f"{price.source}:product:{price.sku}",
                status=DeliveryStatus.HELD if held else DeliveryStatus.PENDING,
                held_reason=decision.reason if held else None,
                supersedes=True,
            )
        )
    return planned


async def _remember_price(ctx: PlanContext, price: Price, next_change: datetime | None) -> None:
    stmt = insert_for(ctx.session, PriceRecord).values(
        source=price.source,
        sku=price.sku,
        currency=price.currency,
        price=price.model_dump(mode="json"),
        next_change_at=next_change,
    )
    await ctx.session.execute(
        stmt.on_conflict_do_update(
            index_elements=["source", "sku", "currency"],
            set_={"price": stmt.excluded.price, "next_change_at": stmt.excluded.next_change_at},
        )
    )


async def _sent_price(ctx: PlanContext, destination: str, price: Price) -> Decimal | None:
    return await sent_price(ctx.session, destination, price.sku, price.currency)


async def sent_price(
    session: AsyncSession, destination: str, sku: str, currency: str
) -> Decimal | None:
    """The last price accepted for ``destination`` (sent, or approved): the guard's baseline."""
    value = await session.scalar(
        sa.select(col(SentPrice.effective)).where(
            col(SentPrice.destination) == destination,
            col(SentPrice.sku) == sku,
            col(SentPrice.currency) == currency,
        )
    )
    if value is None:
        return None
    # stored as NUMERIC(18,6): 19.990000 reads back as 19.99 for people
    amount = Decimal(value).normalize()
    return amount.quantize(Decimal("0.01")) if amount.as_tuple().exponent > -2 else amount  # type: ignore[operator]


async def accept_price(
    session: AsyncSession, destination: str, sku: str, currency: str, effective: Decimal
) -> None:
    """The guard's new baseline: a price that went out (or an operator approved)."""
    stmt = insert_for(session, SentPrice).values(
        destination=destination,
        sku=sku,
        currency=currency,
        effective=effective,
        updated_at=utcnow(),
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["destination", "sku", "currency"],
            set_={"effective": stmt.excluded.effective, "updated_at": stmt.excluded.updated_at},
        )
    )


# --- customers ------------------------------------------------------------------------------


async def _plan_customer(ctx: PlanContext, event: CanonicalEvent) -> list[Planned]:
    stale = await _older_than_known(ctx, event)
    if stale is not None:
        return stale
    customer = event.payload_as(Customer)
    rules = ctx.rules.customers
    side = ctx.sides.get(ctx.source, "store")
    before = await _previous_payload(ctx, event, Customer)
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
        planned.append(_as_is(route, event, directives=directives))
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
    stmt = insert_for(session, CustomerMatch).values(
        [{"match_key": k, "customer_key": customer_key, "updated_at": utcnow()} for k in keys]
    )
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["match_key", "customer_key"]))


async def _link_customer(
    session: AsyncSession, connection_id: str, customer_key: str, remote_id: str
) -> None:
    from app.models import EntityLink

    stmt = insert_for(session, EntityLink).values(
        connection_id=connection_id,
        entity_type="customer",
        our_key=customer_key,
        remote_id=remote_id,
        updated_at=utcnow(),
    )
    await session.execute(
        stmt.on_conflict_do_nothing(index_elements=["connection_id", "entity_type", "our_key"])
    )


async def _plan_erasure(ctx: PlanContext, event: CanonicalEvent) -> list[Planned]:
    """Pass the request on to every route; the gateway's own copies are scrubbed by the
    erasure job (app/erasure), in the background, not inside this (webhook) transaction.
    The recorder has registered the request for it; the job reports ``customer_erased``."""
    request = event.payload_as(ErasureRequest)
    log.info(
        "erase request accepted; the erasure job scrubs the stored data",
        entity_key=event.entity_key,
        reason=request.reason,
    )
    return [_as_is(route, event) for route in ctx.routes("customers")]


# --- shipments ------------------------------------------------------------------------------


async def _plan_shipment(ctx: PlanContext, event: CanonicalEvent) -> list[Planned]:
    shipment = event.payload_as(Shipment)
    rules = ctx.rules.shipments
    order = await _latest(ctx, shipment.order_key, Order)
    problems: list[str] = []
    if order is not None and not rules.allow_over_shipment:
        earlier = [
            s
            for s in await _all_of_order(ctx, shipment.order_key, "shipment", Shipment)
            if s.external_id != shipment.external_id
        ]
        problems = shipment_rules.check_quantities(order, earlier, shipment)
    planned = []
    for route in ctx.routes("shipments"):
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
            _as_is(
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


# --- returns and refunds --------------------------------------------------------------------


async def _plan_return(ctx: PlanContext, event: CanonicalEvent) -> list[Planned]:
    ret = event.payload_as(Return)
    order = await _latest(ctx, ret.order_key, Order)
    problems: list[str] = []
    if order is not None:
        earlier = [
            r
            for r in await _all_of_order(ctx, ret.order_key, "return", Return)
            if r.external_id != ret.external_id
        ]
        problems = return_rules.check_return(order, earlier, ret)
    held = "; ".join(problems) if problems else None
    return [
        _as_is(
            route,
            event,
            depends_on=ret.order_key,  # the ERP needs the order before its RMA
            status=DeliveryStatus.HELD if held else DeliveryStatus.PENDING,
            held_reason=held,
        )
        for route in ctx.routes("returns")
    ]


async def _plan_money_back(ctx: PlanContext, event: CanonicalEvent) -> list[Planned]:
    """Refunds (store) and credit memos (ERP) are reconciled per order by amount."""
    payload = event.payload
    assert isinstance(payload, Refund | CreditMemo)
    memos = await _all_of_order(ctx, payload.order_key, "credit_memo", CreditMemo)
    refunds = await _all_of_order(ctx, payload.order_key, "refund", Refund)
    result = return_rules.reconcile_refund(memos, refunds, ctx.rules.returns)
    finding = return_rules.mismatch_finding(result, payload.order_key)
    if finding is not None:
        ctx.report(finding, entity_key=payload.order_key)
    planned: list[Planned] = []
    if isinstance(payload, CreditMemo):
        planned.extend(await _restock(ctx, payload))
        if refunds or not ctx.rules.returns.refund_from_credit_memo:
            # the store already gave money back (or the store refunds itself): the memo is
            # reconciled against it above, never paid out a second time
            log.info(
                "credit memo reconciled, not sent as a refund",
                order_key=payload.order_key,
                store_refunds=len(refunds),
            )
            return planned
    planned.extend(
        _as_is(route, event, depends_on=payload.order_key) for route in ctx.routes("returns")
    )
    return planned


async def _restock(ctx: PlanContext, memo: CreditMemo) -> list[Planned]:
    """Returned goods change what can be sold, by their disposition."""
    adjustments = return_rules.restock_adjustments(memo.restock, ctx.rules.returns)
    planned: list[Planned] = []
    for adjustment in adjustments:
        levels = (await stock_levels_for(ctx.session, memo.source, [adjustment.sku])).get(
            adjustment.sku, []
        )
        if not levels:
            continue  # the ERP will report the level; nothing known to adjust
        level = max(levels, key=lambda lv: lv.as_of)
        changed = level.model_copy(
            update={
                "on_hand": level.on_hand + adjustment.quantity,
                "damaged": level.damaged
                + (adjustment.quantity if adjustment.bucket == "damaged" else 0),
                "as_of": max(memo.created_at, level.as_of),
            }
        )
        await upsert_stock_level(ctx.session, changed, force=True)
        planned.extend(
            await availability_deliveries(ctx, memo.source, adjustment.sku, changed.as_of)
        )
    return planned


# --- shared lookups -------------------------------------------------------------------------


async def _latest(ctx: PlanContext, entity_key: str, model: type[Any]) -> Any:
    payloads = await canonical_payloads(ctx.session, entity_key=entity_key, newest=1)
    if not payloads:
        return None
    try:
        return model.model_validate(payloads[0])
    except ValueError:
        return None


async def _all_of_order(
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


_PLANNERS: dict[str, Any] = {
    "order.created": _plan_order,
    "order.updated": _plan_order,
    "order.cancelled": _plan_order,
    "inventory.level_changed": _plan_inventory_level,
    "product.upserted": _plan_product,
    "price.changed": _plan_price,
    "customer.upserted": _plan_customer,
    "customer.erase_requested": _plan_erasure,
    "shipment.created": _plan_shipment,
    "shipment.updated": _plan_shipment,
    "return.requested": _plan_return,
    "return.updated": _plan_return,
    "refund.created": _plan_money_back,
    "credit_memo.created": _plan_money_back,
}
