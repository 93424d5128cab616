"""A small canonical order for the flow rule tests: SKU → quantity, EUR 10.00 each."""

from __future__ import annotations

from datetime import UTC, datetime

from kernel.canonical.order import Order

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


def make_order(lines: dict[str, str]) -> Order:
    return Order.model_validate(
        {
            "source": "shop-eu",
            "external_id": "1001",
            "number": "#1001",
            "created_at": NOW,
            "currency": "EUR",
            "customer": {"external_id": "c-7"},
            "lines": [
                {
                    "line_id": str(i),
                    "sku": sku,
                    "title": sku,
                    "quantity": qty,
                    "unit_price": eur("10.00"),
                }
                for i, (sku, qty) in enumerate(lines.items(), start=1)
            ],
            "totals": {k: eur("0") for k in ("subtotal", "discounts", "shipping", "tax", "total")},
        }
    )
