"""Planning stock: sellable quantity per store (and bundle), minus what the store sold that
the ERP does not know yet; high-velocity SKUs first, a newer level supersedes an older.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Route
from app.flows.inventory import rules as inventory_rules
from app.flows.inventory.in_transit import (
    InTransit,
    booked_after_levels,
    not_yet_booked,
    order_locations,
)
from app.flows.inventory.state import stock_levels_for, upsert_stock_level
from app.flows.plan import HIGH_PRIORITY, PlanContext, Planned
from app.flows.state import mapping_table
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.inventory import InventoryLevel, StockAvailability
from kernel.types import Finding

log = structlog.get_logger("gateway.flows")


async def plan_inventory_level(ctx: PlanContext, event: CanonicalEvent) -> list[Planned]:
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
        in_transit = await in_transit_for(ctx.session, route.to, source, rules)
        for target in skus:
            items = await _availability_of(ctx, source, target, locations, as_of)
            for item in items:
                item = minus_in_transit(item, in_transit, locations, rules)
                planned.append(_availability_delivery(ctx, route, source, item))
    return planned


async def in_transit_for(
    session: AsyncSession, store: str, source: str, rules: inventory_rules.InventoryRules
) -> InTransit:
    """``store``'s orders ``source`` has not booked yet (none when the rules do not
    subtract them)."""
    if not rules.subtract_orders_in_transit:
        return InTransit()
    return await not_yet_booked(
        session, store, source, await order_locations(session, source, rules)
    )


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
    where = await order_locations(ctx.session, source, rules)
    in_transit = await not_yet_booked(ctx.session, store, source, where)
    levels = (await stock_levels_for(ctx.session, source, [planned.sku])).get(planned.sku, [])
    in_level, not_yet = await booked_after_levels(
        ctx.session,
        store,
        source,
        planned.sku,
        levels,
        where,
        margin_seconds=rules.erp_clock_margin_seconds,
        now=ctx.now,
    )
    for key, quantity in not_yet.units.items():
        in_transit.add(*key, quantity)
    item = minus_in_transit(item, in_transit, locations, rules)
    if rules.push_mode != "delta" or item.location is not None or planned.sku in rules.bundles:
        return item, None
    raw = sum(
        (lv.on_hand - lv.allocated - lv.reserved - lv.damaged - lv.quarantined for lv in levels),
        Decimal(0),
    ) - rules.safety_stock_for(planned.sku)
    return item, raw + in_level


def minus_in_transit(
    item: StockAvailability,
    in_transit: InTransit,
    locations: dict[str, str],
    rules: inventory_rules.InventoryRules,
) -> StockAvailability:
    """What the store sold that the ERP does not know yet is not sellable again: in
    per-location mode, at the store location whose ERP locations ship it."""
    units = in_transit.at(item.sku, item.location, locations)
    for component, per_bundle in rules.bundles.get(item.sku, {}).items():
        # a bundle is short by the components its own and its parts' orders took
        if per_bundle > 0:
            units = max(units, in_transit.at(component, item.location, locations) / per_bundle)
    if units <= 0:
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
