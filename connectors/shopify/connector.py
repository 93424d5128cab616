"""Shopify connector: webhooks in (orders, customers, returns) and the Admin API out.

Connection config:
- credentials: ``webhook_secret`` (required: the app's client secret, or the signing secret
  shown in the Shopify admin for webhooks created there), ``previous_webhook_secret``
  (optional, while rotating: the old one, still accepted on webhooks), ``access_token``
  (Admin API, sent as ``X-Shopify-Access-Token``; needed for every outbound flow);
- options (all optional, see ``options.ShopifyOptions``): ``api_version`` (default
  ``2026-01``, the first version with idempotent inventory mutations), ``location_id``
  (the store location for inventory and restocks),
  ``notify_customer_default`` (shipments, when the core gives no directive), ``currency``
  (the shop currency; other price lists are reported, not written), ``group_tag_prefix``
  (default ``group:``), ``carrier_names`` (our carrier → Shopify's company name).

Inbound: ``orders/create|updated|cancelled`` → ``order.*``; ``customers/create|update`` →
``customer.upserted``; ``customers/redact`` → ``customer.erase_requested``;
``refunds/create`` → ``refund.created``; ``returns/request`` → ``return.requested``; every
other topic is stored and acknowledged without events.

Outbound, through the GraphQL Admin API: ``inventory.availability_changed`` (``delta``
directive: ``inventoryAdjustQuantities`` @idempotent; else ``inventorySetQuantities`` as a
compare-and-set), ``price.changed`` (``productVariantsBulkUpdate``), ``product.upserted``
(``productSet`` / ``productVariantsBulkCreate``, variants under their parent's product),
``shipment.created|updated`` (``fulfillmentCreate``), ``credit_memo.created``
(``refundCreate`` @idempotent); ``customer.upserted`` through REST. See ``outbound``,
``graphql_products``, ``graphql_stock``, ``shipments`` and ``refunds`` for the calls and how
retries stay single.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

import httpx

from connectors._kit import signatures
from connectors._kit.headers import header
from connectors.shopify import (
    backfill,
    graphql_products,
    inbound,
    outbound,
    refunds,
    shipments,
    subscriptions,
    webhooks,
)
from connectors.shopify.admin import ShopifyAdmin
from connectors.shopify.options import ShopifyCredentials, ShopifyOptions
from kernel.canonical.events import CanonicalEvent
from kernel.contract import (
    ConnectionSettings,
    Connector,
    ConnectorJob,
    InboundAnswer,
    JobReport,
    WebhookRequest,
)
from kernel.errors import PayloadError, PermanentError, SignatureError
from kernel.types import DeliveryContext, DeliveryResult, ParsedWebhook, PollPage

WEBHOOK_SECRET = "webhook_secret"
ACCESS_TOKEN = "access_token"
IDS_PER_LEVELS_CALL = 50  # inventory_levels.json takes at most 50 item ids

Handler = Callable[
    [ShopifyAdmin, ShopifyOptions, CanonicalEvent, DeliveryContext, str],
    Awaitable[DeliveryResult],
]


def _without_connection(
    handler: Callable[
        [ShopifyAdmin, ShopifyOptions, CanonicalEvent, DeliveryContext],
        Awaitable[DeliveryResult],
    ],
) -> Handler:
    async def call(
        admin: ShopifyAdmin,
        opts: ShopifyOptions,
        event: CanonicalEvent,
        ctx: DeliveryContext,
        _connection_id: str,
    ) -> DeliveryResult:
        return await handler(admin, opts, event, ctx)

    return call


HANDLERS: dict[str, Handler] = {
    "inventory.availability_changed": _without_connection(outbound.set_availability),
    "price.changed": _without_connection(outbound.update_price),
    "product.upserted": _without_connection(graphql_products.upsert_product),
    "customer.upserted": outbound.upsert_customer,
    "shipment.created": shipments.deliver_shipment,
    "shipment.updated": shipments.deliver_shipment,
    "credit_memo.created": refunds.deliver_credit_memo,
}


class ShopifyConnector(Connector):
    """Translation lives in ``inbound``/``records`` (webhooks) and ``outbound``/… (API)."""

    type_name = "shopify"
    side = "store"
    Options = ShopifyOptions
    Credentials = ShopifyCredentials
    inbound_flows = frozenset({"orders", "customers", "returns"})
    outbound_flows = frozenset({"inventory", "products", "shipments", "returns", "customers"})
    # the backfill: what a lost webhook would have said, read back (``backfill``)
    poll_streams = backfill.STREAMS
    stock_updates = "delta"  # inventoryAdjustQuantities with an idempotency key
    reads_stock = True
    # the Admin API token on every call out, the webhook HMAC on the way in (the attempt log
    # also hides authorization, cookies and any *token*/*secret*/*key* header by itself)
    sensitive_headers = frozenset({"x-shopify-access-token", "x-shopify-hmac-sha256"})

    def __init__(self, settings: ConnectionSettings, http: httpx.AsyncClient) -> None:
        super().__init__(settings, http)
        self.options: ShopifyOptions = settings.options
        self._admin: ShopifyAdmin | None = None

    # inbound ----------------------------------------------------------------------------
    def verify_signature(self, headers: Mapping[str, str], body: bytes) -> None:
        try:
            secret = self.config.secret(WEBHOOK_SECRET)
        except KeyError as exc:
            raise SignatureError(str(exc)) from None
        previous = self.config.credentials.previous_webhook_secret
        secrets = [secret] if previous is None else [secret, previous.get_secret_value()]
        given = header(headers, inbound.HMAC_HEADER)
        signatures.verify_with_any(secrets, lambda s: inbound.verify_hmac(body, given, s))

    async def receive(self, request: WebhookRequest) -> InboundAnswer:
        self.verify_signature(request.headers, request.body)
        # a genuine delivery carries Shopify's headers: without them it is refused (400),
        # while a body the parser cannot handle is kept in quarantine (``unparseable``)
        webhooks.check_envelope(request.headers)
        return await self.reparse(request)  # the parse of a signed body

    def resent_topic(self, headers: Mapping[str, str]) -> str | None:
        try:
            return webhooks.check_envelope(headers)
        except PayloadError:  # receive refuses it, and says why
            return None

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ParsedWebhook:
        return webhooks.parse_webhook(headers, body, self.config.id)

    async def poll(self, stream: str, cursor: str | None, limit: int) -> PollPage:
        return await backfill.poll(self.admin, self.options, self.config.id, stream, cursor, limit)

    def jobs(self) -> list[ConnectorJob]:
        """The webhook subscription check, when ``public_url`` says where they point."""
        public_url = self.options.public_url
        if public_url is None:
            return []
        topics = self.options.webhook_topics or list(subscriptions.TOPICS)

        async def check(state: str | None) -> JobReport:
            return await subscriptions.check(
                self.admin, self.config.id, public_url, topics, self.options.api_version, state
            )

        return [
            ConnectorJob(
                "webhook_subscriptions",
                self.options.webhook_check_interval_seconds,
                check,
                run_at_start=True,
            )
        ]

    # outbound ---------------------------------------------------------------------------
    @property
    def admin(self) -> ShopifyAdmin:
        """The Admin API client (one per connector, so the SKU cache lives across calls)."""
        if self._admin is None:
            self._admin = ShopifyAdmin(
                self.http,
                self.config.base_url,
                self.config.secret(ACCESS_TOKEN),
                self.options.api_version,
            )
        return self._admin

    async def deliver(self, event: CanonicalEvent, ctx: DeliveryContext) -> DeliveryResult:
        handler = HANDLERS.get(event.type)
        if handler is None:
            raise PermanentError(
                f"the Shopify connector cannot receive {event.type}; it takes "
                f"{', '.join(sorted(HANDLERS))} (check the routes)"
            )
        return await handler(self.admin, self.options, event, ctx, self.config.id)

    async def fetch_availability(self, skus: list[str]) -> dict[tuple[str, str | None], Any]:
        """What the store shows as available: (sku, location id) → Decimal.

        Unknown SKUs are left out; with option ``location_id`` only that location is read.
        """
        admin = self.admin
        missing = [s for s in dict.fromkeys(skus) if s not in admin.variants]
        if missing:
            await admin.find_variants(missing)
        refs = [admin.variants[s] for s in dict.fromkeys(skus) if s in admin.variants]
        sku_of_item = {r.inventory_item_id: r.sku for r in refs}
        items = list(sku_of_item)
        found: dict[tuple[str, str | None], Any] = {}
        for start in range(0, len(items), IDS_PER_LEVELS_CALL):
            params = {
                "inventory_item_ids": ",".join(items[start : start + IDS_PER_LEVELS_CALL]),
                "limit": "250",
            }
            if self.options.location_id:
                params["location_ids"] = self.options.location_id
            answer = await admin.request(
                "GET", "inventory_levels.json", what="inventory levels", params=params
            )
            for level in answer.get("inventory_levels") or []:
                sku = sku_of_item.get(str(level.get("inventory_item_id")))
                if sku is None:
                    continue
                available = level.get("available")
                found[(sku, str(level["location_id"]))] = Decimal(
                    str(available if available is not None else 0)
                )
        return found
