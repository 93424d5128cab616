"""State of the simulated store behind the Admin API writes: catalogue, stock, fulfillment,
refunds and customers. Plain data and rules, no HTTP; errors are ``AdminError`` answers.

Ids are above 2**53 on purpose (a client that goes through float loses digits). Amounts are
strings with two decimals, as Shopify writes them; arithmetic is Decimal.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

ID_BASE = 10_000_000_000_000_000
DEFAULT_LOCATION_ID = 10_000_000_000_000_001
CENT = Decimal("0.01")
FULFILLABLE = {"open", "in_progress"}
# inventoryAdjustQuantities' reasons (Shopify's list)
ADJUST_REASONS = {
    "correction",
    "cycle_count_available",
    "damaged",
    "movement_canceled",
    "movement_created",
    "movement_received",
    "movement_updated",
    "other",
    "promotion",
    "quality_control",
    "received",
    "reservation_created",
    "reservation_deleted",
    "reservation_updated",
    "restock",
    "safety_stock",
    "shrinkage",
}
_GID = re.compile(r"^gid://shopify/(\w+)/(\d+)$")


class AdminError(Exception):
    """An Admin API error answer: status, Shopify-shaped body, extra headers."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def not_found() -> AdminError:
    return AdminError(404, {"errors": "Not Found"})


def invalid(field_name: str, message: str) -> AdminError:
    return AdminError(422, {"errors": {field_name: [message]}})


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def money(value: Any, field_name: str = "price") -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise invalid(field_name, "is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise invalid(field_name, "must be greater than or equal to 0")
    return amount


def text(amount: Decimal) -> str:
    return str(amount.quantize(CENT, rounding=ROUND_HALF_UP))


def as_id(value: Any, field_name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise invalid(field_name, "is not a valid id")


def user_error(code: str, message: str, *path: str) -> dict[str, Any]:
    return {"field": list(path) or None, "message": message, "code": code}


class UserErrors(Exception):
    """A mutation answered with ``userErrors`` (HTTP 200, nothing applied)."""

    def __init__(self, *errors: dict[str, Any]) -> None:
        super().__init__("; ".join(str(e["message"]) for e in errors))
        self.errors = list(errors)


def gid_id(value: Any, kind: str, *path: str) -> int:
    match = _GID.match(value) if isinstance(value, str) else None
    if match is None or match.group(1) != kind:
        code = "INVALID_LOCATION" if kind == "Location" else "INVALID_INVENTORY_ITEM"
        raise UserErrors(user_error(code, f"{value!r} is not a {kind} id", *path))
    return int(match.group(2))


def whole(value: Any, field_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise invalid(field_name, "must be a whole number")
    try:
        return int(value)
    except ValueError:
        raise invalid(field_name, "must be a whole number") from None


@dataclass
class Store:
    """Products/variants, inventory per (item, location), fulfillment, refunds, customers."""

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
    _next_id: int = ID_BASE + 100

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

    def create_product(self, data: dict[str, Any]) -> dict[str, Any]:
        if not str(data.get("title") or "").strip():
            raise invalid("title", "can't be blank")
        product_id = self.new_id()
        product = {
            "id": product_id,
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

    # fulfillment -------------------------------------------------------------------------
    def fulfillment_orders_of(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        """One fulfillment order per order at the default location, made on first use."""
        order_id = int(order["id"])
        if order_id not in self.fulfillment_orders:
            fo_id = self.new_id()
            lines = [
                {
                    "id": self.new_id(),
                    "fulfillment_order_id": fo_id,
                    "line_item_id": li["id"],
                    "variant_id": li.get("variant_id"),
                    "inventory_item_id": self._item_of(li),
                    "quantity": li["quantity"],
                    "fulfillable_quantity": li["quantity"],
                }
                for li in order["line_items"]
                if li.get("requires_shipping", True)
            ]
            self.fulfillment_orders[order_id] = [
                {
                    "id": fo_id,
                    "order_id": order_id,
                    "status": "open",
                    "assigned_location_id": self.default_location_id,
                    "line_items": lines,
                }
            ]
        return self.fulfillment_orders[order_id]

    def _item_of(self, line: dict[str, Any]) -> int | None:
        variant = self.variant_by_sku(line.get("sku") or "")
        return variant["inventory_item_id"] if variant else None

    def create_fulfillment(
        self, orders: dict[int, dict[str, Any]], data: dict[str, Any]
    ) -> dict[str, Any]:
        groups = data.get("line_items_by_fulfillment_order")
        if not groups:
            raise invalid("line_items_by_fulfillment_order", "can't be blank")
        picks: list[tuple[dict[str, Any], int]] = []
        order: dict[str, Any] | None = None
        for group in groups:
            fo_id = as_id(group.get("fulfillment_order_id"), "fulfillment_order_id")
            fo, fo_order = self._find_fo(orders, fo_id)
            if order is not None and fo_order is not order:
                raise invalid("base", "All fulfillment orders must belong to the same order.")
            order = fo_order
            if fo["status"] not in FULFILLABLE:
                raise invalid("base", f"Fulfillment order {fo_id} has an unfulfillable status.")
            wanted = group.get("fulfillment_order_line_items")
            if not wanted:  # omitted: the whole fulfillment order
                picks += [(fol, fol["fulfillable_quantity"]) for fol in fo["line_items"]]
                continue
            for item in wanted:
                line_id = as_id(item.get("id"), "fulfillment_order_line_items.id")
                fol = next((x for x in fo["line_items"] if x["id"] == line_id), None)
                qty = whole(item.get("quantity"), "quantity")
                if fol is None or qty < 1 or qty > fol["fulfillable_quantity"]:
                    raise invalid("base", "Invalid fulfillment order line item quantity requested.")
                picks.append((fol, qty))
        assert order is not None
        for fol, qty in picks:
            fol["fulfillable_quantity"] -= qty
        for fo in self.fulfillment_orders[int(order["id"])]:
            left = sum(x["fulfillable_quantity"] for x in fo["line_items"])
            fo["status"] = "closed" if left == 0 else "in_progress"
        return self._record_fulfillment(order, data, picks)

    def _find_fo(
        self, orders: dict[int, dict[str, Any]], fo_id: int
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        for order_id, fos in self.fulfillment_orders.items():
            for fo in fos:
                if fo["id"] == fo_id:
                    return fo, orders[order_id]
        raise not_found()

    def _record_fulfillment(
        self, order: dict[str, Any], data: dict[str, Any], picks: list[tuple[dict[str, Any], int]]
    ) -> dict[str, Any]:
        info = data.get("tracking_info") or {}
        by_line = {li["id"]: li for li in order["line_items"]}
        fulfillment_id = self.new_id()
        fulfillment = {
            "id": fulfillment_id,
            "order_id": order["id"],
            "status": "success",
            "created_at": now_text(),
            "name": f"{order.get('name', '#')}.{len(order.get('fulfillments') or []) + 1}",
            "location_id": self.default_location_id,
            "line_items": [
                {
                    "id": fol["line_item_id"],
                    "sku": by_line.get(fol["line_item_id"], {}).get("sku"),
                    "quantity": qty,
                }
                for fol, qty in picks
            ],
        }
        self._set_tracking(fulfillment, info)
        self.notified[fulfillment_id] = bool(data.get("notify_customer", False))
        order.setdefault("fulfillments", []).append(fulfillment)
        left = sum(
            x["fulfillable_quantity"]
            for fo in self.fulfillment_orders[int(order["id"])]
            for x in fo["line_items"]
        )
        order["fulfillment_status"] = "fulfilled" if left == 0 else "partial"
        return fulfillment

    @staticmethod
    def _set_tracking(fulfillment: dict[str, Any], info: dict[str, Any]) -> None:
        number, url = info.get("number"), info.get("url")
        fulfillment.update(
            tracking_company=info.get("company"),
            tracking_number=number,
            tracking_numbers=[number] if number else [],
            tracking_url=url,
            tracking_urls=[url] if url else [],
        )

    def update_tracking(
        self, orders: dict[int, dict[str, Any]], fulfillment_id: int, data: dict[str, Any]
    ) -> dict[str, Any]:
        for order in orders.values():
            for fulfillment in order.get("fulfillments") or []:
                if fulfillment["id"] == fulfillment_id:
                    self._set_tracking(fulfillment, data.get("tracking_info") or {})
                    if "notify_customer" in data:
                        self.notified[fulfillment_id] = bool(data["notify_customer"])
                    return fulfillment
        raise not_found()

    # refunds -----------------------------------------------------------------------------
    @staticmethod
    def sale_transaction_id(order: dict[str, Any]) -> int:
        return int(order["id"]) + 1  # the order's one (simulated) sale transaction

    @staticmethod
    def refunded(order: dict[str, Any]) -> Decimal:
        return sum(
            (
                Decimal(t["amount"])
                for r in order.get("refunds") or []
                for t in r["transactions"]
                if t["kind"] == "refund"
            ),
            Decimal(0),
        )

    def _refund_lines(
        self, order: dict[str, Any], lines: list[dict[str, Any]]
    ) -> list[tuple[dict[str, Any], int, str, Decimal]]:
        by_id = {li["id"]: li for li in order["line_items"]}
        already: Counter[int] = Counter()
        for r in order.get("refunds") or []:
            for rl in r["refund_line_items"]:
                already[rl["line_item_id"]] += rl["quantity"]
        out = []
        for line in lines:
            line_id = as_id(line.get("line_item_id"), "refund_line_items.line_item_id")
            item = by_id.get(line_id)
            qty = whole(line.get("quantity"), "quantity")
            if item is None:
                raise invalid("refund_line_items", f"line item {line_id} is not on the order")
            if qty < 1 or qty + already[line_id] > item["quantity"]:
                raise invalid(
                    "refund_line_items.quantity", "cannot refund more items than were purchased"
                )
            restock = line.get("restock_type") or "no_restock"
            if restock not in {"no_restock", "cancel", "return"}:
                raise invalid("restock_type", "is not included in the list")
            out.append((item, qty, restock, Decimal(item["price"]) * qty))
        return out

    def calculate_refund(self, order: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        lines = self._refund_lines(order, data.get("refund_line_items") or [])
        suggested = sum((amount for *_, amount in lines), Decimal(0))
        room = Decimal(order["total_price"]) - self.refunded(order)
        return {
            "refund_line_items": [
                {
                    "line_item_id": item["id"],
                    "quantity": qty,
                    "restock_type": restock,
                    "subtotal": text(amount),
                }
                for item, qty, restock, amount in lines
            ],
            "transactions": [
                {
                    "order_id": order["id"],
                    "kind": "suggested_refund",
                    "gateway": (order.get("payment_gateway_names") or ["manual"])[0],
                    "parent_id": self.sale_transaction_id(order),
                    "amount": text(min(suggested, room)),
                    "maximum_refundable": text(room),
                    "currency": order.get("currency"),
                }
            ],
        }

    def create_refund(self, order: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        lines = self._refund_lines(order, data.get("refund_line_items") or [])
        room = Decimal(order["total_price"]) - self.refunded(order)
        transactions = []
        for txn in data.get("transactions") or []:
            if txn.get("kind") != "refund":
                raise invalid("transactions.kind", "must be refund")
            if as_id(txn.get("parent_id"), "parent_id") != self.sale_transaction_id(order):
                raise invalid("transactions.parent_id", "is not a transaction of this order")
            amount = money(txn.get("amount"), "amount")
            if amount > room:
                raise AdminError(
                    422, {"errors": {"base": [f"Refund amount must be at most {text(room)}"]}}
                )
            room -= amount
            transactions.append(
                {
                    "id": self.new_id(),
                    "order_id": order["id"],
                    "kind": "refund",
                    "status": "success",
                    "amount": text(amount),
                    "currency": order.get("currency"),
                    "gateway": txn.get("gateway") or "manual",
                    "parent_id": self.sale_transaction_id(order),
                    "created_at": now_text(),
                }
            )
        refund_id = self.new_id()
        refund_lines = []
        for item, qty, restock, amount in lines:
            location = data.get("location_id") or self.default_location_id
            entry = {
                "id": self.new_id(),
                "line_item_id": item["id"],
                "quantity": qty,
                "restock_type": restock,
                "location_id": None,
                "subtotal": text(amount),
                "subtotal_set": {
                    "shop_money": {"amount": text(amount), "currency_code": order.get("currency")}
                },
                "line_item": {"id": item["id"], "sku": item.get("sku"), "price": item["price"]},
            }
            variant = self.variant_by_sku(item.get("sku") or "")
            if restock in {"return", "cancel"} and variant is not None:
                entry["location_id"] = int(location)
                self.adjust(variant["inventory_item_id"], int(location), qty)
            refund_lines.append(entry)
        refund = {
            "id": refund_id,
            "order_id": order["id"],
            "created_at": now_text(),
            "note": data.get("note"),
            "restock": any(r["restock_type"] != "no_restock" for r in refund_lines),
            "notify": bool(data.get("notify", False)),
            "refund_line_items": refund_lines,
            "transactions": transactions,
            "order_adjustments": [],
        }
        order.setdefault("refunds", []).append(refund)
        total = Decimal(order["total_price"])
        order["financial_status"] = (
            "refunded" if self.refunded(order) >= total else "partially_refunded"
        )
        return refund

    # customers ---------------------------------------------------------------------------
    def _email_taken(self, email: str | None, other_than: int | None) -> bool:
        wanted = (email or "").strip().lower()
        return bool(wanted) and any(
            (c.get("email") or "").lower() == wanted and cid != other_than
            for cid, c in self.customers.items()
        )

    def _apply_customer(self, customer: dict[str, Any], data: dict[str, Any]) -> None:
        if self._email_taken(data.get("email"), customer.get("id")):
            raise invalid("email", "has already been taken")
        for key in ("email", "first_name", "last_name", "phone", "tags", "tax_exempt", "note"):
            if key in data:
                customer[key] = data[key]
        if "email_marketing_consent" in data:
            customer["email_marketing_consent"] = data["email_marketing_consent"]
        if "addresses" in data:
            customer["addresses"] = [
                {**a, "id": self.new_id(), "customer_id": customer["id"]} for a in data["addresses"]
            ]
            default = next((a for a in customer["addresses"] if a.get("default")), None)
            customer["default_address"] = default or (customer["addresses"] or [None])[0]
        customer["updated_at"] = now_text()

    def create_customer(self, data: dict[str, Any]) -> dict[str, Any]:
        if not (data.get("email") or data.get("phone") or data.get("last_name")):
            raise invalid("base", "A customer must have a name, phone number or email address")
        customer: dict[str, Any] = {
            "id": self.new_id(),
            "email": None,
            "first_name": None,
            "last_name": None,
            "phone": None,
            "tags": "",
            "tax_exempt": False,
            "addresses": [],
            "default_address": None,
            "email_marketing_consent": None,
            "created_at": now_text(),
        }
        self._apply_customer(customer, data)
        self.customers[customer["id"]] = customer
        return customer

    def update_customer(self, customer_id: int, data: dict[str, Any]) -> dict[str, Any]:
        customer = self.customers.get(customer_id)
        if customer is None:
            raise not_found()
        self._apply_customer(customer, data)
        return customer

    def search_customers(self, query: str) -> list[dict[str, Any]]:
        match = re.search(r'email:"?([^"\s]+)"?', query)
        if not match:
            return list(self.customers.values())
        wanted = match.group(1).lower()
        return [c for c in self.customers.values() if (c.get("email") or "").lower() == wanted]

    # inspection --------------------------------------------------------------------------
    def state(self, orders: dict[int, dict[str, Any]]) -> dict[str, Any]:
        inventory: dict[str, dict[str, int | None]] = {}
        prices: dict[str, dict[str, Any]] = {}
        for v in self.variants():
            sku = v.get("sku") or ""
            prices[sku] = {"price": v["price"], "compare_at_price": v["compare_at_price"]}
            inventory[sku] = {
                str(loc): qty
                for (item, loc), qty in self.inventory.items()
                if item == v["inventory_item_id"]
            }
        return {
            "default_location_id": str(self.default_location_id),
            "inventory": inventory,
            "prices": prices,
            "fulfillments": {
                str(oid): [
                    {
                        "id": f["id"],
                        "tracking_number": f.get("tracking_number"),
                        "tracking_company": f.get("tracking_company"),
                        "tracking_url": f.get("tracking_url"),
                        "notify_customer": self.notified.get(f["id"], False),
                        "line_items": [
                            {"sku": li.get("sku"), "quantity": li["quantity"]}
                            for li in f["line_items"]
                        ],
                    }
                    for f in o.get("fulfillments") or []
                ]
                for oid, o in orders.items()
                if o.get("fulfillments")
            },
            "refunds": {
                str(oid): [
                    {
                        "id": r["id"],
                        "amount": text(
                            sum((Decimal(t["amount"]) for t in r["transactions"]), Decimal(0))
                        ),
                        "note": r.get("note"),
                        "lines": [
                            {
                                "sku": rl["line_item"].get("sku"),
                                "quantity": rl["quantity"],
                                "restock_type": rl["restock_type"],
                            }
                            for rl in r["refund_line_items"]
                        ],
                    }
                    for r in o.get("refunds") or []
                ]
                for oid, o in orders.items()
                if o.get("refunds")
            },
            "customers": [self.customers[c] for c in sorted(self.customers)],
            "checkouts": {sku: dict(counts) for sku, counts in sorted(self.checkouts.items())},
            "oversells": self.oversells,
            "adjustments": {
                "applied": self.adjustments_applied,
                "replayed": self.adjustments_replayed,
            },
        }


def _refused(*errors: dict[str, Any]) -> dict[str, Any]:
    return {"inventoryAdjustmentGroup": None, "userErrors": list(errors)}
