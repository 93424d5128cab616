"""The Admin API's order endpoints: list (filters, ``fields``, cursor paging by
``page_info`` in the ``Link`` header), count and one order; ``admin_call`` is the guard
every Admin call goes through (token, call-limit bucket, faults)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request, Response

from simulators.shopify.shop import sim_of
from simulators.shopify.values import AdminError, not_found

MAX_LIMIT = 250


def _bad_param(name: str, message: str) -> AdminError:
    return AdminError(400, {"errors": {name: message}})


# --- paging ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """A cursor: the query it belongs to and where the page starts."""

    status: str
    since_id: int | None
    ids: tuple[int, ...] | None
    after: int | None = None
    before: int | None = None
    updated_min: str | None = None  # ISO 8601, inclusive

    def token(self) -> str:
        raw = json.dumps(
            {
                "s": self.status,
                "i": self.since_id,
                "d": self.ids,
                "a": self.after,
                "b": self.before,
                "u": self.updated_min,
            },
            separators=(",", ":"),
        ).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def from_token(cls, token: str) -> Page:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = json.loads(raw)
            ids = tuple(int(i) for i in data["d"]) if data["d"] is not None else None
            return cls(data["s"], data["i"], ids, data["a"], data["b"], data.get("u"))
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise _bad_param("page_info", "Invalid value.") from None

    def moved(self, *, after: int | None = None, before: int | None = None) -> Page:
        return Page(self.status, self.since_id, self.ids, after, before, self.updated_min)

    @property
    def updated_since(self) -> datetime | None:
        return updated_at_min(self.updated_min)


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise _bad_param(name, "must be a positive integer")
    return int(value)


def _limit(params: Mapping[str, str]) -> int:
    limit = _int_param(params, "limit")
    if limit is None:
        return 50
    if not 1 <= limit <= MAX_LIMIT:
        raise _bad_param("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def _query(params: Mapping[str, str]) -> Page:
    """The first-page cursor from filters, or the one in ``page_info``."""
    if "page_info" in params:
        extra = sorted(set(params) - {"page_info", "limit", "fields"})
        if extra:
            raise _bad_param(
                "page_info",
                f"cannot be combined with {', '.join(extra)}; only limit and fields may be "
                "sent with page_info",
            )
        return Page.from_token(params["page_info"])
    status = params.get("status", "open")
    if status not in {"open", "closed", "cancelled", "any"}:
        raise _bad_param("status", "must be one of open, closed, cancelled, any")
    ids_text = params.get("ids")
    ids = None
    if ids_text:
        parts = [p.strip() for p in ids_text.split(",") if p.strip()]
        if not all(p.isdigit() for p in parts):
            raise _bad_param("ids", "must be a comma-separated list of order ids")
        ids = tuple(int(p) for p in parts)
    updated = params.get("updated_at_min") or None
    updated_at_min(updated)  # a bad value is a 400 now, not in a later page
    return Page(status, _int_param(params, "since_id"), ids, updated_min=updated)


def updated_at_min(text: str | None) -> datetime | None:
    """``updated_at_min`` ("Show orders last updated at or after date (format:
    2014-04-25T16:15:47-04:00)"): an ISO 8601 time; without an offset, UTC."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _bad_param("updated_at_min", "must be a date and time (ISO 8601)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _window(ids: list[int], page: Page, limit: int) -> list[int]:
    if page.before is not None:
        earlier = [i for i in ids if i < page.before]
        return earlier[-limit:]
    if page.after is not None:
        ids = [i for i in ids if i > page.after]
    return ids[:limit]


def _link_header(url: str, page: Page, all_ids: list[int], shown: list[int], limit: int) -> str:
    links = []
    if shown and any(i > shown[-1] for i in all_ids):
        nxt = page.moved(after=shown[-1])
        links.append(f'<{url}?limit={limit}&page_info={nxt.token()}>; rel="next"')
    if shown and any(i < shown[0] for i in all_ids):
        prev = page.moved(before=shown[0])
        links.append(f'<{url}?limit={limit}&page_info={prev.token()}>; rel="previous"')
    return ", ".join(links)


def _fields(order: Mapping[str, Any], fields: str | None) -> dict[str, Any]:
    if not fields:
        return dict(order)
    wanted = {f.strip() for f in fields.split(",") if f.strip()}
    return {k: v for k, v in order.items() if k in wanted}


# --- the endpoints ---------------------------------------------------------------------------


async def admin_call(
    request: Request, response: Response, version: str, handler: Callable[[], Any], stat: str
) -> Any:
    """One Admin API call: token, call-limit bucket and faults, then ``handler``; the bucket's
    headers go on the answer, errors included."""
    sim = sim_of(request)
    headers = await sim.admit(request, version)
    sim.stats[stat] += 1
    try:
        result = handler()
    except AdminError as exc:
        exc.headers = {**headers, **exc.headers}
        raise
    response.headers.update(headers)
    return result


def add_order_routes(app: FastAPI) -> None:
    async def guarded(
        request: Request, response: Response, version: str, handler: Callable[[], Any]
    ) -> Any:
        stat = f"admin {request.url.path.rsplit('/', 1)[-1]}"
        return await admin_call(request, response, version, handler, stat)

    @app.get("/admin/api/{version}/orders.json")
    async def list_orders(request: Request, response: Response, version: str) -> Any:
        def handler() -> Any:
            sim, params = sim_of(request), request.query_params
            limit, page = _limit(params), _query(params)
            ids = set(page.ids) if page.ids is not None else None
            all_ids = sim.select(page.status, page.since_id, ids, page.updated_since)
            shown = _window(all_ids, page, limit)
            url = str(request.url.replace(query=""))
            if link := _link_header(url, page, all_ids, shown, limit):
                response.headers["Link"] = link
            return {"orders": [_fields(sim.orders[i], params.get("fields")) for i in shown]}

        return await guarded(request, response, version, handler)

    @app.get("/admin/api/{version}/orders/count.json")
    async def count_orders(request: Request, response: Response, version: str) -> Any:
        def handler() -> Any:
            page = _query(request.query_params)
            ids = set(page.ids) if page.ids is not None else None
            found = sim_of(request).select(page.status, page.since_id, ids, page.updated_since)
            return {"count": len(found)}

        return await guarded(request, response, version, handler)

    @app.get("/admin/api/{version}/orders/{order_id}.json")
    async def get_order(request: Request, response: Response, version: str, order_id: str) -> Any:
        def handler() -> Any:
            order = sim_of(request).orders.get(int(order_id)) if order_id.isdigit() else None
            if order is None:
                raise not_found()
            return {"order": _fields(order, request.query_params.get("fields"))}

        return await guarded(request, response, version, handler)
