"""Trace: one business entity from the webhook to its ids in other systems."""

from __future__ import annotations

from kernel.canonical.order import OrderCustomer
from tests.api.conftest import Gateway, add_link, seed


async def test_trace_follows_an_order_across_systems(gw: Gateway) -> None:
    created = await seed(gw.rt, status="delivered", external_id="5001", attempts=1)
    updated = await seed(
        gw.rt,
        status="dead",
        external_id="5001",
        event_type="order.updated",
        topic="orders/updated",
        attempts=3,
        last_error="HTTP 400",
    )
    unrelated = await seed(gw.rt, status="delivered", external_id="5002")
    await add_link(gw.rt, "erp", "order", created.entity_key, "SO-881")
    await add_link(gw.rt, "erp", "customer", "shop:customer:77", "CUST-12")
    await add_link(gw.rt, "erp", "order", unrelated.entity_key, "SO-882")

    trace = await gw.ok("/trace", entity_key="shop:order:5001")
    assert trace["entity_key"] == "shop:order:5001" and trace["truncated"] is False
    assert [i["id"] for i in trace["inbound_events"]] == [created.inbound_id, updated.inbound_id]
    first_in = trace["inbound_events"][0]
    assert first_in["topic"] == "orders/create" and first_in["dedupe_key"]
    assert first_in["connection_id"] == "shop" and first_in["received_at"]

    assert [(e["id"], e["type"]) for e in trace["events"]] == [
        (created.event_id, "order.created"),
        (updated.event_id, "order.updated"),
    ]
    assert trace["events"][1]["inbound_event_id"] == updated.inbound_id
    (failed,) = trace["events"][1]["deliveries"]
    assert failed == {
        **failed,
        "id": updated.delivery,
        "destination": "erp",
        "status": "dead",
        "attempts": 3,
        "last_error": "HTTP 400",
    }
    assert {(r["entity_type"], r["remote_id"]) for r in trace["remote_ids"]} == {
        ("order", "SO-881"),
        ("customer", "CUST-12"),
    }

    by_parts = await gw.ok("/trace/shop/order/5001")
    assert by_parts == trace


async def test_trace_of_an_unknown_entity_is_404(gw: Gateway) -> None:
    response = await gw.get("/trace", entity_key="shop:order:404")
    assert response.status_code == 404
    assert "shop:order:404" in response.json()["error"]["message"]
    assert (await gw.get("/trace/shop/order/404")).status_code == 404
    assert (await gw.get("/trace")).status_code == 422


async def test_trace_of_links_alone(gw: Gateway) -> None:
    # an entity only known by its link (e.g. a customer) still traces
    await add_link(gw.rt, "erp", "customer", "shop:customer:9", "CUST-9")
    trace = await gw.ok("/trace/shop/customer/9")
    assert trace["events"] == [] and trace["inbound_events"] == []
    assert [r["remote_id"] for r in trace["remote_ids"]] == ["CUST-9"]


async def test_trace_finds_a_guest_customer_by_email(gw: Gateway) -> None:
    guest = OrderCustomer(email=" Grace@Example.com ", is_guest=True)
    s = await seed(gw.rt, external_id="6001", customer=guest)
    await add_link(gw.rt, "erp", "customer", "shop:customer:guest:grace@example.com", "CUST-G")
    trace = await gw.ok("/trace", entity_key=s.entity_key)
    assert [r["remote_id"] for r in trace["remote_ids"]] == ["CUST-G"]
