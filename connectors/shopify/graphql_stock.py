"""Absolute stock (the first push of a SKU, reconciliation's corrections) as a
compare-and-set, so no absolute write can undo a sale.

``inventorySetQuantities`` (2026-01) sets ``available`` only while the store still holds
``changeFromQuantity`` (shopify.dev/docs/api/admin-graphql/2026-01/input-objects/
InventoryQuantityInput); otherwise it answers CHANGE_FROM_QUANTITY_STALE and sets nothing.
The connector reads the quantity first, sets the target against it, and on a mismatch reads
again and keeps what changed meanwhile: a checkout that took 1 unit between our read and our
write makes the target 1 lower, it is never overwritten. After ``MAX_TRIES`` mismatches it
gives up for now (TransientError: retried later, nothing written).

The write carries the delivery's key in ``@idempotent``: a retried delivery whose first write
went through is answered with that write (same input) or refused with
IDEMPOTENCY_KEY_PARAMETER_MISMATCH (the key already set the quantity, with the quantity read
then): either way it is not set a second time.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.shopify import graphql
from connectors.shopify.admin import NotFoundError, ShopifyAdmin, delivery_uri
from connectors.shopify.graphql import gid
from connectors.shopify.graphql_documents import AVAILABLE_NOW, SET_AVAILABLE
from kernel.errors import PermanentError, TransientError

MAX_TRIES = 3
STALE = frozenset({"CHANGE_FROM_QUANTITY_STALE", "COMPARE_QUANTITY_STALE"})
RETRYABLE = frozenset({"IDEMPOTENCY_CONCURRENT_REQUEST"})


@dataclass(frozen=True)
class SetOutcome:
    quantity: int  # what the store holds now
    written: bool  # False: nothing to change, or an earlier attempt already set it
    kept: int = 0  # units the store's own sales changed while we set (kept, not undone)
    replayed: bool = False  # the key had already set it (an answer lost before)


async def read_available(
    admin: ShopifyAdmin, item_id: str, location_id: str, what: str
) -> int | None:
    """``available`` of the item at the location; None when it is not stocked there."""
    data = await admin.graphql(
        AVAILABLE_NOW,
        {"item": gid("InventoryItem", item_id), "location": gid("Location", location_id)},
        what=what,
    )
    item = data.get("inventoryItem")
    if not isinstance(item, dict):
        raise NotFoundError(f"{what}: inventory item {item_id} not found in the Shopify store")
    level = item.get("inventoryLevel")
    if not isinstance(level, dict):
        return None
    for q in level.get("quantities") or []:
        if q.get("name") == "available" and isinstance(q.get("quantity"), int):
            return int(q["quantity"])
    raise PermanentError(f"{what}: Shopify answered the level without its available quantity")


async def set_available(
    admin: ShopifyAdmin, item_id: str, location_id: str, target: int, *, key: str, what: str
) -> SetOutcome:
    basis = await read_available(admin, item_id, location_id, what)
    if basis is None:
        raise PermanentError(
            f"{what}: the item is not stocked at Shopify location {location_id}; stock it "
            "there in the Shopify admin (or route to the location it is stocked at), then "
            "replay this delivery"
        )
    current = basis
    for _ in range(MAX_TRIES):
        quantity = target + (current - basis)  # the store's own sales since our read stay
        if quantity == current:
            return SetOutcome(current, written=False, kept=current - basis)
        variables = {
            "input": {
                "name": "available",
                "reason": "correction",
                "referenceDocumentUri": delivery_uri(key),
                "quantities": [
                    {
                        "inventoryItemId": gid("InventoryItem", item_id),
                        "locationId": gid("Location", location_id),
                        "quantity": quantity,
                        "changeFromQuantity": current,
                    }
                ],
            },
            "key": key,
        }
        data = await admin.graphql(SET_AVAILABLE, variables, what=what)
        try:
            graphql.payload(data, "inventorySetQuantities", what, transient=RETRYABLE)
        except graphql.UserErrorsError as exc:
            if exc.codes & STALE:  # a sale (or anyone) moved it since we read: read again
                fresh = await read_available(admin, item_id, location_id, what)
                current = current if fresh is None else fresh
                continue
            if "IDEMPOTENCY_KEY_PARAMETER_MISMATCH" in exc.codes:
                return SetOutcome(current, written=False, kept=0, replayed=True)
            if exc.retry:
                raise TransientError(exc.message, detail=exc.detail) from None
            if "INVALID_INVENTORY_ITEM" in exc.codes:
                raise NotFoundError(exc.message, detail=exc.detail) from None
            raise
        return SetOutcome(quantity, written=True, kept=current - basis)
    raise TransientError(
        f"{what}: the store's quantity changed on each of {MAX_TRIES} tries to set it; "
        "nothing was overwritten, the delivery is retried later"
    )
