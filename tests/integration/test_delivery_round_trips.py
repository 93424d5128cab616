"""What one delivery costs the database on Postgres, in round trips: each statement the
engine executes (a prepared statement, once warm: one Bind/Execute/Sync) and each BEGIN and
COMMIT asyncpg sends. The counts are the engine's budget; a change that adds a round trip to
every delivery fails here first (bench/trips_once.py counts the same on the wire)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col

from app.delivery.service import process_delivery
from app.main import start_runtime
from app.models import Delivery, DeliveryAttempt, EntityLink, Mapping, OrderAllocation, utcnow
from app.runtime import Runtime
from kernel.errors import PermanentError, TransientError
from kernel.types import DeliveryResult, Finding, RemoteLink
from tests.conftest import make_config, make_settings, require_postgres
from tests.integration.test_delivery_engine import scripted
from tests.support.factories import make_order, seed_event
from tests.support.fake_connector import FakeConnector

pytestmark = pytest.mark.integration


class Queued:
    """A queue that records what the engine queues after its commits."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    async def enqueue(self, delivery_id: int, *, at: datetime | None = None) -> None:
        self.ids.append(delivery_id)

    async def recover(self, delivery_id: int) -> None:
        self.ids.append(delivery_id)

    async def close(self) -> None:
        return None


class Queries:
    """The round trips on the runtime's connections, in order: statements, BEGIN, COMMIT."""

    def __init__(self, rt: Runtime) -> None:
        self.log: list[str] = []
        self._seen: set[int] = set()
        sa.event.listen(rt.engine.sync_engine, "checkout", self._watch)
        sa.event.listen(rt.engine.sync_engine, "before_cursor_execute", self._statement)

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.log.append(" ".join(statement.split()[:3]))

    def _watch(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        raw = dbapi_connection.driver_connection
        if id(raw) not in self._seen:
            self._seen.add(id(raw))
            # the simple queries the adapter sends itself: BEGIN (logged once done, so after
            # the statement that made the adapter send it) and COMMIT
            raw.add_query_logger(lambda record: self.log.append(record.query.split()[0]))

    def take(self) -> list[str]:
        taken, self.log = self.log, []
        return taken


@pytest.fixture
async def counted(clean_db: str) -> AsyncIterator[Any]:
    if not clean_db.startswith("postgresql"):
        require_postgres()
    runtimes: list[Runtime] = []

    async def start(connector: FakeConnector) -> tuple[Runtime, Queries, Queued]:
        rt, _ = await start_runtime(
            make_settings(clean_db), make_config(), with_worker=False, connectors={"erp": connector}
        )
        runtimes.append(rt)
        queue = Queued()
        rt.queue = queue
        return rt, Queries(rt), queue

    yield start
    for rt in runtimes:
        await rt.close()


def quiet_health(rt: Runtime) -> None:
    """``last_success_at`` is written at most once a second: not in the counted delivery."""
    rt._health_written["erp"] = time.monotonic()


async def warm(rt: Runtime, queries: Queries, order_id: str) -> None:
    """One delivery first: connections opened, statements prepared (asyncpg caches them)."""
    await process_delivery(rt, await seed_event(rt, make_order(order_id), enqueue=False))
    queries.take()


async def add_link(rt: Runtime, entity_type: str, our_key: str, remote_id: str) -> None:
    async with rt.sessions() as session:
        session.add(
            EntityLink(
                connection_id="erp",
                entity_type=entity_type,
                our_key=our_key,
                remote_id=remote_id,
                updated_at=utcnow(),
            )
        )
        await session.commit()


async def test_a_delivered_order_costs_two_round_trips(counted: Any) -> None:
    connector = scripted()
    rt, queries, queue = await counted(connector)
    await warm(rt, queries, "7001")
    order = make_order("7002")
    first = await seed_event(rt, order, "order.created", enqueue=False)
    behind = await seed_event(rt, order, "order.updated", enqueue=False)
    assert order.customer_key
    await add_link(rt, "customer", order.customer_key, "CUST-77")  # known from an earlier order
    queries.take()
    quiet_health(rt)
    outcome = await process_delivery(rt, first)
    sent = queries.take()
    assert outcome.status == "delivered"
    # claim, no transaction around it: UPDATE … RETURNING with the event, the mappings and
    # the remote ids it asks for; finish: one statement (state, attempt, links, what waited)
    assert sent == ["UPDATE deliveries SET", "WITH finished AS"]
    assert queue.ids == [behind]  # the update waited for the create: queued after the commit
    ctx = connector.contexts[-1]
    assert ctx.mappings == {"sku": {"SKU-RED-M": "1042"}}
    assert ctx.links == {("customer", order.customer_key): "CUST-77"}
    async with rt.sessions() as session:
        link = await session.scalar(
            sa.select(col(EntityLink.remote_id)).where(col(EntityLink.our_key) == order.entity_key)
        )
        tries = await session.scalar(
            sa.select(sa.func.count()).where(col(DeliveryAttempt.delivery_id) == first)
        )
    assert link is not None and tries == 1


async def test_a_lost_lease_writes_nothing(counted: Any) -> None:
    connector = scripted()
    rt, _, queue = await counted(connector)
    order = make_order("7003")
    first = await seed_event(rt, order, enqueue=False)
    await seed_event(rt, order, "order.updated", enqueue=False)

    async def steal(*_: Any) -> None:
        # the lease ran out mid-call and another worker took the delivery
        async with rt.sessions() as session:
            await session.execute(
                sa.update(Delivery).where(col(Delivery.id) == first).values(lease_owner="other")
            )
            await session.commit()

    connector.script.decide = lambda event, ctx: steal()
    outcome = await process_delivery(rt, first)
    assert (outcome.kind, outcome.status) == ("skipped", "lease_lost")
    async with rt.sessions() as session:
        row = await session.get(Delivery, first)
        tries = await session.scalar(
            sa.select(sa.func.count()).where(col(DeliveryAttempt.delivery_id) == first)
        )
        links = await session.scalar(
            sa.select(sa.func.count()).where(col(EntityLink.our_key) == order.entity_key)
        )
    assert row is not None and (row.status, row.lease_owner) == ("in_flight", "other")
    assert tries == 0 and links == 0 and queue.ids == []


async def test_a_dead_delivery_releases_what_waited_and_a_retry_does_not(counted: Any) -> None:
    rt, _, queue = await counted(scripted([TransientError("502"), PermanentError("refused")]))
    order = make_order("7004")
    first = await seed_event(rt, order, enqueue=False)
    behind = await seed_event(rt, order, "order.updated", enqueue=False)
    retry = await process_delivery(rt, first)
    assert retry.kind == "retry" and queue.ids == []
    async with rt.sessions() as session:
        await session.execute(
            sa.update(Delivery)
            .where(col(Delivery.id) == first)
            .values(next_attempt_at=sa.func.now())
        )
        await session.commit()
    dead = await process_delivery(rt, first)
    assert dead.status == "dead" and queue.ids == [behind]


async def test_an_after_delivery_hook_that_writes_gets_the_finish_s_transaction(
    counted: Any,
) -> None:
    rt, queries, _ = await counted(scripted())
    # stock flows from the ERP to the store: a delivered order is booked against it
    route = rt.config.routes[0]
    rt.config.routes.append(
        route.model_copy(update={"flow": "inventory", "from_": "erp", "to": "shop"})
    )
    await warm(rt, queries, "7005")
    order = make_order("7006")
    first = await seed_event(rt, order, enqueue=False)
    queries.take()
    quiet_health(rt)
    assert (await process_delivery(rt, first)).status == "delivered"
    sent = queries.take()
    finish = sent[1:]  # after the claim's UPDATE
    assert finish[0] == "WITH finished AS" and finish[-1] == "COMMIT;", sent
    assert finish.count("BEGIN") == 1 and any("order_allocations" in q for q in finish), sent
    async with rt.sessions() as session:
        booked = await session.scalar(
            sa.select(sa.func.count()).where(col(OrderAllocation.order_key) == order.entity_key)
        )
    assert booked == 1


async def test_a_failing_hook_leaves_the_delivery_unfinished(
    counted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.flows import hooks

    rt, _, queue = await counted(scripted())
    order = make_order("7007")
    first = await seed_event(rt, order, enqueue=False)
    await seed_event(rt, order, "order.updated", enqueue=False)

    async def broken(session: Any, *_: Any, **__: Any) -> None:
        await session.execute(sa.select(1))
        raise RuntimeError("booking failed")

    monkeypatch.setattr(hooks, "after_delivered", broken)
    with pytest.raises(RuntimeError):
        await process_delivery(rt, first)
    async with rt.sessions() as session:
        row = await session.get(Delivery, first)
        tries = await session.scalar(
            sa.select(sa.func.count()).where(col(DeliveryAttempt.delivery_id) == first)
        )
    # all or nothing: still in flight (the sweeper retries it when the lease ends)
    assert row is not None and row.status == "in_flight" and tries == 0 and queue.ids == []


async def test_a_finding_or_a_health_write_takes_the_transaction_too(counted: Any) -> None:
    connector = scripted()
    connector.script.decide = lambda event, ctx: DeliveryResult(
        links=[RemoteLink("order", event.entity_key, "SO-1")],
        findings=[Finding("tax_difference", "NetSuite computed 1.00 more tax")],
    )
    rt, queries, _ = await counted(connector)
    await warm(rt, queries, "7008")
    quiet_health(rt)
    first = await seed_event(rt, make_order("7009"), enqueue=False)
    queries.take()
    await process_delivery(rt, first)
    sent = queries.take()
    assert sent[1] == "WITH finished AS" and sent.count("BEGIN") == 1, sent
    assert sent[-1] == "COMMIT;" and any("findings" in q for q in sent), sent


async def test_a_delivery_written_without_its_lookup_reads_it_after_the_claim(
    counted: Any,
) -> None:
    """Rows written before 0017 (or by a path that does not know the keys): one round trip
    more, the same context."""
    connector = scripted()
    rt, queries, _ = await counted(connector)
    await warm(rt, queries, "7010")
    order = make_order("7011")
    first = await seed_event(rt, order, enqueue=False, lookup=False)
    assert order.customer_key
    await add_link(rt, "customer", order.customer_key, "CUST-77")
    queries.take()
    quiet_health(rt)
    assert (await process_delivery(rt, first)).status == "delivered"
    assert queries.take() == ["UPDATE deliveries SET", "SELECT $1::VARCHAR AS", "WITH finished AS"]
    ctx = connector.contexts[-1]
    assert ctx.mappings == {"sku": {"SKU-RED-M": "1042"}}
    assert ctx.links == {("customer", order.customer_key): "CUST-77"}


async def test_a_mapping_added_after_the_order_came_in_is_read_with_the_claim(
    counted: Any,
) -> None:
    """The stored keys name what to read, not what was found: the operator's fix between
    the webhook and the attempt goes out with it."""
    connector = scripted()
    rt, queries, _ = await counted(connector)
    await warm(rt, queries, "7012")
    first = await seed_event(rt, make_order("7013", skus=("SKU-NEW",)), enqueue=False)
    async with rt.sessions() as session:
        session.add(
            Mapping(
                kind="sku",
                connection_id="erp",
                our_key="SKU-NEW",
                their_key="2001",
                updated_at=utcnow(),
            )
        )
        await session.commit()
    queries.take()
    quiet_health(rt)
    assert (await process_delivery(rt, first)).status == "delivered"
    assert queries.take() == ["UPDATE deliveries SET", "WITH finished AS"]
    assert connector.contexts[-1].mappings == {"sku": {"SKU-NEW": "2001"}}


async def test_a_connector_that_now_needs_more_than_was_stored_is_asked_at_the_claim(
    counted: Any,
) -> None:
    """The connector's answer at the claim decides: a kind it requires since the delivery
    was written (an upgrade, a changed option) is looked up, and parks the delivery when
    missing, instead of going out without it."""
    connector = scripted()
    rt, queries, _ = await counted(connector)
    await warm(rt, queries, "7014")
    first = await seed_event(rt, make_order("7015"), enqueue=False)
    connector.required_kinds = frozenset({"sku", "location"})
    queries.take()
    quiet_health(rt)
    outcome = await process_delivery(rt, first)
    sent = queries.take()
    assert sent[:2] == ["UPDATE deliveries SET", "SELECT $1::VARCHAR AS"], sent
    async with rt.sessions() as session:
        row = await session.get(Delivery, first)
    assert row is not None and row.status == "parked", (outcome, row)
    assert row.needs and {n["kind"] for n in row.needs} == {"location"}
