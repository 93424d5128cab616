"""The simulated shop's state: orders, the webhook target and what was sent to it, the
Admin API's call-limit bucket, faults and counters (``ShopifySimulator``), and the guard
every Admin call passes (version, faults, token, rate limit)."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import httpx
from fastapi import Request

from simulators.faults import FaultCounters
from simulators.shopify.samples import make_order
from simulators.shopify.store import Store
from simulators.shopify.subscriptions import AppInstallation
from simulators.shopify.values import AdminError, not_found
from simulators.shopify.webhooks import (
    DEFAULT_API_VERSION,
    DEFAULT_SHOP_DOMAIN,
    WebhookDelivery,
    WebhookSender,
)

if TYPE_CHECKING:
    from simulators.shopify.control import FaultsIn

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
ALL_TOPICS: tuple[str, ...] = (
    *ORDER_TOPICS,
    "customers/create",
    "customers/update",
    "customers/redact",
    "refunds/create",
    "returns/request",
)
_VERSION = re.compile(r"^(\d{4}-\d{2}|unstable)$")
DROPPED = "dropped (a lost webhook: never sent)"
log = logging.getLogger("simulators.shopify")


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
    retries: int = 0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "webhook_id": self.webhook_id,
            "event_id": self.event_id,
            "order_id": self.order_id,
            "status": self.status,
            "error": self.error,
            "retries": self.retries,
        }


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
    # the gateway's app: scopes and webhook subscriptions (made through the Admin API)
    app: AppInstallation = field(default_factory=AppInstallation)
    # Shopify re-sends a failed delivery (no 2xx within 5 s, or no connection) 8 times over
    # 4 hours, unchanged and with the same webhook id; these are the waits before each retry,
    # compressed for tests (empty: no retries, each failure is final)
    webhook_retry_delays: tuple[float, ...] = ()
    # GraphQL cost points restored per second (Shopify's standard plan: 100, Plus: 1000);
    # kept across resets, like the REST bucket's size and leak rate
    graphql_restore_rate: float = 100.0
    _next_n: int = 1
    _retries: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.store.graphql_restore_rate = self.graphql_restore_rate

    def reset(self) -> None:
        self.orders.clear()
        self.store = Store(graphql_restore_rate=self.graphql_restore_rate)
        self.app = AppInstallation(client_secret=self.app.client_secret)
        self.faults = Faults()
        self.target = None
        self.sent.clear()
        self.stats.clear()
        for task in self._retries:
            task.cancel()
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

    def select(
        self,
        status: str,
        since_id: int | None,
        ids: set[int] | None,
        updated_min: datetime | None = None,
    ) -> list[int]:
        """Order ids matching the filters, ascending (``updated_min`` inclusive)."""
        return [
            oid
            for oid in sorted(self.orders)
            if _status_matches(self.orders[oid], status)
            and (since_id is None or oid > since_id)
            and (ids is None or oid in ids)
            and (updated_min is None or updated_since(self.orders[oid], updated_min))
        ]

    # webhooks ----------------------------------------------------------------------------
    async def notify(self, topics: Iterable[str], order: Mapping[str, Any]) -> list[SentWebhook]:
        """Send ``topics`` for ``order``, one merchant action (one event id): to the target
        set by ``/_sim/webhooks`` and to every subscription of the topic (made through the
        Admin API, signed with the app's client secret)."""
        event_id = str(uuid.uuid4())
        results = []
        for topic in topics:
            for url, secret, sub_id in self._destinations(topic):
                sender = WebhookSender(
                    url,
                    secret,
                    shop_domain=self.shop_domain,
                    api_version=self.api_version,
                    client=self.webhook_client,
                )
                sent = await self._send_one(sender, topic, order, event_id)
                if sub_id is not None and sent.error != DROPPED:
                    self.app.delivered(sub_id, sent.ok)
                results.append(sent)
        return results

    def _destinations(self, topic: str) -> list[tuple[str, str, int | None]]:
        found: list[tuple[str, str, int | None]] = []
        if self.target is not None and topic in self.target.topics:
            found.append((self.target.url, self.target.secret, None))
        for sub in self.app.for_topic(topic):
            if all(url != sub["uri"] for url, _, _ in found):
                found.append((sub["uri"], self.app.client_secret, sub["id"]))
        return found

    async def _send_one(
        self, sender: WebhookSender, topic: str, order: Mapping[str, Any], event_id: str
    ) -> SentWebhook:
        delivery = sender.build(topic, order, event_id=event_id)
        order_id = str(order["id"]) if "id" in order else None
        sent = SentWebhook(topic, delivery.webhook_id, event_id, order_id)
        if self.app.take_drop():
            sent.error = DROPPED  # never sent: a lost webhook
        else:
            await self._attempt(sender, delivery, sent)
            if not sent.ok and self.webhook_retry_delays:
                task = asyncio.create_task(self._retry(sender, delivery, sent))
                self._retries.add(task)
                task.add_done_callback(self._retries.discard)
        self.sent.append(sent)
        outcome = sent.status or ("dropped" if sent.error == DROPPED else "error")
        self.stats[f"webhook {topic} {outcome}"] += 1
        return sent

    async def _attempt(
        self, sender: WebhookSender, delivery: WebhookDelivery, sent: SentWebhook
    ) -> None:
        try:
            response = await sender.deliver(delivery)
            sent.status, sent.error = response.status_code, None
        except httpx.HTTPError as exc:
            sent.status, sent.error = None, f"{type(exc).__name__}: {exc}"
        if not sent.ok:
            log.warning(
                "webhook %s %s to %s failed: %s",
                delivery.topic,
                delivery.webhook_id,
                delivery.url,
                sent.error or f"HTTP {sent.status}",
            )

    async def _retry(
        self, sender: WebhookSender, delivery: WebhookDelivery, sent: SentWebhook
    ) -> None:
        """Shopify's retries of one failed delivery: the same bytes and webhook id."""
        for delay in self.webhook_retry_delays:
            await asyncio.sleep(delay)
            await self._attempt(sender, delivery, sent)
            sent.retries += 1
            outcome = sent.status or "error"
            self.stats[f"webhook {delivery.topic} retry {outcome}"] += 1
            if sent.ok:
                return

    # Admin API guard ---------------------------------------------------------------------
    async def admit(self, request: Request, version: str) -> dict[str, str]:
        """Faults, auth, rate limit; the headers every Admin answer carries, or AdminError."""
        if not _VERSION.match(version):
            raise not_found()
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


def updated_since(record: Mapping[str, Any], moment: datetime) -> bool:
    """``updated_at`` (Shopify writes it with an offset) at or after ``moment``."""
    text = record.get("updated_at") or record.get("created_at")
    if not isinstance(text, str):
        return False
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)) >= moment


def _status_matches(order: Mapping[str, Any], status: str) -> bool:
    cancelled = order.get("cancelled_at") is not None
    closed = order.get("closed_at") is not None
    return {
        "any": True,
        "cancelled": cancelled,
        "closed": closed,
        "open": not cancelled and not closed,
    }[status]


def sim_of(request: Request) -> ShopifySimulator:
    sim: ShopifySimulator = request.app.state.simulator
    return sim
