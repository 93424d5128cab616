"""Lists: filters, keyset paging that returns every row exactly once, detail views."""

from __future__ import annotations

import base64
from datetime import timedelta

from app.models import utcnow
from tests.api.conftest import Gateway, seed


async def test_delivery_pages_return_every_row_exactly_once(gw: Gateway) -> None:
    statuses = ["delivered", "dead", "parked", "held", "dead", "delivered", "superseded"]
    ids = [(await seed(gw.rt, status=s)).delivery for s in statuses]
    items = await gw.pages("/deliveries", limit=3)
    seen = [d["id"] for d in items]
    assert seen == sorted(ids, reverse=True)  # newest first, no gaps, no repeats
    for limit in (1, 2, 7, 500):
        assert [d["id"] for d in await gw.pages("/deliveries", limit=limit)] == seen
    dead = await gw.pages("/deliveries", limit=1, status="dead")
    assert [d["id"] for d in dead] == [ids[4], ids[1]]


async def test_delivery_filters(gw: Gateway) -> None:
    a = await seed(gw.rt, status="dead", event_type="order.created")
    b = await seed(gw.rt, status="parked", event_type="order.updated")
    c = await seed(gw.rt, status="delivered", destination="shop")

    async def ids(**params: object) -> set[int | None]:
        return {d["id"] for d in (await gw.ok("/deliveries", **params))["items"]}

    assert await ids(status="dead") == {a.delivery}
    assert await ids(status=["dead", "parked"]) == {a.delivery, b.delivery}
    assert await ids(destination="shop") == {c.delivery}
    assert await ids(destination="erp", event_type="order.updated") == {b.delivery}
    assert await ids(entity_key=a.entity_key) == {a.delivery}
    assert await ids(flow="orders", source="shop") == {a.delivery, b.delivery, c.delivery}
    assert await ids(flow="inventory") == set()

    item = (await gw.ok("/deliveries", entity_key=a.entity_key))["items"][0]
    assert item["status"] == "dead" and item["attempts"] == 0
    assert item["created_at"].endswith(("Z", "+00:00"))


async def test_bad_list_parameters_say_what_is_wrong(gw: Gateway) -> None:
    bad_status = await gw.get("/deliveries", status="lost")
    assert bad_status.status_code == 422
    message = bad_status.json()["error"]["message"]
    for allowed in ("pending", "in_flight", "delivered", "parked", "held", "dead", "superseded"):
        assert allowed in message
    too_many = await gw.get("/deliveries", limit=501)
    assert too_many.status_code == 422 and "limit" in too_many.json()["error"]["message"]
    for cursor in ("garbage!", base64.urlsafe_b64encode(b'{"k": "text"}').decode()):
        bad_cursor = await gw.get("/deliveries", cursor=cursor)
        assert bad_cursor.status_code == 400
        assert "cursor" in bad_cursor.json()["error"]["message"]


async def test_events_join_their_inbound_event_and_deliveries(gw: Gateway) -> None:
    old = await seed(gw.rt, status="delivered", created_at=utcnow() - timedelta(days=2))
    new = await seed(gw.rt, status="parked", event_type="order.updated", topic="orders/updated")
    bare = await seed(gw.rt, status=None, inbound=False)

    items = await gw.pages("/events", limit=2)
    assert [e["id"] for e in items] == [bare.event_id, new.event_id, old.event_id]
    by_id = {e["id"]: e for e in items}
    event = by_id[new.event_id]
    assert event["inbound_event_id"] == new.inbound_id
    assert event["topic"] == "orders/updated"
    assert event["dedupe_key"].startswith("webhook-")
    assert event["event_type"] == "order.updated" and event["entity_key"] == new.entity_key
    assert event["total_amount"] == "19.9900" and event["currency"] == "USD"
    assert event["deliveries"] == [
        {"id": new.delivery, "destination": "erp", "flow": "orders", "status": "parked"}
    ]
    assert by_id[bare.event_id]["inbound_event_id"] is None
    assert by_id[bare.event_id]["deliveries"] == []

    async def ids(**params: object) -> list[int]:
        return [e["id"] for e in (await gw.ok("/events", **params))["items"]]

    assert await ids(event_type="order.updated") == [new.event_id]
    assert await ids(entity_key=old.entity_key) == [old.event_id]
    assert await ids(source="nope") == []
    yesterday = (utcnow() - timedelta(days=1)).isoformat()
    assert await ids(since=yesterday) == [bare.event_id, new.event_id]
    assert await ids(until=yesterday) == [old.event_id]
    naive = (utcnow() - timedelta(days=1)).replace(tzinfo=None).isoformat()
    assert await ids(until=naive) == [old.event_id]  # no offset: taken as UTC


async def test_event_detail_has_payload_inbound_and_deliveries(gw: Gateway) -> None:
    s = await seed(gw.rt, status="dead", last_error="boom")
    detail = await gw.ok(f"/events/{s.event_id}")
    assert detail["payload"]["external_id"] == s.entity_key.rsplit(":", 1)[1]
    assert detail["payload"]["totals"]["total"] == {"amount": "19.99", "currency": "USD"}
    inbound = detail["inbound_event"]
    assert inbound["id"] == s.inbound_id and inbound["body_encoding"] == "utf-8"
    assert '"line_items"' in inbound["body"]
    assert inbound["headers"]["x-shopify-topic"] == "orders/create"
    assert inbound["event_ids"] == [s.event_id]
    (delivery,) = detail["deliveries"]
    assert delivery["id"] == s.delivery and delivery["last_error"] == "boom"
    missing = await gw.get("/events/999999")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


async def test_inbound_events_filter_page_and_detail(gw: Gateway) -> None:
    created = [await seed(gw.rt, status=None, topic=t) for t in ("orders/create",) * 4]
    updated = await seed(gw.rt, status=None, topic="orders/updated")
    items = await gw.pages("/inbound-events", limit=2)
    assert [i["id"] for i in items] == [updated.inbound_id] + [
        c.inbound_id for c in reversed(created)
    ]
    assert items[0]["event_ids"] == [updated.event_id]
    assert items[0]["body_bytes"] > 0 and items[0]["status"] == "accepted"
    assert "body" not in items[0] and "headers" not in items[0]

    only = await gw.pages("/inbound-events", limit=10, topic="orders/updated")
    assert [i["id"] for i in only] == [updated.inbound_id]
    assert await gw.pages("/inbound-events", limit=10, connection_id="erp") == []
    assert await gw.pages("/inbound-events", limit=10, status="ignored") == []
    assert len(await gw.pages("/inbound-events", limit=10, status="accepted")) == 5

    detail = await gw.ok(f"/inbound-events/{updated.inbound_id}")
    assert detail["headers"]["content-type"] == "application/json"
    assert detail["body"].startswith("{") and detail["body_bytes"] == len(detail["body"])
    assert (await gw.get("/inbound-events/999999")).status_code == 404


async def test_approvals_lists_held_deliveries(gw: Gateway) -> None:
    held = [await seed(gw.rt, status="held") for _ in range(3)]
    await seed(gw.rt, status="dead")
    items = await gw.pages("/approvals", limit=2)
    assert [d["id"] for d in items] == [h.delivery for h in reversed(held)]
    assert all(d["status"] == "held" for d in items)
