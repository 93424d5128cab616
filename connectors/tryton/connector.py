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

import json
from decimal import Decimal
from typing import Any

import httpx

from connectors.tryton.client import TrytonClient
from connectors.tryton.options import TrytonCredentials, TrytonOptions
from connectors.tryton.parties import Parties
from connectors.tryton.polling import STREAMS, Poller
from connectors.tryton.sales import Sales
from kernel.canonical.customer import Customer, ErasureRequest
from kernel.canonical.events import CanonicalEvent
from kernel.contract import ConnectionSettings, Connector
from kernel.errors import PermanentError
from kernel.mappings import mapping_needs
from kernel.types import DeliveryContext, DeliveryResult, MappingNeed, PollPage


class TrytonConnector(Connector):
    """Tryton 8 over JSON-RPC with a user session; polled, it sends no webhooks."""

    type_name = "tryton"
    side = "erp"
    inbound_flows = frozenset({"inventory", "shipments", "returns", "customers"})
    outbound_flows = frozenset({"orders", "customers"})
    poll_streams = STREAMS
    Options = TrytonOptions
    Credentials = TrytonCredentials
    # every call carries "Authorization: Session base64(login:user id:session)"; the login
    # posts {"method": "common.db.login", "params": [login, {"password": …}, language]}
    sensitive_headers = frozenset({"authorization"})
    sensitive_fields = frozenset({"password"})
    # product codes are our SKUs unless mapped; carriers and taxes when mapped
    mapping_kinds = frozenset({"sku", "shipping_method", "tax_code"})

    def __init__(self, settings: ConnectionSettings, http: httpx.AsyncClient) -> None:
        super().__init__(settings, http)
        self.options: TrytonOptions = settings.options
        self.client = TrytonClient(
            http,
            settings.base_url,
            self.options.database,
            settings.credentials,
            timeout_seconds=settings.timeout_seconds,
            company_id=self.options.company_id,
        )
        self.parties = Parties(self.client, self.options)
        self.sales = Sales(self.client, self.options, self.parties)
        self.poller = Poller(self.client, self.options, settings.id)

    def redact_exchange(self, exchange: dict[str, Any]) -> dict[str, Any]:
        """The login's answer is ``{"result": [user id, session]}``: the session is a list
        item no field name marks, and it authorises every later call until it expires."""
        body = str(exchange.get("request", {}).get("body") or "")
        response = exchange.get("response")
        if "common.db.login" not in body or not isinstance(response, dict):
            return exchange
        try:
            answer = json.loads(str(response.get("body") or ""))
        except ValueError:
            return exchange
        result = answer.get("result") if isinstance(answer, dict) else None
        if isinstance(result, list) and len(result) >= 2:
            answer["result"] = [result[0], "***", *result[2:]]
            exchange = {**exchange, "response": {**response, "body": json.dumps(answer)}}
        return exchange

    # --- outbound --------------------------------------------------------------------
    def required_mappings(self, event: CanonicalEvent) -> list[MappingNeed]:
        """SKUs only with ``options.require_sku_mappings``: otherwise they are product codes."""
        return mapping_needs(event, {"sku"}) if self.options.require_sku_mappings else []

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
