"""ERP credit memos → Shopify refunds, at most one per memo.

Idempotency, in order: the link ``refund`` / memo key; a refund on the order whose note
names this memo (ours, from an attempt whose answer was lost); a refund totalling the memo's
amount that names no other memo (the store refunded first and the memo is the ERP booking
that refund: nothing to do, reported). Otherwise ``refunds/calculate.json`` gives the parent
transactions, and ``refunds.json`` refunds the memo amount against them, with
``restock_type`` ``return`` for lines the memo restocks (at option ``location_id``) and
``no_restock`` for the others.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from connectors._kit.http import pick
from connectors.shopify.admin import ShopifyAdmin
from connectors.shopify.options import ShopifyOptions
from connectors.shopify.outbound import money_text, rest_id
from connectors.shopify.shipments import store_order_id
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.returns import CreditMemo
from kernel.errors import PermanentError
from kernel.types import DeliveryContext, DeliveryResult, Finding, RemoteLink

MEMO_NOTE = "credit memo "


def memo_note(memo: CreditMemo) -> str:
    return f"{MEMO_NOTE}{memo.external_id}"


def refund_total(refund: dict[str, Any]) -> Decimal:
    """Money a Shopify refund gave back: its successful refund transactions."""
    return sum(
        (
            Decimal(str(t.get("amount") or 0))
            for t in refund.get("transactions") or []
            if t.get("kind") == "refund" and (t.get("status") or "success") == "success"
        ),
        Decimal(0),
    )


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
    restocked = {r.sku for r in memo.restock if r.disposition == "restock"}
    items = order.get("line_items") or []
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
        entry: dict[str, Any] = {
            "line_item_id": match["id"],
            "quantity": int(line.quantity),
            "restock_type": "return" if line.sku in restocked else "no_restock",
        }
        if entry["restock_type"] == "return" and opts.location_id:
            entry["location_id"] = rest_id(opts.location_id)
        out.append(entry)
    return out


def _transactions(
    memo: CreditMemo, suggested: list[dict[str, Any]], order_id: str
) -> list[dict[str, Any]]:
    """The memo amount spread over the payments Shopify can refund, first come first."""
    left = memo.amount.amount
    out = []
    for txn in suggested:
        room = Decimal(str(txn.get("maximum_refundable") or txn.get("amount") or 0))
        take = min(left, room)
        if take > 0:
            out.append(
                {
                    "parent_id": txn.get("parent_id"),
                    "amount": money_text(take),
                    "kind": "refund",
                    "gateway": txn.get("gateway"),
                }
            )
            left -= take
    if left > 0:
        most = memo.amount.amount - left
        raise PermanentError(
            f"credit memo {memo.external_id} is for {memo.amount.amount} "
            f"{memo.amount.currency} but Shopify can refund at most {most} on order "
            f"{order_id}; refund the rest by hand (or correct the memo) and mark this done"
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
    listed = await admin.request(
        "GET", f"orders/{order_id}/refunds.json", what=f"refunds of order {order_id}"
    )
    found = _existing(listed.get("refunds") or [], memo)
    if found is not None:
        refund, why = found
        refund_id = str(refund["id"])
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
    answer = await admin.request(
        "GET",
        f"orders/{order_id}.json",
        what=f"order {order_id}",
        params={"fields": "id,name,currency,line_items"},
    )
    order = pick(answer, "order", describe=f"Shopify (order {order_id})")
    if order.get("currency") and order["currency"] != memo.amount.currency:
        raise PermanentError(
            f"credit memo {memo.external_id} is in {memo.amount.currency}, Shopify order "
            f"{order_id} in {order['currency']}; refund it by hand"
        )
    lines = _line_items(memo, order, opts)
    calculated = await admin.request(
        "POST",
        f"orders/{order_id}/refunds/calculate.json",
        what=f"refund calculation for order {order_id}",
        json_body={"refund": {"refund_line_items": lines}},
    )
    suggested = (calculated.get("refund") or {}).get("transactions") or []
    body = {
        "refund": {
            "note": memo_note(memo),
            "notify": bool(ctx.directives.get("notify_customer", False)),
            "currency": memo.amount.currency,
            "refund_line_items": lines,
            "transactions": _transactions(memo, suggested, order_id),
        }
    }
    made = await admin.request(
        "POST",
        f"orders/{order_id}/refunds.json",
        what=f"refund on order {order_id}",
        json_body=body,
    )
    refund_id = str(pick(made, "refund", "id", describe=f"Shopify (refund of order {order_id})"))
    return DeliveryResult(
        links=[RemoteLink("refund", key, refund_id)],
        summary=f"refund {refund_id} of {memo.amount.amount} {memo.amount.currency} on order "
        f"{order_id}",
    )
