"""Canonical shipments → Shopify fulfillments, one per package, never two for one package.

For each package, in order, a fulfillment is skipped when it already exists:
1. a link ``fulfillment`` / ``<shipment key>#<package index>`` says so, or
2. the order already has a fulfillment with the package's tracking number (a retry after a
   timeout whose first POST did go through), or
3. nothing of the package's lines is left to fulfil (reported as a finding).
Otherwise GraphQL ``fulfillmentCreate`` (FulfillmentInput: ``lineItemsByFulfillmentOrder``
built from the order's fulfillment orders, matched by the store's line id, else by SKU; the
tracking info; ``notifyCustomer`` from the core's directive, default: option
``notify_customer_default``). Shopify offers no ``@idempotent`` on fulfillmentCreate
(changelog/adding-idempotency-for-inventory-adjustments-and-refund-mutations lists refunds
and inventory only), hence the lookups above. On ``shipment.updated`` a changed tracking
number of an existing package is sent with ``fulfillmentTrackingInfoUpdate``.

One query reads the order, its fulfillments and its fulfillment orders
(``graphql_documents.ORDER_FOR_FULFILLMENT``); links keep REST ids (``legacyResourceId``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connectors.shopify import graphql
from connectors.shopify.admin import ShopifyAdmin
from connectors.shopify.graphql import gid, legacy_id
from connectors.shopify.graphql_documents import (
    FULFILLMENT_CREATE,
    ORDER_FOR_FULFILLMENT,
    TRACKING_UPDATE,
)
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
    """The tracking numbers of a Fulfillment node (``trackingInfo { number }``)."""
    return {str(t["number"]) for t in fulfillment.get("trackingInfo") or [] if t.get("number")}


@dataclass
class Allocation:
    """Fulfillment order id → fulfillment order line id → quantity, and what did not fit."""

    items: dict[Any, dict[Any, int]] = field(default_factory=dict)
    short: list[str] = field(default_factory=list)

    def add(self, fo_id: Any, line_id: Any, quantity: int) -> None:
        lines = self.items.setdefault(fo_id, {})
        lines[line_id] = lines.get(line_id, 0) + quantity

    def body(self) -> list[dict[str, Any]]:
        """FulfillmentInput.lineItemsByFulfillmentOrder."""
        return [
            {
                "fulfillmentOrderId": fo_id,
                "fulfillmentOrderLineItems": [
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


def _nodes(value: Any) -> list[dict[str, Any]]:
    return [n for n in (value or {}).get("nodes") or [] if isinstance(n, dict)]


def _rest_shapes(order: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The order's lines and fulfillment orders in the shapes ``allocate`` works on."""
    lines = [
        {"id": legacy_id(li["id"]), "sku": li.get("sku")} for li in _nodes(order.get("lineItems"))
    ]
    fulfillment_orders = [
        {
            "id": fo["id"],
            "status": str(fo.get("status") or "").lower(),
            "line_items": [
                {
                    "id": fol["id"],
                    "line_item_id": legacy_id((fol.get("lineItem") or {}).get("id")),
                    "fulfillable_quantity": int(fol.get("remainingQuantity") or 0),
                }
                for fol in _nodes(fo.get("lineItems"))
            ],
        }
        for fo in _nodes(order.get("fulfillmentOrders"))
    ]
    return {"name": order.get("name"), "line_items": lines}, fulfillment_orders


async def deliver_shipment(
    admin: ShopifyAdmin,
    opts: ShopifyOptions,
    event: CanonicalEvent,
    ctx: DeliveryContext,
    connection_id: str,
) -> DeliveryResult:
    shipment = event.payload_as(Shipment)
    order_id = store_order_id(shipment.order_key, connection_id, ctx)
    what = f"order {order_id} ({shipment.order_number or shipment.order_key})"
    data = await admin.graphql(ORDER_FOR_FULFILLMENT, {"id": gid("Order", order_id)}, what=what)
    order = data.get("order")
    if not isinstance(order, dict):
        raise PermanentError(f"{what} not found in the Shopify store")
    live = [
        f
        for f in order.get("fulfillments") or []
        if str(f.get("status") or "").lower() not in DEAD_FULFILLMENT
    ]
    by_id = {legacy_id(f["id"]): f for f in live}
    by_tracking = {n: legacy_id(f["id"]) for f in live for n in tracking_numbers(f)}
    notify = bool(ctx.directives.get("notify_customer", opts.notify_customer_default))
    result = DeliveryResult()
    rest_order, fulfillment_orders = _rest_shapes(order)
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
        allocation = allocate(package, rest_order, fulfillment_orders)
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
            "lineItemsByFulfillmentOrder": allocation.body(),
            "notifyCustomer": notify,
        }
        if info := _tracking_info(package, opts):
            body["trackingInfo"] = info
        package_what = f"fulfillment of package {index + 1} of order {order_id}"
        made = await admin.graphql(FULFILLMENT_CREATE, {"fulfillment": body}, what=package_what)
        payload = graphql.payload(made, "fulfillmentCreate", package_what)
        fulfillment = payload.get("fulfillment")
        if not isinstance(fulfillment, dict) or not fulfillment.get("id"):
            raise PermanentError(
                f"Shopify answered fulfillmentCreate for {package_what} without the fulfillment"
            )
        fulfillment_id = legacy_id(fulfillment["id"])
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
    what = f"tracking of fulfillment {fulfillment_id}"
    data = await admin.graphql(
        TRACKING_UPDATE,
        {
            "id": gid("Fulfillment", fulfillment_id),
            "info": _tracking_info(package, opts) or {},
            "notify": notify,
        },
        what=what,
    )
    graphql.payload(data, "fulfillmentTrackingInfoUpdate", what)
