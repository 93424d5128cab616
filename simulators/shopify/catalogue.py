"""The store's catalogue: products and their variants (prices, SKUs, inventory item ids),
and the fields of every part of the store (``Store`` builds on this class).

Limits as Shopify documents them: the REST Admin API takes at most 100 variants per product
(shopify.dev/docs/api/admin-rest/latest/resources/product-variant: "a product can have a
maximum of 100 variants" through REST); the GraphQL Admin API 2048 (productSet: "By default,
stores have a limit of 2048 product variants for each product"). Handles are unique per
store; a product made without one gets one from its title, with "-1", "-2"… when taken.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from simulators.shopify.values import (
    DEFAULT_LOCATION_ID,
    ID_BASE,
    as_id,
    invalid,
    money,
    not_found,
    now_text,
    text,
)

REST_MAX_VARIANTS = 100
GRAPHQL_MAX_VARIANTS = 2048


@dataclass
class Catalogue:
    """The store's data (every part's fields) and its catalogue: products and variants."""

    default_location_id: int = DEFAULT_LOCATION_ID
    locations: set[int] = field(default_factory=lambda: {DEFAULT_LOCATION_ID})
    products: dict[int, dict[str, Any]] = field(default_factory=dict)
    inventory: dict[tuple[int, int], int] = field(default_factory=dict)
    fulfillment_orders: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    customers: dict[int, dict[str, Any]] = field(default_factory=dict)
    checkouts: dict[str, Counter[str]] = field(default_factory=dict)
    notified: dict[int, bool] = field(default_factory=dict)  # fulfillment id → notify flag
    oversells: int = 0
    # @idempotent keys of applied adjustments: key → (the input as sent, the first answer)
    idempotency: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    adjustments_applied: int = 0
    adjustments_replayed: int = 0
    sets_applied: int = 0  # inventorySetQuantities that changed stock
    _next_id: int = ID_BASE + 100
    # GraphQL cost bucket (shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits):
    # standard plan, 100 points restored per second; throttle_next forces THROTTLED answers
    graphql_available: float = 2000.0
    graphql_restore_rate: float = 100.0  # points per second (Shopify Plus: 1000)
    graphql_stamp: float | None = None
    throttle_next: int = 0

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # catalogue ---------------------------------------------------------------------------
    def variants(self) -> list[dict[str, Any]]:
        return [v for p in self.products.values() for v in p["variants"]]

    def variant(self, variant_id: int) -> dict[str, Any]:
        for v in self.variants():
            if v["id"] == variant_id:
                return v
        raise not_found()

    def variant_by_sku(self, sku: str) -> dict[str, Any] | None:
        return next((v for v in self.variants() if v.get("sku") == sku), None)

    def item_exists(self, item_id: int) -> bool:
        return any(v["inventory_item_id"] == item_id for v in self.variants())

    def _new_variant(self, product_id: int, data: dict[str, Any]) -> dict[str, Any]:
        variant = {
            "id": self.new_id(),
            "product_id": product_id,
            "title": "Default Title",
            "sku": data.get("sku") or "",
            "price": "0.00",
            "compare_at_price": None,
            "barcode": None,
            "weight": 0,
            "weight_unit": "kg",
            "inventory_item_id": self.new_id(),
            "inventory_management": "shopify",
            "option1": "Default Title",
            "option2": None,
            "option3": None,
        }
        self._apply_variant(variant, data)
        return variant

    def _apply_variant(self, variant: dict[str, Any], data: dict[str, Any]) -> None:
        for key in ("sku", "barcode", "weight", "weight_unit", "option1", "option2", "option3"):
            if key in data:
                variant[key] = data[key]
        if "price" in data:
            variant["price"] = text(money(data["price"]))
        if "compare_at_price" in data:
            raw = data["compare_at_price"]
            variant["compare_at_price"] = (
                None if raw in (None, "") else text(money(raw, "compare_at_price"))
            )
        variant["updated_at"] = now_text()

    def product_by_handle(self, handle: str) -> dict[str, Any] | None:
        return next((p for p in self.products.values() if p.get("handle") == handle), None)

    def unique_handle(self, wanted: str) -> str:
        base = re.sub(r"[^a-z0-9]+", "-", wanted.lower()).strip("-") or "product"
        handle, n = base, 0
        while self.product_by_handle(handle) is not None:
            n += 1
            handle = f"{base}-{n}"
        return handle

    def create_product(self, data: dict[str, Any]) -> dict[str, Any]:
        if not str(data.get("title") or "").strip():
            raise invalid("title", "can't be blank")
        if len(data.get("variants") or []) > REST_MAX_VARIANTS:
            raise invalid("variants", f"can't exceed {REST_MAX_VARIANTS} through REST")
        product_id = self.new_id()
        product = {
            "id": product_id,
            "handle": self.unique_handle(str(data.get("handle") or data["title"])),
            "title": data["title"],
            "body_html": data.get("body_html"),
            "status": data.get("status") or "active",
            "options": data.get("options") or [{"name": "Title"}],
            "created_at": now_text(),
            "updated_at": now_text(),
            "variants": [],
        }
        for v in data.get("variants") or [{}]:
            product["variants"].append(self._new_variant(product_id, v))
        self.products[product_id] = product
        return product

    def update_product(self, product_id: int, data: dict[str, Any]) -> dict[str, Any]:
        product = self.products.get(product_id)
        if product is None:
            raise not_found()
        for key in ("title", "body_html", "status"):
            if key in data:
                product[key] = data[key]
        if "variants" in data:
            # Shopify's quirk: a variants list replaces the product's variants; the ones
            # it leaves out are deleted.
            if len(data["variants"]) > REST_MAX_VARIANTS:
                raise invalid("variants", f"can't exceed {REST_MAX_VARIANTS} through REST")
            kept = []
            for v in data["variants"]:
                if v.get("id") is not None:
                    existing = self.variant(as_id(v["id"], "variants.id"))
                    self._apply_variant(existing, v)
                    kept.append(existing)
                else:
                    kept.append(self._new_variant(product_id, v))
            product["variants"] = kept
        product["updated_at"] = now_text()
        return product

    def update_variant(self, variant_id: int, data: dict[str, Any]) -> dict[str, Any]:
        variant = self.variant(variant_id)
        self._apply_variant(variant, data)
        return variant

    def search_variants(self, query: str, first: int) -> list[dict[str, Any]]:
        """Variants whose SKU starts with a ``sku:`` term: loose, like Shopify's search."""
        terms = [
            (quoted.replace('\\"', '"').replace("\\\\", "\\") if quoted else bare)
            for quoted, bare in re.findall(r'sku:(?:"((?:[^"\\]|\\.)*)"|([^\s"]+))', query)
        ]
        hits = [
            v for v in self.variants() if any((v.get("sku") or "").startswith(t) for t in terms)
        ]
        return hits[:first]
