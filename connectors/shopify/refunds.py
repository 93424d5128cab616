"""ERP credit memos → Shopify refunds (GraphQL ``refundCreate``), at most one per memo.

Idempotency, in order: the link ``refund`` / memo key; a refund on the order whose note
names this memo (ours, from an attempt whose answer was lost); a refund totalling the memo's
amount that names no other memo (the store refunded first and the memo is the ERP booking
that refund: nothing to do, reported). Otherwise ``refundCreate`` refunds the memo amount
against the order's successful sale/capture transactions (up to each one's
``maximumRefundableV2``), restocking (``RETURN`` at option ``location_id``) the lines the memo
restocks, with ``@idempotent(key:)`` derived from the memo: a retry whose first request went
through is answered with that refund, a request still in flight is refused
(IDEMPOTENCY_CONCURRENT_REQUEST, retried) and never doubles
(shopify.dev/changelog/adding-idempotency-for-inventory-adjustments-and-refund-mutations;
required from API version 2026-04).
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from connectors.shopify import graphql
from connectors.shopify.admin import ShopifyAdmin
from connectors.shopify.graphql import gid, legacy_id
from connectors.shopify.graphql_documents import ORDER_FOR_REFUND, REFUND_CREATE
from connectors.shopify.options import ShopifyOptions
from connectors.shopify.outbound import money_text
from connectors.shopify.shipments import store_order_id
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.returns import CreditMemo
from kernel.errors import PermanentError, TransientError
from kernel.types import DeliveryContext, DeliveryResult, Finding, RemoteLink

MEMO_NOTE = "credit memo "


def memo_note(memo: CreditMemo) -> str:
    return f"{MEMO_NOTE}{memo.external_id}"


def refund_key(memo: CreditMemo) -> str:
    """The @idempotent key of the memo's refund: the same on every retry, one per memo."""
    digest = hashlib.sha256(memo.entity_key.encode()).hexdigest()[:32]
    return f"erp-gateway-refund-{digest}"


def refund_total(refund: dict[str, Any]) -> Decimal:
    """Money a Shopify refund gave back (``totalRefundedSet.shopMoney``)."""
    money = (refund.get("totalRefundedSet") or {}).get("shopMoney") or {}
    return Decimal(str(money.get("amount") or 0))


def _existing(refunds: list[dict[str, Any]], memo: CreditMemo) -> tuple[dict[str, Any], str] | None:
    note = memo_note(memo)
    for refund in refunds:
        if note in (refund.get("note") or ""):
            return refund, "made for this credit memo by an earlier attempt"
    for refund in refunds:
        mine = MEMO_NOTE in (refund.get("note") or "")  # made by us for another memo
        if not mine and refund_total(refund) == memo.amount.amount:
            return refund, "already refunded in the store for the memo's amount"
    return None


def _line_items(
    memo: CreditMemo, order: dict[str, Any], opts: ShopifyOptions
) -> list[dict[str, Any]]:
    """RefundLineItemInput per memo line, matched to the order's lines by SKU."""
    restocked = {r.sku for r in memo.restock if r.disposition == "restock"}
    items = ((order.get("lineItems") or {}).get("nodes")) or []
    out = []
    for line in memo.lines:
        match = next((li for li in items if (li.get("sku") or "") == line.sku), None)
        if match is None:
            raise PermanentError(
                f"credit memo {memo.external_id}: SKU {line.sku!r} is not on Shopify order "
                f"{order.get('name') or order.get('id')}; fix the memo or refund by hand"
            )
        if line.quantity != line.quantity.to_integral_value():
            raise PermanentError(f"credit memo line {line.sku!r}: {line.quantity} is not whole")
        restock = line.sku in restocked
        entry: dict[str, Any] = {
            "lineItemId": match["id"],
            "quantity": int(line.quantity),
            "restockType": "RETURN" if restock else "NO_RESTOCK",
        }
        if restock and opts.location_id:
            entry["locationId"] = gid("Location", opts.location_id)
        out.append(entry)
    return out


def _transactions(memo: CreditMemo, order: dict[str, Any]) -> list[dict[str, Any]]:
    """The memo amount spread over the payments Shopify can refund, first come first
    (OrderTransactionInput: amount, gateway, kind REFUND, orderId, parentId)."""
    left = memo.amount.amount
    out = []
    for txn in order.get("transactions") or []:
        if txn.get("kind") not in {"SALE", "CAPTURE"} or txn.get("status") != "SUCCESS":
            continue
        room = Decimal(str((txn.get("maximumRefundableV2") or {}).get("amount") or 0))
        take = min(left, room)
        if take > 0:
            out.append(
                {
                    "amount": money_text(take),
                    "gateway": txn.get("gateway") or "manual",
                    "kind": "REFUND",
                    "orderId": order["id"],
                    "parentId": txn["id"],
                }
            )
            left -= take
    if left > 0:
        most = memo.amount.amount - left
        raise PermanentError(
            f"credit memo {memo.external_id} is for {memo.amount.amount} "
            f"{memo.amount.currency} but Shopify can refund at most {most} on order "
            f"{legacy_id(order['id'])}; refund the rest by hand (or correct the memo) and "
            "mark this done"
        )
    return out


async def deliver_credit_memo(
    admin: ShopifyAdmin,
    opts: ShopifyOptions,
    event: CanonicalEvent,
    ctx: DeliveryContext,
    connection_id: str,
) -> DeliveryResult:
    memo = event.payload_as(CreditMemo)
    key = memo.entity_key
    linked = ctx.link("refund", key)
    if linked:
        return DeliveryResult(
            links=[RemoteLink("refund", key, linked)],
            summary=f"refund {linked} already made for credit memo {memo.external_id}",
        )
    order_id = store_order_id(memo.order_key, connection_id, ctx)
    what = f"order {order_id}"
    data = await admin.graphql(ORDER_FOR_REFUND, {"id": gid("Order", order_id)}, what=what)
    order = data.get("order")
    if not isinstance(order, dict):
        raise PermanentError(f"{what} not found in the Shopify store")
    found = _existing(list(order.get("refunds") or []), memo)
    if found is not None:
        refund, why = found
        refund_id = legacy_id(refund["id"])
        return DeliveryResult(
            links=[RemoteLink("refund", key, refund_id)],
            summary=f"no refund made: refund {refund_id} {why}",
            findings=[
                Finding(
                    "refund_exists",
                    f"credit memo {memo.external_id} ({memo.amount.amount} "
                    f"{memo.amount.currency}): Shopify refund {refund_id} {why}",
                    {"refund_id": refund_id, "order_id": order_id},
                )
            ],
        )
    if order.get("currencyCode") and order["currencyCode"] != memo.amount.currency:
        raise PermanentError(
            f"credit memo {memo.external_id} is in {memo.amount.currency}, Shopify order "
            f"{order_id} in {order['currencyCode']}; refund it by hand"
        )
    refund_input = {
        "orderId": order["id"],
        "note": memo_note(memo),
        "notify": bool(ctx.directives.get("notify_customer", False)),
        "refundLineItems": _line_items(memo, order, opts),
        "transactions": _transactions(memo, order),
    }
    what = f"refund of credit memo {memo.external_id} on order {order_id}"
    made = await admin.graphql(
        REFUND_CREATE, {"input": refund_input, "key": refund_key(memo)}, what=what
    )
    try:
        payload = graphql.payload(made, "refundCreate", what)
    except graphql.UserErrorsError as exc:
        if any("idempotency" in str(e.get("message", "")).lower() for e in exc.errors):
            # the same key is still being handled (or was, with the order read then):
            # retried, the next attempt finds the refund by its note
            raise TransientError(exc.message, detail=exc.detail) from None
        raise
    made_refund = payload.get("refund")
    if not isinstance(made_refund, dict) or not made_refund.get("id"):
        raise PermanentError(f"Shopify answered refundCreate for {what} without the refund")
    refund_id = legacy_id(made_refund["id"])
    return DeliveryResult(
        links=[RemoteLink("refund", key, refund_id)],
        summary=f"refund {refund_id} of {memo.amount.amount} {memo.amount.currency} on order "
        f"{order_id}",
    )
