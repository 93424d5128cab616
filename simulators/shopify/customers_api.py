"""``GET /admin/api/{version}/customers.json``: the customer list a backfill reads.

As documented for the REST Customer resource (https://shopify.dev/docs/api/admin-rest/
latest/resources/customer#get-customers): ``limit`` (1 to 250, default 50),
``updated_at_min`` (inclusive, ISO 8601), ``since_id``, ``ids``; cursor paging with
``page_info`` in the ``Link`` header (rel="next"), with which only ``limit`` and
``fields`` may be sent (https://shopify.dev/docs/api/usage/pagination-rest). Customers come
by id ascending; each is the same JSON as a ``customers/create`` webhook body. Token, call
limit and faults as every Admin call (``orders_api.admin_call``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request, Response

from simulators.shopify.orders_api import admin_call, updated_at_min
from simulators.shopify.shop import sim_of, updated_since
from simulators.shopify.values import AdminError

MAX_LIMIT = 250


def _bad(name: str, message: str) -> AdminError:
    return AdminError(400, {"errors": {name: message}})


def _token(after: int, updated_min: str | None) -> str:
    raw = json.dumps({"a": after, "u": updated_min}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _query(params: Mapping[str, str]) -> tuple[int | None, str | None]:
    """(after id, updated_at_min) from the first page's filters or a page_info."""
    if "page_info" in params:
        if set(params) - {"page_info", "limit", "fields"}:
            raise _bad("page_info", "only limit and fields may be sent with page_info")
        token = params["page_info"]
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            return int(data["a"]), data["u"]
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise _bad("page_info", "Invalid value.") from None
    since = params.get("since_id")
    if since is not None and not since.isdigit():
        raise _bad("since_id", "must be a positive integer")
    updated = params.get("updated_at_min") or None
    updated_at_min(updated)
    return (int(since) if since else None), updated


def _limit(params: Mapping[str, str]) -> int:
    text = params.get("limit", "50")
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise _bad("limit", f"must be between 1 and {MAX_LIMIT}")
    return int(text)


def add_customer_list_route(app: FastAPI) -> None:
    @app.get("/admin/api/{version}/customers.json")
    async def list_customers(request: Request, response: Response, version: str) -> Any:
        def handler() -> Any:
            params = request.query_params
            limit = _limit(params)
            after, updated = _query(params)
            moment = updated_at_min(updated)
            customers = sim_of(request).store.customers
            ids = [
                cid
                for cid in sorted(customers)
                if (after is None or cid > after)
                and (moment is None or updated_since(customers[cid], moment))
            ]
            shown = ids[:limit]
            if len(ids) > limit:
                url = str(request.url.replace(query=""))
                nxt = _token(shown[-1], updated)
                response.headers["Link"] = f'<{url}?limit={limit}&page_info={nxt}>; rel="next"'
            return {"customers": [customers[cid] for cid in shown]}

        return await admin_call(request, response, version, handler, "admin customers.json")
