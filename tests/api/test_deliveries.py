"""Delivery detail with attempts, single replay and bulk replay."""

from __future__ import annotations

from tests.api.conftest import Gateway, add_attempt, seed


async def test_detail_lists_every_attempt(gw: Gateway) -> None:
    s = await seed(gw.rt, status="dead", attempts=2, last_error="HTTP 400: bad item")
    exchange = {"request": {"method": "PUT", "url": "https://ns/x"}, "response": {"status": 503}}
    await add_attempt(
        gw.rt,
        s.delivery,
        1,
        "transient",
        error_class="TransientError",
        error_message="HTTP 503",
        exchanges=[exchange],
    )
    await add_attempt(
        gw.rt, s.delivery, 2, "permanent", error_class="PermanentError", error_message="400"
    )
    detail = await gw.ok(f"/deliveries/{s.delivery}")
    assert detail["status"] == "dead" and detail["attempt_count"] == 2
    assert detail["last_error"] == "HTTP 400: bad item"
    first, second = detail["attempts"]
    assert first["number"] == 1 and first["outcome"] == "transient"
    assert first["error_class"] == "TransientError" and first["error_message"] == "HTTP 503"
    assert first["duration_ms"] == 12.5 and first["started_at"]
    assert first["exchanges"] == [exchange]
    assert second["outcome"] == "permanent" and second["exchanges"] == []

    missing = await gw.get("/deliveries/424242")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "no delivery 424242"


async def test_replaying_a_dead_delivery_sends_it_again(gw: Gateway) -> None:
    s = await seed(gw.rt, status="dead", attempts=5, last_error="gave up", last_error_class="x")
    response = await gw.write("POST", f"/deliveries/{s.delivery}/replay")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == s.delivery
    assert body["attempts"] == 5 and body["last_error"] is None  # numbering goes on
    assert body["status"] in ("pending", "in_flight", "delivered")  # the worker may be quick
    await gw.wait_status(s.delivery, "delivered")
    assert gw.erp.accepted == [s.entity_key]
    conn = await gw.ok("/connections/erp")
    assert conn["last_success_at"] is not None


async def test_replaying_a_delivery_on_its_way_is_409(gw: Gateway) -> None:
    for status in ("pending", "in_flight"):
        s = await seed(gw.rt, status=status)
        response = await gw.write("POST", f"/deliveries/{s.delivery}/replay")
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert error["code"] == "conflict"
        assert "already on its way" in error["message"] and status in error["message"]
        assert await gw.status_of(s.delivery) == status
    assert (await gw.write("POST", "/deliveries/999999/replay")).status_code == 404


async def test_bulk_replay_by_status_with_dry_run(gw: Gateway) -> None:
    dead = [await seed(gw.rt, status="dead", attempts=8) for _ in range(3)]
    other = await seed(gw.rt, status="dead", destination="shop")
    delivered = await seed(gw.rt, status="delivered")
    dead_ids = [d.delivery for d in dead]

    dry = await gw.write(
        "POST", "/deliveries/replay", json={"status": "dead", "destination": "erp", "dry_run": True}
    )
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert {k: v for k, v in body.items() if k != "items"} == {
        "replayed": dead_ids,
        "held": [],
        "count": 3,
        "dry_run": True,
        "capped": False,
        "cap": 10000,
        "skipped": [],
    }
    assert [(i["id"], i["status"], i["becomes"]) for i in body["items"]] == [
        (i, "dead", "pending") for i in dead_ids
    ]
    for d in dead:
        assert await gw.status_of(d.delivery) == "dead"  # a dry run changes nothing
    # without dry_run the answer is a dry run too: replaying is a decision to spell out
    default = await gw.write("POST", "/deliveries/replay", json={"status": "dead"})
    assert default.json()["dry_run"] is True
    for d in dead:
        assert await gw.status_of(d.delivery) == "dead"

    real = await gw.write(
        "POST",
        "/deliveries/replay",
        json={"status": "dead", "destination": "erp", "dry_run": False},
    )
    assert real.status_code == 200, real.text
    assert real.json()["replayed"] == dead_ids and real.json()["count"] == 3
    for d in dead:
        await gw.wait_status(d.delivery, "delivered")
    assert await gw.status_of(other.delivery) == "dead"
    assert await gw.status_of(delivered.delivery) == "delivered"
    assert sorted(gw.erp.accepted) == sorted(d.entity_key for d in dead)


async def test_bulk_replay_by_ids_skips_what_is_on_its_way(gw: Gateway) -> None:
    parked = await seed(gw.rt, status="parked", needs=[{"kind": "sku", "key": "X"}])
    pending = await seed(gw.rt, status="pending")
    response = await gw.write(
        "POST",
        "/deliveries/replay",
        json={"ids": [parked.delivery, pending.delivery, 999999], "dry_run": True},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["replayed"] == [parked.delivery]
    assert body["skipped"] == sorted([pending.delivery, 999999])


async def test_bulk_replay_needs_a_bounded_filter(gw: Gateway) -> None:
    cases = [
        ({}, "status or a list of ids"),
        ({"destination": "erp"}, "status or a list of ids"),
        ({"status": "pending"}, "already on their way"),
        ({"status": "in_flight", "ids": [1]}, "already on their way"),
        ({"status": "lost"}, "dead"),
        ({"status": "dead", "colour": "red"}, "colour"),
    ]
    for body, expected in cases:
        response = await gw.write("POST", "/deliveries/replay", json=body)
        assert response.status_code == 422, f"{body}: {response.text}"
        assert expected in response.json()["error"]["message"], body
