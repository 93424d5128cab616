"""Shopify connector (inbound ``orders``): signed order webhooks → canonical order events.

Connection config:
- credentials: ``webhook_secret`` (required: the app's client secret, or the signing secret
  shown in the Shopify admin for webhooks created there), ``access_token`` (for the Admin
  API; not used yet);
- options: none yet.

Topics ``orders/create``, ``orders/updated`` and ``orders/cancelled`` become
``order.created``, ``order.updated`` and ``order.cancelled``; every other topic is stored and
acknowledged without events. Outbound flows are not implemented yet.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from app.config import ConnectionConfig
from connectors.base import Connector, ParsedWebhook, SignatureError
from connectors.shopify import inbound

WEBHOOK_SECRET = "webhook_secret"


class ShopifyConnector(Connector):
    """Receives Shopify webhooks; all translation lives in ``connectors.shopify.inbound``."""

    type_name = "shopify"
    inbound_flows = frozenset({"orders"})

    def __init__(self, config: ConnectionConfig, http: httpx.AsyncClient) -> None:
        super().__init__(config, http)
        secret = config.credentials.get(WEBHOOK_SECRET)
        if secret is None or not secret.get_secret_value():
            # Fail at start, not on the first webhook: without it every delivery is a 401.
            raise ValueError(
                f"connection {config.id!r} (shopify) lacks credentials: {WEBHOOK_SECRET}"
            )

    def verify_signature(self, headers: Mapping[str, str], body: bytes) -> None:
        try:
            secret = self.config.secret(WEBHOOK_SECRET)
        except KeyError as exc:
            raise SignatureError(str(exc)) from None
        inbound.verify_hmac(body, inbound.header(headers, inbound.HMAC_HEADER), secret)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ParsedWebhook:
        return inbound.parse_webhook(headers, body, self.config.id)
