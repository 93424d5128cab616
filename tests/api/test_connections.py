"""Connections: health at a glance, never credentials; pause and resume."""

from __future__ import annotations

from app.db import transaction
from app.delivery.outbox import enqueue_after_commit
from app.delivery.service import process_delivery
from app.models import utcnow
from tests.api.conftest import Gateway, seed
from tests.conftest import NS_CREDS, SHOP_SECRET


async def test_list_shows_breaker_queue_depth_and_routes(gw: Gateway) -> None:
    for status, count in (("pending", 2), ("in_flight", 1), ("parked", 3), ("held", 1)):
        for _ in range(count):
            await seed(gw.rt, status=status)
    await seed(gw.rt, status="dead")
    await seed(gw.rt, status="delivered")
    await seed(gw.rt, status="dead", destination="shop")

    response = await gw.get("/connections")
    assert response.status_code == 200
    page = response.json()
    assert page["next_cursor"] is None
    conns = {c["id"]: c for c in page["items"]}
    assert list(conns) == ["shop", "erp"]
    erp = conns["erp"]
    assert erp["type"] == "netsuite" and erp["base_url"] == "http://127.0.0.1:9/ns"
    assert erp["breaker_state"] == "closed" and erp["breaker_retry_at"] is None
    assert erp["paused"] is False
    assert erp["queue"] == {"pending": 2, "in_flight": 1, "parked": 3, "held": 1, "dead": 1}
    assert erp["flows_in"] == [] and erp["flows_out"] == ["orders"]
    assert conns["shop"]["flows_in"] == ["orders"] and conns["shop"]["flows_out"] == []
    assert conns["shop"]["queue"]["dead"] == 1
    for field in ("last_success_at", "last_error_at", "last_error"):
        assert field in erp
    assert "credentials" not in response.text
    for secret in (SHOP_SECRET, "shpat_test", *NS_CREDS.values()):
        assert secret not in response.text

    assert await gw.ok("/connections/erp") == erp
    missing = await gw.get("/connections/nope")
    assert missing.status_code == 404 and "shop, erp" in missing.json()["error"]["hint"]


async def test_pause_holds_deliveries_and_resume_sends_them(gw: Gateway) -> None:
    paused = await gw.write("POST", "/connections/erp/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True and paused.json()["paused_at"] is not None
    again = await gw.write("POST", "/connections/erp/pause")  # idempotent
    assert again.status_code == 200 and again.json()["paused"] is True

    s = await seed(gw.rt, status="pending", next_attempt_at=utcnow())  # due now
    async with transaction(gw.rt.sessions) as session:
        enqueue_after_commit(session, gw.rt, [s.delivery])
    outcome = await process_delivery(gw.rt, s.delivery)  # what a worker would do now
    assert outcome.kind == "skipped"
    assert await gw.status_of(s.delivery) == "pending"
    assert gw.erp.delivered == []

    resumed = await gw.write("POST", "/connections/erp/resume")
    assert resumed.status_code == 200, resumed.text
    body = resumed.json()
    assert body["paused"] is False and body["paused_at"] is None and body["requeued"] == 1
    await gw.wait_status(s.delivery, "delivered")
    assert gw.erp.accepted == [s.entity_key]
    assert (await gw.ok("/connections/erp"))["paused"] is False

    assert (await gw.write("POST", "/connections/nope/pause")).status_code == 404
    assert (await gw.write("POST", "/connections/nope/resume")).status_code == 404
