"""The simulator's write side: Admin REST/GraphQL endpoints over ``store.Store`` (the
``/_sim`` controls that drive a shopper, the merchant and the compliance webhooks are in
``control``).

Admin API (same auth, call-limit bucket, faults as the order endpoints):
``POST graphql.json`` (the GraphQL subset in ``graphql_api``: catalogue, stock, fulfillment
and refunds over the same store as the REST endpoints), ``POST
products.json``, ``PUT products/{id}.json``, ``PUT variants/{id}.json``, ``POST
inventory_levels/set.json``, ``GET inventory_levels.json``, ``GET
orders/{id}/fulfillment_orders.json``, ``POST fulfillments.json``, ``POST
fulfillments/{id}/update_tracking.json``, ``GET orders/{id}/refunds.json``, ``POST
orders/{id}/refunds/calculate.json``, ``POST orders/{id}/refunds.json``, ``POST
customers.json``, ``PUT customers/{id}.json``, ``GET customers/{id}.json``, ``GET
customers/search.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response

from simulators.shopify import graphql_api
from simulators.shopify.shop import sim_of
from simulators.shopify.store import Store
from simulators.shopify.values import AdminError, as_id, not_found


def store_of(request: Request) -> Store:
    return sim_of(request).store


async def read_body(request: Request, key: str | None = None) -> dict[str, Any]:
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
    order = sim_of(request).orders.get(int(order_id)) if order_id.isdigit() else None
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


async def _guarded(
    request: Request, response: Response, version: str, handler: Callable[[], Any]
) -> Any:
    stat = f"admin {request.method} {request.url.path.split('/', 4)[-1]}"
    return await request.app.state.admin_call(request, response, version, handler, stat)


def _add_admin_writes(app: FastAPI) -> None:
    base = "/admin/api/{version}"

    @app.post(base + "/graphql.json")
    async def graphql(request: Request, response: Response, version: str) -> Any:
        body = await read_body(request)
        sim = sim_of(request)
        return await _guarded(
            request,
            response,
            version,
            lambda: graphql_api.answer(
                sim.store, sim.orders, body, version, sim.bucket.clock, app=sim.app
            ),
        )

    @app.post(base + "/products.json", status_code=201)
    async def create_product(request: Request, response: Response, version: str) -> Any:
        data = await read_body(request, "product")
        return await _guarded(
            request, response, version, lambda: {"product": store_of(request).create_product(data)}
        )

    @app.put(base + "/products/{product_id}.json")
    async def update_product(
        request: Request, response: Response, version: str, product_id: str
    ) -> Any:
        data = await read_body(request, "product")
        return await _guarded(
            request,
            response,
            version,
            lambda: {"product": store_of(request).update_product(_id(product_id), data)},
        )

    @app.put(base + "/variants/{variant_id}.json")
    async def update_variant(
        request: Request, response: Response, version: str, variant_id: str
    ) -> Any:
        data = await read_body(request, "variant")
        return await _guarded(
            request,
            response,
            version,
            lambda: {"variant": store_of(request).update_variant(_id(variant_id), data)},
        )

    @app.post(base + "/inventory_levels/set.json")
    async def set_level(request: Request, response: Response, version: str) -> Any:
        data = await read_body(request)

        def handler() -> Any:
            store = store_of(request)
            if not isinstance(data.get("available"), int) or isinstance(data["available"], bool):
                raise AdminError(422, {"errors": {"available": ["must be an integer"]}})
            item = as_id(data.get("inventory_item_id"), "inventory_item_id")
            location = as_id(data.get("location_id"), "location_id")
            return {"inventory_level": store.set_level(item, location, data["available"])}

        return await _guarded(request, response, version, handler)

    @app.get(base + "/inventory_levels.json")
    async def levels(request: Request, response: Response, version: str) -> Any:
        def handler() -> Any:
            store, params = store_of(request), request.query_params
            items = _ids(params.get("inventory_item_ids"))
            locations = _ids(params.get("location_ids"))
            if items is None and locations is None:
                raise AdminError(
                    422, {"errors": "inventory_item_ids or location_ids must be present"}
                )
            keys = store.inventory if items is None else store.inventory.keys_of(items)
            return {
                "inventory_levels": [
                    store.level(item, loc)
                    for (item, loc) in sorted(keys)
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
                "fulfillment_orders": store_of(request).fulfillment_orders_of(
                    _order(request, order_id)
                )
            },
        )

    @app.post(base + "/fulfillments.json", status_code=201)
    async def fulfill(request: Request, response: Response, version: str) -> Any:
        data = await read_body(request, "fulfillment")
        sim = sim_of(request)
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
        data = await read_body(request, "fulfillment")
        sim = sim_of(request)
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
        data = await read_body(request, "refund")
        return await _guarded(
            request,
            response,
            version,
            lambda: {"refund": store_of(request).calculate_refund(_order(request, order_id), data)},
        )

    @app.post(base + "/orders/{order_id}/refunds.json", status_code=201)
    async def refund(request: Request, response: Response, version: str, order_id: str) -> Any:
        data = await read_body(request, "refund")
        return await _guarded(
            request,
            response,
            version,
            lambda: {"refund": store_of(request).create_refund(_order(request, order_id), data)},
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
            lambda: {"customers": store_of(request).search_customers(query)},
        )

    @app.post(base + "/customers.json", status_code=201)
    async def create(request: Request, response: Response, version: str) -> Any:
        data = await read_body(request, "customer")
        return await _guarded(
            request,
            response,
            version,
            lambda: {"customer": store_of(request).create_customer(data)},
        )

    @app.get(base + "/customers/{customer_id}.json")
    async def get(request: Request, response: Response, version: str, customer_id: str) -> Any:
        def handler() -> Any:
            customer = store_of(request).customers.get(_id(customer_id))
            if customer is None:
                raise not_found()
            return {"customer": customer}

        return await _guarded(request, response, version, handler)

    @app.put(base + "/customers/{customer_id}.json")
    async def update(request: Request, response: Response, version: str, customer_id: str) -> Any:
        data = await read_body(request, "customer")
        return await _guarded(
            request,
            response,
            version,
            lambda: {"customer": store_of(request).update_customer(_id(customer_id), data)},
        )
