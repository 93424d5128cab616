"""Retention: old bodies, payloads, attempt logs and findings go; what is still needed stays.

Rows are seeded 40 days old (horizon 30) next to rows of today; each assertion names what
would break if retention took the wrong rows: a delivery still to be sent losing its
payload, a quarantined webhook losing the body its replay needs, dedupe forgetting an old
webhook, the newest version of an entity (what dedupe compares with) emptied.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col

from app.configuration.retention import RetentionConfig
from app.db import transaction
from app.models import (
    AuditEntry,
    CanonicalEventRow,
    Delivery,
    DeliveryAttempt,
    EntityLink,
    ErasureRecord,
    Finding,
    InboundEvent,
    PollCursor,
    utcnow,
)
from app.retention import purge
from app.retention.job import run_retention
from app.runtime import Runtime
from app.scheduling.jobs import GATEWAY, _claim
from tests.api.conftest import API_KEYS, Gateway, add_link, seed
from tests.conftest import SHOP_SECRET, make_config, make_settings, running_app, wait_for
from tests.support.fake_connector import FakeConnector
from tests.support.shopify import order_payload, signed

OLD = timedelta(days=40)
PAYLOAD = {"lines": [{"sku": "SKU-RED-M", "quantity": "1"}], "email": "ann@example.com"}


@pytest.fixture
async def gw(clean_db: str) -> AsyncIterator[Gateway]:
    """The API gateway with the scheduled jobs held back: each test runs retention itself."""
    settings = make_settings(clean_db, api_keys=API_KEYS, schedule_tick_seconds=3600)
    erp = FakeConnector("erp")
    async with running_app(settings, make_config(), connectors={"erp": erp}) as (app, client):
        rt: Runtime = app.state.runtime

        async def first_run_over() -> bool:  # the worker's tick at start, on empty tables
            async with rt.sessions() as session:
                cursor = await session.scalar(
                    sa.select(col(PollCursor.cursor)).where(col(PollCursor.stream) == "retention")
                )
            return cursor is not None and "done" in json.loads(cursor).get("findings", {})

        await wait_for(first_run_over, message="the scheduled retention run at start")
        yield Gateway(app, client, rt, erp)


async def _row(rt: Runtime, model: Any, row_id: int) -> Any:
    async with rt.sessions() as session:
        return await session.get(model, row_id, populate_existing=True)


async def _attempt(rt: Runtime, delivery_id: int, age: timedelta) -> int:
    async with transaction(rt.sessions) as session:
        row = DeliveryAttempt(
            delivery_id=delivery_id,
            number=1,
            started_at=utcnow() - age,
            duration_ms=5.0,
            outcome="transient",
            exchanges=[{"request": {"body": "ann@example.com"}}],
        )
        session.add(row)
        await session.flush()
        assert row.id is not None
        return row.id


async def _finding(rt: Runtime, age: timedelta) -> int:
    async with transaction(rt.sessions) as session:
        row = Finding(kind="stock_drift", message="m", data={}, created_at=utcnow() - age)
        session.add(row)
        await session.flush()
        assert row.id is not None
        return row.id


async def _versions(rt: Runtime, number: str, status: str, age: timedelta) -> tuple[int, int]:
    """Two versions of one order: the older (its delivery in ``status``) and the newest."""
    old = utcnow() - age
    first = await seed(
        rt,
        status=status,
        external_id=number,
        event_type="order.updated",
        created_at=old,
        payload=PAYLOAD,
    )
    newest = await seed(
        rt,
        status="delivered",
        external_id=number,
        event_type="order.updated",
        created_at=old,
        inbound=False,
    )
    return first.event_id, newest.event_id


async def test_old_rows_go_and_what_is_still_needed_stays(gw: Gateway) -> None:
    rt = gw.rt
    purged_event, newest_event = await _versions(rt, "7001", "delivered", OLD)
    dead_event, _ = await _versions(rt, "7002", "dead", OLD)
    live = {
        status: await _versions(rt, str(7010 + i), status, OLD)
        for i, status in enumerate(("pending", "in_flight", "parked", "held"))
    }
    recent_event, _ = await _versions(rt, "7020", "delivered", timedelta(days=1))
    async with transaction(rt.sessions) as session:
        quarantined = InboundEvent(
            connection_id="shop",
            topic="orders/create",
            dedupe_key="q-1",
            received_at=utcnow() - OLD,
            body=b'{"id": "not parseable"}',
            status="quarantined",
            note="parser error",
        )
        session.add(quarantined)
    await add_link(rt, "erp", "order", "shop:order:7001", "SO-1")

    purged_event_row = await _row(rt, CanonicalEventRow, purged_event)
    inbound_id = purged_event_row.inbound_event_id
    delivered = await _delivery_of(rt, purged_event)
    parked = await _delivery_of(rt, live["parked"][0])
    old_attempt = await _attempt(rt, delivered, OLD)
    live_attempt = await _attempt(rt, parked, OLD)
    new_attempt = await _attempt(rt, delivered, timedelta(hours=1))
    old_finding, new_finding = await _finding(rt, OLD), await _finding(rt, timedelta(days=2))
    keys = {"mappings": [["sku", "SKU-1"]], "related": ["shop:customer:ann@example.com"]}
    async with transaction(rt.sessions) as session:
        await session.execute(
            sa.update(Delivery).where(col(Delivery.id).in_([delivered, parked])).values(lookup=keys)
        )

    assert await run_retention(rt) > 0

    # old and done: payloads (event's and delivery's), raw body, attempt log, finding
    event = await _row(rt, CanonicalEventRow, purged_event)
    assert event.payload == {} and event.purged_at is not None
    purged_delivery = await _row(rt, Delivery, delivered)
    # the keys its claim read by go with the payload they came from
    assert purged_delivery.payload is None and purged_delivery.lookup is None
    inbound = await _row(rt, InboundEvent, inbound_id)
    assert inbound.body == b"" and inbound.headers == {} and inbound.purged_at is not None
    assert inbound.dedupe_key and inbound.status == "accepted"  # what dedupe reads stays
    assert await _row(rt, DeliveryAttempt, old_attempt) is None
    assert await _row(rt, Finding, old_finding) is None
    assert (await _row(rt, CanonicalEventRow, dead_event)).purged_at is not None  # dead is final

    # still needed: deliveries to be sent, the newest version, the quarantine, recent rows
    for status, (event_id, _) in live.items():
        kept = await _row(rt, CanonicalEventRow, event_id)
        assert kept.purged_at is None and kept.payload, status
        assert (await _row(rt, Delivery, await _delivery_of(rt, event_id))).payload == PAYLOAD
    assert (await _row(rt, CanonicalEventRow, newest_event)).payload
    assert (await _row(rt, CanonicalEventRow, recent_event)).purged_at is None
    assert (await _row(rt, InboundEvent, quarantined.id)).body == b'{"id": "not parseable"}'
    assert await _row(rt, DeliveryAttempt, live_attempt) is not None
    assert (await _row(rt, Delivery, parked)).lookup == keys  # still to be sent
    assert await _row(rt, DeliveryAttempt, new_attempt) is not None
    assert await _row(rt, Finding, new_finding) is not None
    async with rt.sessions() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(EntityLink)) == 1

    # progress: the job's row says what each kind purged; a second run has nothing left
    jobs = {job["name"]: job for job in (await gw.ok("/jobs"))["items"]}
    progress = json.loads(jobs["retention"]["cursor"])
    assert progress["payloads"]["done"] is True and progress["payloads"]["purged"] == 2
    assert progress["attempt_logs"]["purged"] == 1 and progress["findings"]["purged"] == 1
    assert await run_retention(rt) == 0


async def _delivery_of(rt: Runtime, event_id: int) -> int:
    async with rt.sessions() as session:
        found = await session.scalar(
            sa.select(col(Delivery.id)).where(col(Delivery.canonical_event_id) == event_id)
        )
    assert found is not None
    return int(found)


async def test_a_purged_delivery_is_never_replayed(gw: Gateway) -> None:
    dead_event, _ = await _versions(gw.rt, "7101", "dead", OLD)
    dead = await _delivery_of(gw.rt, dead_event)
    await run_retention(gw.rt)

    one = await gw.write("POST", f"/deliveries/{dead}/replay")
    assert one.status_code == 409
    assert "purged by retention" in one.json()["error"]["message"]
    bulk = await gw.write("POST", "/deliveries/replay", json={"ids": [dead], "dry_run": False})
    assert bulk.status_code == 200, bulk.text
    assert bulk.json()["skipped"] == [dead] and bulk.json()["replayed"] == []
    assert await gw.status_of(dead) == "dead"


async def test_an_erase_request_being_carried_out_keeps_its_payload(gw: Gateway) -> None:
    rt = gw.rt
    request, _ = await _versions(rt, "7201", "delivered", OLD)
    async with transaction(rt.sessions) as session:
        now = utcnow()
        session.add(
            ErasureRecord(
                canonical_event_id=request,
                source="shop",
                entity_key="shop:customer:1",
                status="scrubbing",
                requested_at=now,
                created_at=now,
                updated_at=now,
            )
        )
    await run_retention(rt)
    assert (await _row(rt, CanonicalEventRow, request)).purged_at is None


async def test_zero_days_keeps_a_kind_forever(gw: Gateway) -> None:
    gw.rt.config.retention = RetentionConfig(findings_days=0, inbound_bodies_days=0)
    finding = await _finding(gw.rt, timedelta(days=400))
    seeded = await seed(gw.rt, created_at=utcnow() - timedelta(days=400))
    await run_retention(gw.rt)
    assert await _row(gw.rt, Finding, finding) is not None
    assert (await _row(gw.rt, InboundEvent, seeded.inbound_id)).purged_at is None
    progress = json.loads((await _jobs(gw))["retention"]["cursor"])
    assert progress["findings"]["kept"] == "forever"


async def _jobs(gw: Gateway) -> dict[str, Any]:
    return {job["name"]: job for job in (await gw.ok("/jobs"))["items"]}


async def test_a_backlog_goes_in_batches_and_the_job_is_due_again(gw: Gateway) -> None:
    rt = gw.rt
    rt.config.retention = RetentionConfig(batch_size=2, max_batches_per_run=2)
    for _ in range(7):
        await _finding(rt, OLD)
    assert await run_retention(rt) == 4  # 2 batches of 2, then the run stops
    job = (await _jobs(gw))["retention"]
    assert json.loads(job["cursor"])["findings"]["done"] is False
    assert job["last_count"] == 4
    # due again at once (not after interval_seconds): the scheduler takes it at the next tick
    interval = rt.config.retention.interval_seconds
    assert await _claim(rt, GATEWAY, "retention", interval)
    assert await run_retention(rt) == 3
    assert not await _claim(rt, GATEWAY, "retention", interval)  # done: waits its interval


async def test_a_resent_old_webhook_is_still_a_duplicate_after_its_body_is_purged(
    gw: Gateway,
) -> None:
    body = json.dumps(order_payload(4242)).encode()
    headers = signed(body, SHOP_SECRET, webhook_id="wh-old-4242")
    first = await gw.client.post("/webhooks/shop", content=body, headers=headers)
    assert first.status_code == 202, first.text
    async with transaction(gw.rt.sessions) as session:
        await session.execute(sa.update(InboundEvent).values(received_at=utcnow() - OLD))
    assert await run_retention(gw.rt) >= 1
    (inbound_id,) = [r["id"] for r in (await gw.ok("/inbound-events"))["items"]]
    assert (await _row(gw.rt, InboundEvent, inbound_id)).body == b""

    again = await gw.client.post("/webhooks/shop", content=body, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    # the same body under a new webhook id: still the same event (body hash kept)
    renamed = signed(body, SHOP_SECRET, webhook_id="wh-new-id")
    resent = await gw.client.post("/webhooks/shop", content=body, headers=renamed)
    assert resent.json()["duplicate"] is True
    detail = await gw.client.get(
        f"/api/v1/inbound-events/{inbound_id}", headers={"Authorization": "Bearer operator-key"}
    )
    assert detail.json()["purged_at"] is not None and detail.json()["body"] == ""


async def test_ingest_completes_while_a_purge_batch_holds_its_transaction(
    gw: Gateway,
) -> None:
    if gw.rt.settings.is_sqlite:
        pytest.skip("SQLite has one writer for the whole file; this is a Postgres promise")
    old = await seed(gw.rt, created_at=utcnow() - OLD)
    resent_body = json.dumps(order_payload(4343)).encode()
    resent_headers = signed(resent_body, SHOP_SECRET, webhook_id="wh-4343")
    assert (
        await gw.client.post("/webhooks/shop", content=resent_body, headers=resent_headers)
    ).status_code == 202
    horizon = utcnow() - timedelta(days=30)
    async with transaction(gw.rt.sessions) as session:
        batch = await purge.inbound_bodies(session, horizon, 0, 1000)
        assert batch.purged == 1  # the old row is blanked, uncommitted, its row locked
        # meanwhile: a new order, and a re-sent webhook, each in its own transaction
        body = json.dumps(order_payload(4444)).encode()
        fresh = gw.client.post("/webhooks/shop", content=body, headers=signed(body, SHOP_SECRET))
        resent = gw.client.post("/webhooks/shop", content=resent_body, headers=resent_headers)
        answers = await asyncio.wait_for(asyncio.gather(fresh, resent), timeout=5)
        assert [a.status_code for a in answers] == [202, 200]
        assert (await _row(gw.rt, InboundEvent, old.inbound_id)).purged_at is None  # not yet
    assert (await _row(gw.rt, InboundEvent, old.inbound_id)).purged_at is not None


async def test_retention_never_touches_the_audit_trail(gw: Gateway) -> None:
    await gw.write("POST", "/connections/erp/pause")
    async with transaction(gw.rt.sessions) as session:
        await session.execute(sa.update(AuditEntry).values(at=utcnow() - timedelta(days=900)))
    await run_retention(gw.rt)
    assert len((await gw.ok("/audit"))["items"]) == 1
