"""Incidents on a real database, with a real HTTP receiver on loopback for notifications.

The issue's done-when first: the store stops sending orders; the incident is raised once the
configured quiet window has passed (not before), notified once, and resolved (one resolved
message) once an order arrives again. Then each promise where it would break: two evaluators
at once, a sink that fails and recovers, a sender that dies mid-send, every detector raising
and resolving, nothing sent without sinks, no sink secret in any answer or log line.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from prometheus_client import REGISTRY
from sqlmodel import col
from structlog.testing import capture_logs

from app import models
from app.config import GatewayConfig, parse_config
from app.db import transaction
from app.delivery.breakers import BreakerView
from app.delivery.destination import record_breaker
from app.incidents import engine, notices
from app.incidents.engine import NOTICES
from app.incidents.job import run_incidents
from app.main import start_runtime
from app.models import (
    CanonicalEventRow,
    Finding,
    Incident,
    IncidentNotice,
    PollCursor,
    utcnow,
)
from app.runtime import Runtime
from app.scheduling.jobs import poll_stream, run_due_jobs
from kernel.canonical.events import make_event
from kernel.errors import TransientError
from tests.api.conftest import seed
from tests.conftest import (
    SHOP_SECRET,
    gateway_config_yaml,
    make_settings,
    running_app,
    wait_for,
)
from tests.support.factories import make_order
from tests.support.fake_connector import FakeConnector, Script
from tests.support.shopify import order_payload, signed
from tests.support.sink_server import SinkServer, sink_server

HEADER_SECRET = "Bearer hdr-secret-77"
EVENTS: sa.Table = CanonicalEventRow.__table__  # type: ignore[attr-defined]


def config_with(monitoring: str, sink: SinkServer | None = None, *, poll: bool = False) -> str:
    """The test gateway (shop → erp orders) with a ``monitoring:`` section; ``sink`` adds a
    webhook sink to it (with a secret header)."""
    text = gateway_config_yaml() + "monitoring:\n" + monitoring
    if sink is not None:
        text += f"""  notifications:
    gateway_url: https://gateway.example
    sinks:
      - type: webhook
        name: ops
        url: "{sink.url}"
        headers: {{Authorization: "{HEADER_SECRET}"}}
        timeout_seconds: 5
"""
    if poll:
        text = text.replace(
            "    credentials: {webhook_secret:",
            "    poll: {streams: [orders], interval_seconds: 3600}\n"
            "    credentials: {webhook_secret:",
            1,
        )
    return text


@pytest.fixture
async def gateway_rt(clean_db: str) -> AsyncIterator[Callable[..., Awaitable[Runtime]]]:
    started: list[Runtime] = []

    async def start(config_text: str, shop: FakeConnector | None = None) -> Runtime:
        """The gateway without its worker; the shop is a fake store (no network) that polls
        its orders when the config says so."""
        config = parse_config(config_text, "incidents-test")
        shop = shop or FakeConnector("shop", side="store", poll_streams={"orders"})
        rt, _ = await start_runtime(
            make_settings(clean_db),
            config,
            with_worker=False,
            connectors={"erp": FakeConnector("erp"), "shop": shop},
        )
        started.append(rt)
        return rt

    yield start
    for rt in started:
        await rt.close()


async def add_orders(rt: Runtime, times: list[datetime], *, polled: bool = True) -> None:
    """Orders in the gateway's history at ``times`` (backdated canonical events; ``polled``
    ones have no inbound event, as a poll records them)."""
    rows: list[dict[str, Any]] = [
        {
            "inbound_event_id": None,
            "source": "shop",
            "event_type": "order.created",
            "entity_type": "order",
            "entity_key": f"shop:order:h{i}-{at.timestamp()}",
            "schema_version": 1,
            "occurred_at": at,
            "created_at": at,
            "payload": {},
        }
        for i, at in enumerate(times)
    ]
    if not polled:
        for at in times:
            await seed(rt, status=None, created_at=at)
        return
    async with transaction(rt.sessions) as session:
        await session.execute(sa.insert(EVENTS), rows)


def every(start: datetime, end: datetime, minutes: float = 5) -> list[datetime]:
    out, at = [], start
    while at <= end:
        out.append(at)
        at += timedelta(minutes=minutes)
    return out


def busy_weeks(now: datetime, weeks: int = 4) -> list[datetime]:
    """An order every 5 minutes around this hour of the week, for the last ``weeks`` weeks."""
    times: list[datetime] = []
    for week in range(1, weeks + 1):
        then = now - timedelta(weeks=week)
        times += every(then - timedelta(minutes=90), then + timedelta(minutes=30))
    return times


async def incidents(rt: Runtime, **where: Any) -> list[Incident]:
    async with rt.sessions() as session:
        stmt = sa.select(Incident).order_by(Incident.id)  # type: ignore[arg-type]
        for name, value in where.items():
            stmt = stmt.where(getattr(Incident, name) == value)
        return list((await session.scalars(stmt)).all())


async def notices_of(rt: Runtime) -> list[IncidentNotice]:
    async with rt.sessions() as session:
        stmt = sa.select(IncidentNotice).order_by(IncidentNotice.id)  # type: ignore[arg-type]
        return list((await session.scalars(stmt)).all())


async def findings(rt: Runtime, kind: str) -> list[Finding]:
    async with rt.sessions() as session:
        return list(
            (await session.scalars(sa.select(Finding).where(col(Finding.kind) == kind))).all()
        )


# --- the done-when ----------------------------------------------------------------------------


async def _evaluated_at_start(rt: Runtime) -> bool:
    async with rt.sessions() as session:
        polled = await session.scalar(
            sa.select(col(PollCursor.polled_at)).where(
                col(PollCursor.connection_id) == "*", col(PollCursor.stream) == "incidents"
            )
        )
    return polled is not None


async def test_the_store_stops_sending_orders_one_incident_one_message_resolved_once(
    clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with sink_server() as sink:
        config = parse_config(
            config_with(
                "  interval_seconds: 60\n  floors:\n    - {flow: orders, quiet_minutes: 30}\n",
                sink,
            ),
            "done-when",
        )
        settings = make_settings(clean_db, schedule_tick_seconds=3600)
        erp = FakeConnector("erp")
        async with running_app(settings, config, connectors={"erp": erp}) as (app, client):
            rt: Runtime = app.state.runtime
            start = utcnow()
            # the shop had an order every 5 minutes at this hour in each of the last 4 weeks
            # and today until 25 minutes ago; then the store stopped sending
            await add_orders(rt, busy_weeks(start))
            await add_orders(rt, every(start - timedelta(hours=3), start - timedelta(minutes=25)))

            async def minutes_later(minutes: float) -> dict[str, int]:
                monkeypatch.setattr(models, "CLOCK_OFFSET", timedelta(minutes=minutes))
                return await run_due_jobs(rt)  # the scheduler's tick, claimed like any job

            # the app evaluates once at start, in the background: wait for it before moving
            # the clock (run late, it would take the +4 minutes' turn as its own)
            await wait_for(lambda: _evaluated_at_start(rt), message="the start evaluation")
            # (the worker evaluated once at start: not due again at once)
            assert (await minutes_later(0)).get("incidents", 0) == 0
            assert (await minutes_later(4))["incidents"] == 0  # 29 quiet minutes: not yet
            assert await incidents(rt) == []
            assert (await minutes_later(6))["incidents"] == 2  # 31: raised, and announced
            [incident] = await incidents(rt)
            assert (incident.kind, incident.connection_id, incident.flow) == (
                "flow_silent",
                "shop",
                "orders",
            )
            assert incident.status == "open"
            assert sink.statuses() == ["firing"]
            body = sink.received[0]
            assert body["kind"] == "flow_silent" and body["connection"] == "shop"
            assert body["flow"] == "orders" and body["resolved_at"] is None
            assert body["url"] == f"https://gateway.example/api/v1/incidents/{incident.id}"
            assert body["text"].startswith("[FIRING] flow_silent shop/orders: ")
            assert "none in the last 30 minutes" in body["summary"]
            assert sink.headers[0]["authorization"] == HEADER_SECRET
            for later in (8, 10):  # still silent: still one incident, still one message
                await minutes_later(later)
            assert len(await incidents(rt)) == 1 and sink.statuses() == ["firing"]
            assert len(await findings(rt, "flow_silent")) == 1

            listed = await client.get(
                "/api/v1/incidents", headers={"Authorization": "Bearer viewer-key"}
            )
            assert listed.status_code == 200, listed.text
            page = listed.json()
            assert page["next_cursor"] is None
            [item] = page["items"]
            assert item["status"] == "open"
            assert [(n["sink"], n["message"], n["state"]) for n in item["notifications"]] == [
                ("ops", "firing", "sent")
            ]

            gauge = 'gateway_incidents_open{connection="shop",flow="orders",kind="flow_silent"}'
            assert f"{gauge} 1.0" in (await client.get("/metrics")).text

            # the store sends again: a real, signed orders/create webhook
            raw = json.dumps(order_payload(1)).encode()
            answer = await client.post(
                "/webhooks/shop", content=raw, headers=signed(raw, SHOP_SECRET)
            )
            assert answer.status_code == 202, answer.text
            await minutes_later(12)
            [incident] = await incidents(rt)
            assert incident.status == "resolved" and incident.resolved_at is not None
            assert sink.statuses() == ["firing", "resolved"]
            assert sink.received[1]["resolved_at"] is not None
            for later in (14, 16):
                await minutes_later(later)
            assert sink.statuses() == ["firing", "resolved"]
            assert len(await findings(rt, "incident_resolved")) == 1
            assert f"{gauge} 0.0" in (await client.get("/metrics")).text


async def test_learned_volume_alone_raises_at_a_busy_hour(gateway_rt: Any) -> None:
    rt = await gateway_rt(config_with("  interval_seconds: 60\n"))
    now = utcnow()
    await add_orders(rt, busy_weeks(now))
    await add_orders(rt, every(now - timedelta(hours=3), now - timedelta(minutes=65)))
    await run_incidents(rt, now)
    [incident] = await incidents(rt)
    assert incident.kind == "flow_silent" and incident.status == "open"
    assert incident.details["expected"] == 12 and incident.details["actual"] == 0
    assert "about 12 arrived at this hour of the week" in incident.summary
    await add_orders(rt, every(now - timedelta(minutes=2), now, 1))  # 3 orders: 3 ≥ 1.2
    await run_incidents(rt, now + timedelta(seconds=1))
    assert [i.status for i in await incidents(rt)] == ["resolved"]


# --- raised once ------------------------------------------------------------------------------


async def breaker(rt: Runtime, state: str, at: datetime) -> None:
    async with transaction(rt.sessions) as session:
        view = (
            BreakerView("open", at + timedelta(seconds=30))
            if state == "open"
            else BreakerView("closed")
        )
        await record_breaker(session, "erp", view, at)


async def test_two_evaluators_at_once_raise_one_incident_and_send_one_message(
    gateway_rt: Any,
) -> None:
    async with sink_server() as sink:
        text = config_with("  breaker_open_minutes: 10\n", sink)
        first, second = await gateway_rt(text), await gateway_rt(text)
        now = utcnow()
        for round_ in range(3):
            at = now + timedelta(hours=round_)
            await breaker(first, "open", at - timedelta(minutes=11))
            await asyncio.gather(run_incidents(first, at), run_incidents(second, at))
            await breaker(first, "closed", at)
            await asyncio.gather(
                run_incidents(first, at + timedelta(minutes=1)),
                run_incidents(second, at + timedelta(minutes=1)),
            )
        assert [i.status for i in await incidents(first)] == ["resolved"] * 3
        assert len(await findings(first, "breaker_open")) == 3
        assert len(await findings(first, "incident_resolved")) == 3
        assert sink.statuses() == ["firing", "resolved"] * 3


# --- sent once --------------------------------------------------------------------------------


async def test_a_sink_failing_then_recovering_gets_each_message_exactly_once(
    gateway_rt: Any,
) -> None:
    async with sink_server() as sink:
        rt = await gateway_rt(config_with("  breaker_open_minutes: 10\n", sink))
        now = utcnow()
        await breaker(rt, "open", now - timedelta(minutes=11))
        sink.fail_next = 2
        await run_incidents(rt, now)  # raised; the first attempt is refused
        await run_incidents(rt, now + timedelta(seconds=10))  # not due yet (30 s backoff)
        assert sink.refused == 1 and sink.received == []
        await run_incidents(rt, now + timedelta(seconds=31))  # refused again (next: 60 s)
        await run_incidents(rt, now + timedelta(seconds=92))  # taken
        await run_incidents(rt, now + timedelta(seconds=200))
        assert sink.refused == 2 and sink.statuses() == ["firing"]
        [notice] = await notices_of(rt)
        assert (notice.state, notice.attempts, notice.last_error) == ("sent", 3, None)
        await breaker(rt, "closed", now + timedelta(seconds=300))
        await run_incidents(rt, now + timedelta(seconds=301))
        await run_incidents(rt, now + timedelta(seconds=400))
        assert sink.statuses() == ["firing", "resolved"]


async def test_a_sender_that_died_mid_send_never_sends_that_message_again(
    gateway_rt: Any,
) -> None:
    async with sink_server() as sink:
        rt = await gateway_rt(config_with("  breaker_open_minutes: 10\n", sink))
        now = utcnow()
        await breaker(rt, "open", now - timedelta(minutes=11))
        sink.fail_next = 1
        await run_incidents(rt, now)
        # the next sender claimed the message and died before it could record the outcome
        async with transaction(rt.sessions) as session:
            await session.execute(
                sa.update(NOTICES).values(state="sending", claimed_at=now + timedelta(seconds=40))
            )
        await run_incidents(rt, now + timedelta(minutes=5))  # the claim may still be live
        await run_incidents(rt, now + timedelta(minutes=11))
        await run_incidents(rt, now + timedelta(minutes=30))
        [notice] = await notices_of(rt)
        assert notice.state == "unconfirmed" and sink.received == []
        # it may have gone out, so the resolved message follows it
        await breaker(rt, "closed", now + timedelta(minutes=31))
        await run_incidents(rt, now + timedelta(minutes=32))
        assert sink.statuses() == ["resolved"]


async def test_a_firing_message_not_sent_before_the_incident_resolved_is_skipped(
    gateway_rt: Any,
) -> None:
    async with sink_server() as sink:
        rt = await gateway_rt(config_with("  breaker_open_minutes: 10\n", sink))
        now = utcnow()
        await breaker(rt, "open", now - timedelta(minutes=11))
        sink.fail_next = 5
        await run_incidents(rt, now)
        await breaker(rt, "closed", now)
        await run_incidents(rt, now + timedelta(minutes=5))
        assert [(n.message, n.state) for n in await notices_of(rt)] == [("firing", "skipped")]
        assert sink.received == []


async def test_nothing_is_sent_without_a_sink(gateway_rt: Any) -> None:
    rt = await gateway_rt(config_with("  breaker_open_minutes: 10\n"))
    assert rt.config.monitoring.notifications.sinks == []
    sent_before = _notifications_sent()
    now = utcnow()
    await breaker(rt, "open", now - timedelta(minutes=11))
    await run_incidents(rt, now)
    assert [i.status for i in await incidents(rt)] == ["open"]
    assert await notices_of(rt) == []
    assert _notifications_sent() == sent_before


def _notifications_sent() -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "gateway_notifications"
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


# --- each detector raises and resolves --------------------------------------------------------


async def test_breaker_open_longer_than_n_minutes(gateway_rt: Any) -> None:
    rt = await gateway_rt(config_with("  breaker_open_minutes: 10\n"))
    now = utcnow()
    await breaker(rt, "open", now)
    await run_incidents(rt, now + timedelta(minutes=1))
    assert [i.status for i in await incidents(rt)] == ["pending"]
    # a failed trial re-opens it: its changed_at moves, the incident's first sight does not
    await breaker(rt, "open", now + timedelta(minutes=5))
    await run_incidents(rt, now + timedelta(minutes=9))
    assert [i.status for i in await incidents(rt)] == ["pending"]
    await run_incidents(rt, now + timedelta(minutes=11))
    [incident] = await incidents(rt)
    assert (incident.kind, incident.connection_id, incident.status) == (
        "breaker_open",
        "erp",
        "open",
    )
    await breaker(rt, "closed", now + timedelta(minutes=12))
    await run_incidents(rt, now + timedelta(minutes=13))
    assert [i.status for i in await incidents(rt)] == ["resolved"]


async def test_a_breaker_that_closes_in_time_leaves_no_incident(gateway_rt: Any) -> None:
    rt = await gateway_rt(config_with("  breaker_open_minutes: 10\n"))
    now = utcnow()
    await breaker(rt, "open", now)
    await run_incidents(rt, now + timedelta(minutes=1))
    await breaker(rt, "closed", now + timedelta(minutes=2))
    await run_incidents(rt, now + timedelta(minutes=3))
    assert await incidents(rt) == []
    assert await findings(rt, "breaker_open") == []


async def test_oldest_pending_delivery_older_than_the_threshold(gateway_rt: Any) -> None:
    rt = await gateway_rt(config_with("  oldest_pending_minutes: 20\n"))
    now = utcnow()
    seeded = await seed(rt, status="pending", created_at=now - timedelta(minutes=19))
    async with transaction(rt.sessions) as session:  # the delivery was made with its event
        await session.execute(
            sa.update(models.Delivery)
            .where(models.Delivery.id == seeded.delivery_id)  # type: ignore[arg-type]
            .values(created_at=now - timedelta(minutes=19))
        )
    await run_incidents(rt, now)
    assert await incidents(rt) == []
    await run_incidents(rt, now + timedelta(minutes=2))
    [incident] = await incidents(rt)
    assert (incident.kind, incident.connection_id, incident.flow) == (
        "oldest_pending",
        "erp",
        "orders",
    )
    async with transaction(rt.sessions) as session:
        await session.execute(
            sa.update(models.Delivery)
            .where(models.Delivery.id == seeded.delivery_id)  # type: ignore[arg-type]
            .values(status="delivered")
        )
    await run_incidents(rt, now + timedelta(minutes=3))
    assert [i.status for i in await incidents(rt)] == ["resolved"]


async def test_dead_letters_growing(gateway_rt: Any) -> None:
    rt = await gateway_rt(config_with("  dead_letters: {window_minutes: 15}\n"))
    now = utcnow()
    await seed(rt, status="dead", updated_at=now - timedelta(minutes=1))
    await run_incidents(rt, now)
    [incident] = await incidents(rt)
    assert (incident.kind, incident.flow, incident.details["new_dead"]) == (
        "dead_letters",
        "orders",
        1,
    )
    await seed(rt, status="dead", updated_at=now + timedelta(minutes=5))
    await run_incidents(rt, now + timedelta(minutes=6))
    [incident] = await incidents(rt)
    assert incident.status == "open" and incident.details["new_dead"] == 2
    await run_incidents(rt, now + timedelta(minutes=21))  # none died in the last 15 minutes
    assert [i.status for i in await incidents(rt)] == ["resolved"]


async def test_a_poll_failing_for_too_long(gateway_rt: Any) -> None:
    shop = FakeConnector(
        "shop",
        Script(poll_errors=[TransientError("Shopify answered 503")] * 2),
        side="store",
        poll_streams={"orders"},
    )
    rt = await gateway_rt(config_with("  poll_failing_minutes: 15\n", poll=True), shop)
    await poll_stream(rt, "shop", "orders")
    now = utcnow()
    await run_incidents(rt, now)
    assert [i.status for i in await incidents(rt, kind="poll_failing")] == ["pending"]
    await poll_stream(rt, "shop", "orders")  # fails again
    await run_incidents(rt, now + timedelta(minutes=16))
    [incident] = await incidents(rt, kind="poll_failing")
    assert (incident.status, incident.connection_id, incident.flow) == ("open", "shop", "orders")
    assert "Shopify answered 503" in incident.summary
    await poll_stream(rt, "shop", "orders")  # works again
    await run_incidents(rt, now + timedelta(minutes=17))
    assert [i.status for i in await incidents(rt, kind="poll_failing")] == ["resolved"]


async def test_a_poll_that_reads_nothing_for_too_long(gateway_rt: Any) -> None:
    text = config_with(
        "  poll_failing_minutes: null\n"
        "  poll_empty: [{connection: shop, stream: orders, minutes: 60}]\n",
        poll=True,
    )
    orders = [make_event("order.created", make_order("77"), utcnow())]
    shop = FakeConnector(
        "shop", Script(changes={"orders": orders}), side="store", poll_streams={"orders"}
    )
    rt = await gateway_rt(text, shop)
    now = utcnow()
    await run_incidents(rt, now)  # never read anything yet: watched from now on
    assert [i.status for i in await incidents(rt, kind="poll_empty")] == ["pending"]
    await poll_stream(rt, "shop", "orders")  # reads the order: last_events_at
    await run_incidents(rt, now + timedelta(minutes=1))
    assert await incidents(rt, kind="poll_empty") == []
    await poll_stream(rt, "shop", "orders")  # nothing new: last_events_at stays
    await run_incidents(rt, now + timedelta(minutes=30))
    assert await incidents(rt, kind="poll_empty") == []
    await run_incidents(rt, now + timedelta(minutes=62))
    assert [i.status for i in await incidents(rt, kind="poll_empty")] == ["open"]
    shop.script.changes["orders"].append(make_event("order.created", make_order("78"), utcnow()))
    await poll_stream(rt, "shop", "orders")
    async with transaction(rt.sessions) as session:  # as if it ran at +63 minutes
        await session.execute(
            sa.update(PollCursor)
            .where(PollCursor.connection_id == "shop")  # type: ignore[arg-type]
            .values(last_events_at=now + timedelta(minutes=63))
        )
    await run_incidents(rt, now + timedelta(minutes=64))
    assert [i.status for i in await incidents(rt, kind="poll_empty")] == ["resolved"]


async def test_webhooks_the_store_stopped_sending_found_by_its_backfill_poll(
    gateway_rt: Any,
) -> None:
    rt = await gateway_rt(
        config_with("  learned: {enabled: false}\n  webhook_gap: {min_missed: 3}\n", poll=True)
    )
    now = utcnow()
    await add_orders(rt, [now - timedelta(days=2)], polled=False)  # it used to send webhooks
    await add_orders(rt, every(now - timedelta(minutes=40), now - timedelta(minutes=30)))
    await run_incidents(rt, now)
    [incident] = await incidents(rt, kind="webhooks_missing")
    assert incident.status == "open" and incident.details["polled"] == 3
    await add_orders(rt, [now + timedelta(minutes=1)], polled=False)
    await run_incidents(rt, now + timedelta(minutes=2))  # 3 polled still in the window
    assert incident.id == (await incidents(rt, kind="webhooks_missing"))[0].id
    assert (await incidents(rt, kind="webhooks_missing"))[0].status == "open"
    await run_incidents(rt, now + timedelta(minutes=61))  # an hour with nothing missed
    assert [i.status for i in await incidents(rt, kind="webhooks_missing")] == ["resolved"]


async def test_an_incident_whose_detector_is_turned_off_is_resolved(gateway_rt: Any) -> None:
    text = config_with("  breaker_open_minutes: 10\n")
    rt = await gateway_rt(text)
    now = utcnow()
    await breaker(rt, "open", now - timedelta(minutes=11))
    await run_incidents(rt, now)
    after = await gateway_rt(text.replace("breaker_open_minutes: 10", "breaker_open_minutes: null"))
    await run_incidents(after, now + timedelta(minutes=1))
    [incident] = await incidents(rt)
    assert incident.status == "resolved"
    [resolved] = await findings(rt, "incident_resolved")
    assert resolved.data["why"] == "no longer watched"


async def test_nothing_is_raised_for_a_connection_in_maintenance(gateway_rt: Any) -> None:
    now = utcnow().replace(microsecond=0)
    start, end = (now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=1)).isoformat()
    text = config_with("  breaker_open_minutes: 10\n  oldest_pending_minutes: 20\n").replace(
        "    type: netsuite\n",
        f'    type: netsuite\n    maintenance: [{{from: "{start}", to: "{end}"}}]\n',
        1,
    )
    rt = await gateway_rt(text)
    await breaker(rt, "open", now - timedelta(minutes=30))
    await seed(rt, status="pending", created_at=now - timedelta(minutes=30))
    await run_incidents(rt, now)
    assert await incidents(rt) == []
    await run_incidents(rt, now + timedelta(hours=1, minutes=1))  # the window has ended
    assert sorted(i.kind for i in await incidents(rt, status="open")) == [
        "breaker_open",
        "oldest_pending",
    ]


# --- secrets ----------------------------------------------------------------------------------


async def test_sink_secrets_never_reach_the_api_or_the_logs(
    clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with sink_server() as sink:
        sink.fail_next = 100
        config = parse_config(config_with("  breaker_open_minutes: 10\n", sink), "secrets")
        settings = make_settings(clean_db, schedule_tick_seconds=3600)
        async with running_app(settings, config, connectors={"erp": FakeConnector("erp")}) as (
            app,
            client,
        ):
            rt: Runtime = app.state.runtime
            now = utcnow()
            await breaker(rt, "open", now - timedelta(minutes=11))
            with capture_logs() as logs:
                # (the module's logger was bound to the configuration of an earlier test)
                for module in (engine, notices):
                    monkeypatch.setattr(module, "log", structlog.get_logger("gateway.incidents"))
                await run_incidents(rt, now)
            operator = {"Authorization": "Bearer operator-key"}
            tested = await client.post("/api/v1/notifications/test", headers=operator)
            assert tested.status_code == 200, tested.text
            assert tested.json()["items"] == [
                {
                    "sink": "ops",
                    "type": "webhook",
                    "ok": False,
                    "error": tested.json()["items"][0]["error"],
                }
            ]
            assert tested.json()["items"][0]["error"].startswith("HTTP 503")
            listed = await client.get("/api/v1/incidents", headers=operator)
            assert listed.json()["items"][0]["notifications"][0]["last_error"].startswith(
                "HTTP 503"
            )
            answers = tested.text + listed.text + (await client.get("/metrics")).text
        logged = json.dumps(logs, default=str)
        for secret in ("T0-secret-path", "hdr-secret-77", sink.url):
            assert secret not in answers
            assert secret not in logged
        assert "notification failed; it is retried" in logged
        assert "HTTP 503" in logged


async def test_the_test_send_needs_an_operator_and_a_sink(clean_db: str) -> None:
    async with sink_server() as sink:
        for text, viewer_status, operator_status in (
            (config_with("  breaker_open_minutes: 10\n", sink), 403, 200),
            (config_with("  breaker_open_minutes: 10\n"), 403, 409),
        ):
            config: GatewayConfig = parse_config(text, "test-send")
            settings = make_settings(clean_db, schedule_tick_seconds=3600)
            async with running_app(settings, config, connectors={"erp": FakeConnector("erp")}) as (
                _,
                client,
            ):
                path = "/api/v1/notifications/test"
                viewer = await client.post(path, headers={"Authorization": "Bearer viewer-key"})
                assert viewer.status_code == viewer_status
                answer = await client.post(path, headers={"Authorization": "Bearer operator-key"})
                assert answer.status_code == operator_status, answer.text
        assert sink.statuses() == ["test"]
        assert sink.received[0]["text"].startswith("[TEST]")
