"""Tryton connector (``type: tryton``): an ERP reached over JSON-RPC, polled for changes.

Glue only: the class declaration, option and credential parsing, and dispatch. What is
written where lives in ``sales.py`` and ``parties.py``; what is read back in ``polling.py``
and ``inventory.py``; the protocol in ``client.py`` and ``wire.py``; see ``README.md``.

- out (``orders``, ``customers``): ``order.created|updated|cancelled`` → ``sale.sale`` (with its
  ``party.party``); ``customer.upserted`` → ``party.party``; ``customer.erase_requested`` → the
  party anonymized and deactivated;
- in, by polling (``inventory``, ``shipments``, ``returns``, ``customers``): streams
  ``inventory``, ``shipments``, ``credit_notes``, ``customers``;
- credentials: ``username``, ``password`` (session login); options: ``options.TrytonOptions``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
from pydantic import ValidationError

from app.canonical.customer import Customer, ErasureRequest
from app.canonical.events import CanonicalEvent
from app.canonical.order import Order
from app.config import ConnectionConfig
from connectors.base import (
    Connector,
    DeliveryContext,
    DeliveryResult,
    MappingNeed,
    PermanentError,
    PollPage,
)
from connectors.tryton.client import TrytonClient
from connectors.tryton.options import REQUIRED_CREDENTIALS, TrytonCredentials, TrytonOptions
from connectors.tryton.parties import Parties
from connectors.tryton.polling import STREAMS, Poller
from connectors.tryton.sales import Sales


def _credentials(config: ConnectionConfig) -> TrytonCredentials:
    missing = [k for k in sorted(REQUIRED_CREDENTIALS) if not config.credentials.get(k)]
    if missing:
        raise ValueError(
            f"connection {config.id!r} (tryton) lacks credentials: {', '.join(missing)}"
        )
    try:
        return TrytonCredentials(**{k: config.secret(k) for k in REQUIRED_CREDENTIALS})
    except ValidationError as exc:
        raise ValueError(f"connection {config.id!r} (tryton) credentials: {exc}") from None


class TrytonConnector(Connector):
    """Tryton 8 over JSON-RPC with a user session; polled, it sends no webhooks."""

    type_name = "tryton"
    side = "erp"
    inbound_flows = frozenset({"inventory", "shipments", "returns", "customers"})
    outbound_flows = frozenset({"orders", "customers"})
    poll_streams = STREAMS
    required_credentials = REQUIRED_CREDENTIALS
    # for the coming contract (options and credentials as models declared on the class)
    options_model = TrytonOptions
    credentials_model = TrytonCredentials

    def __init__(self, config: ConnectionConfig, http: httpx.AsyncClient) -> None:
        super().__init__(config, http)
        self.options = TrytonOptions.parse(config.id, config.options)
        timeout = config.delivery.request_timeout_seconds if config.delivery else None
        self.client = TrytonClient(
            http,
            config.base_url,
            self.options.database,
            _credentials(config),
            timeout_seconds=timeout,
            company_id=self.options.company_id,
        )
        self.parties = Parties(self.client, self.options)
        self.sales = Sales(self.client, self.options, self.parties)
        self.poller = Poller(self.client, self.options, config.id)

    # --- outbound --------------------------------------------------------------------
    def required_mappings(self, event: CanonicalEvent) -> list[MappingNeed]:
        """SKUs only with ``options.require_sku_mappings``: otherwise they are product codes."""
        if self.options.require_sku_mappings and event.type in ("order.created", "order.updated"):
            order = event.payload_as(Order)
            skus = dict.fromkeys(line.sku for line in order.lines if line.sku)
            return [MappingNeed("sku", sku) for sku in skus]
        return []

    async def deliver(self, event: CanonicalEvent, ctx: DeliveryContext) -> DeliveryResult:
        if event.type in ("order.created", "order.updated"):
            return await self.sales.upsert(event, ctx)
        if event.type == "order.cancelled":
            return await self.sales.cancel(event, ctx)
        if event.type == "customer.upserted":
            return await self.parties.upsert_customer(event.payload_as(Customer), ctx)
        if event.type == "customer.erase_requested":
            return await self.parties.erase(event.payload_as(ErasureRequest), ctx)
        raise PermanentError(
            f"Tryton connection {self.config.id!r} cannot receive {event.type}; "
            "check the routes in the config"
        )

    # --- polling and reconciliation ----------------------------------------------------
    async def poll(self, stream: str, cursor: str | None, limit: int) -> PollPage:
        return await self.poller.poll(stream, cursor, limit)

    async def fetch_availability(self, skus: list[str]) -> dict[tuple[str, str | None], Any]:
        levels: dict[tuple[str, str | None], Decimal] = await self.poller.stock.availability(skus)
        return dict(levels)


__all__ = ["TrytonConnector"]
