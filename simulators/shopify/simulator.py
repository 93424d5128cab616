"""A Shopify simulator: signed webhook deliveries and an Admin REST API subset (ASGI).

Webhooks (``WebhookSender``): deliveries carry Shopify's real headers (``X-Shopify-Topic``,
``X-Shopify-Hmac-Sha256``, ``X-Shopify-Shop-Domain``, ``X-Shopify-API-Version``,
``X-Shopify-Webhook-Id``, ``X-Shopify-Event-Id``, ``X-Shopify-Triggered-At``,
``Content-Type``), signed over the exact bytes sent. A delivery can be re-sent unchanged (same
webhook id, as Shopify's retries are) or sent with a deliberately wrong signature.

Admin API (``create_app()``), auth by ``X-Shopify-Access-Token``:

- ``GET /admin/api/{version}/orders.json``: ``limit`` (1 to 250, default 50), ``status``
  (``open`` default, ``closed``, ``cancelled``, ``any``), ``since_id``, ``ids``, ``fields``;
  cursor paging by ``page_info`` in the ``Link`` header (``rel="next"``/``rel="previous"``),
  with which only ``limit`` and ``fields`` may be sent, as in Shopify; orders by id ascending;
- ``GET /admin/api/{version}/orders/count.json`` and ``…/orders/{id}.json``;
- a wrong or missing token → 401 with Shopify's body; every answer carries
  ``X-Shopify-Shop-Api-Call-Limit: used/size`` from a leaky bucket (default 40, leaking
  2/s); a full bucket → 429 with ``Retry-After`` (seconds, e.g. ``0.5``).

Control (no auth), over HTTP so other processes can drive it:

- ``POST /_sim/orders``: ``{"skus": [...], "quantities": [...], "guest": false,
  "discount": "5.00", "tax_rate": "0.0725", "currency": "USD", "presentment_currency": "EUR",
  "shipping": "10.00"}`` (all optional) or ``{"order": {...}}`` creates an order; with a webhook
  target set, sends ``orders/create`` and reports the gateway's answer; ``GET`` lists orders;
- ``POST /_sim/orders/{id}/cancel``: cancels it and sends ``orders/cancelled`` then
  ``orders/updated`` (one merchant action, so one ``X-Shopify-Event-Id``);
- ``GET|POST|DELETE /_sim/webhooks``: ``{"url": …, "secret": …, "topics": [...]}``; GET shows
  the target (never the secret) and every delivery made;
- ``GET|POST|DELETE /_sim/faults``: ``{"latency_seconds": 0.2,
  "outage": {"count": 3} | {"until_cleared": true}, "rate_limit": {"count": 2,
  "retry_after": 1}}`` for the Admin API (POST sets what it names, DELETE clears all);
- ``GET /_sim/stats``; ``POST /_sim/reset`` (orders, target, deliveries, faults, bucket, stats).

The store behind the write endpoints (catalogue, stock, fulfillment orders, fulfillments,
refunds, customers, GraphQL SKU search), the shopper's ``POST /_sim/checkout``, ``GET
/_sim/state`` and the ``/_sim/send/…`` webhook helpers live in ``routes`` and
``store``; they are mounted here.

Not simulated: webhook retries by the simulator itself, GraphQL beyond the SKU search.

CLI: ``python -m simulators.shopify.simulator send --url URL --secret S --count N --rate R
[--sku SKU ...]`` and ``python -m simulators.shopify.simulator serve --port P``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import math
import os
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from connectors.shopify.inbound import sign
from simulators.faults import FaultCounters
from simulators.shopify.routes import add_store_routes
from simulators.shopify.samples import make_order
from simulators.shopify.store import AdminError, Store

__all__ = [
    "ALL_TOPICS",
    "DEFAULT_API_VERSION",
    "INVALID_TOKEN_BODY",
    "AdminError",
    "LeakyBucket",
    "ShopifySimulator",
    "WebhookDelivery",
    "WebhookSender",
    "create_app",
    "main",
    "make_order",
]

DEFAULT_API_VERSION = "2025-01"
DEFAULT_SHOP_DOMAIN = "sim-shop.myshopify.com"
DEFAULT_ACCESS_TOKEN = "shpat_simulator"
INVALID_TOKEN_BODY = {
    "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
}
THROTTLED_BODY = {
    "errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume "
    "uninterrupted service."
}
OrderTopic = Literal["orders/create", "orders/updated", "orders/cancelled"]
ORDER_TOPICS: tuple[OrderTopic, ...] = ("orders/create", "orders/updated", "orders/cancelled")
# every topic the simulator sends by itself; a webhook target subscribes to all by default
ALL_TOPICS: tuple[str, ...] = (
    *ORDER_TOPICS,
    "customers/create",
    "customers/update",
    "customers/redact",
    "refunds/create",
    "returns/request",
)
MAX_LIMIT = 250
_VERSION = re.compile(r"^(\d{4}-\d{2}|unstable)$")


# --- webhooks --------------------------------------------------------------------------------


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _encode(payload: Mapping[str, Any] | bytes) -> bytes:
    if isinstance(payload, bytes):
        return payload
    return json.dumps(payload, separators=(",", ":"), default=str).encode("utf-8")


@dataclass(frozen=True)
class WebhookDelivery:
    """One delivery exactly as it goes on the wire; sending it again is a Shopify retry."""

    url: str
    topic: str
    body: bytes
    headers: dict[str, str]

    @property
    def webhook_id(self) -> str:
        return self.headers["X-Shopify-Webhook-Id"]

    @property
    def event_id(self) -> str:
        return self.headers["X-Shopify-Event-Id"]


class WebhookSender:
    """Builds and posts signed Shopify webhook deliveries to one gateway URL.

    Pass ``client`` to share a connection pool (or talk to an ASGI app in process); without
    it each send opens its own, or ``async with sender:`` keeps one for the block.
    """

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        shop_domain: str = DEFAULT_SHOP_DOMAIN,
        api_version: str = DEFAULT_API_VERSION,
        client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout | float = httpx.Timeout(5.0, connect=1.0),  # Shopify's limits
    ) -> None:
        self.url = url
        self.secret = secret
        self.shop_domain = shop_domain
        self.api_version = api_version
        self.timeout = timeout
        self._client = client
        self._owned: httpx.AsyncClient | None = None

    async def __aenter__(self) -> WebhookSender:
        if self._client is None:
            self._owned = self._client = httpx.AsyncClient(timeout=self.timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owned is not None:
            await self._owned.aclose()
            self._owned = self._client = None

    def build(
        self,
        topic: str,
        payload: Mapping[str, Any] | bytes,
        *,
        webhook_id: str | None = None,
        event_id: str | None = None,
        bad_signature: bool = False,
    ) -> WebhookDelivery:
        """A delivery of ``payload``; ``bad_signature`` signs it with the wrong secret."""
        body = _encode(payload)
        secret = self.secret + "-not-the-secret" if bad_signature else self.secret
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign(body, secret),
            "X-Shopify-Shop-Domain": self.shop_domain,
            "X-Shopify-API-Version": self.api_version,
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
            "X-Shopify-Triggered-At": _now_text(),
        }
        return WebhookDelivery(self.url, topic, body, headers)

    async def deliver(self, delivery: WebhookDelivery) -> httpx.Response:
        """POST the delivery as is; HTTP errors surface as httpx exceptions."""
        if self._client is not None:
            return await self._post(self._client, delivery)
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            return await self._post(client, delivery)

    async def _post(self, client: httpx.AsyncClient, delivery: WebhookDelivery) -> httpx.Response:
        return await client.post(
            delivery.url, content=delivery.body, headers=delivery.headers, timeout=self.timeout
        )

    async def send(
        self,
        topic: str,
        payload: Mapping[str, Any] | bytes,
        *,
        event_id: str | None = None,
        bad_signature: bool = False,
    ) -> tuple[httpx.Response, WebhookDelivery]:
        delivery = self.build(topic, payload, event_id=event_id, bad_signature=bad_signature)
        return await self.deliver(delivery), delivery

    async def send_order(
        self,
        order: Mapping[str, Any],
        *,
        topic: str = "orders/create",
        bad_signature: bool = False,
    ) -> tuple[httpx.Response, WebhookDelivery]:
        return await self.send(topic, order, bad_signature=bad_signature)

    async def resend(self, delivery: WebhookDelivery) -> httpx.Response:
        """Shopify's retry: the original payload and headers, the same webhook id."""
        return await self.deliver(delivery)


# --- Admin API state ------------------------------------------------------------------------


class LeakyBucket:
    """Shopify's REST limit: each call adds one; the bucket leaks ``leak_rate`` per second."""

    def __init__(
        self,
        size: int = 40,
        leak_rate: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if size < 1 or leak_rate <= 0:
            raise ValueError("bucket size must be ≥ 1 and leak rate > 0")
        self.size = size
        self.leak_rate = leak_rate
        self.clock = clock
        self.level = 0.0
        self._last = clock()

    def _leak(self) -> None:
        now = self.clock()
        self.level = max(0.0, self.level - (now - self._last) * self.leak_rate)
        self._last = now

    def take(self) -> float | None:
        """Admit one call (None), or say how many seconds until one would fit."""
        self._leak()
        if self.level + 1 > self.size:
            return (self.level + 1 - self.size) / self.leak_rate
        self.level += 1
        return None

    @property
    def used(self) -> int:
        self._leak()
        return min(self.size, math.ceil(self.level))

    def reset(self) -> None:
        self.level = 0.0
        self._last = self.clock()


class Faults(FaultCounters):
    """Injected Admin API misbehaviour (the shared latency, outage and rate-limit counters)."""


@dataclass
class WebhookTarget:
    url: str
    secret: str
    topics: frozenset[str]


@dataclass
class SentWebhook:
    topic: str
    webhook_id: str
    event_id: str
    order_id: str | None
    status: int | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "webhook_id": self.webhook_id,
            "event_id": self.event_id,
            "order_id": self.order_id,
            "status": self.status,
            "error": self.error,
        }


def _not_found() -> AdminError:
    return AdminError(404, {"errors": "Not Found"})


def _bad_param(name: str, message: str) -> AdminError:
    return AdminError(400, {"errors": {name: message}})


@dataclass
class ShopifySimulator:
    """The simulated shop: orders, webhook target, rate limit, faults and counters."""

    access_token: str = DEFAULT_ACCESS_TOKEN
    shop_domain: str = DEFAULT_SHOP_DOMAIN
    api_version: str = DEFAULT_API_VERSION
    bucket: LeakyBucket = field(default_factory=LeakyBucket)
    webhook_client: httpx.AsyncClient | None = None
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    target: WebhookTarget | None = None
    sent: list[SentWebhook] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    store: Store = field(default_factory=Store)
    _next_n: int = 1

    def reset(self) -> None:
        self.orders.clear()
        self.store = Store()
        self.faults = Faults()
        self.target = None
        self.sent.clear()
        self.stats.clear()
        self.bucket.reset()
        self._next_n = 1

    # orders ------------------------------------------------------------------------------
    def add_order(self, order: dict[str, Any]) -> dict[str, Any]:
        self.orders[int(order["id"])] = order
        return order

    def new_order(self, **options: Any) -> dict[str, Any]:
        """A fresh ``make_order`` order with the next free number."""
        while True:
            n, self._next_n = self._next_n, self._next_n + 1
            order = make_order(n, **options)
            if int(order["id"]) not in self.orders:
                return self.add_order(order)

    def cancel_order(self, order_id: int, reason: str = "customer") -> dict[str, Any]:
        order = self.orders[order_id]
        now = datetime.now(UTC).isoformat(timespec="seconds")
        order.update(
            cancelled_at=now, cancel_reason=reason, financial_status="voided", updated_at=now
        )
        return order

    def select(self, status: str, since_id: int | None, ids: set[int] | None) -> list[int]:
        """Order ids matching the filters, ascending."""
        return [
            oid
            for oid in sorted(self.orders)
            if _status_matches(self.orders[oid], status)
            and (since_id is None or oid > since_id)
            and (ids is None or oid in ids)
        ]

    # webhooks ----------------------------------------------------------------------------
    async def notify(self, topics: Iterable[str], order: Mapping[str, Any]) -> list[SentWebhook]:
        """Send ``topics`` for ``order`` to the target, one merchant action (one event id)."""
        target = self.target
        if target is None:
            return []
        event_id = str(uuid.uuid4())
        sender = WebhookSender(
            target.url,
            target.secret,
            shop_domain=self.shop_domain,
            api_version=self.api_version,
            client=self.webhook_client,
        )
        results = []
        for topic in topics:
            if topic in target.topics:
                results.append(await self._send_one(sender, topic, order, event_id))
        return results

    async def _send_one(
        self, sender: WebhookSender, topic: str, order: Mapping[str, Any], event_id: str
    ) -> SentWebhook:
        delivery = sender.build(topic, order, event_id=event_id)
        order_id = str(order["id"]) if "id" in order else None
        sent = SentWebhook(topic, delivery.webhook_id, event_id, order_id)
        try:
            response = await sender.deliver(delivery)
            sent.status = response.status_code
        except httpx.HTTPError as exc:
            sent.error = f"{type(exc).__name__}: {exc}"
        self.sent.append(sent)
        self.stats[f"webhook {topic} {sent.status or 'error'}"] += 1
        return sent

    # Admin API guard ---------------------------------------------------------------------
    async def admit(self, request: Request, version: str) -> dict[str, str]:
        """Faults, auth, rate limit; the headers every Admin answer carries, or AdminError."""
        if not _VERSION.match(version):
            raise _not_found()
        if self.faults.latency_seconds:
            await asyncio.sleep(self.faults.latency_seconds)
        self._outage()
        if request.headers.get("x-shopify-access-token") != self.access_token:
            raise AdminError(401, INVALID_TOKEN_BODY)
        headers = {"X-Shopify-API-Version": version}
        wait = self._throttle()
        headers["X-Shopify-Shop-Api-Call-Limit"] = f"{self.bucket.used}/{self.bucket.size}"
        if wait is not None:
            headers["Retry-After"] = f"{math.ceil(wait * 10) / 10:.1f}"
            raise AdminError(429, THROTTLED_BODY, headers)
        return headers

    def _outage(self) -> None:
        if self.faults.take_outage():
            raise AdminError(503, {"errors": "Service Unavailable"})

    def _throttle(self) -> float | None:
        retry = self.faults.take_rate_limit()
        return retry if retry is not None else self.bucket.take()

    def set_faults(self, body: FaultsIn) -> None:
        faults = self.faults
        if body.latency_seconds is not None:
            faults.latency_seconds = body.latency_seconds
        if body.outage is not None:
            faults.outage_remaining = body.outage.count
            faults.outage_until_cleared = body.outage.until_cleared
        if body.rate_limit is not None:
            faults.rate_limit_remaining = body.rate_limit.count
            faults.rate_limit_retry_after = body.rate_limit.retry_after


def _status_matches(order: Mapping[str, Any], status: str) -> bool:
    cancelled = order.get("cancelled_at") is not None
    closed = order.get("closed_at") is not None
    return {
        "any": True,
        "cancelled": cancelled,
        "closed": closed,
        "open": not cancelled and not closed,
    }[status]


# --- paging --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """A cursor: the query it belongs to and where the page starts."""

    status: str
    since_id: int | None
    ids: tuple[int, ...] | None
    after: int | None = None
    before: int | None = None

    def token(self) -> str:
        raw = json.dumps(
            {
                "s": self.status,
                "i": self.since_id,
                "d": self.ids,
                "a": self.after,
                "b": self.before,
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
            return cls(data["s"], data["i"], ids, data["a"], data["b"])
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise _bad_param("page_info", "Invalid value.") from None


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
    return Page(status, _int_param(params, "since_id"), ids)


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
        nxt = Page(page.status, page.since_id, page.ids, after=shown[-1])
        links.append(f'<{url}?limit={limit}&page_info={nxt.token()}>; rel="next"')
    if shown and any(i < shown[0] for i in all_ids):
        prev = Page(page.status, page.since_id, page.ids, before=shown[0])
        links.append(f'<{url}?limit={limit}&page_info={prev.token()}>; rel="previous"')
    return ", ".join(links)


def _fields(order: Mapping[str, Any], fields: str | None) -> dict[str, Any]:
    if not fields:
        return dict(order)
    wanted = {f.strip() for f in fields.split(",") if f.strip()}
    return {k: v for k, v in order.items() if k in wanted}


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


# --- the app ---------------------------------------------------------------------------------


def _sim(request: Request) -> ShopifySimulator:
    sim: ShopifySimulator = request.app.state.simulator
    return sim


async def admin_call(
    request: Request, response: Response, version: str, handler: Callable[[], Any], stat: str
) -> Any:
    """One Admin API call: token, call-limit bucket and faults, then ``handler``; the bucket's
    headers go on the answer, errors included."""
    sim = _sim(request)
    headers = await sim.admit(request, version)
    sim.stats[stat] += 1
    try:
        result = handler()
    except AdminError as exc:
        exc.headers = {**headers, **exc.headers}
        raise
    response.headers.update(headers)
    return result


def _add_admin_routes(app: FastAPI) -> None:
    async def guarded(
        request: Request, response: Response, version: str, handler: Callable[[], Any]
    ) -> Any:
        stat = f"admin {request.url.path.rsplit('/', 1)[-1]}"
        return await admin_call(request, response, version, handler, stat)

    @app.get("/admin/api/{version}/orders.json")
    async def list_orders(request: Request, response: Response, version: str) -> Any:
        def handler() -> Any:
            sim, params = _sim(request), request.query_params
            limit, page = _limit(params), _query(params)
            ids = set(page.ids) if page.ids is not None else None
            all_ids = sim.select(page.status, page.since_id, ids)
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
            return {"count": len(_sim(request).select(page.status, page.since_id, ids))}

        return await guarded(request, response, version, handler)

    @app.get("/admin/api/{version}/orders/{order_id}.json")
    async def get_order(request: Request, response: Response, version: str, order_id: str) -> Any:
        def handler() -> Any:
            order = _sim(request).orders.get(int(order_id)) if order_id.isdigit() else None
            if order is None:
                raise _not_found()
            return {"order": _fields(order, request.query_params.get("fields"))}

        return await guarded(request, response, version, handler)


def _add_control_routes(app: FastAPI) -> None:
    @app.post("/_sim/orders", status_code=201)
    async def create_order(request: Request, body: NewOrderIn | None = None) -> Any:
        sim, body = _sim(request), body or NewOrderIn()
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
        sim = _sim(request)
        return {"orders": [sim.orders[i] for i in sorted(sim.orders)]}

    @app.post("/_sim/orders/{order_id}/cancel")
    async def cancel(request: Request, order_id: int) -> Any:
        sim = _sim(request)
        if order_id not in sim.orders:
            return JSONResponse({"detail": f"no order {order_id}"}, 404)
        if sim.orders[order_id].get("cancelled_at"):
            return JSONResponse({"detail": f"order {order_id} is already cancelled"}, 409)
        order = sim.cancel_order(order_id)
        sent = await sim.notify(["orders/cancelled", "orders/updated"], order)
        return {"order": order, "webhooks": [s.as_dict() for s in sent]}

    @app.get("/_sim/webhooks")
    async def webhooks(request: Request) -> Any:
        sim = _sim(request)
        target = sim.target
        return {
            "url": target.url if target else None,
            "topics": sorted(target.topics) if target else [],
            "deliveries": [s.as_dict() for s in sim.sent],
        }

    @app.post("/_sim/webhooks")
    async def set_webhooks(request: Request, body: WebhookTargetIn) -> Any:
        _sim(request).target = WebhookTarget(body.url, body.secret, frozenset(body.topics))
        return {"url": body.url, "topics": sorted(body.topics)}

    @app.delete("/_sim/webhooks")
    async def clear_webhooks(request: Request) -> Any:
        _sim(request).target = None
        return {"url": None, "topics": []}

    _add_fault_routes(app)


def _add_fault_routes(app: FastAPI) -> None:
    @app.get("/_sim/faults")
    async def faults(request: Request) -> Any:
        return _sim(request).faults.snapshot()

    @app.post("/_sim/faults")
    async def set_faults(request: Request, body: FaultsIn) -> Any:
        sim = _sim(request)
        sim.set_faults(body)
        return sim.faults.snapshot()

    @app.delete("/_sim/faults")
    async def clear_faults(request: Request) -> Any:
        sim = _sim(request)
        sim.faults = Faults()
        return sim.faults.snapshot()

    @app.get("/_sim/stats")
    async def stats(request: Request) -> Any:
        sim = _sim(request)
        return {
            "orders": len(sim.orders),
            "bucket": {"used": sim.bucket.used, "size": sim.bucket.size},
            "counts": dict(sim.stats),
        }

    @app.post("/_sim/reset")
    async def reset(request: Request) -> Any:
        _sim(request).reset()
        return {"reset": True}


def create_app(
    *,
    access_token: str = DEFAULT_ACCESS_TOKEN,
    shop_domain: str = DEFAULT_SHOP_DOMAIN,
    api_version: str = DEFAULT_API_VERSION,
    bucket_size: int = 40,
    leak_rate: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    webhook_client: httpx.AsyncClient | None = None,
    simulator: ShopifySimulator | None = None,
) -> FastAPI:
    """The simulator as an ASGI app; its state is ``app.state.simulator``.

    ``clock`` drives the leaky bucket (tests pass a fake one instead of sleeping);
    ``webhook_client`` carries the webhooks it sends (e.g. to a gateway app in process).
    """
    sim = simulator or ShopifySimulator(
        access_token=access_token,
        shop_domain=shop_domain,
        api_version=api_version,
        bucket=LeakyBucket(bucket_size, leak_rate, clock),
        webhook_client=webhook_client,
    )
    app = FastAPI(
        title="Shopify simulator",
        docs_url="/_sim/docs",
        redoc_url=None,
        openapi_url="/_sim/openapi.json",
    )
    app.state.simulator = sim

    @app.exception_handler(AdminError)
    async def admin_error(request: Request, exc: AdminError) -> JSONResponse:
        sim.stats[f"admin status {exc.status}"] += 1
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    _add_admin_routes(app)
    add_store_routes(app, admin_call)
    _add_control_routes(app)
    return app


# --- CLI -------------------------------------------------------------------------------------


def classify(response: httpx.Response) -> str:
    """accepted / duplicate / error, from the gateway's answer to one webhook."""
    if not response.is_success:
        return "error"
    try:
        duplicate = response.json().get("duplicate") is True
    except (ValueError, AttributeError):
        duplicate = False
    return "duplicate" if duplicate else "accepted"


@dataclass
class SendReport:
    """What the gateway answered to a batch of webhooks."""

    accepted: int = 0
    duplicate: int = 0
    error: int = 0
    statuses: Counter[str] = field(default_factory=Counter)  # HTTP status or exception name

    def add(self, outcome: str, status: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        self.statuses[status] += 1

    def summary(self) -> str:
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        total = self.accepted + self.duplicate + self.error
        return (
            f"sent {total}: accepted {self.accepted}, duplicate {self.duplicate}, "
            f"error {self.error} ({detail})"
        )


async def send_orders(
    sender: WebhookSender,
    count: int,
    rate: float,
    *,
    skus: list[str] | None = None,
    start: int = 1,
    concurrency: int = 50,
) -> SendReport:
    """Send ``count`` orders/create webhooks, one every ``1/rate`` s; tally the answers.

    Sends start on schedule and overlap (up to ``concurrency`` in flight), so a slow
    gateway shows up as errors or latency rather than as a lower send rate.
    """
    loop = asyncio.get_running_loop()
    begin = loop.time()
    gate = asyncio.Semaphore(concurrency)
    report = SendReport()

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, begin + i / rate - loop.time()))
        async with gate:
            try:
                response, _ = await sender.send_order(make_order(start + i, skus=skus))
                report.add(classify(response), str(response.status_code))
            except httpx.HTTPError as exc:
                report.add("error", type(exc).__name__)

    await asyncio.gather(*(one(i) for i in range(count)))
    return report


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.shopify.simulator",
        description="Shopify simulator: send signed webhooks, or serve the Admin API subset.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    send = sub.add_parser("send", help="send signed orders/create webhooks to a gateway")
    send.add_argument("--url", required=True, help="the gateway webhook URL")
    send.add_argument(
        "--secret",
        default=os.environ.get("SHOPIFY_WEBHOOK_SECRET"),
        help="webhook secret (default: $SHOPIFY_WEBHOOK_SECRET)",
    )
    send.add_argument("--count", type=_positive_int, default=10)
    send.add_argument("--rate", type=_positive_float, default=10.0, help="webhooks per second")
    send.add_argument("--sku", action="append", dest="skus", help="a line's SKU (repeatable)")
    send.add_argument("--start", type=int, default=1, help="number of the first order")
    send.add_argument("--concurrency", type=_positive_int, default=50)
    serve = sub.add_parser("serve", help="serve the Admin API subset and /_sim control")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8102)
    serve.add_argument(
        "--access-token", default=os.environ.get("SHOPIFY_ACCESS_TOKEN", DEFAULT_ACCESS_TOKEN)
    )
    serve.add_argument("--bucket-size", type=_positive_int, default=40)
    serve.add_argument("--leak-rate", type=_positive_float, default=2.0)
    serve.add_argument("--orders", type=int, default=0, help="orders to create at start")
    serve.add_argument("--webhook-url", help="send webhooks for new orders here")
    serve.add_argument("--webhook-secret", default=os.environ.get("SHOPIFY_WEBHOOK_SECRET"))
    serve.add_argument("--log-level", default="warning")
    return parser


async def _run_send(args: argparse.Namespace) -> int:
    async with WebhookSender(args.url, args.secret) as sender:
        report = await send_orders(
            sender,
            args.count,
            args.rate,
            skus=args.skus,
            start=args.start,
            concurrency=args.concurrency,
        )
    print(report.summary(), flush=True)
    return 1 if report.error else 0


def _run_serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import uvicorn

    app = create_app(
        access_token=args.access_token, bucket_size=args.bucket_size, leak_rate=args.leak_rate
    )
    sim: ShopifySimulator = app.state.simulator
    for _ in range(args.orders):
        sim.new_order()
    if args.webhook_url:
        if not args.webhook_secret:
            parser.error("--webhook-url needs --webhook-secret (or $SHOPIFY_WEBHOOK_SECRET)")
        sim.target = WebhookTarget(args.webhook_url, args.webhook_secret, frozenset(ALL_TOPICS))
    print(
        f"Shopify simulator on http://{args.host}:{args.port} "
        f"(Admin API /admin/api/{DEFAULT_API_VERSION}/orders.json, control /_sim/)",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "send":
        if not args.secret:
            parser.error("send needs --secret (or $SHOPIFY_WEBHOOK_SECRET)")
        return asyncio.run(_run_send(args))
    return _run_serve(args, parser)


if __name__ == "__main__":
    sys.exit(main())
