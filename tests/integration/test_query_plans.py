"""The hot queries stay index lookups when the tables are large (issue 12, item 5).

The real code paths run against a Postgres database while an engine hook records the SQL
they send (with its bound values); then the big tables get 100,000 rows each, ANALYZE
refreshes the statistics, and ``EXPLAIN`` of every recorded statement must not read a
big table whole: a sequential scan there costs a hundred times more at 10M rows. The
queries over an outage's backlog must use the partial indexes made for them (0014).
Postgres only (SQLite plans nothing like it).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from app.cli import migrate
from app.db import transaction
from app.delivery import sweeper
from app.delivery.breakers import BreakerView
from app.delivery.claim import _mappings_and_links, claim
from app.delivery.finish import record_finish
from app.delivery.outbox import waiting_behind
from app.erasure.person import linked_erp_customers, resolve
from app.erasure.progress import Job
from app.erasure.scrubbing import scrub_all
from app.flows.inventory.state import orders_in_transit
from app.flows.rules import effective_rules
from app.flows.state import canonical_payloads, entity_has_link
from app.ingest import one_statement
from app.ingest.dedupe import fresh_events
from app.ingest.service import _duplicate
from app.models import Delivery, utcnow
from app.runtime import Runtime, build_runtime
from kernel.canonical.customer import ErasureRequest
from kernel.canonical.events import CanonicalEvent
from kernel.types import MappingNeed
from tests.conftest import (
    _create_pg_database,
    _drop_pg_database,
    make_config,
    make_settings,
    require_postgres,
)

pytestmark = pytest.mark.integration

ROWS = 100_000
BIG_TABLES = frozenset(
    {
        "deliveries",
        "delivery_attempts",
        "canonical_events",
        "inbound_events",
        "entity_links",
        "person_refs",
        "mappings",
    }
)
HASH = "a" * 64  # the person's ref hash (hex, like ref_hash makes)

# A few rows for the code paths to find, written before the bulk rows (ids 1..n).
_SEED = (
    """INSERT INTO inbound_events (connection_id, topic, dedupe_key, received_at, headers,
        body, body_hash, status)
       VALUES ('shop', 'orders/create', 'seed-1', now(), '{}', '\\x7b7d', repeat('b', 64),
        'accepted')""",
    """INSERT INTO canonical_events (inbound_event_id, source, event_type, entity_type,
        entity_key, schema_version, occurred_at, created_at, payload)
       VALUES (1, 'shop', 'order.created', 'order', 'shop:order:seed', 1, now(), now(),
        '{"order_key": "shop:order:seed", "lines": [{"sku": "SKU-RED-M", "quantity": 1}]}')""",
    """INSERT INTO deliveries (canonical_event_id, flow, event_type, source, destination,
        entity_key, ordering_key, status, attempts, run_attempts, next_attempt_at,
        lease_expires_at, last_error_class, accepted_at, created_at, updated_at, priority,
        lookup)
       VALUES
        (1, 'orders', 'order.created', 'shop', 'erp', 'shop:order:seed', 'shop:order:seed',
         'pending', 0, 0, now() - interval '1 minute', NULL, NULL, now(), now(), now(), 0,
         '{"mappings": [["sku", "SKU-RED-M"], ["location", "shop"]],
           "related": ["shop:order:seed", "shop:customer:seed"]}'),
        (1, 'orders', 'order.created', 'shop', 'erp', 'shop:order:b', 'shop:order:b',
         'in_flight', 1, 1, now(), now() - interval '1 minute', NULL, now(), now(), now(), 0,
         NULL),
        (1, 'orders', 'order.created', 'shop', 'erp', 'shop:order:c', 'shop:order:c',
         'pending', 1, 1, now() + interval '1 hour', NULL, 'waiting_for_destination',
         now(), now(), now(), 0, NULL)""",
    """INSERT INTO entity_links (connection_id, entity_type, our_key, remote_id, updated_at)
       VALUES ('erp', 'customer', 'shop:customer:seed', '77', now())""",
    f"""INSERT INTO person_refs (source, kind, ref_hash, canonical_event_id)
       VALUES ('shop', 'email', '{HASH}', 1)""",
)

# The bulk: what years of traffic leave behind, mostly finished work of many entities, and
# one delivery in a thousand waiting for the ERP's breaker (10,000 in a table of 10M).
_FILL = (
    f"""INSERT INTO inbound_events (connection_id, topic, dedupe_key, received_at, headers,
        body, body_hash, status)
       SELECT 'shop', 'orders/updated', 'wh-' || i, now() - i * interval '1 second', '{{}}',
        '\\x7b7d', md5(i::text) || md5(i::text), 'accepted'
       FROM generate_series(1, {ROWS}) AS i""",
    f"""INSERT INTO canonical_events (inbound_event_id, source, event_type, entity_type,
        entity_key, schema_version, occurred_at, created_at, payload)
       SELECT i + 1, 'shop', 'order.updated', 'order', 'shop:order:' || i, 1,
        now() - i * interval '1 second', now() - i * interval '1 second',
        jsonb_build_object('order_key', 'shop:order:' || i)
       FROM generate_series(1, {ROWS}) AS i""",
    f"""INSERT INTO deliveries (canonical_event_id, flow, event_type, source, destination,
        entity_key, ordering_key, status, attempts, run_attempts, next_attempt_at,
        last_error_class, depends_on, accepted_at, created_at, updated_at, priority)
       SELECT i + 1, 'orders', 'order.updated', 'shop', 'erp', 'shop:order:' || i,
        'shop:order:' || i, backlog.status, 1, 1, now() + (i % 3600) * interval '1 second',
        backlog.error_class, backlog.depends_on, now(), now(), now(), 0
       FROM generate_series(1, {ROWS}) AS i,
        LATERAL (SELECT
          CASE WHEN i % 1000 = 0 THEN 'pending' ELSE 'delivered' END AS status,
          CASE WHEN i % 1000 = 0 THEN 'breaker_open' END AS error_class,
          -- most orders are guests' (no customer to wait for), as on the benchmark's shop
          CASE WHEN i % 10 = 0 THEN 'shop:customer:' || i END AS depends_on) AS backlog""",
    f"""INSERT INTO delivery_attempts (delivery_id, number, started_at, duration_ms, outcome,
        exchanges)
       SELECT i + 3, 1, now(), 120.0, 'delivered', '[]'
       FROM generate_series(1, {ROWS}) AS i""",
    f"""INSERT INTO entity_links (connection_id, entity_type, our_key, remote_id, updated_at)
       SELECT 'erp', 'order', 'shop:order:' || i, i::text, now()
       FROM generate_series(1, {ROWS}) AS i""",
    f"""INSERT INTO person_refs (source, kind, ref_hash, canonical_event_id)
       SELECT 'shop', 'email', md5(i::text) || md5(i::text), i + 1
       FROM generate_series(1, {ROWS}) AS i""",
    # a large catalogue's SKU mappings (the claim reads a delivery's by index)
    f"""INSERT INTO mappings (kind, connection_id, our_key, their_key, origin, updated_at)
       SELECT 'sku', 'erp', 'SKU-' || i, i::text, 'api', now()
       FROM generate_series(1, {ROWS}) AS i""",
)

# Queries over what waits for a destination: without their partial index (0014) they read
# every pending delivery, the whole backlog of an outage, at every sweep or finish.
EXPECTED_INDEX = {
    "outbox: waiting behind": {"ix_deliveries_pending_order", "ix_deliveries_pending_dependents"},
    # the next of its own entity, and the first of each entity that depends on it (0015)
    "finish": {"ix_deliveries_pending_order", "ix_deliveries_pending_dependents"},
    "sweeper: trial candidates": {"ix_deliveries_breaker_wait"},
    "sweeper: destinations waiting": {"ix_deliveries_breaker_wait"},
}

Recorded = list[tuple[str, str, Any]]  # (what ran, SQL, bound values)


@pytest.fixture
def plans_db() -> Iterator[str]:
    """A database of its own: the bulk rows must not slow the other tests' clean-ups."""
    url = asyncio.run(_create_pg_database(require_postgres()))
    migrate(url)
    yield url
    asyncio.run(_drop_pg_database(url))


@pytest.fixture
async def rt(plans_db: str) -> AsyncIterator[Runtime]:
    runtime = build_runtime(make_settings(plans_db), make_config())
    async with runtime.engine.begin() as conn:
        for statement in _SEED:
            await conn.execute(sa.text(statement))
    yield runtime
    await runtime.close()


def _record(rt: Runtime, recorded: Recorded, label: list[str]) -> None:
    def before(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        head = statement.lstrip().split(None, 1)[0].upper()
        if not many and head in ("SELECT", "UPDATE", "DELETE", "WITH"):
            recorded.append((label[0], statement, params))

    sa.event.listen(rt.engine.sync_engine, "before_cursor_execute", before)


async def _run_hot_paths(rt: Runtime, label: list[str]) -> None:
    """The code paths whose queries must stay cheap, each as the gateway runs it."""
    now = utcnow()
    label[0] = "claim"
    await claim(rt, 1, "worker-1")
    async with rt.sessions() as session:
        delivery = await session.get(Delivery, 1)
        assert delivery is not None
        label[0] = "outbox: waiting behind"  # what a finished delivery releases
        await waiting_behind(session, delivery)
        label[0] = "finish"  # the worker's one statement; a lease it does not hold: no write
        await record_finish(
            session,
            delivery_id=1,
            owner="not-the-owner",
            destination="erp",
            ordering_key="shop:order:seed",
            values={"status": "delivered"},
            attempt={
                "number": 1,
                "started_at": now,
                "duration_ms": 1.0,
                "outcome": "delivered",
                "error_class": None,
                "error_message": None,
                "exchanges": [],
            },
            links=[],
            release=True,
            now=now,
        )
    async with transaction(rt.sessions) as session:
        label[0] = "sweeper: trial candidates"
        open_erp = {"erp": BreakerView("open", now - timedelta(seconds=1))}
        await sweeper._trial_candidates(session, open_erp, now)
        label[0] = "sweeper: destinations waiting"
        await sweeper._release_recovered(session, rt, {}, now)
        label[0] = "sweeper"
        await sweeper._due(session, now)
        await sweeper._abandoned(session, now + timedelta(hours=1))
    await sweeper.refresh_queue_gauges(rt)
    label[0] = "orders in transit"
    async with rt.sessions() as session:
        await orders_in_transit(session, "shop", "erp")
    label[0] = "webhook dedupe"
    async with rt.sessions() as session:
        await _duplicate(session, "shop", "orders/create", "seed-1", "0" * 64)
        label[0] = "webhook read (one-statement path)"
        await session.execute(
            sa.text(one_statement._CONTEXT.replace("$1::varchar[]", "CAST(:keys AS VARCHAR[])")),
            {"keys": ["shop:order:seed", "shop:order:1"]},
        )
        label[0] = "webhook dedupe"
        event = CanonicalEvent.model_validate(
            {
                "type": "customer.erase_requested",
                "entity_key": "shop:customer:seed",
                "occurred_at": now,
                "payload": {"source": "shop", "email": "a@example.com", "requested_at": now},
            }
        )
        await fresh_events(session, [event])
    label[0] = "delivery lookups"
    async with rt.sessions() as session:
        await _mappings_and_links(
            session, "erp", [MappingNeed("sku", "SKU-RED-M")], event.related_keys()
        )
        await entity_has_link(session, "erp", "customer", "shop:customer:seed")
        await canonical_payloads(session, entity_key="shop:order:seed")
    label[0] = "erasure"
    async with rt.sessions() as session:
        rules = await effective_rules(session, rt.config.rules)
    job = Job(
        id=0,
        event_id=1,
        source="shop",
        entity_key="shop:customer:seed",
        request=ErasureRequest(source="shop", email="a@example.com", requested_at=now),
        rules=rules,
        erp_connections=["erp"],
        hashes=[HASH],
        customer_keys={"shop:customer:seed"},
    )
    await resolve(rt, job)
    job.hashes = [HASH]  # the seeded person's ref, so the scrub finds event 1
    await scrub_all(rt, job, 0, 3)
    async with rt.sessions() as session:
        await linked_erp_customers(session, job)


def _nodes(plan: dict[str, Any]) -> list[str]:
    """Each node of a plan as 'type:table:index:rows', for the failure message."""
    node = [plan["Node Type"], plan.get("Relation Name"), plan.get("Index Name"), plan["Plan Rows"]]
    out = [":".join(str(part or "") for part in node)]
    for child in plan.get("Plans", []):
        out += _nodes(child)
    return out


def _seq_scans(plan: dict[str, Any]) -> list[str]:
    found = []
    if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") in BIG_TABLES:
        found.append(str(plan["Relation Name"]))
    for child in plan.get("Plans", []):
        found += _seq_scans(child)
    return found


async def test_hot_queries_use_indexes_on_large_tables(rt: Runtime) -> None:
    recorded: Recorded = []
    label = [""]
    _record(rt, recorded, label)
    await _run_hot_paths(rt, label)
    touching = [r for r in recorded if any(t in r[1] for t in BIG_TABLES)]
    assert {what for what, _, _ in touching} >= {
        "claim",
        "outbox: waiting behind",
        "finish",
        "sweeper: trial candidates",
        "sweeper: destinations waiting",
        "sweeper",
        "orders in transit",
        "webhook dedupe",
        "delivery lookups",
        "erasure",
    }
    async with rt.engine.begin() as conn:
        for statement in _FILL:
            await conn.execute(sa.text(statement))
        for table in BIG_TABLES:  # the statistics are ours to take, not autovacuum's
            await conn.execute(sa.text(f"ALTER TABLE {table} SET (autovacuum_enabled = off)"))
    scans = []
    async with rt.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        # first as a new install under its first burst: no statistics taken yet, and the
        # indexes made when the table was empty; then with the statistics of the big tables
        for stats in ("no statistics", "analyzed"):
            if stats == "analyzed":
                await raw.execute("ANALYZE")
            for what, statement, params in touching:
                for kind, plan in await _plans(raw, statement, params):
                    tables = _seq_scans(plan)
                    indexes = {n.split(":")[2] for n in _nodes(plan)}
                    found = f"{what} ({kind} plan, {stats})"
                    expected = EXPECTED_INDEX.get(what, set())
                    if expected - indexes:
                        scans.append(f"{found}: not by {expected - indexes}: {_nodes(plan)}")
                    if tables and stats == "analyzed":
                        sql = " ".join(statement.split())[:300]
                        scans.append(f"{found}: {tables} read whole: {_nodes(plan)} for {sql}")
    assert not scans, "\n".join(scans)


async def _plans(raw: Any, statement: str, params: Any) -> list[tuple[str, dict[str, Any]]]:
    """The plan for these values, and the generic plan: asyncpg prepares every statement,
    and after five runs Postgres may keep one plan for any values (a plan that cannot see
    them: the finish statement's once walked a destination's whole backlog that way)."""
    custom = await raw.fetchval(f"EXPLAIN (FORMAT JSON) {statement}", *params)
    await raw.execute("SET plan_cache_mode = force_generic_plan")
    await raw.execute(f"PREPARE hot AS {statement}")
    try:
        types = await raw.fetchval(
            "SELECT parameter_types::text[] FROM pg_prepared_statements WHERE name = 'hot'"
        )
        # EXECUTE under EXPLAIN takes no bound parameters: each value as a typed literal
        args = [
            f"{await raw.fetchval(f'SELECT quote_nullable($1::{kind})', value)}::{kind}"
            for kind, value in zip(types, params, strict=True)
        ]
        values = f"({', '.join(args)})" if args else ""
        generic = await raw.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE hot{values}")
    finally:
        await raw.execute("DEALLOCATE hot; RESET plan_cache_mode")
    # the engine's connection decodes json itself
    return [
        (kind, (json.loads(doc) if isinstance(doc, str) else doc)[0]["Plan"])
        for kind, doc in (("custom", custom), ("generic", generic))
    ]
