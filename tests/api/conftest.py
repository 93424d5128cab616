"""Fixtures for the operator API: a running gateway and rows in given states.

Rows are inserted straight through the models so each test sets up exactly the states it
needs; the destination ``erp`` is the shared fake connector, injected when the app is built:
it takes every delivery, so whatever the API requeues is observably delivered.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlmodel import col

from app.db import transaction
from app.models import (
    CanonicalEventRow,
    Delivery,
    DeliveryAttempt,
    EntityLink,
    InboundEvent,
    utcnow,
)
from app.runtime import Runtime
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.order import OrderCustomer
from tests.conftest import make_config, make_settings, running_app, wait_for
from tests.support.factories import make_order, plan_delivery
from tests.support.fake_connector import FakeConnector

VIEWER = {"Authorization": "Bearer viewer-key"}
OPERATOR = {"Authorization": "Bearer operator-key"}
PII_READER = {"Authorization": "Bearer pii-key"}
API_KEYS = "viewer-key:viewer,operator-key:operator,pii-key:pii-reader"

_numbers = itertools.count(1001)


@dataclass
class Gateway:
    app: FastAPI
    client: httpx.AsyncClient
    rt: Runtime
    erp: FakeConnector
    shop: FakeConnector | None = None

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(f"/api/v1{path}", params=params, headers=VIEWER)

    async def ok(self, path: str, **params: Any) -> Any:
        response = await self.get(path, **params)
        assert response.status_code == 200, response.text
        return response.json()

    async def write(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, f"/api/v1{path}", headers=OPERATOR, **kwargs)

    async def pages(self, path: str, limit: int, **params: Any) -> list[dict[str, Any]]:
        """Follow next_cursor to the end; returns every item in order."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {**params, "limit": limit} | ({"cursor": cursor} if cursor else {})
            page = await self.ok(path, **query)
            assert len(page["items"]) <= limit
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items

    async def status_of(self, delivery_id: int) -> str:
        async with self.rt.sessions() as session:
            status = await session.scalar(
                sa.select(col(Delivery.status)).where(col(Delivery.id) == delivery_id)
            )
        assert status is not None
        return str(status)

    async def wait_status(self, delivery_id: int, *statuses: str) -> str:
        async def reached() -> str | None:
            status = await self.status_of(delivery_id)
            return status if status in statuses else None

        result: str = await wait_for(reached, message=f"delivery {delivery_id} in {statuses}")
        return result


@pytest.fixture
async def gw(clean_db: str) -> AsyncIterator[Gateway]:
    settings = make_settings(clean_db, api_keys=API_KEYS)
    erp = FakeConnector("erp")
    async with running_app(settings, make_config(), connectors={"erp": erp}) as (app, client):
        yield Gateway(app, client, app.state.runtime, erp)


@dataclass
class Seeded:
    inbound_id: int | None
    event_id: int
    delivery_id: int | None
    entity_key: str

    @property
    def delivery(self) -> int:
        """The delivery's id (the test asked for one)."""
        assert self.delivery_id is not None
        return self.delivery_id


async def seed(
    rt: Runtime,
    *,
    status: str | None = "delivered",
    external_id: str | None = None,
    event_type: str = "order.created",
    skus: tuple[str, ...] = ("SKU-RED-M",),
    destination: str = "erp",
    topic: str = "orders/create",
    inbound: bool = True,
    attempts: int = 0,
    needs: list[dict[str, str]] | None = None,
    created_at: datetime | None = None,
    customer: OrderCustomer | None = None,
    order_values: dict[str, Any] | None = None,
    inbound_body: bytes | None = None,
    inbound_headers: dict[str, str] | None = None,
    **delivery_values: Any,
) -> Seeded:
    """One inbound event → canonical event → delivery in ``status`` (None: no delivery).

    Pending deliveries are due in an hour and in-flight ones hold a live lease, so the
    sweeper leaves them where the test put them. ``order_values`` go into the canonical
    order; ``inbound_body``/``inbound_headers`` replace the stored webhook's.
    """
    extra: dict[str, Any] = {"customer": customer} if customer else {}
    order = make_order(external_id or str(next(_numbers)), skus, **extra, **(order_values or {}))
    event = CanonicalEvent(
        type=event_type,
        entity_key=order.entity_key,
        occurred_at=order.created_at,
        payload=order,
    )
    now = utcnow()
    async with transaction(rt.sessions) as session:
        inbound_id: int | None = None
        if inbound:
            body = json.dumps({"id": order.external_id, "line_items": list(skus)}).encode()
            row_in = InboundEvent(
                connection_id=order.source,
                topic=topic,
                dedupe_key=f"webhook-{order.external_id}-{event_type}",
                received_at=created_at or now,
                headers=inbound_headers
                or {"x-shopify-topic": topic, "content-type": "application/json"},
                body=body if inbound_body is None else inbound_body,
            )
            session.add(row_in)
            await session.flush()
            inbound_id = row_in.id
        row = CanonicalEventRow(
            inbound_event_id=inbound_id,
            source=order.source,
            event_type=event.type,
            entity_type="order",
            entity_key=event.entity_key,
            occurred_at=event.occurred_at,
            created_at=created_at or now,
            currency=order.currency,
            total_amount=order.totals.total.amount,
            payload=event.payload_json(),
        )
        session.add(row)
        await session.flush()
        delivery_id: int | None = None
        if status is not None:
            delivery = plan_delivery(row, destination, "orders", now)
            delivery.status = status
            delivery.attempts = attempts
            delivery.needs = needs
            if status == "pending":
                delivery.next_attempt_at = now + timedelta(hours=1)
            if status == "in_flight":
                delivery.lease_owner = "another-worker"
                delivery.lease_expires_at = now + timedelta(hours=1)
            for key, value in delivery_values.items():
                setattr(delivery, key, value)
            session.add(delivery)
            await session.flush()
            delivery_id = delivery.id
    assert row.id is not None
    return Seeded(inbound_id, row.id, delivery_id, event.entity_key)


async def add_attempt(
    rt: Runtime, delivery_id: int, number: int, outcome: str, **values: Any
) -> None:
    async with transaction(rt.sessions) as session:
        session.add(
            DeliveryAttempt(
                delivery_id=delivery_id,
                number=number,
                started_at=utcnow(),
                duration_ms=12.5,
                outcome=outcome,
                **values,
            )
        )


async def add_link(
    rt: Runtime, connection_id: str, entity_type: str, our_key: str, remote_id: str
) -> None:
    async with transaction(rt.sessions) as session:
        session.add(
            EntityLink(
                connection_id=connection_id,
                entity_type=entity_type,
                our_key=our_key,
                remote_id=remote_id,
                updated_at=utcnow(),
            )
        )


# --- a gateway that also routes prices ---------------------------------------------------


@pytest.fixture
async def gw_flows(clean_db: str) -> AsyncIterator[Gateway]:
    """A gateway that also routes products (prices) erp → shop; both ends are fakes that take
    everything (a test scripts ``shop`` to refuse).

    ``clean_db`` empties findings, rule overrides and the price guard's memory as well.
    """
    from app.config import parse_config
    from tests.conftest import gateway_config_yaml

    yaml_text = gateway_config_yaml().replace(
        "routes:\n", "routes:\n  - {flow: products, from: erp, to: shop}\n"
    )
    config = parse_config(yaml_text, "test-config")
    settings = make_settings(clean_db, api_keys=API_KEYS)
    erp, shop = FakeConnector("erp"), FakeConnector("shop", side="store")
    connectors = {"erp": erp, "shop": shop}
    async with running_app(settings, config, connectors=connectors) as (app, client):
        yield Gateway(app, client, app.state.runtime, erp, shop)
