"""Signed Shopify webhook deliveries: ``WebhookSender`` builds and posts them with
Shopify's real headers, signed over the exact bytes sent; a delivery can be re-sent
unchanged (a Shopify retry) or signed wrongly on purpose. ``send_orders`` sends a batch at a
rate and tallies the gateway's answers (the CLI's ``send``)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx

from connectors.shopify.inbound import sign
from simulators.shopify.samples import make_order

DEFAULT_API_VERSION = "2025-01"
DEFAULT_SHOP_DOMAIN = "sim-shop.myshopify.com"


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


# --- sending a batch -------------------------------------------------------------------------


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
