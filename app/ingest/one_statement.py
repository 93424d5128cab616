"""An order webhook accepted in one or two round trips on Postgres, instead of eight.

The general path (``app.ingest.service``) is one transaction: BEGIN, the raw event, the
dedupe read, the rules read, the canonical event, its person refs, its deliveries, COMMIT.
Orders are planned without writes of their own, so their webhook can instead

1. read in one statement what dedupe and planning need: the newest recorded events of the
   webhook's entities and the stored rule overrides (with their fingerprint);
2. dedupe and plan in memory, as the general path does (the same functions);
3. write everything in one INSERT statement (a chain of data-modifying CTEs): the raw event,
   its canonical events, their person refs and deliveries. A statement is atomic by itself,
   so it runs outside a transaction (no BEGIN, no COMMIT); when the raw event is already
   stored (a re-sent webhook), it writes nothing at all.

A new order (``order.created``) skips the read: it is planned as an entity nothing is
recorded of yet, under the overrides the process read last, and its statement checks both
before it writes anything. A wrong guess (a backfill read the order first, an operator
changed a rule) costs the read and a second statement; a re-sent webhook is recognised by
the first.

Anything else (other event types, two events of one entity, a plan that supersedes or
reports a finding) answers None before anything is written, and the caller takes the
general path. The statements are plain SQL (``exec_driver_sql``): nothing to compile, and
SQLAlchemy still translates the driver's errors (a lost connection is a 503) and counts them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.delivery.outbox import enqueue_after_commit
from app.erasure.refs import event_refs, ref_hash, ref_kind
from app.flows.plan import PlanContext, Planned
from app.flows.planning import plan_event
from app.flows.recorder import delivery_values, event_values, routed
from app.flows.rules import rules_with_overrides
from app.flows.state import note_version, remember_previous
from app.ingest.dedupe import Newest, choose_fresh, keys_to_check, known_events
from app.models import DeliveryStatus, utcnow
from app.observability import metrics
from app.runtime import Runtime
from kernel.canonical.events import CanonicalEvent

log = structlog.get_logger("gateway.ingest")

# planned from what the read brings, nothing written by their planner
ORDER_EVENTS = frozenset({"order.created", "order.updated", "order.cancelled"})


@dataclass
class Written:
    inbound_event_id: int | None  # None: already stored (nothing was written)
    event_ids: list[int]
    delivery_ids: list[int]


def takes(dialect: str, events: list[CanonicalEvent]) -> bool:
    """Whether this path can take the webhook's events (before any read)."""
    return dialect == "postgresql" and bool(events) and all(e.type in ORDER_EVENTS for e in events)


async def write_in_one_statement(
    session: AsyncSession,
    rt: Runtime,
    connection_id: str,
    inbound: dict[str, Any],
    events: list[CanonicalEvent],
) -> Written | None:
    """Record the webhook (``inbound``: its ``inbound_events`` row) and its order events;
    None, with nothing written, when they need the general path."""
    connection = await session.connection()
    keys = keys_to_check(events, webhook=True)
    seen = _overrides_seen.get(id(rt))
    if seen is not None and all(e.type == "order.created" for e in events):
        # A new order, most likely: planned as one no event is recorded of yet, with the
        # rule overrides this process saw last, and written in one round trip by a
        # statement that checks both (nothing written if either is wrong).
        written = await _plan_and_write(
            session, rt, connection_id, inbound, events, keys, [], seen, guess=True
        )
        if not isinstance(written, _WrongGuess):
            return written
    rows: list[Any] = list(await connection.exec_driver_sql(_CONTEXT, (sorted(keys),)))
    newest: list[Newest] = [(r[1], r[2], r[3], r[4], r[5]) for r in rows if r[0] is not None]
    seen = _Overrides(
        next(r[6] for r in rows if r[6] is not None),
        [(r[2], r[4]) for r in rows if r[0] is None and r[6] is None],
    )
    if len(_overrides_seen) >= 64:  # one per runtime: a process has one, a test run many
        _overrides_seen.clear()
    _overrides_seen[id(rt)] = seen
    written = await _plan_and_write(
        session, rt, connection_id, inbound, events, keys, newest, seen, guess=False
    )
    assert not isinstance(written, _WrongGuess)  # nothing checked that was not just read
    return written


@dataclass
class _Overrides:
    fingerprint: str  # as Postgres renders the stored overrides (``_OVERRIDES_FINGERPRINT``)
    rows: list[tuple[str, dict[str, Any]]]


# id of a runtime → the rule overrides its last webhook read
_overrides_seen: dict[int, _Overrides] = {}


class _WrongGuess:
    """The guess (no event of the webhook's entities recorded, the overrides as last seen)
    was wrong: nothing was written."""


async def _plan_and_write(
    session: AsyncSession,
    rt: Runtime,
    connection_id: str,
    inbound: dict[str, Any],
    events: list[CanonicalEvent],
    keys: set[str],
    newest: list[Newest],
    overrides: _Overrides,
    *,
    guess: bool,
) -> Written | _WrongGuess | None:
    """Dedupe and plan against ``newest`` (the recorded events of ``keys``, the entities)
    and ``overrides``, then write. ``guess``: they were not read (none recorded, the
    overrides as last seen), and the statement checks them first."""
    fresh = choose_fresh(events, known_events(session, keys, newest), webhook=True)
    if len({e.entity_key for e in fresh}) < len(fresh):
        return None  # a second version's previous one would be the first, unwritten
    remember_previous(session, _previous_payloads(keys, newest))
    rules = rules_with_overrides(rt.config.rules, overrides.rows)
    received_at = utcnow()
    ctx = PlanContext(
        session=session,
        config=rt.config,
        rules=rules,
        source=connection_id,
        now=received_at,
        sides=rt.sides,
    )
    plans: list[list[Planned]] = []
    for event in fresh:
        note_version(session, event)
        planned = routed(rt, event, await plan_event(ctx, event))
        if ctx.findings or any(p.supersedes for p in planned):
            return None
        plans.append(planned)
    country = rules.customers.default_country_code
    parameters = _parameters(connection_id, inbound, fresh, plans, received_at, country)
    # the guess checked: none of these entities recorded, the overrides as they were
    guards = (sorted(keys), overrides.fingerprint) if guess else ([], None)
    connection = await session.connection()
    written_row: Any = (await connection.exec_driver_sql(_WRITE, (*parameters, *guards))).one()
    right, original, inbound_id, event_ids, delivery_ids = written_row
    if not right:
        return Written(None, [], []) if original is not None else _WrongGuess()
    if inbound_id is None:
        return Written(None, [], [])
    written = Written(int(inbound_id), list(event_ids), list(delivery_ids))
    due: list[tuple[int, datetime]] = []
    every_plan = [plan for planned in plans for plan in planned]
    for delivery_id, plan in zip(written.delivery_ids, every_plan, strict=True):
        if plan.status == DeliveryStatus.PENDING:
            due.append((delivery_id, received_at + timedelta(seconds=plan.delay_seconds)))
    for event, planned in zip(fresh, plans, strict=True):
        metrics.EVENTS_RECEIVED.labels(connection_id, event.type).inc()
        if not planned:
            log.info("no delivery for event; stored only", event_type=event.type, flow=event.flow)
    enqueue_after_commit(session, rt, due)
    return written


def _previous_payloads(keys: set[str], newest: list[Newest]) -> dict[str, dict[str, Any] | None]:
    """Each entity's newest recorded payload, whatever its event type (ids only grow)."""
    best: dict[str, tuple[int, dict[str, Any]]] = {}
    for event_id, key, _, payload, _ in newest:
        if key not in best or event_id > best[key][0]:
            best[key] = (event_id, payload)
    return {key: best[key][1] if key in best else None for key in keys}


def _json(value: Any) -> str:
    # a Python None is stored as JSON null, as the ORM's JSON columns store it
    return orjson.dumps(value).decode()


def _parameters(
    connection_id: str,
    inbound: Mapping[str, Any],
    events: list[CanonicalEvent],
    plans: list[list[Planned]],
    received_at: datetime,
    country: str | None,
) -> list[Any]:
    """``_WRITE``'s parameters: the raw event's values, then one array per column."""
    event_rows = [event_values(connection_id, e, None, received_at) for e in events]
    refs = [
        (n, ref)
        for n, event in enumerate(events, 1)
        for ref in sorted(event_refs(event.type, event.entity_type, event.payload, country))
    ]
    deliveries = [
        (n, delivery_values(None, connection_id, plan, received_at))
        for n, planned in enumerate(plans, 1)
        for plan in planned
    ]
    return [
        *(inbound[c] for c in _INBOUND_COLUMNS[:-1]),
        _json(inbound["headers"]),
        *([row[c] for row in event_rows] for c in _EVENT_COLUMNS[:-1]),
        [_json(row["payload"]) for row in event_rows],
        [n for n, _ in refs],
        [connection_id] * len(refs),
        [ref_kind(ref) for _, ref in refs],
        [ref_hash(ref) for _, ref in refs],
        [n for n, _ in deliveries],
        *([row[c] for _, row in deliveries] for c in _DELIVERY_COLUMNS),
        *([_json(row[c]) for _, row in deliveries] for c in _DELIVERY_JSON),
    ]


# The newest recorded event of each (entity, type) with its type's latest occurred_at (as
# ``app.ingest.dedupe`` reads them), then the rule overrides (rows whose first column is NULL)
# The stored rule overrides as Postgres renders them: what a guessed write checks its rules by
_OVERRIDES_FINGERPRINT = """(
    SELECT md5(coalesce(string_agg(flow || '=' || rules::text, ';' ORDER BY flow), ''))
    FROM rule_overrides
)"""

# The newest recorded event of each (entity, type) with its type's latest occurred_at (as
# ``app.ingest.dedupe`` reads them); the rule overrides (the first column NULL); their
# fingerprint (the last column, on a row of its own)
_CONTEXT = f"""
SELECT g.id, e.id, e.entity_key, e.event_type, e.payload, g.newest_at, NULL::text
FROM unnest($1::varchar[]) AS k(key)
CROSS JOIN LATERAL (
    SELECT max(c.id) AS id, max(c.occurred_at) AS newest_at
    FROM canonical_events c
    WHERE c.entity_key = k.key
    GROUP BY c.event_type
) g
CROSS JOIN LATERAL (
    SELECT c.id, c.entity_key, c.event_type, c.payload FROM canonical_events c WHERE c.id = g.id
    LIMIT 1  -- kept a look-up per row: a plain join may become a hash join over the table
) e
UNION ALL
SELECT NULL, NULL, o.flow, NULL, o.rules, NULL, NULL FROM rule_overrides o
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, {_OVERRIDES_FINGERPRINT}
"""

_INBOUND_COLUMNS = (
    "connection_id",
    "topic",
    "dedupe_key",
    "body_hash",
    "received_at",
    "body",
    "status",
    "note",
    "headers",
)
_EVENT_COLUMNS = (
    "source",
    "event_type",
    "entity_type",
    "entity_key",
    "schema_version",
    "occurred_at",
    "created_at",
    "currency",
    "total_amount",
    "payload",
)
_DELIVERY_COLUMNS = (
    "flow",
    "event_type",
    "source",
    "destination",
    "entity_key",
    "ordering_key",
    "status",
    "attempts",
    "next_attempt_at",
    "accepted_at",
    "created_at",
    "updated_at",
    "depends_on",
    "held_reason",
    "priority",
    "last_error",
    "last_error_class",
)
_DELIVERY_JSON = ("payload", "directives", "lookup")

# Every look-up is by one key at a time (a LATERAL per key, not ``= ANY(array)``): a prepared
# statement's generic plan, made while a table is still small, scanned the whole table for
# an array of keys, and kept doing so as it grew.
# Ids come from the tables' sequences in MATERIALIZED CTEs (evaluated once per row), so each
# event's refs and deliveries are joined to it by their position (n), and the answer lists
# the ids in the order the rows were given. No raw event inserted: no rows at all. A guessed
# write ($45: entities of which no event may be recorded; $46: the overrides' fingerprint)
# writes nothing when the guess is wrong, and then names an original the webhook repeats.
_WRITE = f"""
WITH state AS MATERIALIZED (
    SELECT NOT EXISTS (
        SELECT 1 FROM unnest($45::varchar[]) AS k(key)
        CROSS JOIN LATERAL (
            SELECT 1 FROM canonical_events c WHERE c.entity_key = k.key LIMIT 1
        ) recorded
    ) AND ($46::text IS NULL OR $46::text = {_OVERRIDES_FINGERPRINT}) AS planned_right
), inbound AS (
    INSERT INTO inbound_events
        (connection_id, topic, dedupe_key, body_hash, received_at, body, status, note, headers)
    SELECT $1::varchar, $2::varchar, $3::varchar, $4::varchar, $5::timestamptz, $6::bytea,
        $7::varchar, $8::text, $9::jsonb
    FROM state WHERE planned_right
    ON CONFLICT DO NOTHING
    RETURNING id
), event_rows AS MATERIALIZED (
    SELECT nextval('canonical_events_id_seq') AS id, inbound.id AS inbound_id, e.*
    FROM inbound CROSS JOIN unnest(
        $10::varchar[], $11::varchar[], $12::varchar[], $13::varchar[], $14::int[],
        $15::timestamptz[], $16::timestamptz[], $17::varchar[], $18::numeric[], $19::jsonb[]
    ) WITH ORDINALITY AS e(
        source, event_type, entity_type, entity_key, schema_version,
        occurred_at, created_at, currency, total_amount, payload, n
    )
), events AS (
    INSERT INTO canonical_events
        (id, inbound_event_id, source, event_type, entity_type, entity_key, schema_version,
         occurred_at, created_at, currency, total_amount, payload)
    SELECT id, inbound_id, source, event_type, entity_type, entity_key, schema_version,
        occurred_at, created_at, currency, total_amount, payload
    FROM event_rows
), refs AS (
    INSERT INTO person_refs (canonical_event_id, source, kind, ref_hash)
    SELECT r.id, p.source, p.kind, p.ref_hash
    FROM unnest($20::int[], $21::varchar[], $22::varchar[], $23::varchar[])
        AS p(n, source, kind, ref_hash)
    JOIN event_rows r USING (n)
), delivery_rows AS MATERIALIZED (
    SELECT nextval('deliveries_id_seq') AS id, r.id AS event_id, d.*
    FROM unnest(
        $24::int[], $25::varchar[], $26::varchar[], $27::varchar[], $28::varchar[],
        $29::varchar[], $30::varchar[], $31::varchar[], $32::int[], $33::timestamptz[],
        $34::timestamptz[], $35::timestamptz[], $36::timestamptz[], $37::varchar[], $38::text[],
        $39::int[], $40::text[], $41::varchar[], $42::jsonb[], $43::jsonb[], $44::jsonb[]
    ) WITH ORDINALITY AS d(
        n, flow, event_type, source, destination, entity_key, ordering_key, status, attempts,
        next_attempt_at, accepted_at, created_at, updated_at, depends_on, held_reason,
        priority, last_error, last_error_class, payload, directives, lookup, m
    )
    JOIN event_rows r USING (n)
), deliveries AS (
    INSERT INTO deliveries
        (id, canonical_event_id, flow, event_type, source, destination, entity_key,
         ordering_key, status, attempts, next_attempt_at, accepted_at, created_at, updated_at,
         depends_on, held_reason, priority, last_error, last_error_class, payload, directives,
         lookup)
    SELECT id, event_id, flow, event_type, source, destination, entity_key,
        ordering_key, status, attempts, next_attempt_at, accepted_at, created_at, updated_at,
        depends_on, held_reason, priority, last_error, last_error_class, payload, directives,
        lookup
    FROM delivery_rows
)
SELECT
    (SELECT planned_right FROM state) AS planned_right,
    CASE WHEN NOT (SELECT planned_right FROM state) THEN coalesce(
        (
            SELECT i.id FROM inbound_events i
            WHERE i.connection_id = $1::varchar AND i.dedupe_key = $3::varchar
        ),
        (
            SELECT i.id FROM inbound_events i
            WHERE i.connection_id = $1::varchar AND i.topic = $2::varchar
                AND i.body_hash = $4::varchar
        )
    ) END AS original,
    (SELECT id FROM inbound) AS inbound_id,
    ARRAY(SELECT id FROM event_rows ORDER BY n) AS event_ids,
    ARRAY(SELECT id FROM delivery_rows ORDER BY m) AS delivery_ids
"""
