"""What an order webhook costs the database on Postgres, and what the one-statement path
(``app.ingest.one_statement``) promises: a new order in one round trip, any other order
webhook in two (one read, one write), everything or nothing written, the general path's
results, a guess proven wrong costing a read and nothing else, and a fall back to the
general path before anything is written when a plan needs it."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from app.errors import Unauthorized, database_unreachable
from app.flows.rules import set_override
from app.ingest import one_statement
from app.ingest.recent import RECENT_BODIES
from app.ingest.service import IngestResult, ingest_webhook
from app.main import start_runtime
from app.runtime import Runtime
from tests.conftest import SHOP_SECRET, make_config, make_settings, require_postgres
from tests.integration.test_delivery_round_trips import Queries, Queued
from tests.support.fake_connector import FakeConnector
from tests.support.shopify import order_payload, signed

pytestmark = pytest.mark.integration

TABLES = ("inbound_events", "canonical_events", "person_refs", "deliveries", "findings")


@pytest.fixture
async def gateway(clean_db: str) -> AsyncIterator[tuple[Runtime, Queries, Queued]]:
    if not clean_db.startswith("postgresql"):
        require_postgres()
    rt, _ = await start_runtime(
        make_settings(clean_db),
        make_config(),
        with_worker=False,
        connectors={"erp": FakeConnector("erp")},
    )
    queue = Queued()
    rt.queue = queue
    try:
        yield rt, Queries(rt), queue
    finally:
        await rt.close()


async def post(
    rt: Runtime,
    payload: dict[str, Any],
    topic: str = "orders/create",
    webhook_id: str | None = None,
) -> IngestResult:
    body = json.dumps(payload).encode()
    result = await ingest_webhook(rt, "shop", signed(body, SHOP_SECRET, topic, webhook_id), body)
    assert isinstance(result, IngestResult)
    return result


def trips(queries: Queries) -> list[str]:
    """The round trips since the last look, by their first word, in a stable order (the
    adapter logs its own queries once done, SQLAlchemy's before they are sent)."""
    return sorted(q.split()[0].rstrip(";") for q in queries.take())


async def counts(rt: Runtime) -> dict[str, int]:
    async with rt.sessions() as session:
        return {
            table: int(await session.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)
            for table in TABLES
        }


async def test_a_new_order_is_one_statement(gateway: Any) -> None:
    rt, queries, queue = gateway
    await post(rt, order_payload(1))  # connections opened, statements prepared, rules read
    queries.take()
    queue.ids.clear()
    result = await post(rt, order_payload(2))
    # no read, no BEGIN, no COMMIT: one INSERT … statement that checks what was guessed
    assert trips(queries) == ["WITH"]
    assert not result.duplicate and len(result.event_ids) == 1
    async with rt.sessions() as session:
        event = (
            await session.execute(
                sa.text(
                    "SELECT id, inbound_event_id, event_type FROM canonical_events WHERE id = :id"
                ),
                {"id": result.event_ids[0]},
            )
        ).one()
        refs = await session.scalar(
            sa.text("SELECT count(*) FROM person_refs WHERE canonical_event_id = :id"),
            {"id": event.id},
        )
        delivery = (
            await session.execute(
                sa.text(
                    "SELECT id, status, destination, depends_on, directives, payload "
                    "FROM deliveries WHERE canonical_event_id = :id"
                ),
                {"id": event.id},
            )
        ).one()
    assert (event.inbound_event_id, event.event_type) == (result.inbound_event_id, "order.created")
    assert refs and refs >= 3  # e-mail, phone, customer, order
    assert (delivery.status, delivery.destination) == ("pending", "erp")
    assert delivery.depends_on and delivery.directives["tax_source"]
    assert delivery.payload is None  # the event's payload as stored, as the general path
    assert queue.ids == [delivery.id]  # queued once written


async def test_a_re_sent_webhook_writes_nothing(gateway: Any) -> None:
    rt, queries, queue = gateway
    first = await post(rt, order_payload(3), webhook_id="w-1")
    before = await counts(rt)
    queries.take()
    queue.ids.clear()
    again = await post(rt, order_payload(3), webhook_id="w-2")  # the same body, a new id
    assert again.duplicate and again.inbound_event_id == first.inbound_event_id
    assert again.event_ids == first.event_ids
    # this process stored that body: its original is read, nothing planned or written
    assert trips(queries) == ["SELECT"]
    assert await counts(rt) == before and queue.ids == []


async def test_a_re_sent_body_is_answered_without_parsing_it_again(
    gateway: Any, monkeypatch: Any
) -> None:
    rt, _, _ = gateway
    first = await post(rt, order_payload(32), webhook_id="w-1")
    shop = rt.connector("shop")
    parsed: list[str] = []
    real_parse = shop.parse_webhook

    def counting_parse(headers: Any, body: bytes) -> Any:
        parsed.append(headers["X-Shopify-Topic"])
        return real_parse(headers, body)

    monkeypatch.setattr(shop, "parse_webhook", counting_parse)
    again = await post(rt, order_payload(32), webhook_id="w-2")
    assert again.duplicate and again.event_ids == first.event_ids
    assert parsed == []  # the signature and the remembered body sufficed
    # the same body under another topic is another webhook: parsed as usual
    await post(rt, order_payload(32), topic="orders/updated", webhook_id="w-3")
    assert parsed == ["orders/updated"]


async def test_a_re_sent_body_with_a_bad_signature_is_refused(gateway: Any) -> None:
    rt, queries, _ = gateway
    payload = order_payload(33)
    await post(rt, payload)
    body = json.dumps(payload).encode()
    queries.take()
    with pytest.raises(Unauthorized):
        await ingest_webhook(rt, "shop", signed(body, "not-the-secret", "orders/create"), body)
    assert trips(queries) == []  # refused before any read


async def test_a_body_another_process_stored_is_found_by_the_guessed_write(
    gateway: Any,
) -> None:
    rt, queries, _ = gateway
    first = await post(rt, order_payload(30), webhook_id="w-1")
    RECENT_BODIES._keys.clear()  # stored by another API process: not among this one's
    queries.take()
    again = await post(rt, order_payload(30), webhook_id="w-2")
    # the guessed write finds it recorded and names the original; its events are read
    assert trips(queries) == ["SELECT", "WITH"]
    assert again.duplicate and again.event_ids == first.event_ids


async def test_a_body_remembered_from_another_database_is_stored(gateway: Any) -> None:
    rt, _, _ = gateway
    payload = order_payload(31)
    body = json.dumps(payload).encode()
    # this process saw the body (under another database, say a test's): not a duplicate here
    RECENT_BODIES.add(("shop", "orders/create", hashlib.sha256(body).hexdigest()))
    result = await post(rt, payload)
    assert not result.duplicate and len(result.event_ids) == 1


async def test_two_copies_at_once_are_stored_once(gateway: Any) -> None:
    rt, _, queue = gateway
    results = await asyncio.gather(*(post(rt, order_payload(4)) for _ in range(4)))
    assert sorted(r.duplicate for r in results) == [False, True, True, True]
    assert len({r.inbound_event_id for r in results}) == 1
    assert await counts(rt) == {
        **(await counts(rt)),
        "inbound_events": 1,
        "canonical_events": 1,
        "deliveries": 1,
    }
    assert len(queue.ids) == 1


async def test_an_update_is_planned_against_the_recorded_version(gateway: Any) -> None:
    rt, queries, _ = gateway
    created = await post(rt, order_payload(5))
    changed = order_payload(5)
    changed["line_items"][0]["quantity"] += 2
    changed["updated_at"] = "2030-01-01T00:00:00Z"
    queries.take()
    updated = await post(rt, changed, topic="orders/updated")
    assert trips(queries) == ["SELECT", "WITH"]
    async with rt.sessions() as session:
        rows = (
            await session.execute(
                sa.text(
                    "SELECT e.event_type, d.directives FROM canonical_events e "
                    "JOIN deliveries d ON d.canonical_event_id = e.id ORDER BY e.id"
                )
            )
        ).all()
    assert [r.event_type for r in rows] == ["order.created", "order.updated"]
    assert "amendment" not in rows[0].directives
    assert rows[1].directives["amendment"]  # the diff against the created version
    assert updated.event_ids[0] > created.event_ids[0]
    # the same version again (only its time stamp moved) says nothing new: stored raw, no
    # event, no delivery
    changed["updated_at"] = "2030-01-02T00:00:00Z"
    again = await post(rt, changed, topic="orders/updated")
    assert not again.duplicate and again.event_ids == []


async def test_a_rule_changed_since_the_last_webhook_applies_to_the_next(gateway: Any) -> None:
    rt, queries, _ = gateway
    await post(rt, order_payload(60))  # the process has seen the overrides: none
    async with rt.sessions() as session:  # an operator changes a rule (any process)
        await set_override(session, rt.config.rules, "orders", {"tax_source": "erp"}, "ops")
        await session.commit()
    queries.take()
    result = await post(rt, order_payload(6))
    # the guessed write saw other overrides and wrote nothing; read, planned again, written
    assert trips(queries) == ["SELECT", "WITH", "WITH"]
    assert (await counts(rt))["inbound_events"] == 2
    async with rt.sessions() as session:
        directives = await session.scalar(
            sa.text("SELECT directives FROM deliveries WHERE canonical_event_id = :id"),
            {"id": result.event_ids[0]},
        )
    assert directives["tax_source"] == "erp"


async def test_a_creation_of_an_order_already_recorded_is_its_update(gateway: Any) -> None:
    rt, queries, _ = gateway
    await post(rt, order_payload(1))
    # a backfill (or a late orders/updated) recorded the order before its creation webhook
    first = order_payload(12)
    await post(rt, first, topic="orders/updated")
    created = order_payload(12)
    created["line_items"][0]["quantity"] += 1
    queries.take()
    result = await post(rt, created)
    # the guess (nothing recorded of it) was wrong: nothing written, read, written
    assert trips(queries) == ["SELECT", "WITH", "WITH"]
    async with rt.sessions() as session:
        kind = await session.scalar(
            sa.text("SELECT event_type FROM canonical_events WHERE id = :id"),
            {"id": result.event_ids[0]},
        )
    assert kind == "order.updated"  # as the general path records it
    assert (await counts(rt))["canonical_events"] == 3


def guest(n: int) -> dict[str, Any]:
    """A guest checkout with no e-mail: refused under every guest strategy (a finding)."""
    payload = order_payload(n)
    payload["customer"] = None
    for field in ("email", "contact_email"):
        payload[field] = None
    return payload


async def test_a_finding_takes_the_general_path_with_nothing_written_twice(gateway: Any) -> None:
    rt, queries, _ = gateway
    await post(rt, order_payload(7))
    queries.take()
    result = await post(rt, guest(8))
    sent = trips(queries)
    # the read, then the general path's transaction
    assert sent.count("BEGIN") == 1 and sent.count("COMMIT") == 1 and "WITH" not in sent, sent
    assert (await counts(rt))["inbound_events"] == 2 and len(result.event_ids) == 1
    async with rt.sessions() as session:
        kind = await session.scalar(sa.text("SELECT kind FROM findings"))
        status = await session.scalar(
            sa.text("SELECT status FROM deliveries WHERE canonical_event_id = :id"),
            {"id": result.event_ids[0]},
        )
    assert (kind, status) == ("guest_rejected", "dead")


async def test_a_failed_write_leaves_nothing(gateway: Any, monkeypatch: Any) -> None:
    rt, _, queue = gateway
    real = one_statement.delivery_values

    def too_long(*args: Any) -> dict[str, Any]:
        return {**real(*args), "last_error_class": "x" * 40}  # wider than the column

    monkeypatch.setattr(one_statement, "delivery_values", too_long)
    with pytest.raises(Exception, match="too long"):
        await post(rt, order_payload(9))
    assert set((await counts(rt)).values()) == {0} and queue.ids == []
    monkeypatch.undo()
    result = await post(rt, order_payload(9))  # the sender's retry is taken
    assert not result.duplicate and len(result.event_ids) == 1


async def test_both_paths_write_what_the_claim_reads_with_the_lease(
    gateway: Any, monkeypatch: Any
) -> None:
    """The mapping keys and related entity keys the destination's connector asks for are
    stored with the delivery (app/delivery/lookup.py), the same on either path."""
    rt, queries, _ = gateway
    connector = rt.connector("erp")
    connector.required_kinds = frozenset({"sku"})
    connector.mapping_kinds = frozenset({"location"})
    await post(rt, order_payload(20))
    queries.take()
    one = await post(rt, order_payload(21))
    assert trips(queries) == ["WITH"]
    monkeypatch.setattr(one_statement, "takes", lambda *_: False)
    general = await post(rt, order_payload(22))
    assert "WITH" not in trips(queries)
    async with rt.sessions() as session:
        rows = (
            await session.execute(
                sa.text(
                    "SELECT d.lookup, c.entity_key, "
                    "'shop:customer:' || (c.payload -> 'customer' ->> 'external_id') AS customer "
                    "FROM deliveries d JOIN canonical_events c ON c.id = d.canonical_event_id "
                    "WHERE c.id IN (:one, :general) ORDER BY c.id"
                ),
                {"one": one.event_ids[0], "general": general.event_ids[0]},
            )
        ).all()
    assert len(rows) == 2
    for row in rows:
        assert row.lookup == {
            "mappings": [["sku", "SKU-RED-M"], ["sku", "SKU-BLUE-L"], ["location", "shop"]],
            "related": [row.entity_key, row.customer],
        }, row


def test_only_order_events_on_postgres_take_the_path() -> None:
    assert not one_statement.takes("sqlite", [object()])  # type: ignore[list-item]
    assert not one_statement.takes("postgresql", [])


async def test_a_lost_database_connection_is_unreachable_not_an_error(gateway: Any) -> None:
    rt, _, _ = gateway
    await post(rt, order_payload(10))
    # Postgres restarted: every session of the gateway's is gone
    outside = await asyncpg.connect(rt.settings.database_url.replace("+asyncpg", ""))
    try:
        await outside.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await outside.close()
    with pytest.raises(Exception) as lost:
        await post(rt, order_payload(11))
    assert database_unreachable(lost.value)  # answered 503, the sender retries
    retried = await post(rt, order_payload(11))
    assert not retried.duplicate and (await counts(rt))["inbound_events"] == 2


async def test_the_generic_plans_look_entities_up_by_index(gateway: Any) -> None:
    """Prepared statements are planned once for any parameters; made while the tables are
    small (a new install), a plan for ``= ANY(array)`` read whole tables, and kept doing so
    as they grew. Both statements must look each key up by index even then."""
    rt, _, _ = gateway
    await post(rt, order_payload(40))
    async with rt.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        await raw.execute("SET plan_cache_mode = force_generic_plan")
        keys = "{shop:order:5000000000040}"  # an array literal
        await raw.execute(f"PREPARE read_context AS {one_statement._CONTEXT}")
        await raw.execute(f"PREPARE write_guessed AS {one_statement._WRITE}")
        write_types = await raw.fetch(
            "SELECT unnest(parameter_types)::text FROM pg_prepared_statements "
            "WHERE name = 'write_guessed'"
        )
        nulls = ", ".join(f"NULL::{t[0]}" for t in write_types[:-2])
        plans = [
            await raw.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE read_context('{keys}')"),
            await raw.fetchval(
                f"EXPLAIN (FORMAT JSON) EXECUTE write_guessed({nulls}, '{keys}', 'fp')"
            ),
        ]
        await raw.execute("DEALLOCATE ALL; RESET plan_cache_mode")
    for plan in plans:
        document = json.loads(plan) if isinstance(plan, str) else plan
        scans = _scans(document[0]["Plan"])
        assert ("Seq Scan", "canonical_events") not in scans, scans
        assert ("Seq Scan", "inbound_events") not in scans, scans


def _scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    found = [(plan["Node Type"], plan.get("Relation Name", ""))]
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found
