"""Stock, fulfillment and refund mutations of the GraphQL Admin API over the store, and
Shopify's ``@idempotent`` keys for the mutations that take them.

- inventorySetQuantities (shopify.dev/docs/api/admin-graphql/2026-01/mutations/
  inventorySetQuantities): absolute quantities, compare-and-swap per quantity with
  ``changeFromQuantity`` (the quantity the caller expects now; ``null`` skips the check); a
  mismatch is CHANGE_FROM_QUANTITY_STALE and nothing is set. Before 2026-01 the same check
  was ``compareQuantity`` unless ``ignoreCompareQuantity``; without either it is refused.
  An item not stocked at the location is ITEM_NOT_STOCKED_AT_LOCATION.
- refundCreate (…/mutations/refundCreate): RefundInput with line items and transactions
  against the order's sale; refusals are ``userErrors`` (UserError: field, message).
- fulfillmentCreate (…/mutations/fulfillmentCreate): FulfillmentInput by fulfillment order
  line items; fulfillmentTrackingInfoUpdate changes a fulfillment's tracking.
- @idempotent (changelog/adding-idempotency-for-inventory-adjustments-and-refund-mutations,
  docs/api/usage/implementing-idempotency): a key seen before with the same input answers
  with the first result and applies nothing; with another input it is refused
  (IDEMPOTENCY_KEY_PARAMETER_MISMATCH). Refused attempts are not remembered.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from simulators.shopify.graphql_catalogue import admin_errors
from simulators.shopify.graphql_views import (
    fulfillment_view,
    gid,
    gid_of,
    maybe_gid,
    order_view,
    refund_view,
)
from simulators.shopify.values import (
    ADJUST_REASONS,
    AdminError,
    UserErrors,
    now_text,
    user_error,
)

if TYPE_CHECKING:
    from simulators.shopify.store import Store

KEY_MISMATCH = "The same idempotency key cannot be used with different operation parameters."


def idempotent(
    store: Store, mutation: str, key: str | None, data: Any, apply: Callable[[], dict]
) -> dict[str, Any]:
    """``apply()`` once per key: a repeat answers with the first payload."""
    if key is None:
        return apply()
    fingerprint = json.dumps(data, sort_keys=True, default=str)
    slot = f"{mutation}:{key}"
    if slot in store.idempotency:
        seen, answer = store.idempotency[slot]
        if seen != fingerprint:
            return {"userErrors": [user_error("IDEMPOTENCY_KEY_PARAMETER_MISMATCH", KEY_MISMATCH)]}
        return answer
    answer = apply()
    if not answer.get("userErrors"):
        store.idempotency[slot] = (fingerprint, answer)
    return answer


# --- inventorySetQuantities -------------------------------------------------------------------


def set_quantities(store: Store, data: dict[str, Any]) -> dict[str, Any]:
    try:
        group = _set(store, data)
    except UserErrors as exc:
        return {"inventoryAdjustmentGroup": None, "userErrors": exc.errors}
    return {"inventoryAdjustmentGroup": group, "userErrors": []}


def _set(store: Store, data: dict[str, Any]) -> dict[str, Any]:
    if data["name"] not in {"available", "on_hand"}:
        raise UserErrors(
            user_error("INVALID_NAME", "The quantity name is invalid.", "input", "name")
        )
    if data["reason"] not in ADJUST_REASONS:
        raise UserErrors(
            user_error("INVALID_REASON", "The specified reason is invalid.", "input", "reason")
        )
    planned = []
    for i, q in enumerate(data["quantities"]):
        path = ("input", "quantities", str(i))
        item = maybe_gid(q["inventoryItemId"], "InventoryItem")
        if item is None or not store.item_exists(item):
            raise UserErrors(
                user_error(
                    "INVALID_INVENTORY_ITEM",
                    "The specified inventory item could not be found.",
                    *path,
                    "inventoryItemId",
                )
            )
        location = maybe_gid(q["locationId"], "Location")
        if location is None:
            raise UserErrors(
                user_error("INVALID_LOCATION", "The specified location could not be found.", *path)
            )
        if (item, location) not in store.inventory:
            raise UserErrors(
                user_error(
                    "ITEM_NOT_STOCKED_AT_LOCATION",
                    "The specified inventory item is not stocked at the location.",
                    *path,
                    "locationId",
                )
            )
        if q["quantity"] < 0 and data["name"] == "on_hand":
            raise UserErrors(user_error("INVALID_QUANTITY_NEGATIVE", "must be 0 or more", *path))
        current = store.inventory[(item, location)]
        if "changeFromQuantity" in q:
            expected = q["changeFromQuantity"]
        elif data.get("ignoreCompareQuantity"):
            expected = None
        elif q.get("compareQuantity") is not None:
            expected = q["compareQuantity"]
        else:
            raise UserErrors(
                user_error(
                    "CHANGE_FROM_QUANTITY_STALE",
                    "changeFromQuantity is required: the quantity expected now, or null to "
                    "skip the check.",
                    *path,
                    "changeFromQuantity",
                )
            )
        if expected is not None and expected != current:
            raise UserErrors(
                user_error(
                    "CHANGE_FROM_QUANTITY_STALE",
                    "The specified compare quantity does not match the current quantity.",
                    *path,
                    "changeFromQuantity",
                )
            )
        planned.append((item, location, q["quantity"], current))
    changes = []
    for item, location, quantity, current in planned:
        store.inventory[(item, location)] = quantity
        changes.append(
            {
                "name": data["name"],
                "delta": quantity - current,
                "quantityAfterChange": quantity,
                "item": None,
                "location": None,
            }
        )
    store.sets_applied += 1
    return {
        "id": gid("InventoryAdjustmentGroup", store.new_id()),
        "createdAt": now_text(),
        "reason": data["reason"],
        "referenceDocumentUri": data.get("referenceDocumentUri"),
        "changes": lambda *_a, **_k: changes,
    }


# --- refunds -----------------------------------------------------------------------------------


def _order(store: Store, orders: dict[int, dict[str, Any]], value: Any, *path: str) -> dict:
    order = orders.get(gid_of(value, "Order", *path))
    if order is None:
        raise UserErrors({"field": list(path), "message": "Order does not exist"})
    return order


def refund_create(store: Store, orders: dict[int, dict[str, Any]], data: dict) -> dict:
    try:
        order = _order(store, orders, data["orderId"], "orderId")
        lines: list[dict[str, Any]] = [
            {
                "line_item_id": gid_of(li["lineItemId"], "LineItem", "refundLineItems"),
                "quantity": li["quantity"],
                "restock_type": str(li.get("restockType") or "NO_RESTOCK").lower(),
                "location_id": maybe_gid(li.get("locationId"), "Location"),
            }
            for li in data.get("refundLineItems") or []
        ]
        rest: dict[str, Any] = {
            "note": data.get("note"),
            "notify": bool(data.get("notify")),
            "refund_line_items": lines,
            "transactions": [
                {
                    "kind": str(t["kind"]).lower(),
                    "parent_id": maybe_gid(t.get("parentId"), "OrderTransaction"),
                    "amount": t["amount"],
                    "gateway": t["gateway"],
                }
                for t in data.get("transactions") or []
            ],
        }
        locations = {li["location_id"] for li in lines if li["location_id"]}
        if locations:
            rest["location_id"] = locations.pop()
        refund = store.create_refund(order, rest)
    except UserErrors as exc:
        return {"order": None, "refund": None, "userErrors": _plain(exc.errors)}
    except AdminError as exc:
        return {"order": None, "refund": None, "userErrors": admin_errors(exc)}
    currency = str(order.get("currency") or "USD")
    return {
        "order": order_view(store, order),
        "refund": refund_view(refund, currency),
        "userErrors": [],
    }


def _plain(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """UserError has no ``code``."""
    return [{"field": e.get("field"), "message": e["message"]} for e in errors]


# --- fulfillment -------------------------------------------------------------------------------


def _tracking(info: dict[str, Any] | None) -> dict[str, Any]:
    info = info or {}
    number = info.get("number") or next(iter(info.get("numbers") or []), None)
    url = info.get("url") or next(iter(info.get("urls") or []), None)
    return {"company": info.get("company"), "number": number, "url": url}


def fulfillment_create(store: Store, orders: dict[int, dict[str, Any]], data: dict) -> dict:
    try:
        rest = {
            "line_items_by_fulfillment_order": [
                {
                    "fulfillment_order_id": gid_of(
                        group["fulfillmentOrderId"], "FulfillmentOrder", "fulfillmentOrderId"
                    ),
                    "fulfillment_order_line_items": [
                        {
                            "id": gid_of(li["id"], "FulfillmentOrderLineItem", "id"),
                            "quantity": li["quantity"],
                        }
                        for li in group.get("fulfillmentOrderLineItems") or []
                    ],
                }
                for group in data["lineItemsByFulfillmentOrder"]
            ],
            "tracking_info": _tracking(data.get("trackingInfo")),
            "notify_customer": bool(data.get("notifyCustomer")),
        }
        fulfillment = store.create_fulfillment(orders, rest)
    except UserErrors as exc:
        return {"fulfillment": None, "userErrors": _plain(exc.errors)}
    except AdminError as exc:
        if exc.status == 404:
            return {
                "fulfillment": None,
                "userErrors": [
                    {"field": ["fulfillment"], "message": "Fulfillment order does not exist."}
                ],
            }
        return {"fulfillment": None, "userErrors": admin_errors(exc)}
    return {"fulfillment": fulfillment_view(fulfillment), "userErrors": []}


def tracking_update(
    store: Store,
    orders: dict[int, dict[str, Any]],
    fulfillment_id: Any,
    info: dict[str, Any],
    notify: bool | None,
) -> dict[str, Any]:
    try:
        rest: dict[str, Any] = {"tracking_info": _tracking(info)}
        if notify is not None:
            rest["notify_customer"] = notify
        fulfillment = store.update_tracking(
            orders, gid_of(fulfillment_id, "Fulfillment", "fulfillmentId"), rest
        )
    except UserErrors as exc:
        return {"fulfillment": None, "userErrors": _plain(exc.errors)}
    except AdminError:
        return {
            "fulfillment": None,
            "userErrors": [{"field": ["fulfillmentId"], "message": "Fulfillment does not exist."}],
        }
    return {"fulfillment": fulfillment_view(fulfillment), "userErrors": []}
