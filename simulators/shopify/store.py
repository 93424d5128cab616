"""State of the simulated store behind the Admin API writes: catalogue, stock, fulfillment,
refunds and customers. Plain data and rules, no HTTP; errors are ``AdminError`` answers.

Ids are above 2**53 on purpose (a client that goes through float loses digits). Amounts are
strings with two decimals, as Shopify writes them; arithmetic is Decimal.

The store is built in layers, each a module: ``catalogue`` (the data and products),
``stock`` (inventory levels and adjustments), ``fulfillment`` (fulfillments and refunds);
here the customers and the state the control endpoints show. ``values`` holds the errors
and value rules they share.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from simulators.shopify.fulfillment import Fulfillment
from simulators.shopify.values import (
    DEFAULT_LOCATION_ID,
    AdminError,
    as_id,
    invalid,
    not_found,
    now_text,
    text,
)

__all__ = ["DEFAULT_LOCATION_ID", "AdminError", "Store", "as_id", "not_found", "text"]


@dataclass
class Store(Fulfillment):
    """Products/variants, inventory per (item, location), fulfillment, refunds, customers."""

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
