"""The gateway's hot queries on big tables: the rows years of traffic leave behind, and the
code paths whose statements must stay cheap on them.

Shared by the plan check (``tests/integration/test_query_plans.py``: no statement reads a
big table whole at 100,000 rows) and the timed pass (``bench/big_tables.py``: the same
statements keep their speed at 10 million rows).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

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
from app.runtime import Runtime
from kernel.canonical.customer import ErasureRequest
from kernel.canonical.events import CanonicalEvent
from kernel.types import MappingNeed

Recorded = list[tuple[str, str, Any]]  # (what ran, SQL, bound values)

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
SEED = (
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


def fill_statements(
    first: int, last: int, *, waiting_every: int = 1000, waiting_until: int | None = None
) -> tuple[str, ...]:
    """The bulk rows numbered ``first``..``last`` (1-based; filled in order, each range once):
    what years of traffic leave behind, mostly finished work of many entities, and one
    delivery in ``waiting_every`` up to row ``waiting_until`` (default: all) still waiting for
    the ERP's breaker, the backlog of an outage."""
    waiting = f"i % {waiting_every} = 0" + (f" AND i <= {waiting_until}" if waiting_until else "")
    return (
        f"""INSERT INTO inbound_events (connection_id, topic, dedupe_key, received_at, headers,
            body, body_hash, status)
           SELECT 'shop', 'orders/updated', 'wh-' || i, now() - i * interval '1 second', '{{}}',
            '\\x7b7d', md5(i::text) || md5(i::text), 'accepted'
           FROM generate_series({first}, {last}) AS i""",
        f"""INSERT INTO canonical_events (inbound_event_id, source, event_type, entity_type,
            entity_key, schema_version, occurred_at, created_at, payload)
           SELECT i + 1, 'shop', 'order.updated', 'order', 'shop:order:' || i, 1,
            now() - i * interval '1 second', now() - i * interval '1 second',
            jsonb_build_object('order_key', 'shop:order:' || i)
           FROM generate_series({first}, {last}) AS i""",
        f"""INSERT INTO deliveries (canonical_event_id, flow, event_type, source, destination,
            entity_key, ordering_key, status, attempts, run_attempts, next_attempt_at,
            last_error_class, depends_on, accepted_at, created_at, updated_at, priority)
           SELECT i + 1, 'orders', 'order.updated', 'shop', 'erp', 'shop:order:' || i,
            'shop:order:' || i, backlog.status, 1, 1, now() + (i % 3600) * interval '1 second',
            backlog.error_class, backlog.depends_on, now(), now(), now(), 0
           FROM generate_series({first}, {last}) AS i,
            LATERAL (SELECT
              CASE WHEN {waiting} THEN 'pending' ELSE 'delivered' END AS status,
              CASE WHEN {waiting} THEN 'breaker_open' END AS error_class,
              -- most orders are guests' (no customer to wait for), as on the benchmark's shop
              CASE WHEN i % 10 = 0 THEN 'shop:customer:' || i END AS depends_on) AS backlog""",
        f"""INSERT INTO delivery_attempts (delivery_id, number, started_at, duration_ms, outcome,
            exchanges)
           SELECT i + 3, 1, now(), 120.0, 'delivered', '[]'
           FROM generate_series({first}, {last}) AS i""",
        f"""INSERT INTO entity_links (connection_id, entity_type, our_key, remote_id, updated_at)
           SELECT 'erp', 'order', 'shop:order:' || i, i::text, now()
           FROM generate_series({first}, {last}) AS i""",
        f"""INSERT INTO person_refs (source, kind, ref_hash, canonical_event_id)
           SELECT 'shop', 'email', md5(i::text) || md5(i::text), i + 1
           FROM generate_series({first}, {last}) AS i""",
        # a large catalogue's SKU mappings (the claim reads a delivery's by index)
        f"""INSERT INTO mappings (kind, connection_id, our_key, their_key, origin, updated_at)
           SELECT 'sku', 'erp', 'SKU-' || i, i::text, 'api', now()
           FROM generate_series({first}, {last}) AS i""",
    )


def record(rt: Runtime, recorded: Recorded, label: list[str]) -> None:
    """From now on, every query ``rt`` sends goes into ``recorded`` under ``label[0]``."""

    def before(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        head = statement.lstrip().split(None, 1)[0].upper()
        if not many and head in ("SELECT", "UPDATE", "DELETE", "WITH"):
            recorded.append((label[0], statement, params))

    sa.event.listen(rt.engine.sync_engine, "before_cursor_execute", before)


async def run_hot_paths(rt: Runtime, label: list[str]) -> None:
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


async def explain(
    raw: Any, statement: str, params: Any, *, analyze: bool = False
) -> list[tuple[str, dict[str, Any]]]:
    """EXPLAIN of ``statement`` for these values ("custom") and as a generic plan
    ("generic"): asyncpg prepares every statement, and after five runs Postgres may keep one
    plan for any values (a plan that cannot see them: the finish statement's once walked a
    destination's whole backlog that way). Each is EXPLAIN's JSON document: ``Plan``, and
    with ``analyze`` the planning and execution times of a run that is rolled back.
    ``raw``: an asyncpg connection outside a transaction."""
    options = "ANALYZE, FORMAT JSON" if analyze else "FORMAT JSON"
    run = raw.transaction()
    await run.start()  # rolled back: an analysed UPDATE changes nothing
    try:
        custom = await raw.fetchval(f"EXPLAIN ({options}) {statement}", *params)
        await raw.execute("SET LOCAL plan_cache_mode = force_generic_plan")
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
            generic = await raw.fetchval(f"EXPLAIN ({options}) EXECUTE hot{values}")
        finally:
            await raw.execute("DEALLOCATE hot")
    finally:
        await run.rollback()
    # the engine's connection decodes json itself
    return [
        (kind, (json.loads(doc) if isinstance(doc, str) else doc)[0])
        for kind, doc in (("custom", custom), ("generic", generic))
    ]
