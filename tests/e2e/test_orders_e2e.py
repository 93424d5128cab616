"""Shopify orders reach NetSuite exactly once, through real processes on loopback."""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from typing import Any

import httpx
import pytest

from tests.conftest import SHOP_SECRET
from tests.e2e.conftest import Stack
from tests.support.processes import poll, wait_http
from tests.support.shopify import order_payload, signed

pytestmark = pytest.mark.e2e


def send_order(
    stack: Stack,
    n: int,
    *,
    webhook_id: str | None = None,
    skus: tuple[str, ...] = ("SKU-RED-M", "SKU-BLUE-L"),
    topic: str = "orders/create",
) -> httpx.Response:
    body = json.dumps(order_payload(n, skus)).encode()
    return httpx.post(
        f"{stack.gateway_url}/webhooks/shop",
        content=body,
        headers=signed(body, SHOP_SECRET, topic, webhook_id),
        timeout=10,
    )


def sales_orders(stack: Stack) -> list[dict[str, Any]]:
    with stack.sim() as sim:
        body = sim.get("/_sim/records/salesOrder").json()
    return body["items"] if isinstance(body, dict) else body


def deliveries(stack: Stack, **filters: str) -> list[dict[str, Any]]:
    with stack.api() as api:
        response = api.get("/api/v1/deliveries", params={"limit": 500, **filters})
        response.raise_for_status()
        return response.json()["items"]  # type: ignore[no-any-return]


def all_delivered(stack: Stack, count: int) -> bool:
    items = deliveries(stack)
    return len(items) == count and all(d["status"] == "delivered" for d in items)


def set_fault(stack: Stack, **fault: Any) -> None:
    with stack.sim() as sim:
        sim.post("/_sim/faults", json=fault).raise_for_status()


def test_resent_webhook_makes_one_sales_order(stack: Stack) -> None:
    first = send_order(stack, 1, webhook_id="wh-1")
    assert first.status_code == 202, first.text
    event_ids = first.json()["event_ids"]
    assert len(event_ids) == 1 and first.json()["duplicate"] is False
    for _ in range(3):  # Shopify retries the same delivery
        again = send_order(stack, 1, webhook_id="wh-1")
        assert again.status_code == 200
        assert again.json() == {**first.json(), "duplicate": True}
    poll(lambda: all_delivered(stack, 1), message="the order delivered")
    again = send_order(stack, 1, webhook_id="wh-1")  # and once more after delivery
    assert again.json()["duplicate"] is True
    (so,) = sales_orders(stack)
    assert so["externalId"] == "shop-5000000000001"
    assert [line["item"]["id"] for line in so["item"]["items"]] == ["1042", "959"]
    with stack.api() as api:
        trace = api.get("/api/v1/trace", params={"entity_key": "shop:order:5000000000001"}).json()
    assert so["id"] in json.dumps(trace)


def test_commit_then_timeout_still_leaves_one_sales_order(stack: Stack) -> None:
    # NetSuite commits the order, then answers after the gateway's 1.5 s timeout
    set_fault(stack, commit_then_timeout={"count": 1, "delay_seconds": 4, "record": "salesOrder"})
    assert send_order(stack, 2).status_code == 202
    poll(lambda: all_delivered(stack, 1), message="the order delivered after the retry")
    assert len(sales_orders(stack)) == 1
    (delivery,) = deliveries(stack)
    with stack.api() as api:
        detail = api.get(f"/api/v1/deliveries/{delivery['id']}").json()
    outcomes = [a["outcome"] for a in detail["attempts"]]
    assert outcomes[0] == "transient" and outcomes[-1] == "delivered"


def test_netsuite_outage_opens_breaker_and_nothing_is_dead_lettered(stack: Stack) -> None:
    set_fault(stack, outage={"until_cleared": True})
    outage_began = time.monotonic()
    for n in range(10, 20):
        assert send_order(stack, n).status_code == 202

    def breaker_open() -> bool:
        with stack.api() as api:
            conns = {c["id"]: c for c in api.get("/api/v1/connections").json()["items"]}
        return conns["erp"]["breaker_state"] in ("open", "half-open")

    poll(breaker_open, message="the breaker to open")
    assert not deliveries(stack, status="dead")
    with stack.sim() as sim:
        sim.delete("/_sim/faults").raise_for_status()
    outage = time.monotonic() - outage_began
    poll(lambda: all_delivered(stack, 10), timeout=45, message="all orders delivered")
    assert len(sales_orders(stack)) == 10
    # failed attempts: those made before the breaker opened (at most one per order, those in
    # flight with the three that opened it), then one trial per breaker_reset_seconds (1 s)
    # while the outage lasted (longer on a loaded machine), not one per order per backoff
    failed = sum(d["attempts"] for d in deliveries(stack)) - 10
    assert failed <= 10 + 3 + math.ceil(outage) + 1, (failed, outage)


def test_worker_killed_mid_delivery_delivers_exactly_once(stack: Stack) -> None:
    # NetSuite commits the sales order and holds the answer: the worker dies while waiting
    set_fault(stack, commit_then_timeout={"count": 1, "delay_seconds": 30, "record": "salesOrder"})
    assert send_order(stack, 3).status_code == 202
    poll(lambda: len(sales_orders(stack)) == 1, message="NetSuite to commit the order")
    victim = stack.worker if stack.worker is not None else stack.gateway
    victim.kill9()
    (delivery,) = deliveries(stack) if stack.worker else [None]
    if delivery is not None:
        assert delivery["status"] == "in_flight"
    if stack.worker is not None:
        stack.start_worker()
    else:
        stack.start_gateway()
    poll(lambda: all_delivered(stack, 1), timeout=45, message="the order delivered after the crash")
    assert len(sales_orders(stack)) == 1


def test_unmapped_sku_is_parked_then_released_by_adding_the_mapping(stack: Stack) -> None:
    assert send_order(stack, 4, skus=("SKU-RED-M", "SKU-NEW-XL")).status_code == 202
    (parked,) = poll(lambda: deliveries(stack, status="parked"), message="the order parked")
    assert "SKU-NEW-XL" in parked["parked_reason"]
    with stack.api() as api:
        response = api.put("/api/v1/mappings/sku/erp", json={"entries": {"SKU-NEW-XL": "959"}})
    assert response.status_code == 200, response.text
    poll(lambda: all_delivered(stack, 1), message="the released order delivered")
    (so,) = sales_orders(stack)
    assert [line["item"]["id"] for line in so["item"]["items"]] == ["1042", "959"]


def test_bad_webhooks_are_rejected_and_signed_unparseable_ones_are_kept(stack: Stack) -> None:
    url = f"{stack.gateway_url}/webhooks/shop"
    body = json.dumps(order_payload(5)).encode()
    good = signed(body, SHOP_SECRET)
    rejected = [
        ("bad signature", url, body, signed(body, "wrong-secret"), 401),
        (
            "missing signature",
            url,
            body,
            {k: v for k, v in good.items() if k != "X-Shopify-Hmac-Sha256"},
            401,
        ),
        ("unknown connection", f"{stack.gateway_url}/webhooks/nope", body, good, 404),
        (
            "oversize body",
            url,
            b"x" * (2 * 1024 * 1024 + 1),
            signed(b"x" * (2 * 1024 * 1024 + 1), SHOP_SECRET),
            413,
        ),
    ]
    for name, target, content, headers, status in rejected:
        response = httpx.post(target, content=content, headers=headers, timeout=10)
        assert response.status_code == status, f"{name}: {response.status_code} {response.text}"
        error = response.json()["error"]
        assert error["message"], name
    with stack.api() as api:
        assert api.get("/api/v1/inbound-events").json()["items"] == []
    # Shopify signed these: answering 4xx would drop them (and, repeated, make Shopify remove
    # the subscription), so they are kept in quarantine to be replayed after a fix
    kept = [("malformed JSON", b"{not json"), ("order without lines", b'{"id": 1}')]
    for name, content in kept:
        response = httpx.post(url, content=content, headers=signed(content, SHOP_SECRET))
        assert response.status_code == 200, f"{name}: {response.status_code} {response.text}"
        assert response.json()["quarantined"] is True, name
    with stack.api() as api:
        assert api.get("/api/v1/events").json()["items"] == []
        listed = api.get("/api/v1/quarantine").json()["items"]
        assert len(listed) == len(kept)
    assert deliveries(stack) == []


# serve --workers N needs PostgreSQL (on SQLite it refuses to start: tests/unit/test_startup.py)
@pytest.mark.parametrize("stack", ["postgres-redis"], indirect=True)
def test_two_api_processes_share_the_port_and_store_each_order_once(stack: Stack) -> None:
    stack.gateway.kill9()
    port = stack.gateway_url.rsplit(":", 1)[1]
    args = [sys.executable, "-m", "app.cli", "serve", "--port", port, "--workers", "2"]
    stack.gateway = stack.group.start("gateway", args, stack.env)
    wait_http(f"{stack.gateway_url}/readyz", stack.gateway)
    gateway = stack.gateway
    poll(
        lambda: gateway.log_tail(200).count("Application startup complete") == 2,
        message="two API processes started",
    )

    # every order sent twice at once, by 16 connections spread over both processes
    async def send_all() -> list[int]:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=16)) as client:
            bodies = [json.dumps(order_payload(n)).encode() for n in range(40, 60)] * 2
            answers = await asyncio.gather(
                *(
                    client.post(
                        f"{stack.gateway_url}/webhooks/shop",
                        content=body,
                        headers=signed(body, SHOP_SECRET, "orders/create", f"wh-{i % 20}"),
                        timeout=10,
                    )
                    for i, body in enumerate(bodies)
                )
            )
        return [a.status_code for a in answers]

    statuses = asyncio.run(send_all())
    assert sorted(statuses) == [200] * 20 + [202] * 20  # each order stored once
    poll(lambda: all_delivered(stack, 20), timeout=60, message="20 orders delivered")
    assert len(sales_orders(stack)) == 20
