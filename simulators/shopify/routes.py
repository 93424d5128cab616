"""The simulator's write side: Admin REST/GraphQL endpoints over ``store.Store`` and the
``/_sim`` controls that drive a shopper, the merchant and the compliance webhooks.

Admin API (same auth, call-limit bucket, faults as the order endpoints):
``POST graphql.json`` (only ``productVariants(first:, query: "sku:…")`` and
``inventoryAdjustQuantities(input: $var) @idempotent(key: …)``, input from variables), ``POST
products.json``, ``PUT products/{id}.json``, ``PUT variants/{id}.json``, ``POST
inventory_levels/set.json``, ``GET inventory_levels.json``, ``GET
orders/{id}/fulfillment_orders.json``, ``POST fulfillments.json``, ``POST
fulfillments/{id}/update_tracking.json``, ``GET orders/{id}/refunds.json``, ``POST
orders/{id}/refunds/calculate.json``, ``POST orders/{id}/refunds.json``, ``POST
customers.json``, ``PUT customers/{id}.json``, ``GET customers/{id}.json``, ``GET
customers/search.json``.

Control (no auth): ``POST /_sim/products`` (seed), ``POST /_sim/checkout`` (a shopper:
refused with 409 "out of stock" when the default location has too little), ``GET
/_sim/state``, ``POST /_sim/send/refund``, ``/_sim/send/customer``,
``/_sim/send/customers_redact``, ``/_sim/send/return`` and ``/_sim/send/{topic}`` (any
payload as is).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from simulators.shopify.samples import _Money, _totals  # same package: reuse its totals
from simulators.shopify.store import AdminError, Store, as_id, not_found, text

if TYPE_CHECKING:
    from simulators.shopify.simulator import ShopifySimulator

GRAPHQL_COST = {
    "requestedQueryCost": 4,
    "actualQueryCost": 4,
    "throttleStatus": {
        "maximumAvailable": 2000.0,
        "currentlyAvailable": 1996,
        "restoreRate": 100.0,
    },
}

ADJUST_COST = {**GRAPHQL_COST, "requestedQueryCost": 10, "actualQueryCost": 10}


def _unknown_order(sim: ShopifySimulator, body: dict[str, Any]) -> JSONResponse | None:
    if int(body.get("order_id", 0)) in sim.orders:
        return None
    return JSONResponse({"detail": "order_id must name an order of the store"}, 404)


def _sim(request: Request) -> ShopifySimulator:
    sim: ShopifySimulator = request.app.state.simulator
    return sim


def _store(request: Request) -> Store:
    return _sim(request).store


async def _body(request: Request, key: str | None = None) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        raise AdminError(400, {"errors": "body is not valid JSON"}) from None
    if key is not None:
        data = data.get(key) if isinstance(data, dict) else None
        if not isinstance(data, dict):
            raise AdminError(400, {"errors": {key: "Required parameter missing or invalid"}})
    if not isinstance(data, dict):
        raise AdminError(400, {"errors": "body must be a JSON object"})
    return data


def _order(request: Request, order_id: str) -> dict[str, Any]:
    order = _sim(request).orders.get(int(order_id)) if order_id.isdigit() else None
    if order is None:
        raise not_found()
    return order


def _id(value: str) -> int:
    if not value.isdigit():
        raise not_found()
    return int(value)


def add_store_routes(app: FastAPI, admin_call: Callable[..., Any]) -> None:
    """Mount the write side; ``admin_call`` is the simulator's guard of every Admin call
    (token, call-limit bucket, faults)."""
    app.state.admin_call = admin_call
    _add_admin_writes(app)
    _add_admin_fulfillment(app)
    _add_admin_customers(app)
    _add_controls(app)


async def _guarded(
    request: Request, response: Response, version: str, handler: Callable[[], Any]
) -> Any:
    stat = f"admin {request.method} {request.url.path.split('/', 4)[-1]}"
    return await request.app.state.admin_call(request, response, version, handler, stat)


# the mutation field with its input variable and, right after it, the optional directive
_ADJUST = re.compile(
    r"inventoryAdjustQuantities\s*\(\s*input\s*:\s*\$(?P<input>\w+)\s*\)"
    r"(?:\s*@idempotent\s*\(\s*key\s*:\s*"
    r'(?:\$(?P<var>\w+)|"(?P<literal>(?:[^"\\]|\\.)*)")\s*\))?'
)


def _adjust(store: Store, query: str, variables: dict[str, Any]) -> Any:
    """``inventoryAdjustQuantities`` with Shopify's ``@idempotent`` on the mutation field."""
    match = _ADJUST.search(query)
    if match is None:
        return {
            "errors": [
                {
                    "message": "the simulator reads inventoryAdjustQuantities(input: $variable) "
                    "with @idempotent(key: …) right after the field's arguments"
                }
            ]
        }
    if match.group("var") is not None:
        key = variables.get(match.group("var"))
        if not isinstance(key, str):
            message = f"Variable ${match.group('var')} of type String! was provided invalid value"
            return {"errors": [{"message": message}]}
    elif match.group("literal") is not None:
        key = json.loads(f'"{match.group("literal")}"')
    elif "@idempotent" in query:
        # GraphQL validation: the directive is allowed on the mutation field only
        return {"errors": [{"message": "Directive 'idempotent' may not be used on MUTATION"}]}
    else:
        key = None  # optional before API version 2026-04: applied without replay protection
    payload = store.adjust_quantities(variables.get(match.group("input")), key)
    return {"data": {"inventoryAdjustQuantities": payload}, "extensions": {"cost": ADJUST_COST}}


def _graphql(store: Store, body: dict[str, Any]) -> Any:
    query = str(body.get("query") or "")
    variables = body.get("variables") or {}
    if "inventoryAdjustQuantities" in query:
        return _adjust(store, query, variables)
    if "productVariants" not in query:
        return {
            "errors": [
                {
                    "message": "the simulator answers only productVariants queries and "
                    "inventoryAdjustQuantities mutations"
                }
            ]
        }
    first = int(variables.get("first") or 10)
    search = str(variables.get("query") or "")
    nodes = [
        {
            "legacyResourceId": str(v["id"]),
            "sku": v.get("sku"),
            "price": v["price"],
            "compareAtPrice": v["compare_at_price"],
            "product": {"legacyResourceId": str(v["product_id"])},
            "inventoryItem": {"legacyResourceId": str(v["inventory_item_id"])},
        }
        for v in store.search_variants(search, first)
    ]
    return {"data": {"productVariants": {"nodes": nodes}}, "extensions": {"cost": GRAPHQL_COST}}


def _add_admin_writes(app: FastAPI) -> None:
    base = "/admin/api/{version}"

    @app.post(base + "/graphql.json")
    async def graphql(request: Request, response: Response, version: str) -> Any:
        body = await _body(request)
        return await _guarded(request, response, version, lambda: _graphql(_store(request), body))

    @app.post(base + "/products.json", status_code=201)
    async def create_product(request: Request, response: Response, version: str) -> Any:
        data = await _body(request, "product")
        return await _guarded(
            request, response, version, lambda: {"product": _store(request).create_product(data)}
        )

    @app.put(base + "/products/{product_id}.json")
    async def update_product(
        request: Request, response: Response, version: str, product_id: str
    ) -> Any:
        data = await _body(request, "product")
        return await _guarded(
            request,
            response,
            version,
            lambda: {"product": _store(request).update_product(_id(product_id), data)},
        )

    @app.put(base + "/variants/{variant_id}.json")
    async def update_variant(
        request: Request, response: Response, version: str, variant_id: str
    ) -> Any:
        data = await _body(request, "variant")
        return await _guarded(
            request,
            response,
            version,
            lambda: {"variant": _store(request).update_variant(_id(variant_id), data)},
        )

    @app.post(base + "/inventory_levels/set.json")
    async def set_level(request: Request, response: Response, version: str) -> Any:
        data = await _body(request)

        def handler() -> Any:
            store = _store(request)
            if not isinstance(data.get("available"), int) or isinstance(data["available"], bool):
                raise AdminError(422, {"errors": {"available": ["must be an integer"]}})
            item = as_id(data.get("inventory_item_id"), "inventory_item_id")
            location = as_id(data.get("location_id"), "location_id")
            return {"inventory_level": store.set_level(item, location, data["available"])}

        return await _guarded(request, response, version, handler)

    @app.get(base + "/inventory_levels.json")
    async def levels(request: Request, response: Response, version: str) -> Any:
        def handler() -> Any:
            store, params = _store(request), request.query_params
            items = _ids(params.get("inventory_item_ids"))
            locations = _ids(params.get("location_ids"))
            if items is None and locations is None:
                raise AdminError(
                    422, {"errors": "inventory_item_ids or location_ids must be present"}
                )
            return {
                "inventory_levels": [
                    store.level(item, loc)
                    for (item, loc) in sorted(store.inventory)
                    if (items is None or item in items) and (locations is None or loc in locations)
                ]
            }

        return await _guarded(request, response, version, handler)


def _ids(raw: str | None) -> set[int] | None:
    if not raw:
        return None
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not all(p.isdigit() for p in parts):
        raise AdminError(400, {"errors": "ids must be comma-separated numbers"})
    return {int(p) for p in parts}


def _add_admin_fulfillment(app: FastAPI) -> None:
    base = "/admin/api/{version}"

    @app.get(base + "/orders/{order_id}/fulfillment_orders.json")
    async def fulfillment_orders(
        request: Request, response: Response, version: str, order_id: str
    ) -> Any:
        return await _guarded(
            request,
            response,
            version,
            lambda: {
                "fulfillment_orders": _store(request).fulfillment_orders_of(
                    _order(request, order_id)
                )
            },
        )

    @app.post(base + "/fulfillments.json", status_code=201)
    async def fulfill(request: Request, response: Response, version: str) -> Any:
        data = await _body(request, "fulfillment")
        sim = _sim(request)
        return await _guarded(
            request,
            response,
            version,
            lambda: {"fulfillment": sim.store.create_fulfillment(sim.orders, data)},
        )

    @app.post(base + "/fulfillments/{fulfillment_id}/update_tracking.json")
    async def update_tracking(
        request: Request, response: Response, version: str, fulfillment_id: str
    ) -> Any:
        data = await _body(request, "fulfillment")
        sim = _sim(request)
        return await _guarded(
            request,
            response,
            version,
            lambda: {
                "fulfillment": sim.store.update_tracking(sim.orders, _id(fulfillment_id), data)
            },
        )

    @app.get(base + "/orders/{order_id}/refunds.json")
    async def refunds(request: Request, response: Response, version: str, order_id: str) -> Any:
        return await _guarded(
            request,
            response,
            version,
            lambda: {"refunds": _order(request, order_id).get("refunds") or []},
        )

    @app.post(base + "/orders/{order_id}/refunds/calculate.json")
    async def calculate(request: Request, response: Response, version: str, order_id: str) -> Any:
        data = await _body(request, "refund")
        return await _guarded(
            request,
            response,
            version,
            lambda: {"refund": _store(request).calculate_refund(_order(request, order_id), data)},
        )

    @app.post(base + "/orders/{order_id}/refunds.json", status_code=201)
    async def refund(request: Request, response: Response, version: str, order_id: str) -> Any:
        data = await _body(request, "refund")
        return await _guarded(
            request,
            response,
            version,
            lambda: {"refund": _store(request).create_refund(_order(request, order_id), data)},
        )


def _add_admin_customers(app: FastAPI) -> None:
    base = "/admin/api/{version}"

    @app.get(base + "/customers/search.json")
    async def search(request: Request, response: Response, version: str) -> Any:
        query = request.query_params.get("query", "")
        return await _guarded(
            request,
            response,
            version,
            lambda: {"customers": _store(request).search_customers(query)},
        )

    @app.post(base + "/customers.json", status_code=201)
    async def create(request: Request, response: Response, version: str) -> Any:
        data = await _body(request, "customer")
        return await _guarded(
            request, response, version, lambda: {"customer": _store(request).create_customer(data)}
        )

    @app.get(base + "/customers/{customer_id}.json")
    async def get(request: Request, response: Response, version: str, customer_id: str) -> Any:
        def handler() -> Any:
            customer = _store(request).customers.get(_id(customer_id))
            if customer is None:
                raise not_found()
            return {"customer": customer}

        return await _guarded(request, response, version, handler)

    @app.put(base + "/customers/{customer_id}.json")
    async def update(request: Request, response: Response, version: str, customer_id: str) -> Any:
        data = await _body(request, "customer")
        return await _guarded(
            request,
            response,
            version,
            lambda: {"customer": _store(request).update_customer(_id(customer_id), data)},
        )


# --- control ---------------------------------------------------------------------------------


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


def _add_controls(app: FastAPI) -> None:
    @app.post("/_sim/products", status_code=201)
    async def seed(request: Request) -> Any:
        body = await _body(request)
        specs = body.get("products") or [body]
        if not all(isinstance(s, dict) and s.get("sku") for s in specs):
            return JSONResponse({"detail": "each product needs a sku"}, 422)
        return {"products": [_store(request).seed(s) for s in specs]}

    @app.post("/_sim/checkout")
    async def shopper_checkout(request: Request) -> Any:
        sim = _sim(request)
        status, result = checkout(sim, await _body(request))
        if status != 201:
            return JSONResponse(result, status)
        sent = await sim.notify(["orders/create"], result)
        return JSONResponse(
            {"order": result, "webhooks": [s.as_dict() for s in sent]}, status_code=201
        )

    @app.get("/_sim/state")
    async def state(request: Request) -> Any:
        sim = _sim(request)
        return sim.store.state(sim.orders)

    @app.post("/_sim/send/refund")
    async def send_refund(request: Request) -> Any:
        sim = _sim(request)
        body = await _body(request)
        if (unknown := _unknown_order(sim, body)) is not None:
            return unknown
        refund = _merchant_refund(sim, body)
        sent = await sim.notify(["refunds/create"], refund)
        return {"refund": refund, "webhooks": [s.as_dict() for s in sent]}

    @app.post("/_sim/send/return")
    async def send_return(request: Request) -> Any:
        sim = _sim(request)
        body = await _body(request)
        if (unknown := _unknown_order(sim, body)) is not None:
            return unknown
        payload = _return_payload(sim, body)
        sent = await sim.notify(["returns/request"], payload)
        return {"return": payload, "webhooks": [s.as_dict() for s in sent]}

    @app.post("/_sim/send/customer")
    async def send_customer(request: Request) -> Any:
        """Create (or, with ``id``, update) a customer as the merchant would; sends the topic."""
        sim = _sim(request)
        body = await _body(request)
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
        sim = _sim(request)
        payload = _redact_payload(sim, await _body(request))
        sent = await sim.notify(["customers/redact"], payload)
        return {"payload": payload, "webhooks": [s.as_dict() for s in sent]}

    @app.post("/_sim/send/{topic:path}")
    async def send_any(request: Request, topic: str) -> Any:
        """Any topic with the request body as the payload, signed and sent as is."""
        sim = _sim(request)
        payload = await _body(request)
        sent = await sim.notify([topic], payload)
        return {"webhooks": [s.as_dict() for s in sent]}
