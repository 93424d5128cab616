"""Canonical shipments → Shopify fulfillments, one per package, never two for one package.

For each package, in order, a fulfillment is skipped when it already exists:
1. a link ``fulfillment`` / ``<shipment key>#<package index>`` says so, or
2. the order already has a fulfillment with the package's tracking number (a retry after a
   timeout whose first POST did go through), or
3. nothing of the package's lines is left to fulfil (reported as a finding).
Otherwise ``POST /fulfillments.json`` with ``line_items_by_fulfillment_order`` built from the
order's fulfillment orders (matched by the store's line id, else by SKU), the tracking info,
and ``notify_customer`` from the core's directive (default: option
``notify_customer_default``). On ``shipment.updated`` a changed tracking number of an
existing package is sent with ``update_tracking``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connectors._kit.http import pick
from connectors.shopify.admin import ShopifyAdmin
from connectors.shopify.options import ShopifyOptions
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.shipment import Package, Shipment
from kernel.errors import PermanentError
from kernel.types import DeliveryContext, DeliveryResult, Finding, RemoteLink

FULFILLABLE_STATUSES = {"open", "in_progress"}
DEAD_FULFILLMENT = {"cancelled", "error", "failure"}


def store_order_id(order_key: str, connection_id: str, ctx: DeliveryContext) -> str:
    """The Shopify order id behind our order key; the order must come from this store."""
    linked = ctx.link("order", order_key)
    if linked:
        return linked
    source, sep, order_id = order_key.partition(":order:")
    if sep and source == connection_id and order_id.isdigit():
        return order_id
    raise PermanentError(
        f"order {order_key!r} did not come from Shopify connection {connection_id!r}, so its "
        "Shopify id is unknown; route shipments and credit memos to the store the order "
        "came from"
    )


def tracking_numbers(fulfillment: dict[str, Any]) -> set[str]:
    numbers = set(fulfillment.get("tracking_numbers") or [])
    if fulfillment.get("tracking_number"):
        numbers.add(fulfillment["tracking_number"])
    return {str(n) for n in numbers if n}


@dataclass
class Allocation:
    """Fulfillment order id → fulfillment order line id → quantity, and what did not fit."""

    items: dict[Any, dict[Any, int]] = field(default_factory=dict)
    short: list[str] = field(default_factory=list)

    def add(self, fo_id: Any, line_id: Any, quantity: int) -> None:
        lines = self.items.setdefault(fo_id, {})
        lines[line_id] = lines.get(line_id, 0) + quantity

    def body(self) -> list[dict[str, Any]]:
        return [
            {
                "fulfillment_order_id": fo_id,
                "fulfillment_order_line_items": [
                    {"id": line_id, "quantity": qty} for line_id, qty in lines.items()
                ],
            }
            for fo_id, lines in self.items.items()
        ]


def _whole(quantity: Decimal, sku: str) -> int:
    if quantity != quantity.to_integral_value():
        raise PermanentError(f"package line {sku!r} ships {quantity}; Shopify counts whole units")
    return int(quantity)


def allocate(
    package: Package, order: dict[str, Any], fulfillment_orders: list[dict[str, Any]]
) -> Allocation:
    """Which fulfillment order lines ship in ``package``; takes from ``fulfillable_quantity``
    in place, so several packages of one delivery never claim the same units."""
    allocation = Allocation()
    open_lines = [
        (fo["id"], fol)
        for fo in fulfillment_orders
        if fo.get("status") in FULFILLABLE_STATUSES
        for fol in fo.get("line_items") or []
    ]
    if not package.lines:  # a package without lines ships whatever is left
        for fo_id, fol in open_lines:
            if fol.get("fulfillable_quantity", 0) > 0:
                allocation.add(fo_id, fol["id"], int(fol["fulfillable_quantity"]))
                fol["fulfillable_quantity"] = 0
        return allocation
    items = order.get("line_items") or []
    for line in package.lines:
        if line.order_line_id:
            ids = [str(li["id"]) for li in items if str(li["id"]) == line.order_line_id]
        else:
            ids = [str(li["id"]) for li in items if (li.get("sku") or "") == line.sku]
        if not ids:
            raise PermanentError(
                f"{line.sku!r} (line {line.order_line_id or '?'}) is not on Shopify order "
                f"{order.get('name') or order.get('id')}; fix the shipment in the ERP"
            )
        need = _whole(line.quantity, line.sku)
        for fo_id, fol in open_lines:
            if need and str(fol.get("line_item_id")) in ids:
                take = min(need, int(fol.get("fulfillable_quantity", 0)))
                if take > 0:
                    allocation.add(fo_id, fol["id"], take)
                    fol["fulfillable_quantity"] -= take
                    need -= take
        if need:
            allocation.short.append(f"{line.sku} x{need}")
    return allocation


def _tracking_info(package: Package, opts: ShopifyOptions) -> dict[str, Any] | None:
    carrier = opts.carrier_names.get(package.carrier or "", package.carrier)
    info = {"company": carrier, "number": package.tracking_number, "url": package.tracking_url}
    info = {k: v for k, v in info.items() if v}
    return info or None


async def deliver_shipment(
    admin: ShopifyAdmin,
    opts: ShopifyOptions,
    event: CanonicalEvent,
    ctx: DeliveryContext,
    connection_id: str,
) -> DeliveryResult:
    shipment = event.payload_as(Shipment)
    order_id = store_order_id(shipment.order_key, connection_id, ctx)
    answer = await admin.request(
        "GET",
        f"orders/{order_id}.json",
        what=f"order {order_id} ({shipment.order_number or shipment.order_key})",
        params={"fields": "id,name,line_items,fulfillments"},
    )
    order = pick(answer, "order", describe=f"Shopify (order {order_id})")
    live = [f for f in order.get("fulfillments") or [] if f.get("status") not in DEAD_FULFILLMENT]
    by_id = {str(f["id"]): f for f in live}
    by_tracking = {n: str(f["id"]) for f in live for n in tracking_numbers(f)}
    notify = bool(ctx.directives.get("notify_customer", opts.notify_customer_default))
    result = DeliveryResult()
    fulfillment_orders: list[dict[str, Any]] | None = None
    created, kept = 0, 0
    for index, package in enumerate(shipment.packages):
        link_key = f"{shipment.entity_key}#{index}"
        known = ctx.link("fulfillment", link_key) or (
            by_tracking.get(package.tracking_number) if package.tracking_number else None
        )
        if known is not None:
            result.links.append(RemoteLink("fulfillment", link_key, known))
            kept += 1
            if event.type == "shipment.updated":
                await _update_tracking(admin, opts, package, by_id.get(known), known, notify)
            continue
        if fulfillment_orders is None:
            fo_answer = await admin.request(
                "GET",
                f"orders/{order_id}/fulfillment_orders.json",
                what=f"fulfillment orders of order {order_id}",
            )
            fulfillment_orders = fo_answer.get("fulfillment_orders") or []
        allocation = allocate(package, order, fulfillment_orders)
        if allocation.short:
            result.findings.append(
                Finding(
                    "over_shipment" if allocation.items else "already_fulfilled",
                    f"package {index + 1} ({package.tracking_number or 'no tracking'}) of "
                    f"{shipment.entity_key}: nothing left to fulfil in Shopify for "
                    f"{', '.join(allocation.short)}",
                    {"package": index, "short": allocation.short},
                )
            )
        if not allocation.items:
            continue
        body: dict[str, Any] = {
            "line_items_by_fulfillment_order": allocation.body(),
            "notify_customer": notify,
        }
        if info := _tracking_info(package, opts):
            body["tracking_info"] = info
        made = await admin.request(
            "POST",
            "fulfillments.json",
            what=f"fulfillment of package {index + 1} of order {order_id}",
            json_body={"fulfillment": body},
        )
        fulfillment_id = str(
            pick(made, "fulfillment", "id", describe=f"Shopify (fulfillment of order {order_id})")
        )
        result.links.append(RemoteLink("fulfillment", link_key, fulfillment_id))
        if package.tracking_number:
            by_tracking[package.tracking_number] = fulfillment_id
        created += 1
    result.summary = f"order {order_id}: {created} fulfillment(s) created, {kept} already there" + (
        f" [API calls {admin.last_call_limit}]" if admin.last_call_limit else ""
    )
    return result


async def _update_tracking(
    admin: ShopifyAdmin,
    opts: ShopifyOptions,
    package: Package,
    existing: dict[str, Any] | None,
    fulfillment_id: str,
    notify: bool,
) -> None:
    if not package.tracking_number:
        return
    if existing is not None and package.tracking_number in tracking_numbers(existing):
        return
    await admin.request(
        "POST",
        f"fulfillments/{fulfillment_id}/update_tracking.json",
        what=f"fulfillment {fulfillment_id}",
        json_body={
            "fulfillment": {
                "tracking_info": _tracking_info(package, opts),
                "notify_customer": notify,
            }
        },
    )
