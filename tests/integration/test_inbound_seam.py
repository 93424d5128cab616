"""The wider inbound seam: a webhook answered with events, with records to read later (thin
webhooks: stored and acknowledged at once, read by a job through the source's breaker), or
with a handshake; connectors' own scheduled jobs; errors that carry the links made before
them. Through the real endpoint, engine and scheduler, with the shared fake connector."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from app.ingest.reads import run_reads
from app.models import (
    CanonicalEventRow,
    Delivery,
    EntityLink,
    Finding,
    InboundEvent,
    InboundRead,
    PollCursor,
    utcnow,
)
from app.scheduling.jobs import run_due_jobs
from kernel.canonical.events import CanonicalEvent, make_event
from kernel.contract import Handshake, ReadLater, RecordRef
from kernel.errors import PermanentError, TransientError
from kernel.types import ParsedWebhook, RemoteLink
from tests.conftest import make_config, make_settings, running_app, wait_for
from tests.support.factories import make_order, seed_event
from tests.support.fake_connector import FakeConnector, Script, job


def order_event(n: str) -> CanonicalEvent:
    order = make_order(n)
    return make_event("order.created", order, order.created_at)


@pytest.fixture
async def gateway(clean_db: str) -> AsyncIterator[Any]:
    shop = FakeConnector("shop", side="store")
    erp = FakeConnector("erp")
    # scheduled jobs tick once at start, then the tests run them (no second tick in between)
    settings = make_settings(clean_db, schedule_tick_seconds=3600)
    async with running_app(settings, make_config(), connectors={"shop": shop, "erp": erp}) as (
        app,
        client,
    ):
        yield app.state.runtime, client, shop, erp


async def count(rt: Any, model: Any, *where: Any) -> int:
    async with rt.sessions() as session:
        stmt = sa.select(sa.func.count()).select_from(model)
        for clause in where:
            stmt = stmt.where(clause)
        return int(await session.scalar(stmt) or 0)


async def test_a_handshake_is_answered_as_the_connector_says_and_nothing_is_stored(
    gateway: Any,
) -> None:
    rt, client, shop, _ = gateway
    shop.script.answers.append(Handshake(200, b"token-123", "text/plain"))
    answer = await client.post("/webhooks/shop?validationToken=token-123", content=b"")
    assert answer.status_code == 200 and answer.text == "token-123"
    assert shop.received[0].query == {"validationToken": "token-123"}
    assert await count(rt, InboundEvent) == 0


async def test_a_thin_webhook_is_acknowledged_then_its_record_read_by_the_job(
    gateway: Any,
) -> None:
    rt, client, shop, erp = gateway
    shop.script.answers.append(
        ReadLater("order/created", "notif-1", [RecordRef("order", "8001", version="v1")])
    )
    shop.script.records[("order", "8001")] = [order_event("8001")]
    answer = await client.post("/webhooks/shop", content=b'{"id": 8001}')
    assert answer.status_code == 202, answer.text
    assert answer.json()["event_ids"] == []  # nothing read yet: acknowledged at once
    assert await count(rt, InboundRead, InboundRead.status == "pending") == 1

    await run_reads(rt)
    assert shop.reads == [RecordRef("order", "8001", "v1")]
    assert await count(rt, InboundRead, InboundRead.status == "done") == 1
    assert await count(rt, CanonicalEventRow, CanonicalEventRow.entity_key == "shop:order:8001")
    await wait_for(lambda: _delivered(rt, "shop:order:8001"), message="the order delivered")
    assert erp.delivered == [("order.created", "shop:order:8001")]

    # the same notification re-sent is a duplicate; a second notification of an unchanged
    # record is read, but records nothing new
    shop.script.answers.append(
        ReadLater("order/created", "notif-1", [RecordRef("order", "8001", version="v1")])
    )
    again = await client.post("/webhooks/shop", content=b'{"id": 8001}')
    assert again.status_code == 200 and again.json()["duplicate"] is True
    shop.script.answers.append(
        ReadLater("order/updated", "notif-2", [RecordRef("order", "8001", version="v1")])
    )
    assert (await client.post("/webhooks/shop", content=b'{"id": 8001, "n": 2}')).status_code == 202
    await run_reads(rt)
    assert len(shop.reads) == 2
    assert (
        await count(rt, CanonicalEventRow, CanonicalEventRow.entity_key == "shop:order:8001") == 1
    )


async def test_a_read_failing_transiently_is_retried_and_a_refusal_is_dead_with_a_finding(
    gateway: Any,
) -> None:
    rt, client, shop, _ = gateway
    shop.script.answers += [
        ReadLater("order/created", "n-1", [RecordRef("order", "8002")]),
        ReadLater("order/created", "n-2", [RecordRef("order", "8003")]),
    ]
    shop.script.records[("order", "8002")] = [order_event("8002")]
    shop.script.read_errors += [TransientError("503 from the shop"), PermanentError("404: gone")]
    await client.post("/webhooks/shop", content=b'{"id": 8002}')
    await client.post("/webhooks/shop", content=b'{"id": 8003}')
    await run_reads(rt)
    async with rt.sessions() as session:
        reads = {r.ref_id: r for r in (await session.execute(sa.select(InboundRead))).scalars()}
    assert reads["8002"].status == "pending" and reads["8002"].attempts == 1
    assert reads["8003"].status == "dead" and "404: gone" in (reads["8003"].last_error or "")
    assert await count(rt, Finding, Finding.kind == "read_failed") == 1
    async with rt.sessions() as session, session.begin():  # its backoff has passed
        await session.execute(
            sa.update(InboundRead)
            .where(InboundRead.ref_id == "8002")
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )

    async def read_again() -> bool:  # the app's own start-up tick may hold it a moment
        await run_reads(rt)
        return await count(rt, InboundRead, InboundRead.status == "done") == 1

    await wait_for(read_again, timeout=10, message="the retried read done")


async def test_a_connectors_job_runs_at_its_interval_and_keeps_its_state(
    clean_db: str,
) -> None:
    runs: list[str | None] = []

    async def renew(state: str | None) -> str | None:
        runs.append(state)
        return f"subscription-{len(runs)}"

    erp = FakeConnector("erp", Script(jobs=[job("renew", 3600, renew)]))
    settings = make_settings(clean_db, schedule_tick_seconds=0.2)
    async with running_app(settings, make_config(), connectors={"erp": erp}) as (app, _):
        rt = app.state.runtime
        await wait_for(lambda: _state(rt, "job:renew"), message="the job's first run")
        await run_due_jobs(rt)  # ticks go on, the job is not due again for an hour
        assert runs == [None]
        assert await _state(rt, "job:renew") == "subscription-1"
        async with rt.sessions() as session, session.begin():  # an hour later
            await session.execute(sa.update(PollCursor).values(polled_at=None))

        async def ran_twice() -> bool:
            return len(runs) == 2

        await wait_for(ran_twice, message="the second run")
        assert runs == [None, "subscription-1"]  # it got its stored state back


async def test_links_made_before_a_failure_are_kept_for_the_retry(clean_db: str) -> None:
    # a two-step write: the customer was made, the order failed; the retry must not make a
    # second customer
    erp = FakeConnector(
        "erp",
        Script(
            deliver_errors=[
                TransientError(
                    "order write timed out",
                    links=[RemoteLink("customer", "shop:customer:77", "C-77")],
                )
            ]
        ),
    )
    async with running_app(make_settings(clean_db), make_config(), connectors={"erp": erp}) as (
        app,
        _,
    ):
        rt = app.state.runtime
        await seed_event(rt, make_order("8004"))
        await wait_for(lambda: _delivered(rt, "shop:order:8004"), message="delivered")
        async with rt.sessions() as session:
            link = await session.scalar(
                sa.select(EntityLink.remote_id).where(EntityLink.our_key == "shop:customer:77")
            )
        assert link == "C-77"


async def test_a_connector_still_answering_with_parsed_events_works_as_before(
    gateway: Any,
) -> None:
    _, client, shop, _ = gateway
    shop.script.answers.append(ParsedWebhook("orders/create", "wh-9", [order_event("8005")]))
    answer = await client.post("/webhooks/shop", content=b"{}")
    assert answer.status_code == 202 and len(answer.json()["event_ids"]) == 1


async def _delivered(rt: Any, entity_key: str) -> bool:
    async with rt.sessions() as session:
        status = await session.scalar(
            sa.select(Delivery.status).where(Delivery.entity_key == entity_key)
        )
    return status == "delivered"


async def _state(rt: Any, stream: str) -> str | None:
    async with rt.sessions() as session:
        value: str | None = await session.scalar(
            sa.select(PollCursor.cursor).where(PollCursor.stream == stream)
        )
    return value


async def test_a_connector_error_while_receiving_is_a_4xx_or_503_never_a_500(
    gateway: Any,
) -> None:
    rt, client, shop, _ = gateway
    shop.script.answers.clear()  # the fake raises PermanentError without an answer
    refused = await client.post("/webhooks/shop", content=b"{}")
    assert refused.status_code == 422
    assert await count(rt, InboundEvent) == 0
