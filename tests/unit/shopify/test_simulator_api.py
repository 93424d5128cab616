"""The simulator's Admin API subset behaves like Shopify's: auth, paging, limits, faults."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from connectors.shopify.inbound import verify_hmac
from connectors.shopify.webhooks import parse_webhook
from simulators.shopify.simulator import INVALID_TOKEN_BODY, ShopifySimulator, create_app
from tests.unit.shopify.conftest import SECRET, SOURCE

TOKEN = "shpat_test_token"
HOST = "http://sim-shop.test"
ORDERS = "/admin/api/2025-01/orders.json"


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Receiver:
    """Stands in for the gateway: records each webhook and checks its signature."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        parse_webhook(request.headers, request.content, SOURCE)  # must parse
        verify_hmac(request.content, request.headers.get("x-shopify-hmac-sha256"), SECRET)
        return httpx.Response(202, json={"event_ids": [1], "duplicate": False})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
async def sim(clock: Clock, receiver: Receiver) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as hooks:
        app = create_app(access_token=TOKEN, clock=clock, webhook_client=hooks)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=HOST) as http:
            yield app, http


@pytest.fixture
def http(sim: tuple[Any, httpx.AsyncClient]) -> httpx.AsyncClient:
    return sim[1]


@pytest.fixture
def state(sim: tuple[Any, httpx.AsyncClient]) -> ShopifySimulator:
    simulator: ShopifySimulator = sim[0].state.simulator
    return simulator


def auth() -> dict[str, str]:
    return {"X-Shopify-Access-Token": TOKEN}


async def create_orders(http: httpx.AsyncClient, count: int, **body: Any) -> list[dict[str, Any]]:
    orders = []
    for _ in range(count):
        response = await http.post("/_sim/orders", json=body)
        assert response.status_code == 201, response.text
        orders.append(response.json()["order"])
    return orders


def next_link(response: httpx.Response, rel: str = "next") -> str | None:
    match = re.search(rf'<([^>]+)>; rel="{rel}"', response.headers.get("link", ""))
    return match.group(1) if match else None


# --- auth -----------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"X-Shopify-Access-Token": "shpat_wrong"}])
async def test_wrong_or_missing_token_gets_shopifys_401(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await http.get(ORDERS, headers=headers)
    assert response.status_code == 401
    assert response.json() == INVALID_TOKEN_BODY
    assert response.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }


# --- orders ---------------------------------------------------------------------------------


async def test_get_one_order_by_id(http: httpx.AsyncClient) -> None:
    (order,) = await create_orders(http, 1, skus=["TSHIRT-RED-M"])
    response = await http.get(f"/admin/api/2025-01/orders/{order['id']}.json", headers=auth())
    assert response.status_code == 200
    body = response.json()
    assert body["order"]["id"] == order["id"] and body["order"]["id"] > 2**53
    assert b'"id":6000000000000000001' in response.content  # the 64-bit id, not a float
    assert body["order"]["line_items"][0]["sku"] == "TSHIRT-RED-M"
    assert response.headers["x-shopify-api-version"] == "2025-01"


async def test_fields_trims_the_order(http: httpx.AsyncClient) -> None:
    (order,) = await create_orders(http, 1)
    url = f"/admin/api/2025-01/orders/{order['id']}.json"
    response = await http.get(url, params={"fields": "id,name"}, headers=auth())
    assert response.json() == {"order": {"id": order["id"], "name": order["name"]}}


@pytest.mark.parametrize("order_id", ["1", "abc"])
async def test_unknown_order_is_404(http: httpx.AsyncClient, order_id: str) -> None:
    response = await http.get(f"/admin/api/2025-01/orders/{order_id}.json", headers=auth())
    assert response.status_code == 404
    assert response.json() == {"errors": "Not Found"}
    assert response.headers["x-shopify-shop-api-call-limit"] == "1/40"


async def test_unknown_api_version_is_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/admin/api/latest/orders.json", headers=auth())
    assert response.status_code == 404


async def test_cursor_paging_walks_every_order_once(http: httpx.AsyncClient) -> None:
    created = await create_orders(http, 7)
    first = await http.get(ORDERS, params={"limit": 3}, headers=auth())
    assert first.status_code == 200
    assert next_link(first, "previous") is None
    seen = [o["id"] for o in first.json()["orders"]]
    url = next_link(first)
    pages = 1
    while url:
        assert url.startswith(f"{HOST}{ORDERS}?limit=3&page_info=")
        page = await http.get(url, headers=auth())
        seen += [o["id"] for o in page.json()["orders"]]
        assert next_link(page, "previous") is not None
        url = next_link(page)
        pages += 1
    assert seen == [o["id"] for o in created]
    assert pages == 3


async def test_previous_link_goes_back(http: httpx.AsyncClient) -> None:
    created = await create_orders(http, 5)
    first = await http.get(ORDERS, params={"limit": 2}, headers=auth())
    second = await http.get(next_link(first) or "", headers=auth())
    back = await http.get(next_link(second, "previous") or "", headers=auth())
    assert [o["id"] for o in back.json()["orders"]] == [o["id"] for o in created[:2]]


async def test_status_defaults_to_open(http: httpx.AsyncClient) -> None:
    open_order, cancelled = await create_orders(http, 2)
    assert (await http.post(f"/_sim/orders/{cancelled['id']}/cancel")).status_code == 200

    async def ids(**params: Any) -> list[int]:
        response = await http.get(ORDERS, params=params, headers=auth())
        return [o["id"] for o in response.json()["orders"]]

    assert await ids() == [open_order["id"]]
    assert await ids(status="cancelled") == [cancelled["id"]]
    assert await ids(status="any") == [open_order["id"], cancelled["id"]]
    assert await ids(status="any", since_id=open_order["id"]) == [cancelled["id"]]
    assert await ids(status="any", ids=str(cancelled["id"])) == [cancelled["id"]]
    count = await http.get("/admin/api/2025-01/orders/count.json", headers=auth())
    assert count.json() == {"count": 1}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "251"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"status": "pending"}, "status"),
        ({"page_info": "!!!"}, "page_info"),
        ({"page_info": "eyJ4IjoxfQ", "status": "any"}, "page_info"),
    ],
)
async def test_bad_query_is_400_naming_the_parameter(
    http: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await http.get(ORDERS, params=params, headers=auth())
    assert response.status_code == 400
    assert field in response.json()["errors"]


# --- rate limit -------------------------------------------------------------------------------


async def test_leaky_bucket_throttles_then_recovers(http: httpx.AsyncClient, clock: Clock) -> None:
    for used in range(1, 41):
        response = await http.get(ORDERS, headers=auth())
        assert response.status_code == 200
        assert response.headers["x-shopify-shop-api-call-limit"] == f"{used}/40"
    throttled = await http.get(ORDERS, headers=auth())
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "0.5"  # one slot leaks in 1/2 s
    assert throttled.headers["x-shopify-shop-api-call-limit"] == "40/40"
    assert "Exceeded 2 calls per second" in throttled.json()["errors"]
    clock.now += 0.5
    assert (await http.get(ORDERS, headers=auth())).status_code == 200
    clock.now += 20  # the bucket drains at 2 per second
    response = await http.get(ORDERS, headers=auth())
    assert response.headers["x-shopify-shop-api-call-limit"] == "1/40"


async def test_control_endpoints_are_not_rate_limited(http: httpx.AsyncClient) -> None:
    for _ in range(45):
        assert (await http.get("/_sim/stats")).status_code == 200
    assert (await http.get(ORDERS, headers=auth())).status_code == 200


# --- faults ---------------------------------------------------------------------------------


async def test_outage_for_a_count_of_requests(http: httpx.AsyncClient) -> None:
    await http.post("/_sim/faults", json={"outage": {"count": 2}})
    statuses = [(await http.get(ORDERS, headers=auth())).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


async def test_outage_until_cleared(http: httpx.AsyncClient) -> None:
    await http.post("/_sim/faults", json={"outage": {"until_cleared": True}})
    assert (await http.get(ORDERS, headers=auth())).status_code == 503
    assert (await http.get(ORDERS, headers=auth())).status_code == 503
    cleared = await http.delete("/_sim/faults")
    assert cleared.json()["outage"] == {"count": 0, "until_cleared": False}
    assert (await http.get(ORDERS, headers=auth())).status_code == 200


async def test_injected_rate_limit(http: httpx.AsyncClient) -> None:
    await http.post("/_sim/faults", json={"rate_limit": {"count": 1, "retry_after": 3}})
    first = await http.get(ORDERS, headers=auth())
    assert first.status_code == 429 and first.headers["retry-after"] == "3.0"
    assert (await http.get(ORDERS, headers=auth())).status_code == 200


async def test_latency_delays_admin_answers(http: httpx.AsyncClient) -> None:
    response = await http.post("/_sim/faults", json={"latency_seconds": 0.05})
    assert response.json()["latency_seconds"] == 0.05
    answer = await http.get(ORDERS, headers=auth())
    assert answer.status_code == 200 and answer.elapsed.total_seconds() >= 0.05


async def test_bad_fault_body_is_422(http: httpx.AsyncClient) -> None:
    response = await http.post("/_sim/faults", json={"latency_seconds": -1})
    assert response.status_code == 422


# --- control: orders and webhooks -------------------------------------------------------------


async def test_new_order_sends_a_signed_orders_create_webhook(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    target = {"url": "http://gateway.test/webhooks/shop-eu", "secret": SECRET}
    assert (await http.post("/_sim/webhooks", json=target)).status_code == 200
    response = await http.post("/_sim/orders", json={"skus": ["MUG-BLACK"], "guest": True})
    assert response.status_code == 201
    body = response.json()
    (request,) = receiver.requests
    assert str(request.url) == target["url"]
    assert request.headers["x-shopify-topic"] == "orders/create"
    assert json.loads(request.content)["id"] == body["order"]["id"]
    assert body["webhooks"] == [
        {
            "topic": "orders/create",
            "webhook_id": request.headers["x-shopify-webhook-id"],
            "event_id": request.headers["x-shopify-event-id"],
            "order_id": str(body["order"]["id"]),
            "status": 202,
            "error": None,
            "retries": 0,
        }
    ]
    listed = (await http.get("/_sim/webhooks")).json()
    assert listed["url"] == target["url"] and SECRET not in json.dumps(listed)
    assert len(listed["deliveries"]) == 1


async def test_without_a_target_no_webhook_is_sent(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    response = await http.post("/_sim/orders")
    assert response.status_code == 201 and response.json()["webhooks"] == []
    assert receiver.requests == []


async def test_cancel_sends_cancelled_and_updated_with_one_event_id(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    await http.post("/_sim/webhooks", json={"url": "http://gw.test/w", "secret": SECRET})
    (order,) = await create_orders(http, 1)
    response = await http.post(f"/_sim/orders/{order['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["order"]["cancelled_at"] is not None
    _create, cancelled, updated = receiver.requests
    assert cancelled.headers["x-shopify-topic"] == "orders/cancelled"
    assert updated.headers["x-shopify-topic"] == "orders/updated"
    assert cancelled.headers["x-shopify-event-id"] == updated.headers["x-shopify-event-id"]
    assert cancelled.headers["x-shopify-webhook-id"] != updated.headers["x-shopify-webhook-id"]
    (event,) = parse_webhook(cancelled.headers, cancelled.content, SOURCE).events
    assert event.type == "order.cancelled" and event.payload.status == "cancelled"
    again = await http.post(f"/_sim/orders/{order['id']}/cancel")
    assert again.status_code == 409
    assert (await http.post("/_sim/orders/1/cancel")).status_code == 404


async def test_webhook_topics_can_be_limited(http: httpx.AsyncClient, receiver: Receiver) -> None:
    target = {"url": "http://gw.test/w", "secret": SECRET, "topics": ["orders/cancelled"]}
    await http.post("/_sim/webhooks", json=target)
    (order,) = await create_orders(http, 1)
    await http.post(f"/_sim/orders/{order['id']}/cancel")
    assert [r.headers["x-shopify-topic"] for r in receiver.requests] == ["orders/cancelled"]


async def test_unreachable_target_is_reported_not_raised(state: ShopifySimulator) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as hooks:
        state.webhook_client = hooks
        app = create_app(simulator=state)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=HOST) as c:
            await c.post("/_sim/webhooks", json={"url": "http://down.test/w", "secret": SECRET})
            response = await c.post("/_sim/orders")
    (sent,) = response.json()["webhooks"]
    assert sent["status"] is None and sent["error"].startswith("ConnectError")


async def test_a_given_payload_is_stored_as_is(http: httpx.AsyncClient) -> None:
    payload = {"id": 820982911946154508, "name": "#9999", "cancelled_at": None}
    response = await http.post("/_sim/orders", json={"order": payload})
    assert response.status_code == 201
    got = await http.get("/admin/api/2025-01/orders/820982911946154508.json", headers=auth())
    assert got.json()["order"] == payload
    bad = await http.post("/_sim/orders", json={"order": {"name": "no id"}})
    assert bad.status_code == 422


async def test_bad_new_order_options_are_422(http: httpx.AsyncClient) -> None:
    assert (await http.post("/_sim/orders", json={"currency": "usd"})).status_code == 422
    assert (await http.post("/_sim/orders", json={"colour": "red"})).status_code == 422
    mismatch = await http.post("/_sim/orders", json={"skus": ["A"], "quantities": [1, 2]})
    assert mismatch.status_code == 422
    assert mismatch.json() == {"detail": "quantities must give one quantity per SKU"}


async def test_reset_forgets_everything(http: httpx.AsyncClient) -> None:
    await http.post("/_sim/webhooks", json={"url": "http://gw.test/w", "secret": SECRET})
    await create_orders(http, 2)
    await http.post("/_sim/faults", json={"outage": {"until_cleared": True}})
    assert (await http.post("/_sim/reset")).status_code == 200
    assert (await http.get("/_sim/orders")).json() == {"orders": []}
    assert (await http.get("/_sim/webhooks")).json()["url"] is None
    response = await http.get(ORDERS, headers=auth())
    assert response.status_code == 200 and response.json() == {"orders": []}
    assert response.headers["x-shopify-shop-api-call-limit"] == "1/40"
    (order,) = await create_orders(http, 1)
    assert order["name"] == "#1001"  # numbering starts over


async def test_stats_count_requests(http: httpx.AsyncClient) -> None:
    await http.get(ORDERS, headers=auth())
    await http.get(ORDERS)
    stats = (await http.get("/_sim/stats")).json()
    assert stats["counts"]["admin orders.json"] == 1
    assert stats["counts"]["admin status 401"] == 1
    assert stats["bucket"] == {"used": 1, "size": 40}
