"""The delivery engine hands the destination connector's declarations to the attempt capture:
what the stored attempt shows of a call with secrets in headers and bodies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.delivery.capture import MASK, make_http_client
from app.delivery.worker import InProcessWorker
from app.main import start_runtime
from app.models import DeliveryAttempt
from app.runtime import Runtime
from kernel.canonical.events import CanonicalEvent
from kernel.types import DeliveryContext, DeliveryResult
from tests.conftest import make_config, make_settings, wait_for
from tests.support.factories import make_order, seed_event
from tests.support.fake_connector import FakeConnector, Script


def erp(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        headers={"X-Tenant-Pass": "ANSWERED-PASS"},
        json={"id": "SO-1", "session": {"pin": "4321", "ttl": 600}},
    )


@pytest.fixture
async def runtime(clean_db: str) -> AsyncIterator[tuple[Runtime, FakeConnector]]:
    http = make_http_client(transport=httpx.MockTransport(erp))

    async def send_one_call(event: CanonicalEvent, ctx: DeliveryContext) -> DeliveryResult:
        await http.post(
            "https://erp.example.test/orders",
            headers={"X-Tenant-Pass": "SENT-PASS"},
            json={"order": event.entity_key, "pin": "1234", "password": "PW"},
        )
        return DeliveryResult(summary="sent")

    # sends one call with a header and a field that only its declarations name as secret
    connector = FakeConnector(
        "erp",
        Script(decide=send_one_call),
        sensitive_headers={"X-Tenant-Pass"},
        sensitive_fields={"pin"},
        http=http,
    )
    rt, _ = await start_runtime(
        make_settings(clean_db), make_config(), with_worker=False, connectors={"erp": connector}
    )
    worker = InProcessWorker(rt)
    worker.start()
    try:
        yield rt, connector
    finally:
        await worker.stop()
        await rt.close()
        await http.aclose()


async def test_the_stored_attempt_hides_what_the_connector_declared(
    runtime: tuple[Runtime, FakeConnector],
) -> None:
    rt, _ = runtime
    delivery_id = await seed_event(rt, make_order("7001"))

    async def attempt() -> DeliveryAttempt | None:
        async with rt.sessions() as session:
            rows = await session.execute(
                sa.select(DeliveryAttempt).where(
                    DeliveryAttempt.delivery_id == delivery_id  # type: ignore[arg-type]
                )
            )
            return rows.scalars().first()

    stored: Any = await wait_for(attempt, timeout=15, message="an attempt")
    [exchange] = stored.exchanges
    request, response = exchange["request"], exchange["response"]
    assert request["headers"]["x-tenant-pass"] == MASK
    assert json.loads(request["body"]) == {
        "order": "shop:order:7001",
        "pin": MASK,
        "password": MASK,
    }
    assert response["headers"]["x-tenant-pass"] == MASK
    assert json.loads(response["body"]) == {"id": "SO-1", "session": {"pin": MASK, "ttl": 600}}
    text = json.dumps(stored.exchanges)
    for secret in ("SENT-PASS", "ANSWERED-PASS", "1234", "4321", '"PW"'):
        assert secret not in text
