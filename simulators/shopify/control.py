"""The simulator's control endpoints under ``/_sim/`` (no auth): seeding products, a
shopper's checkout, the store's state, the merchant's refunds, returns, customers and the
compliance webhooks (``/_sim/send/…``), orders and their cancellation, the webhook target,
faults, stats and reset."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from simulators.shopify.routes import read_body, store_of
from simulators.shopify.samples import _Money, _totals  # same package: reuse its totals
from simulators.shopify.shop import ALL_TOPICS, Faults, ShopifySimulator, WebhookTarget, sim_of
from simulators.shopify.store import Store
from simulators.shopify.values import AdminError, text

# --- control bodies --------------------------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewOrderIn(_In):
    order: dict[str, Any] | None = None
    skus: list[str] | None = None
    quantities: list[int] | None = None
    guest: bool = False
    cancelled: bool = False
    discount: Decimal | None = None
    discount_code: str = "WELCOME"
    tax_rate: Decimal | None = None
    shipping: Decimal = Decimal("10.00")
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    presentment_currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    presentment_rate: Decimal = Decimal("0.92")


class WebhookTargetIn(_In):
    url: str = Field(pattern=r"^https?://")
    secret: str = Field(min_length=1)
    topics: list[str] = Field(default_factory=lambda: list(ALL_TOPICS))


class OutageIn(_In):
    count: int = Field(default=0, ge=0)
    until_cleared: bool = False


class RateLimitIn(_In):
    count: int = Field(ge=0)
    retry_after: float = Field(default=1.0, ge=0)


class FaultsIn(_In):
    latency_seconds: float | None = Field(default=None, ge=0)
    outage: OutageIn | None = None
    rate_limit: RateLimitIn | None = None


# --- the store: shopper, merchant, compliance ------------------------------------------------


def _unknown_order(sim: ShopifySimulator, body: dict[str, Any]) -> JSONResponse | None:
    if int(body.get("order_id", 0)) in sim.orders:
        return None
    return JSONResponse({"detail": "order_id must name an order of the store"}, 404)


def checkout(sim: ShopifySimulator, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A shopper checking out: every line must be in stock at the default location."""
    store = sim.store
    lines = body.get("line_items") or []
    if not lines or not all(isinstance(li, dict) and li.get("sku") for li in lines):
        return 422, {"detail": "line_items must be a non-empty list of {sku, quantity}"}
    wanted: Counter[str] = Counter()
    for li in lines:
        quantity = li.get("quantity", 1)
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            return 422, {"detail": f"quantity of {li['sku']!r} must be a whole number ≥ 1"}
        wanted[str(li["sku"])] += quantity
    short = []
    for sku, qty in wanted.items():
        if store.variant_by_sku(sku) is None:
            return 422, {"detail": f"no product with SKU {sku!r} in the store"}
        if store.available(sku) < qty:
            short.append({"sku": sku, "requested": qty, "available": store.available(sku)})
    for sku in wanted:
        store.checkouts.setdefault(sku, Counter())["refused" if short else "accepted"] += 1
    if short:
        return 409, {"reason": "out of stock", "lines": short}
    for sku, qty in wanted.items():
        variant = store.variant_by_sku(sku)
        assert variant is not None
        store.adjust(variant["inventory_item_id"], store.default_location_id, -qty)
    skus = list(wanted)
    order = sim.new_order(
        skus=skus,
        quantities=[wanted[s] for s in skus],
        shipping=str(body.get("shipping", "0.00")),
        guest=bool(body.get("guest", False)),
    )
    _price_from_catalogue(store, order)
    store.fulfillment_orders_of(order)
    return 201, order


def _price_from_catalogue(store: Store, order: dict[str, Any]) -> None:
    """Lines at the store's current variant prices, totals recomputed to add up."""
    currency = order["currency"]
    money = _Money(currency, currency, Decimal(1))
    for line in order["line_items"]:
        variant = store.variant_by_sku(line["sku"])
        if variant is None:
            continue
        price = Decimal(variant["price"])
        line.update(
            price=text(price),
            price_set=money.set(price),
            variant_id=variant["id"],
            product_id=variant["product_id"],
            tax_lines=[],
            discount_allocations=[],
        )
    shipping = sum((Decimal(s["price"]) for s in order.get("shipping_lines") or []), Decimal(0))
    order.update(
        _totals(order["line_items"], Decimal(0), shipping, money),
        tax_lines=[],
        discount_codes=[],
        discount_applications=[],
    )


def _redact_payload(sim: ShopifySimulator, body: dict[str, Any]) -> dict[str, Any]:
    customer: dict[str, Any] = {}
    if body.get("customer_id") is not None:
        customer = dict(sim.store.customers.get(int(body["customer_id"])) or {})
        customer.setdefault("id", int(body["customer_id"]))
    email = body.get("email") or customer.get("email")
    orders = [
        oid
        for oid, o in sim.orders.items()
        if email and (o.get("email") or "").lower() == str(email).lower()
    ]
    return {
        "shop_id": 954889,
        "shop_domain": sim.shop_domain,
        "customer": {
            "id": customer.get("id"),
            "email": email,
            "phone": body.get("phone") or customer.get("phone"),
        },
        "orders_to_redact": orders,
    }


def _return_payload(sim: ShopifySimulator, body: dict[str, Any]) -> dict[str, Any]:
    order = sim.orders[int(body["order_id"])]
    by_sku = {li.get("sku"): li for li in order["line_items"]}
    return_id = sim.store.new_id()
    lines = []
    for line in body.get("line_items") or []:
        item = by_sku.get(line["sku"])
        if item is None:
            raise AdminError(422, {"detail": f"SKU {line['sku']!r} is not on the order"})
        lines.append(
            {
                "id": sim.store.new_id(),
                "quantity": int(line.get("quantity", 1)),
                "return_reason": line.get("reason", "unknown"),
                "return_reason_note": line.get("note", ""),
                "customer_note": None,
                "fulfillment_line_item": {
                    "id": sim.store.new_id(),
                    "line_item": {"id": item["id"], "sku": item.get("sku")},
                },
            }
        )
    return {
        "id": return_id,
        "admin_graphql_api_id": f"gid://shopify/Return/{return_id}",
        "name": f"{order.get('name')}-R1",
        "status": "requested",
        "order": {"id": order["id"], "name": order.get("name")},
        "created_at": order.get("updated_at") or order.get("created_at"),
        "total_return_line_items": len(lines),
        "return_line_items": lines,
    }


def _merchant_refund(sim: ShopifySimulator, body: dict[str, Any]) -> dict[str, Any]:
    """The merchant refunds in the Shopify admin (lines by SKU, optional amount)."""
    order = sim.orders[int(body["order_id"])]
    by_sku = {li.get("sku"): li for li in order["line_items"]}
    restock = "return" if body.get("restock") else "no_restock"
    lines = []
    for line in body.get("line_items") or []:
        item = by_sku.get(line["sku"])
        if item is None:
            raise AdminError(422, {"detail": f"SKU {line['sku']!r} is not on the order"})
        lines.append(
            {
                "line_item_id": item["id"],
                "quantity": int(line.get("quantity", 1)),
                "restock_type": restock,
            }
        )
    store = sim.store
    calculated = store.calculate_refund(order, {"refund_line_items": lines})
    suggested = calculated["transactions"][0]
    amount = body.get("amount", suggested["amount"])
    return store.create_refund(
        order,
        {
            "note": body.get("note"),
            "refund_line_items": lines,
            "transactions": [
                {
                    "parent_id": suggested["parent_id"],
                    "amount": str(amount),
                    "kind": "refund",
                    "gateway": suggested["gateway"],
                }
            ],
        },
    )


def _add_store_controls(app: FastAPI) -> None:
    @app.post("/_sim/products", status_code=201)
    async def seed(request: Request) -> Any:
        body = await read_body(request)
        specs = body.get("products") or [body]
        if not all(isinstance(s, dict) and s.get("sku") for s in specs):
            return JSONResponse({"detail": "each product needs a sku"}, 422)
        return {"products": [store_of(request).seed(s) for s in specs]}

    @app.post("/_sim/checkout")
    async def shopper_checkout(request: Request) -> Any:
        sim = sim_of(request)
        status, result = checkout(sim, await read_body(request))
        if status != 201:
            return JSONResponse(result, status)
        sent = await sim.notify(["orders/create"], result)
        return JSONResponse(
            {"order": result, "webhooks": [s.as_dict() for s in sent]}, status_code=201
        )

    @app.get("/_sim/state")
    async def state(request: Request) -> Any:
        sim = sim_of(request)
        return sim.store.state(sim.orders)

    @app.post("/_sim/send/refund")
    async def send_refund(request: Request) -> Any:
        sim = sim_of(request)
        body = await read_body(request)
        if (unknown := _unknown_order(sim, body)) is not None:
            return unknown
        refund = _merchant_refund(sim, body)
        sent = await sim.notify(["refunds/create"], refund)
        return {"refund": refund, "webhooks": [s.as_dict() for s in sent]}

    @app.post("/_sim/send/return")
    async def send_return(request: Request) -> Any:
        sim = sim_of(request)
        body = await read_body(request)
        if (unknown := _unknown_order(sim, body)) is not None:
            return unknown
        payload = _return_payload(sim, body)
        sent = await sim.notify(["returns/request"], payload)
        return {"return": payload, "webhooks": [s.as_dict() for s in sent]}

    @app.post("/_sim/send/customer")
    async def send_customer(request: Request) -> Any:
        """Create (or, with ``id``, update) a customer as the merchant would; sends the topic."""
        sim = sim_of(request)
        body = await read_body(request)
        nested = body.get("customer")
        data: dict[str, Any] = nested if isinstance(nested, dict) else body
        if data.get("id") is not None:
            customer = sim.store.update_customer(int(data["id"]), data)
            topic = "customers/update"
        else:
            customer = sim.store.create_customer(data)
            topic = "customers/create"
        sent = await sim.notify([topic], customer)
        return {"customer": customer, "webhooks": [s.as_dict() for s in sent]}

    @app.post("/_sim/send/customers_redact")
    async def send_redact(request: Request) -> Any:
        sim = sim_of(request)
        payload = _redact_payload(sim, await read_body(request))
        sent = await sim.notify(["customers/redact"], payload)
        return {"payload": payload, "webhooks": [s.as_dict() for s in sent]}

    @app.post("/_sim/send/{topic:path}")
    async def send_any(request: Request, topic: str) -> Any:
        """Any topic with the request body as the payload, signed and sent as is."""
        sim = sim_of(request)
        payload = await read_body(request)
        sent = await sim.notify([topic], payload)
        return {"webhooks": [s.as_dict() for s in sent]}


# --- orders, webhook target, faults ----------------------------------------------------------


def add_control_routes(app: FastAPI) -> None:
    """Mount every ``/_sim/`` endpoint."""
    _add_store_controls(app)

    @app.post("/_sim/orders", status_code=201)
    async def create_order(request: Request, body: NewOrderIn | None = None) -> Any:
        sim, body = sim_of(request), body or NewOrderIn()
        if body.order is not None:
            if not str(body.order.get("id", "")).isdigit():
                return JSONResponse({"detail": "order.id must be a numeric id"}, 422)
            order = sim.add_order(body.order)
        else:
            try:
                order = sim.new_order(**body.model_dump(exclude={"order"}))
            except ValueError as exc:  # e.g. more quantities than SKUs
                return JSONResponse({"detail": str(exc)}, 422)
        sent = await sim.notify(["orders/create"], order)
        return {"order": order, "webhooks": [s.as_dict() for s in sent]}

    @app.get("/_sim/orders")
    async def all_orders(request: Request) -> Any:
        sim = sim_of(request)
        return {"orders": [sim.orders[i] for i in sorted(sim.orders)]}

    @app.post("/_sim/orders/{order_id}/cancel")
    async def cancel(request: Request, order_id: int) -> Any:
        sim = sim_of(request)
        if order_id not in sim.orders:
            return JSONResponse({"detail": f"no order {order_id}"}, 404)
        if sim.orders[order_id].get("cancelled_at"):
            return JSONResponse({"detail": f"order {order_id} is already cancelled"}, 409)
        order = sim.cancel_order(order_id)
        sent = await sim.notify(["orders/cancelled", "orders/updated"], order)
        return {"order": order, "webhooks": [s.as_dict() for s in sent]}

    @app.get("/_sim/webhooks")
    async def webhooks(request: Request) -> Any:
        sim = sim_of(request)
        target = sim.target
        return {
            "url": target.url if target else None,
            "topics": sorted(target.topics) if target else [],
            "deliveries": [s.as_dict() for s in sim.sent],
        }

    @app.post("/_sim/webhooks")
    async def set_webhooks(request: Request, body: WebhookTargetIn) -> Any:
        sim_of(request).target = WebhookTarget(body.url, body.secret, frozenset(body.topics))
        return {"url": body.url, "topics": sorted(body.topics)}

    @app.delete("/_sim/webhooks")
    async def clear_webhooks(request: Request) -> Any:
        sim_of(request).target = None
        return {"url": None, "topics": []}

    _add_fault_routes(app)


def _add_fault_routes(app: FastAPI) -> None:
    @app.get("/_sim/faults")
    async def faults(request: Request) -> Any:
        return sim_of(request).faults.snapshot()

    @app.post("/_sim/faults")
    async def set_faults(request: Request, body: FaultsIn) -> Any:
        sim = sim_of(request)
        sim.set_faults(body)
        return sim.faults.snapshot()

    @app.delete("/_sim/faults")
    async def clear_faults(request: Request) -> Any:
        sim = sim_of(request)
        sim.faults = Faults()
        return sim.faults.snapshot()

    @app.get("/_sim/stats")
    async def stats(request: Request) -> Any:
        sim = sim_of(request)
        return {
            "orders": len(sim.orders),
            "bucket": {"used": sim.bucket.used, "size": sim.bucket.size},
            "counts": dict(sim.stats),
        }

    @app.post("/_sim/reset")
    async def reset(request: Request) -> Any:
        sim_of(request).reset()
        return {"reset": True}
