"""The store's records as the GraphQL Admin API shows them (2026-01 shapes).

The store keeps REST-shaped records (``catalogue``, ``stock``, ``fulfillment``): both APIs
read and write the same state. These functions turn one record into the GraphQL object
graphql-core resolves: a dict per object, with a callable for every field that takes
arguments (``variants(first:)``, ``inventoryLevel(locationId:)`` …), which graphql-core's
default resolver calls with the field's arguments.

Shapes: shopify.dev/docs/api/admin-graphql/2026-01/objects/{Product, ProductVariant,
InventoryItem, InventoryLevel, Order, FulfillmentOrder, Fulfillment, Refund, OrderTransaction}.
Global ids are ``gid://shopify/<Type>/<id>``; ``legacyResourceId`` is the REST id as a
string (UnsignedInt64 is serialised as a string).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from simulators.shopify.values import UserErrors, now_text, text, user_error

if TYPE_CHECKING:
    from simulators.shopify.store import Store

DEFAULT_TITLE = "Default Title"
_GID = re.compile(r"^gid://shopify/(\w+)/(\d+)(?:\?.*)?$")


def gid(kind: str, value: Any) -> str:
    return f"gid://shopify/{kind}/{value}"


def gid_of(value: Any, kind: str, *path: str) -> int:
    """The numeric id in a global id of ``kind``; a userError naming ``path`` otherwise."""
    match = _GID.match(value) if isinstance(value, str) else None
    if match is None or match.group(1) != kind:
        raise UserErrors(user_error("INVALID", f"{value!r} is not a valid {kind} id", *path))
    return int(match.group(2))


def maybe_gid(value: Any, kind: str) -> int | None:
    match = _GID.match(value) if isinstance(value, str) else None
    return int(match.group(2)) if match and match.group(1) == kind else None


def connection(items: Sequence[Any], first: int | None = None, after: str | None = None) -> dict:
    """A connection page: ``nodes`` and ``pageInfo``; cursors are positions."""
    start = int(after) + 1 if after and after.isdigit() else 0
    end = len(items) if first is None else min(len(items), start + max(first, 0))
    page = list(items[start:end])
    return {
        "nodes": page,
        "pageInfo": {
            "hasNextPage": end < len(items),
            "hasPreviousPage": start > 0,
            "startCursor": str(start) if page else None,
            "endCursor": str(end - 1) if page else None,
        },
    }


def paged(items: Callable[[], Sequence[Any]]) -> Callable[..., dict]:
    def resolve(_info: Any = None, first: int | None = None, after: str | None = None, **_: Any):
        return connection(items(), first, after)

    return resolve


def money_bag(amount: Decimal, currency: str) -> dict[str, Any]:
    money = {"amount": text(amount), "currencyCode": currency}
    return {"shopMoney": money, "presentmentMoney": dict(money)}


# --- catalogue ---------------------------------------------------------------------------------


def option_names(product: dict[str, Any]) -> list[str]:
    return [str(o["name"]) for o in product.get("options") or []][:3]


def selected_options(product: dict[str, Any], variant: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {"name": name, "value": str(variant.get(f"option{i}"))}
        for i, name in enumerate(option_names(product), start=1)
        if variant.get(f"option{i}") is not None
    ]


def variant_title(product: dict[str, Any], variant: dict[str, Any]) -> str:
    values = [o["value"] for o in selected_options(product, variant)]
    return " / ".join(values) or DEFAULT_TITLE


def product_view(store: Store, product: dict[str, Any]) -> dict[str, Any]:
    def options(_info: Any = None, first: int | None = None) -> list[dict[str, Any]]:
        out = []
        for position, name in enumerate(option_names(product), start=1):
            values = dict.fromkeys(
                str(v.get(f"option{position}"))
                for v in product["variants"]
                if v.get(f"option{position}") is not None
            )
            out.append(
                {
                    "id": gid("ProductOption", f"{product['id']}{position}"),
                    "name": name,
                    "position": position,
                    "optionValues": [
                        {
                            "id": gid("ProductOptionValue", f"{product['id']}{position}{n}"),
                            "name": v,
                        }
                        for n, v in enumerate(values)
                    ],
                }
            )
        return out[:first] if first is not None else out

    return {
        "id": gid("Product", product["id"]),
        "legacyResourceId": str(product["id"]),
        "handle": product["handle"],
        "title": product["title"],
        "descriptionHtml": product.get("body_html") or "",
        "status": str(product.get("status") or "active").upper(),
        "options": options,
        "variants": paged(lambda: [variant_view(store, v, product) for v in product["variants"]]),
        "variantsCount": {"count": len(product["variants"]), "precision": "EXACT"},
    }


def variant_view(
    store: Store, variant: dict[str, Any], product: dict[str, Any] | None = None
) -> dict[str, Any]:
    owner = product or store.products[variant["product_id"]]
    return {
        "id": gid("ProductVariant", variant["id"]),
        "legacyResourceId": str(variant["id"]),
        "sku": variant.get("sku") or None,
        "title": variant_title(owner, variant),
        "barcode": variant.get("barcode"),
        "price": variant["price"],
        "compareAtPrice": variant.get("compare_at_price"),
        "selectedOptions": selected_options(owner, variant),
        "product": lambda *_a, **_k: product_view(store, owner),
        "inventoryItem": lambda *_a, **_k: item_view(store, variant),
    }


# --- inventory ---------------------------------------------------------------------------------


def item_view(store: Store, variant: dict[str, Any]) -> dict[str, Any]:
    item = variant["inventory_item_id"]

    def level(_info: Any = None, locationId: str = "", **_: Any) -> dict[str, Any] | None:
        location = maybe_gid(locationId, "Location")
        if location is None or (item, location) not in store.inventory:
            return None
        return level_view(store, item, location)

    return {
        "id": gid("InventoryItem", item),
        "legacyResourceId": str(item),
        "sku": variant.get("sku") or None,
        "tracked": variant.get("inventory_management") == "shopify",
        "inventoryLevel": level,
    }


def level_view(store: Store, item: int, location: int) -> dict[str, Any]:
    def quantities(_info: Any = None, names: list[str] | None = None) -> list[dict[str, Any]]:
        # "available" is what the store may sell; this store has no committed/reserved
        # units, so "on_hand" equals it
        quantity = store.inventory.get((item, location), 0)
        return [
            {
                "id": gid("InventoryQuantity", f"{item}{location}") + f"?name={name}",
                "name": name,
                "quantity": quantity,
                "updatedAt": now_text(),
            }
            for name in names or []
            if name in {"available", "on_hand"}
        ]

    return {
        "id": gid("InventoryLevel", f"{item}{location}") + f"?inventory_item_id={item}",
        "location": location_view(location),
        "quantities": quantities,
    }


def location_view(location: int) -> dict[str, Any]:
    return {"id": gid("Location", location), "legacyResourceId": str(location)}


# --- orders ------------------------------------------------------------------------------------


def line_view(line: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": gid("LineItem", line["id"]),
        "name": line.get("name") or line.get("title") or "",
        "sku": line.get("sku") or None,
        "quantity": int(line["quantity"]),
    }


def fulfillment_view(fulfillment: dict[str, Any]) -> dict[str, Any]:
    def tracking(_info: Any = None, first: int | None = None) -> list[dict[str, Any]]:
        numbers = fulfillment.get("tracking_numbers") or []
        urls = fulfillment.get("tracking_urls") or []
        info = [
            {
                "company": fulfillment.get("tracking_company"),
                "number": number,
                "url": urls[i] if i < len(urls) else None,
            }
            for i, number in enumerate(numbers)
        ]
        return info[:first] if first is not None else info

    return {
        "id": gid("Fulfillment", fulfillment["id"]),
        "legacyResourceId": str(fulfillment["id"]),
        "name": fulfillment.get("name") or "",
        "status": str(fulfillment.get("status") or "success").upper(),
        "createdAt": fulfillment.get("created_at"),
        "trackingInfo": tracking,
    }


def refund_view(refund: dict[str, Any], currency: str) -> dict[str, Any]:
    total = sum(
        (Decimal(t["amount"]) for t in refund["transactions"] if t["kind"] == "refund"),
        Decimal(0),
    )
    return {
        "id": gid("Refund", refund["id"]),
        "legacyResourceId": str(refund["id"]),
        "note": refund.get("note"),
        "createdAt": refund.get("created_at"),
        "totalRefundedSet": money_bag(total, currency),
        "refundLineItems": paged(
            lambda: [
                {
                    "quantity": rl["quantity"],
                    "restockType": str(rl["restock_type"]).upper(),
                    "lineItem": line_view({**rl["line_item"], "quantity": rl["quantity"]}),
                }
                for rl in refund["refund_line_items"]
            ]
        ),
    }


def order_view(store: Store, order: dict[str, Any]) -> dict[str, Any]:
    currency = str(order.get("currency") or "USD")

    def fulfillment_orders(_info: Any = None, first: int | None = None, **_: Any) -> dict:
        fos = [
            {
                "id": gid("FulfillmentOrder", fo["id"]),
                "status": str(fo["status"]).upper(),
                "lineItems": paged(
                    lambda fo=fo: [  # type: ignore[misc]
                        {
                            "id": gid("FulfillmentOrderLineItem", fol["id"]),
                            "remainingQuantity": fol["fulfillable_quantity"],
                            "totalQuantity": fol["quantity"],
                            "lineItem": line_view(by_line[fol["line_item_id"]]),
                        }
                        for fol in fo["line_items"]
                    ]
                ),
            }
            for fo in store.fulfillment_orders_of(order)
        ]
        return connection(fos, first)

    def transactions(_info: Any = None, first: int | None = None, **_: Any) -> list[dict]:
        total = Decimal(order["total_price"])
        sale = {
            "id": gid("OrderTransaction", store.sale_transaction_id(order)),
            "kind": "SALE",
            "status": "SUCCESS",
            "gateway": (order.get("payment_gateway_names") or ["manual"])[0],
            "amountSet": money_bag(total, currency),
            "maximumRefundableV2": {
                "amount": text(total - store.refunded(order)),
                "currencyCode": currency,
            },
            "parentTransaction": None,
        }
        refunds = [
            {
                "id": gid("OrderTransaction", t["id"]),
                "kind": "REFUND",
                "status": str(t["status"]).upper(),
                "gateway": t.get("gateway"),
                "amountSet": money_bag(Decimal(t["amount"]), currency),
                "maximumRefundableV2": None,
                "parentTransaction": sale,
            }
            for r in order.get("refunds") or []
            for t in r["transactions"]
        ]
        every = [sale, *refunds]
        return every[:first] if first is not None else every

    by_line = {li["id"]: li for li in order["line_items"]}
    return {
        "id": gid("Order", order["id"]),
        "legacyResourceId": str(order["id"]),
        "name": order.get("name") or "",
        "currencyCode": currency,
        "lineItems": paged(lambda: [line_view(li) for li in order["line_items"]]),
        "fulfillments": lambda _info=None, first=None: [
            fulfillment_view(f) for f in (order.get("fulfillments") or [])[:first]
        ],
        "fulfillmentOrders": fulfillment_orders,
        "refunds": lambda _info=None, first=None: [
            refund_view(r, currency) for r in (order.get("refunds") or [])[:first]
        ],
        "transactions": transactions,
    }
