"""The store's stock: available quantities per (inventory item, location), seeding products
with their levels, and ``inventoryAdjustQuantities`` with its ``@idempotent`` keys."""

from __future__ import annotations

import json
import re
from typing import Any

from simulators.shopify.catalogue import Catalogue
from simulators.shopify.values import (
    ADJUST_REASONS,
    UserErrors,
    as_id,
    gid_id,
    not_found,
    now_text,
    user_error,
    whole,
)


class Stock(Catalogue):
    """Inventory levels on top of the catalogue."""

    def seed(self, spec: dict[str, Any]) -> dict[str, Any]:
        """A product with one variant and its stock: ``{"sku", "price", "available"}``."""
        sku = str(spec["sku"])
        product = self.create_product(
            {
                "title": spec.get("title") or sku,
                "variants": [
                    {
                        "sku": sku,
                        "price": spec.get("price", "0.00"),
                        "compare_at_price": spec.get("compare_at_price"),
                    }
                ],
            }
        )
        item = product["variants"][0]["inventory_item_id"]
        available = spec.get("available", 0)
        per_location = (
            available if isinstance(available, dict) else {self.default_location_id: available}
        )
        for location, quantity in per_location.items():
            self.set_level(item, as_id(location, "location_id"), whole(quantity, "available"))
        return product

    # inventory ---------------------------------------------------------------------------
    def set_level(self, item_id: int, location_id: int, available: int) -> dict[str, Any]:
        if not self.item_exists(item_id):
            raise not_found()
        self.locations.add(location_id)  # set.json connects the location when needed
        self.inventory[(item_id, location_id)] = available
        return self.level(item_id, location_id)

    def level(self, item_id: int, location_id: int) -> dict[str, Any]:
        return {
            "inventory_item_id": item_id,
            "location_id": location_id,
            "available": self.inventory.get((item_id, location_id)),
            "updated_at": now_text(),
        }

    def available(self, sku: str, location_id: int | None = None) -> int:
        variant = self.variant_by_sku(sku)
        if variant is None:
            return 0
        location = location_id or self.default_location_id
        return self.inventory.get((variant["inventory_item_id"], location), 0)

    def adjust(self, item_id: int, location_id: int, delta: int) -> None:
        key = (item_id, location_id)
        self.inventory[key] = self.inventory.get(key, 0) + delta
        if self.inventory[key] < 0:
            self.oversells += 1

    def adjust_quantities(self, data: Any, key: str | None) -> dict[str, Any]:
        """``inventoryAdjustQuantities``: its payload (group and userErrors), all or nothing.

        A key seen before answers with the first result and applies nothing (Shopify's
        ``@idempotent``); the same key with another input is refused. Refused attempts are
        not remembered, so a corrected retry may reuse the key. Levels may go negative (as
        Shopify allows); not an oversell: the store's own sales never went below zero.
        """
        fingerprint = json.dumps(data, sort_keys=True, default=str)
        if key is not None and key in self.idempotency:
            seen, answer = self.idempotency[key]
            if seen != fingerprint:
                return _refused(
                    user_error(
                        "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
                        "The same idempotency key cannot be used with different operation "
                        "parameters.",
                    )
                )
            self.adjustments_replayed += 1
            return answer
        try:
            answer = self._adjust(data)
        except UserErrors as exc:
            return _refused(*exc.errors)
        self.adjustments_applied += 1
        if key is not None:
            self.idempotency[key] = (fingerprint, answer)
        return answer

    def _adjust(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise UserErrors(user_error("INVALID_QUANTITY_NAME", "input is required", "input"))
        if data.get("name") != "available":
            raise UserErrors(
                user_error(
                    "INVALID_QUANTITY_NAME",
                    "The simulator adjusts only the available quantity.",
                    "input",
                    "name",
                )
            )
        if data.get("reason") not in ADJUST_REASONS:
            raise UserErrors(
                user_error("INVALID_REASON", "The specified reason is invalid.", "input", "reason")
            )
        uri = data.get("referenceDocumentUri")
        if uri is not None and not re.match(r"^[a-z][a-z0-9+.-]*://\S+$", str(uri)):
            raise UserErrors(
                user_error(
                    "INVALID_REFERENCE_DOCUMENT",
                    "The specified reference document is invalid.",
                    "input",
                    "referenceDocumentUri",
                )
            )
        changes = data.get("changes")
        if not isinstance(changes, list) or not changes:
            raise UserErrors(user_error("INVALID_INVENTORY_ITEM", "changes is empty", "input"))
        planned: list[tuple[int, int, int]] = []
        for i, change in enumerate(changes):
            path = ("input", "changes", str(i))
            if not isinstance(change, dict):
                raise UserErrors(user_error("INVALID_INVENTORY_ITEM", "not a change", *path))
            if change.get("ledgerDocumentUri") is not None:
                raise UserErrors(
                    user_error(
                        "INVALID_AVAILABLE_DOCUMENT",
                        "A ledger document URI is not allowed when adjusting available.",
                        *path,
                    )
                )
            item = gid_id(change.get("inventoryItemId"), "InventoryItem", *path, "inventoryItemId")
            location = gid_id(change.get("locationId"), "Location", *path, "locationId")
            delta = change.get("delta")
            if not isinstance(delta, int) or isinstance(delta, bool):
                raise UserErrors(user_error("INVALID_QUANTITY_TOO_LOW", "delta: Int", *path))
            if not self.item_exists(item):
                raise UserErrors(
                    user_error(
                        "INVALID_INVENTORY_ITEM",
                        "The specified inventory item could not be found.",
                        *path,
                        "inventoryItemId",
                    )
                )
            planned.append((item, location, delta))
        applied = []
        for item, location, delta in planned:
            self.locations.add(location)
            level = self.inventory.setdefault((item, location), 0)  # a missing level is 0
            self.inventory[(item, location)] = level + delta
            applied.append(
                {
                    "name": "available",
                    "delta": delta,
                    "quantityAfterChange": self.inventory[(item, location)],
                    "item": {"id": f"gid://shopify/InventoryItem/{item}"},
                    "location": {"id": f"gid://shopify/Location/{location}"},
                }
            )
        group = {
            "id": f"gid://shopify/InventoryAdjustmentGroup/{self.new_id()}",
            "reason": data["reason"],
            "referenceDocumentUri": uri,
            "createdAt": now_text(),
            "changes": applied,
        }
        return {"inventoryAdjustmentGroup": group, "userErrors": []}


def _refused(*errors: dict[str, Any]) -> dict[str, Any]:
    return {"inventoryAdjustmentGroup": None, "userErrors": list(errors)}
