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
from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Iterable
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


class Levels(dict[tuple[int, int], int]):
    """Available quantity by (inventory item, location), keeping each item's locations too,
    so the levels of a few items are found without reading every level of the store."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self._locations: dict[int, set[int]] = {}
        self.update(*args, **kwargs)

    def __setitem__(self, key: tuple[int, int], value: int) -> None:
        if key not in self:
            self._locations.setdefault(key[0], set()).add(key[1])
        super().__setitem__(key, value)

    def __delitem__(self, key: tuple[int, int]) -> None:
        super().__delitem__(key)
        self._forget(key)

    def _forget(self, key: tuple[int, int]) -> None:
        locations = self._locations.get(key[0], set())
        locations.discard(key[1])
        if not locations:
            self._locations.pop(key[0], None)

    def setdefault(self, key: tuple[int, int], default: int = 0) -> int:
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key: tuple[int, int], *default: Any) -> Any:
        if key not in self:
            return super().pop(key, *default)  # the default, or KeyError
        value = super().pop(key)
        self._forget(key)
        return value

    def popitem(self) -> tuple[tuple[int, int], int]:
        key, value = super().popitem()
        self._forget(key)
        return key, value

    def clear(self) -> None:
        super().clear()
        self._locations.clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> Levels:  # type: ignore[override,misc]
        self.update(other)
        return self

    def keys_of(self, items: Iterable[int]) -> list[tuple[int, int]]:
        """The (item, location) keys of these items (each item once)."""
        return [(i, loc) for i in set(items) for loc in self._locations.get(i, ())]


@dataclass
class _Index:
    """What the catalogue's lookups read (SKU search, SKU, handle, inventory item), made from
    the products in one pass instead of one pass per lookup."""

    key: tuple[int, int]  # (products, next id) when made: a new product or variant moves it
    variants: list[dict[str, Any]] = field(default_factory=list)  # in catalogue order
    skus: list[tuple[str, int]] = field(default_factory=list)  # (sku, position), sorted
    by_sku: dict[Any, dict[str, Any]] = field(default_factory=dict)  # the first of each SKU
    handles: dict[Any, dict[str, Any]] = field(default_factory=dict)  # the first of each
    items: set[Any] = field(default_factory=set)

    def add(self, product: dict[str, Any]) -> None:
        """``product``, the catalogue's last, into the index."""
        self.handles.setdefault(product.get("handle"), product)
        for variant in product["variants"]:
            position = len(self.variants)
            self.variants.append(variant)
            insort(self.skus, (variant.get("sku") or "", position))
            self.by_sku.setdefault(variant.get("sku"), variant)
            self.items.add(variant["inventory_item_id"])


@dataclass
class Catalogue:
    """The store's data (every part's fields) and its catalogue: products and variants."""

    default_location_id: int = DEFAULT_LOCATION_ID
    locations: set[int] = field(default_factory=lambda: {DEFAULT_LOCATION_ID})
    products: dict[int, dict[str, Any]] = field(default_factory=dict)
    inventory: Levels = field(default_factory=Levels)
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
    # made when a lookup needs it; dropped by ``catalogue_changed`` (a SKU, a handle or a
    # product's variants changed), made again once a product or variant is added
    _index: _Index | None = field(default=None, repr=False, compare=False)

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # catalogue ---------------------------------------------------------------------------
    def catalogue_changed(self) -> None:
        """A product's handle, a variant's SKU or a product's list of variants changed."""
        self._index = None

    def _index_key(self) -> tuple[int, int]:
        return (len(self.products), self._next_id)

    def _lookups(self) -> _Index:
        key = self._index_key()
        if self._index is None or self._index.key != key:
            self._index = _Index(key)
            for product in self.products.values():
                self._index.add(product)
        return self._index

    def variants(self) -> list[dict[str, Any]]:
        return [v for p in self.products.values() for v in p["variants"]]

    def variant(self, variant_id: int) -> dict[str, Any]:
        for v in self.variants():
            if v["id"] == variant_id:
                return v
        raise not_found()

    def variant_by_sku(self, sku: str) -> dict[str, Any] | None:
        return self._lookups().by_sku.get(sku)

    def item_exists(self, item_id: int) -> bool:
        return item_id in self._lookups().items

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
        if "sku" in data:
            self.catalogue_changed()
        if "price" in data:
            variant["price"] = text(money(data["price"]))
        if "compare_at_price" in data:
            raw = data["compare_at_price"]
            variant["compare_at_price"] = (
                None if raw in (None, "") else text(money(raw, "compare_at_price"))
            )
        variant["updated_at"] = now_text()

    def product_by_handle(self, handle: str) -> dict[str, Any] | None:
        return self._lookups().handles.get(handle)

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
        handle = self.unique_handle(str(data.get("handle") or data["title"]))
        index, key = self._index, self._index_key()
        product_id = self.new_id()
        product = {
            "id": product_id,
            "handle": handle,
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
        if index is not None and index.key == key:
            # nothing listed before changed (the new variants' SKUs dropped the index): it
            # stays current with this product added, so seeding thousands of them is linear
            index.add(product)
            index.key = self._index_key()
            self._index = index
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
            self.catalogue_changed()
        product["updated_at"] = now_text()
        return product

    def update_variant(self, variant_id: int, data: dict[str, Any]) -> dict[str, Any]:
        variant = self.variant(variant_id)
        self._apply_variant(variant, data)
        return variant

    def search_variants(self, query: str, first: int | None = None) -> list[dict[str, Any]]:
        """Variants whose SKU starts with a ``sku:`` term: loose, like Shopify's search (in
        catalogue order; the first ``first``, or all)."""
        terms = [
            (quoted.replace('\\"', '"').replace("\\\\", "\\") if quoted else bare)
            for quoted, bare in re.findall(r'sku:(?:"((?:[^"\\]|\\.)*)"|([^\s"]+))', query)
        ]
        index = self._lookups()
        positions: set[int] = set()
        for term in terms:  # the SKUs starting with a term sort together, from the term on
            at = bisect_left(index.skus, (term,))
            while at < len(index.skus) and index.skus[at][0].startswith(term):
                positions.add(index.skus[at][1])
                at += 1
        hits = [index.variants[p] for p in sorted(positions)]
        return hits if first is None else hits[:first]
