"""The store's work on orders: fulfillment orders, fulfillments and their tracking, refunds
(calculated and created, restocking what comes back)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from simulators.shopify.stock import Stock
from simulators.shopify.values import (
    FULFILLABLE,
    AdminError,
    as_id,
    invalid,
    money,
    not_found,
    now_text,
    text,
    whole,
)


class Fulfillment(Stock):
    """Fulfillment and refunds of orders, on top of the stock."""

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
