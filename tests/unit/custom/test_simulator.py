"""The connector against the shop simulator (ASGI, in process), and the ShopSender."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors.custom import signing
from connectors.custom.connector import CustomConnector, delivery_id
from kernel.errors import (
    PayloadError,
    PermanentError,
    RateLimitedError,
    SignatureError,
    TransientError,
)
from kernel.types import DeliveryContext
from simulators.custom.simulator import ShopSender, ShopSimulator, create_app, main
from tests.support.connectors import connect
from tests.unit.custom.conftest import (
    BASE_URL,
    SECRET,
    WHEN,
    availability_event,
    make_config,
    order_data,
    shipment_event,
)


@pytest.fixture
def sim() -> ShopSimulator:
    simulator: ShopSimulator = create_app(SECRET).state.simulator
    return simulator


@pytest.fixture
async def shop_http(sim: ShopSimulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


@pytest.fixture
def shop(shop_http: httpx.AsyncClient) -> CustomConnector:
    return connect(CustomConnector, make_config(), shop_http)


async def test_push_is_stored_with_its_directives(
    shop: CustomConnector, sim: ShopSimulator, shop_http: httpx.AsyncClient
) -> None:
    event = shipment_event()
    ctx = DeliveryContext(directives={"notify_customer": False})
    result = await shop.deliver(event, ctx)
    assert result.links[0].remote_id == "shop-1"
    answer = (await shop_http.get("/_sim/received", params={"type": "shipment.created"})).json()
    assert answer["count"] == 1
    [item] = answer["items"]
    assert item["webhook_id"] == delivery_id(event)
    assert item["envelope"]["directives"] == {"notify_customer": False}
    assert item["envelope"]["data"]["order_key"] == "myshop:order:1001"
    empty = (await shop_http.get("/_sim/received", params={"type": "product.upserted"})).json()
    assert empty["count"] == 0


async def test_retry_after_a_lost_answer_is_stored_once(
    shop: CustomConnector, sim: ShopSimulator, shop_http: httpx.AsyncClient
) -> None:
    await shop_http.post("/_sim/faults", json={"accept_then_fail": {"count": 1}})
    event = shipment_event()
    with pytest.raises(TransientError, match="HTTP 500"):
        await shop.deliver(event, DeliveryContext())
    assert len(sim.received) == 1  # the shop has it, the gateway does not know
    result = await shop.deliver(event, DeliveryContext())  # the delivery engine's retry
    assert result.links[0].remote_id == "shop-1"  # the same record, not a second one
    assert len(sim.received) == 1
    stats = (await shop_http.get("/_sim/stats")).json()
    assert stats["received"] == 1 and stats["duplicates"] == 1
    assert stats["responses"] == {"500": 1, "200": 1}


async def test_availability_is_served_back_and_older_as_of_ignored(
    shop: CustomConnector, sim: ShopSimulator
) -> None:
    await shop.deliver(availability_event("12", WHEN), DeliveryContext())
    await shop.deliver(availability_event("3", WHEN, location="berlin"), DeliveryContext())
    await shop.deliver(availability_event("5", WHEN, sku="MUG"), DeliveryContext())
    # a late, older fact: stored (acknowledged) but not applied
    stale = availability_event("99", WHEN - timedelta(minutes=5))
    await shop.deliver(stale, DeliveryContext())

    stock = await shop.fetch_availability(["TSHIRT-RED-M"])
    assert stock == {("TSHIRT-RED-M", None): Decimal("12"), ("TSHIRT-RED-M", "berlin"): Decimal(3)}
    assert [r.applied for r in sim.events("inventory.availability_changed")] == [
        True,
        True,
        True,
        False,
    ]
    assert sim.stats.stale_availability == 1

    newer = availability_event("0", WHEN + timedelta(minutes=1))
    await shop.deliver(newer, DeliveryContext())
    assert (await shop.fetch_availability(["TSHIRT-RED-M"]))[("TSHIRT-RED-M", None)] == 0


async def test_stock_set_by_hand_shows_drift(
    shop: CustomConnector, shop_http: httpx.AsyncClient
) -> None:
    await shop.deliver(availability_event("12", WHEN), DeliveryContext())
    answer = await shop_http.put(
        "/_sim/stock",
        json={"items": [{"sku": "TSHIRT-RED-M", "location": None, "available": "7"}]},
    )
    assert answer.status_code == 200
    assert await shop.fetch_availability(["TSHIRT-RED-M"]) == {("TSHIRT-RED-M", None): Decimal(7)}
    bad = await shop_http.put("/_sim/stock", json={"items": [{"sku": "A"}]})
    assert bad.status_code == 400 and "items[0]" in bad.json()["error"]


async def test_wrong_secret_is_refused(sim: ShopSimulator, shop_http: httpx.AsyncClient) -> None:
    config = make_config(credentials={"webhook_secret": signing.generate_secret()})
    wrong = connect(CustomConnector, config, shop_http)
    with pytest.raises(PermanentError, match="refused our signature"):
        await wrong.deliver(shipment_event(), DeliveryContext())
    with pytest.raises(PermanentError, match="HTTP 401"):
        await wrong.fetch_availability(["A"])
    assert sim.received == [] and sim.stats.bad_signatures == 2


async def test_rate_limit_and_outage_faults(
    shop: CustomConnector, sim: ShopSimulator, shop_http: httpx.AsyncClient
) -> None:
    faults = {"rate_limit": {"count": 1, "retry_after": 2}, "outage": {"count": 1}}
    snapshot = (await shop_http.post("/_sim/faults", json=faults)).json()
    assert snapshot["rate_limit"] == {"count": 1, "retry_after": 2.0}
    with pytest.raises(TransientError, match="HTTP 503"):  # the outage comes first
        await shop.deliver(shipment_event(), DeliveryContext())
    with pytest.raises(RateLimitedError) as info:
        await shop.deliver(shipment_event(), DeliveryContext())
    assert info.value.retry_after == 2
    assert (await shop.deliver(shipment_event(), DeliveryContext())).links
    assert len(sim.received) == 1


async def test_bad_fault_settings_and_unknown_control(shop_http: httpx.AsyncClient) -> None:
    bad = await shop_http.post("/_sim/faults", json={"rate_limit": {"count": "many"}})
    assert bad.status_code == 400 and "bad fault settings" in bad.json()["error"]
    assert (await shop_http.get("/_sim/nothing")).status_code == 404
    cleared = (await shop_http.delete("/_sim/faults")).json()
    assert cleared["outage"] == {"count": 0, "until_cleared": False}


async def test_reset_forgets_everything(
    shop: CustomConnector, sim: ShopSimulator, shop_http: httpx.AsyncClient
) -> None:
    await shop.deliver(availability_event("12", WHEN), DeliveryContext())
    await shop_http.post("/_sim/faults", json={"outage": {"until_cleared": True}})
    assert (await shop_http.post("/_sim/reset")).json() == {"reset": True}
    assert sim.received == [] and sim.stock == {}
    # after a reset the same id is new again
    assert (await shop.deliver(availability_event("12", WHEN), DeliveryContext())).links


async def test_unsigned_push_is_401(shop_http: httpx.AsyncClient) -> None:
    answer = await shop_http.post("/gateway/events", json={"type": "x", "data": {}})
    assert answer.status_code == 401
    assert "missing header" in answer.json()["error"]


async def test_invalid_availability_is_422(
    sim: ShopSimulator, shop_http: httpx.AsyncClient
) -> None:
    body = json.dumps({"type": "inventory.availability_changed", "data": {"sku": "A"}}).encode()
    headers = signing.sign_headers(SECRET, "msg_bad", body)
    answer = await shop_http.post("/gateway/events", content=body, headers=headers)
    assert answer.status_code == 422
    assert sim.received == []


# --- ShopSender → a minimal gateway built on the connector --------------------------------


def gateway_app(connector: CustomConnector, seen: list[str]) -> Starlette:
    """Just enough of POST /webhooks/{id}: verify, parse, dedupe — to test the sender."""

    async def webhook(request: Request) -> JSONResponse:
        body = await request.body()
        headers: Mapping[str, str] = request.headers
        try:
            connector.verify_signature(headers, body)
            parsed = connector.parse_webhook(headers, body)
        except SignatureError as exc:
            return JSONResponse({"error": str(exc)}, status_code=401)
        except PayloadError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status_code)
        duplicate = parsed.dedupe_key in seen
        seen.append(parsed.dedupe_key)
        events = [e.entity_key for e in parsed.events]
        return JSONResponse({"events": events, "duplicate": duplicate}, status_code=202)

    return Starlette(routes=[Route("/webhooks/myshop", webhook, methods=["POST"])])


@pytest.fixture
async def sender() -> AsyncIterator[tuple[ShopSender, list[str]]]:
    seen: list[str] = []
    async with httpx.AsyncClient() as unused:
        app = gateway_app(connect(CustomConnector, make_config(), unused), seen)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    async with client, ShopSender("http://gw/webhooks/myshop", SECRET, client=client) as s:
        yield s, seen


async def test_sender_signs_what_the_connector_accepts(
    sender: tuple[ShopSender, list[str]],
) -> None:
    shop_sender, seen = sender
    first = await shop_sender.send("order.created", order_data(), webhook_id="msg_o1")
    assert first.status_code == 202
    assert first.json() == {"events": ["myshop:order:1001"], "duplicate": False}
    again = await shop_sender.send("order.created", order_data(), webhook_id="msg_o1")
    assert again.json()["duplicate"] is True
    fresh = await shop_sender.send("customer.upserted", {"external_id": "77", "updated_at": WHEN})
    assert fresh.status_code == 202
    assert seen[2].startswith("msg_") and seen[2] != "msg_o1"


async def test_sender_with_an_old_clock_is_refused(
    sender: tuple[ShopSender, list[str]],
) -> None:
    shop_sender, _ = sender
    answer = await shop_sender.send("order.created", order_data(), signed_at=1_000_000_000)
    assert answer.status_code == 401
    assert "s old" in answer.json()["error"]


async def test_sender_gets_clear_422(sender: tuple[ShopSender, list[str]]) -> None:
    shop_sender, _ = sender
    answer = await shop_sender.send("order.created", order_data(lines="none"))
    assert answer.status_code == 422
    assert "data.lines" in answer.json()["error"]


def test_cli_needs_a_valid_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUSTOM_SHOP_SECRET", raising=False)
    with pytest.raises(SystemExit):
        main(["serve", "--port", "0"])
    with pytest.raises(SystemExit):
        main(["serve", "--secret", "whsec_%%"])
