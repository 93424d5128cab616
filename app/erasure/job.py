"""The erasure job: carries pending erase requests forward, a batch per transaction.

Runs from the scheduled-job tick (``app.scheduling.jobs.run_due_jobs``: the arq worker's
cron and the in-process worker's loop), never in the webhook request. One run:

0. ``backfill_refs``: events recorded before ``person_refs`` existed get their refs (once,
   in bounded batches; erasures wait until it is done so they miss nothing).
1. *pending → scrubbing*: the request becomes ref hashes (``refs.request_refs``); the index
   gives the person's events at the requesting connection, and the refs of those events
   expand the set **once** (the customer id an order names, its e-mail, its order key, so
   returns, refunds and the customer record come along). With
   ``rules.customers.erase_linked_erp_records`` the ERP-side customers linked to the
   person's customer keys (``entity_links``, ``customer_matches``) and the ERP's records
   about their orders join. The hash set is stored on the request; no plain values are.
2. *scrubbing*: the person's identifying strings are read from their records
   (``scrub.Person``), then events are scrubbed in id order, ``BATCH`` per transaction,
   with a cursor so a restart resumes: each canonical payload, its raw webhook (body,
   headers; partially if the webhook also carried other people), its deliveries
   (payload, directives, errors, keys) and their attempt logs, the findings about it.
   A delivery being sent right now (live lease) makes the job wait for the next tick.
   Then the person's ``customer_matches`` rows go, guest keys in ``entity_links`` are
   tokenized, connection errors are cleaned and the person's ``person_refs`` are deleted.
3. *awaiting_delivery*: the request itself keeps its identifiers until every delivery of
   it went out (delivered, superseded or rejected; a dead one may still be replayed).
4. *done*: the request's own rows are scrubbed — its payload keeps the customer id, and
   in place of an e-mail only ``erasure-<hash>@erased.invalid`` — and a ``customer_erased``
   finding reports the counts per kind (rows changed per table, values replaced).

Nothing here is recursive and every query goes through an index (``person_refs`` by hash,
rows by id / foreign key), so the cost follows the person's data, not the database's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import transaction
from app.dbutil import insert_for, rowcount
from app.erasure.refs import (
    ERASE_REQUESTED,
    ERASURES,
    PERSON_REFS,
    event_refs,
    key_ref,
    ref_hash,
    ref_row,
    request_refs,
)
from app.erasure.scrub import Person, scrub_body, scrub_doc
from app.flows.customers.rules import erasure_phones, erasure_request_phones
from app.flows.rules import RulesConfig, effective_rules
from app.models import (
    CanonicalEventRow,
    ConnectionState,
    CustomerMatch,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    EntityLink,
    Finding,
    InboundEvent,
    PollCursor,
    utcnow,
)
from app.runtime import Runtime
from kernel.canonical.customer import ErasureRequest

log = structlog.get_logger("gateway.erasure")

BATCH = 100  # events scrubbed per transaction
MAX_BATCHES_PER_RUN = 50
BACKFILL_BATCH = 500
BACKFILL_BATCHES_PER_RUN = 10
LEASE_SECONDS = 300
BACKFILL_OWNER, BACKFILL_STREAM = "*", "erasure_refs"

PENDING, SCRUBBING, AWAITING, DONE = "pending", "scrubbing", "awaiting_delivery", "done"
OPEN_STATUSES = (PENDING, SCRUBBING, AWAITING)
# the request's own deliveries after which nothing will send it again
_SENT_FOR_GOOD = (DeliveryStatus.DELIVERED, DeliveryStatus.SUPERSEDED, DeliveryStatus.REJECTED)
_FINAL = (*_SENT_FOR_GOOD, DeliveryStatus.DEAD)

EVENTS: sa.Table = CanonicalEventRow.__table__  # type: ignore[attr-defined]
INBOUND: sa.Table = InboundEvent.__table__  # type: ignore[attr-defined]
DELIVERIES: sa.Table = Delivery.__table__  # type: ignore[attr-defined]
ATTEMPTS: sa.Table = DeliveryAttempt.__table__  # type: ignore[attr-defined]
FINDINGS: sa.Table = Finding.__table__  # type: ignore[attr-defined]
MATCHES: sa.Table = CustomerMatch.__table__  # type: ignore[attr-defined]
LINKS: sa.Table = EntityLink.__table__  # type: ignore[attr-defined]
STATES: sa.Table = ConnectionState.__table__  # type: ignore[attr-defined]
CURSORS: sa.Table = PollCursor.__table__  # type: ignore[attr-defined]


@dataclass
class Counts:
    """Rows changed per table, and values replaced in them."""

    rows: dict[str, int] = field(default_factory=dict)
    values: int = 0

    def add(self, kind: str, replaced: int) -> None:
        """One row of ``kind`` in which ``replaced`` values were replaced (0: unchanged)."""
        if replaced:
            self.rows[kind] = self.rows.get(kind, 0) + 1
            self.values += replaced

    def deleted(self, kind: str, rows: int) -> None:
        if rows:
            self.rows[kind] = self.rows.get(kind, 0) + rows

    def merge_into(self, stored: dict[str, int]) -> dict[str, int]:
        out = dict(stored)
        for kind, n in self.rows.items():
            out[kind] = out.get(kind, 0) + n
        out["values"] = out.get("values", 0) + self.values
        return out


# --- entry point --------------------------------------------------------------------------


async def run_erasures(rt: Runtime, *, max_batches: int = MAX_BATCHES_PER_RUN) -> int:
    """Carry every open erase request forward; returns how many finished in this run."""
    if not await backfill_refs(rt):
        return 0
    async with rt.sessions() as session:
        ids = list(
            (
                await session.execute(
                    sa.select(ERASURES.c.id)
                    .where(ERASURES.c.status.in_(OPEN_STATUSES))
                    .order_by(ERASURES.c.id)
                    .limit(100)
                )
            ).scalars()
        )
    finished = 0
    budget = max_batches
    for erasure_id in ids:
        if budget <= 0:
            break
        if not await _lease(rt, erasure_id):
            continue
        try:
            budget, done = await _advance(rt, int(erasure_id), budget)
        except Exception:
            log.exception("erasure run failed; it resumes on the next tick", erasure_id=erasure_id)
            await _set(rt, erasure_id, note="the last run failed; retried on the next tick")
            done = False
        finally:
            await _set(rt, erasure_id, leased_until=None)
        finished += int(done)
    return finished


async def _lease(rt: Runtime, erasure_id: int) -> bool:
    now = utcnow()
    async with transaction(rt.sessions) as session:
        result = await session.execute(
            sa.update(ERASURES)
            .where(
                ERASURES.c.id == erasure_id,
                sa.or_(ERASURES.c.leased_until.is_(None), ERASURES.c.leased_until < now),
            )
            .values(leased_until=now + timedelta(seconds=LEASE_SECONDS))
        )
        return rowcount(result) == 1


async def _set(rt: Runtime, erasure_id: int, **values: Any) -> None:
    async with transaction(rt.sessions) as session:
        await session.execute(
            sa.update(ERASURES).where(ERASURES.c.id == erasure_id).values(**values)
        )


@dataclass
class _Job:
    """One run's view of one erasure."""

    id: int
    event_id: int
    source: str
    entity_key: str
    request: ErasureRequest
    rules: RulesConfig
    erp_connections: list[str]
    hashes: list[str] = field(default_factory=list)
    person: Person = field(default_factory=Person)
    customer_keys: set[str] = field(default_factory=set)

    @property
    def linked(self) -> bool:
        return self.rules.customers.erase_linked_erp_records


async def _advance(rt: Runtime, erasure_id: int, budget: int) -> tuple[int, bool]:
    async with rt.sessions() as session:
        record = (
            await session.execute(sa.select(ERASURES).where(ERASURES.c.id == erasure_id))
        ).one()
        payload = await session.scalar(
            sa.select(EVENTS.c.payload).where(EVENTS.c.id == record.canonical_event_id)
        )
        rules = await effective_rules(session, rt.config.rules)
    job = _Job(
        id=erasure_id,
        event_id=int(record.canonical_event_id),
        source=record.source,
        entity_key=record.entity_key,
        request=ErasureRequest.model_validate(payload),
        rules=rules,
        erp_connections=_erp_side(rt, record.source),
        hashes=list(record.ref_hashes or []),
    )
    status = record.status
    if status == PENDING:
        await _resolve(rt, job)
        status = SCRUBBING
    if status == SCRUBBING:
        budget, finished = await _scrub_all(rt, job, int(record.cursor), budget)
        if not finished:
            return budget, False
        status = AWAITING
    if status == AWAITING:
        return budget, await _finish(rt, job)
    return budget, status == DONE


def _erp_side(rt: Runtime, source: str) -> list[str]:
    """Connections whose records of the person count as ERP-side copies: those declaring
    the ERP side, and those the requesting connection sends its data to (its routes)."""
    erp = {c for c, side in rt.sides.items() if side == "erp"}
    erp |= {r.to for r in rt.config.routes if r.from_ == source and r.to != source}
    return sorted(erp)


# --- 1. whom the request is about ---------------------------------------------------------


async def _resolve(rt: Runtime, job: _Job) -> None:
    default_country = job.rules.customers.default_country_code
    asked = sorted({ref_hash(r) for r in request_refs(job.request, default_country)})
    async with rt.sessions() as session:
        # once through what the person's own records at this connection reveal: their
        # e-mail, customer id and order keys (not phones: a household shares one)
        found = sa.select(PERSON_REFS.c.canonical_event_id).where(
            PERSON_REFS.c.ref_hash.in_(asked), PERSON_REFS.c.source == job.source
        )
        revealed = (
            await session.execute(
                sa.select(PERSON_REFS.c.ref_hash)
                .where(
                    PERSON_REFS.c.canonical_event_id.in_(found),
                    PERSON_REFS.c.source == job.source,
                    PERSON_REFS.c.kind != "phone",
                )
                .distinct()
            )
        ).scalars()
        job.hashes = sorted(set(asked) | set(revealed))
        linked: set[str] = set()
        if job.linked and job.erp_connections:
            await _read_person(session, job)
            linked = await _linked_erp_customers(session, job)
            job.hashes = sorted(
                set(job.hashes) | {ref_hash(key_ref("customer", k)) for k in linked}
            )
        found_count = await session.scalar(
            sa.select(sa.func.count(sa.distinct(PERSON_REFS.c.canonical_event_id))).where(
                *_where_person(job)
            )
        )
    now = utcnow()
    await _set(
        rt,
        job.id,
        status=SCRUBBING,
        ref_hashes=job.hashes,
        events_found=int(found_count or 0),
        started_at=now,
        updated_at=now,
        note=f"{found_count or 0} events found"
        + (f", {len(linked)} linked ERP customer record(s)" if linked else ""),
    )
    log.info("erasure resolved", erasure_id=job.id, events=found_count, linked_erp=len(linked))


def _where_person(job: _Job, after: int | None = None) -> list[Any]:
    where: list[Any] = [PERSON_REFS.c.ref_hash.in_(job.hashes)]
    if not job.linked:
        where.append(PERSON_REFS.c.source == job.source)
    if after is not None:
        where.append(PERSON_REFS.c.canonical_event_id > after)
    return where


async def _person_event_ids(session: AsyncSession, job: _Job, after: int, limit: int) -> list[int]:
    rows = await session.execute(
        sa.select(PERSON_REFS.c.canonical_event_id)
        .where(*_where_person(job, after))
        .group_by(PERSON_REFS.c.canonical_event_id)
        .order_by(PERSON_REFS.c.canonical_event_id)
        .limit(limit)
    )
    return [int(i) for i in rows.scalars()]


async def _read_person(session: AsyncSession, job: _Job) -> None:
    """The person's identifying strings and customer keys, from the request and every
    record of theirs (already scrubbed ones contribute nothing, which is fine)."""
    person = Person()
    request = job.request
    person.add_email(request.email)
    default_country = job.rules.customers.default_country_code
    if request.phone:
        person.add_phone(request.phone, erasure_request_phones(request.phone, default_country))
    if request.customer_external_id:
        job.customer_keys.add(f"{job.source}:customer:{request.customer_external_id}")
    after = 0
    while True:
        ids = await _person_event_ids(session, job, after, BACKFILL_BATCH)
        if not ids:
            break
        rows = await session.execute(
            sa.select(EVENTS.c.source, EVENTS.c.entity_type, EVENTS.c.payload).where(
                EVENTS.c.id.in_(ids)
            )
        )
        for source, entity_type, payload in rows:
            if source == job.source:
                _learn(person, job, entity_type, payload, default_country)
        after = ids[-1]
    job.person = person


def _learn(
    person: Person, job: _Job, entity_type: str, payload: Any, default_country: str | None
) -> None:
    if not isinstance(payload, dict):
        return
    source = payload.get("source")
    if entity_type == "order":
        customer = payload.get("customer") or {}
        addresses: list[dict[str, Any]] = [
            a
            for a in (payload.get("billing_address"), payload.get("shipping_address"))
            if isinstance(a, dict)
        ]
        country = next((a.get("country_code") for a in addresses if a.get("country_code")), None)
        if isinstance(customer, dict):
            person.add_email(customer.get("email"))
            phone = customer.get("phone")
            person.add_phone(phone, erasure_phones(phone, country or default_country))
            person.add_name(customer.get("first_name"), customer.get("last_name"))
            if customer.get("external_id") and source:
                job.customer_keys.add(f"{source}:customer:{customer['external_id']}")
        _learn_addresses(person, addresses, default_country)
    elif entity_type == "customer" and payload.get("external_id") is not None:
        addresses = [a for a in payload.get("addresses") or [] if isinstance(a, dict)]
        country = next((a.get("country_code") for a in addresses if a.get("country_code")), None)
        person.add_email(payload.get("email"))
        phone = payload.get("phone")
        person.add_phone(phone, erasure_phones(phone, country or default_country))
        person.add_name(payload.get("first_name"), payload.get("last_name"))
        _learn_addresses(person, addresses, default_country)
        if source:
            job.customer_keys.add(f"{source}:customer:{payload['external_id']}")


def _learn_addresses(person: Person, addresses: Iterable[Any], default_country: str | None) -> None:
    for address in addresses:
        person.add_name(address.get("first_name"), address.get("last_name"))
        person.add_street(address.get("line1"))
        person.add_street(address.get("line2"))
        phone = address.get("phone")
        person.add_phone(
            phone, erasure_phones(phone, address.get("country_code") or default_country)
        )


async def _linked_erp_customers(session: AsyncSession, job: _Job) -> set[str]:
    """ERP customers the gateway linked to the person's customer keys."""
    keys = sorted(job.customer_keys)
    if not keys:
        return set()
    linked: set[str] = set()
    links = await session.execute(
        sa.select(LINKS.c.connection_id, LINKS.c.remote_id).where(
            LINKS.c.our_key.in_(keys),
            LINKS.c.entity_type == "customer",
            LINKS.c.connection_id.in_(job.erp_connections),
        )
    )
    linked |= {f"{conn}:customer:{remote}" for conn, remote in links}
    match_keys = sa.select(MATCHES.c.match_key).where(MATCHES.c.customer_key.in_(keys))
    matched = await session.execute(
        sa.select(MATCHES.c.customer_key)
        .where(MATCHES.c.match_key.in_(match_keys), MATCHES.c.customer_key.not_in(keys))
        .distinct()
    )
    for (customer_key,) in matched:
        if customer_key.split(":", 1)[0] in job.erp_connections:
            linked.add(customer_key)
    job.customer_keys |= linked
    return linked


# --- 2. scrubbing ---------------------------------------------------------------------------


async def _scrub_all(rt: Runtime, job: _Job, cursor: int, budget: int) -> tuple[int, bool]:
    async with rt.sessions() as session:
        await _read_person(session, job)
        if job.linked and job.erp_connections:
            await _linked_erp_customers(session, job)
    while budget > 0:
        async with transaction(rt.sessions) as session:
            ids = await _person_event_ids(session, job, cursor, BATCH)
            if not ids:
                counts = await _scrub_tables(session, job)
                await _record_progress(session, job.id, counts, cursor, status=AWAITING)
                return budget, True
            counts = Counts()
            busy = await _scrub_events(session, job, ids, counts)
            if busy is not None:
                await session.execute(
                    sa.update(ERASURES)
                    .where(ERASURES.c.id == job.id)
                    .values(note=busy, updated_at=utcnow())
                )
                return 0, False
            cursor = ids[-1]
            counts.rows["events_processed"] = len(ids)
            await _record_progress(session, job.id, counts, cursor)
        budget -= 1
    return budget, False


async def _record_progress(
    session: AsyncSession, erasure_id: int, counts: Counts, cursor: int, status: str | None = None
) -> None:
    stored = await session.scalar(sa.select(ERASURES.c.counts).where(ERASURES.c.id == erasure_id))
    values: dict[str, Any] = {
        "counts": counts.merge_into(stored or {}),
        "cursor": cursor,
        "updated_at": utcnow(),
    }
    if status is not None:
        values |= {
            "status": status,
            "scrubbed_at": utcnow(),
            "note": "the person's records are scrubbed; the request waits until every "
            "connected system has received it",
        }
    else:
        values["note"] = f"scrubbing: events up to id {cursor} done"
    await session.execute(sa.update(ERASURES).where(ERASURES.c.id == erasure_id).values(**values))


async def _scrub_events(
    session: AsyncSession, job: _Job, event_ids: list[int], counts: Counts
) -> str | None:
    """Scrub one batch of the person's events and everything hanging off them; returns why
    it must wait (a delivery of one of them is being sent right now), else None."""
    person = job.person
    now = utcnow()
    # Locked (Postgres) so no worker claims one of them until this batch commits; a claim
    # waiting on the lock then reads the row as this batch left it (see ``pinned`` below).
    deliveries = (
        await session.execute(
            sa.select(
                DELIVERIES.c.id,
                DELIVERIES.c.canonical_event_id,
                DELIVERIES.c.status,
                DELIVERIES.c.lease_expires_at,
                DELIVERIES.c.payload,
                DELIVERIES.c.directives,
                DELIVERIES.c.needs,
                DELIVERIES.c.last_error,
                DELIVERIES.c.held_reason,
                DELIVERIES.c.parked_reason,
                DELIVERIES.c.entity_key,
                DELIVERIES.c.ordering_key,
                DELIVERIES.c.depends_on,
            )
            .where(DELIVERIES.c.canonical_event_id.in_(event_ids))
            .order_by(DELIVERIES.c.id)
            .with_for_update()
        )
    ).all()
    for d in deliveries:
        if d.status == DeliveryStatus.IN_FLIGHT and d.lease_expires_at and d.lease_expires_at > now:
            return f"waiting: delivery {d.id} is being sent; scrubbing resumes on the next tick"

    events = (
        await session.execute(
            sa.select(
                EVENTS.c.id, EVENTS.c.entity_key, EVENTS.c.inbound_event_id, EVENTS.c.payload
            ).where(EVENTS.c.id.in_(event_ids))
        )
    ).all()
    entity_keys: set[str] = set()
    scrubbed: dict[int, Any] = {}
    for event in events:
        entity_keys.add(event.entity_key)
        payload, n = scrub_doc(event.payload, person, whole=True)
        counts.add("canonical_events", n)
        if n:
            scrubbed[int(event.id)] = payload
            await session.execute(
                sa.update(EVENTS).where(EVENTS.c.id == event.id).values(payload=payload)
            )

    inbound_ids = sorted({int(e.inbound_event_id) for e in events if e.inbound_event_id})
    if inbound_ids:
        await _scrub_inbound(session, job, inbound_ids, counts)

    for d in deliveries:
        values: dict[str, Any] = {}
        replaced = 0
        pinned = (
            d.payload is None and d.status not in _FINAL and int(d.canonical_event_id) in scrubbed
        )
        if pinned:
            # A delivery still to be sent carries the scrubbed payload itself: a worker
            # whose claim waited on this batch's lock reads the delivery row as updated
            # here (its join to the event row may still see the old version).
            values["payload"] = scrubbed[int(d.canonical_event_id)]
            replaced += 1
        for name in ("payload", "directives", "needs"):
            value = getattr(d, name)
            if value is not None:
                value, n = scrub_doc(value, person, whole=True)
                if n:
                    values[name] = value
                    replaced += n
        for name in ("last_error", "held_reason", "parked_reason"):
            text = getattr(d, name)
            if text:
                text, n = person.text(text, fields=True)
                if n:
                    values[name] = text
                    replaced += n
        for name in ("entity_key", "ordering_key", "depends_on"):
            key = getattr(d, name)
            if key:
                key, n = person.key(key)
                if n:
                    values[name] = key
                    replaced += n
        counts.add("deliveries", replaced)
        if values:
            await session.execute(
                sa.update(DELIVERIES).where(DELIVERIES.c.id == d.id).values(**values)
            )

    delivery_ids = [int(d.id) for d in deliveries]
    await _scrub_attempts(session, person, delivery_ids, counts)
    entity_keys |= {d.entity_key for d in deliveries}
    entity_keys |= {f"{job.source}:customer:guest:{email}" for email in person.emails}
    await _scrub_findings(session, person, sorted(entity_keys), counts)
    return None


async def _scrub_inbound(
    session: AsyncSession, job: _Job, inbound_ids: list[int], counts: Counts
) -> None:
    person = job.person
    # a raw webhook that also carried someone else's events is scrubbed only where it
    # names the person
    others = sa.select(PERSON_REFS.c.canonical_event_id).where(*_where_person(job))
    shared = set(
        (
            await session.execute(
                sa.select(EVENTS.c.inbound_event_id)
                .where(
                    EVENTS.c.inbound_event_id.in_(inbound_ids),
                    EVENTS.c.id.not_in(others),
                    EVENTS.c.event_type != ERASE_REQUESTED,
                )
                .distinct()
            )
        ).scalars()
    )
    rows = await session.execute(
        sa.select(INBOUND.c.id, INBOUND.c.body, INBOUND.c.headers, INBOUND.c.note).where(
            INBOUND.c.id.in_(inbound_ids)
        )
    )
    for row in rows.all():
        await _scrub_inbound_row(session, person, row, whole=row.id not in shared, counts=counts)


async def _scrub_inbound_row(
    session: AsyncSession, person: Person, row: Any, *, whole: bool, counts: Counts
) -> None:
    values: dict[str, Any] = {}
    body, n_body = scrub_body(bytes(row.body), person, whole=whole)
    if n_body:
        values["body"] = body
    headers, n_headers = scrub_doc(row.headers, person, whole=False)
    if n_headers:
        values["headers"] = headers
    n_note = 0
    if row.note:
        note, n_note = person.text(row.note)
        if n_note:
            values["note"] = note
    counts.add("inbound_events", n_body + n_headers + n_note)
    if values:
        await session.execute(sa.update(INBOUND).where(INBOUND.c.id == row.id).values(**values))


async def _scrub_attempts(
    session: AsyncSession, person: Person, delivery_ids: Sequence[int], counts: Counts
) -> None:
    if not delivery_ids:
        return
    rows = await session.execute(
        sa.select(ATTEMPTS.c.id, ATTEMPTS.c.exchanges, ATTEMPTS.c.error_message).where(
            ATTEMPTS.c.delivery_id.in_(list(delivery_ids))
        )
    )
    for row in rows.all():
        values: dict[str, Any] = {}
        exchanges, n = scrub_doc(row.exchanges, person, whole=True)
        if n:
            values["exchanges"] = exchanges
        m = 0
        if row.error_message:
            message, m = person.text(row.error_message, fields=True)
            if m:
                values["error_message"] = message
        counts.add("delivery_attempts", n + m)
        if values:
            await session.execute(
                sa.update(ATTEMPTS).where(ATTEMPTS.c.id == row.id).values(**values)
            )


async def _scrub_findings(
    session: AsyncSession, person: Person, entity_keys: Sequence[str], counts: Counts
) -> None:
    """Findings about the person's entities (by their indexed entity key; a finding of a
    delivery carries the delivery's entity key)."""
    if not entity_keys:
        return
    rows = await session.execute(
        sa.select(FINDINGS.c.id, FINDINGS.c.entity_key, FINDINGS.c.message, FINDINGS.c.data).where(
            FINDINGS.c.entity_key.in_(sorted(set(entity_keys)))
        )
    )
    for row in rows.all():
        values: dict[str, Any] = {}
        message, n = person.text(row.message, fields=True)
        if n:
            values["message"] = message
        data, m = scrub_doc(row.data, person, whole=True)
        if m:
            values["data"] = data
        k = 0
        if row.entity_key:
            key, k = person.key(row.entity_key)
            if k:
                values["entity_key"] = key
        counts.add("findings", n + m + k)
        if values:
            await session.execute(
                sa.update(FINDINGS).where(FINDINGS.c.id == row.id).values(**values)
            )


async def _scrub_tables(session: AsyncSession, job: _Job) -> Counts:
    """After the events: duplicate-match keys, link keys, connection errors, the index."""
    person = job.person
    counts = Counts()
    if job.customer_keys:
        result = await session.execute(
            sa.delete(MATCHES).where(MATCHES.c.customer_key.in_(sorted(job.customer_keys)))
        )
        counts.deleted("customer_matches", rowcount(result))
    guest_keys = [f"{job.source}:customer:guest:{email}" for email in sorted(person.emails)]
    if guest_keys:
        links = await session.execute(
            sa.select(LINKS.c.id, LINKS.c.our_key).where(LINKS.c.our_key.in_(guest_keys))
        )
        for link_id, our_key in links.all():
            key, n = person.key(our_key)
            counts.add("entity_links", n)
            if n:
                await session.execute(
                    sa.update(LINKS).where(LINKS.c.id == link_id).values(our_key=key)
                )
    # shared rows: only the person's own identifying strings, no names
    for table, key_columns in (
        (STATES, ("connection_id",)),
        (CURSORS, ("connection_id", "stream")),
    ):
        rows = await session.execute(
            sa.select(*(table.c[c] for c in key_columns), table.c.last_error).where(
                table.c.last_error.is_not(None)
            )
        )
        for row in rows.all():
            text, n = person.text(row.last_error, names=False)
            counts.add(table.name, n)
            if n:
                await session.execute(
                    sa.update(table)
                    .where(*(table.c[c] == getattr(row, c) for c in key_columns))
                    .values(last_error=text)
                )
    # the index entries of the person's events: they would say who the events were about
    after = 0
    while True:
        ids = await _person_event_ids(session, job, after, BACKFILL_BATCH)
        if not ids:
            break
        result = await session.execute(
            sa.delete(PERSON_REFS).where(PERSON_REFS.c.canonical_event_id.in_(ids))
        )
        counts.deleted("person_refs", rowcount(result))
        after = ids[-1]
    return counts


# --- 3./4. the request itself -------------------------------------------------------------


async def _finish(rt: Runtime, job: _Job) -> bool:
    """Scrub the request's own rows once nothing will send it again; report. False while
    one of its deliveries may still go out."""
    async with transaction(rt.sessions) as session:
        deliveries = (
            await session.execute(
                sa.select(DELIVERIES.c.id, DELIVERIES.c.destination, DELIVERIES.c.status).where(
                    DELIVERIES.c.canonical_event_id == job.event_id
                )
            )
        ).all()
        waiting = [d for d in deliveries if d.status not in _SENT_FOR_GOOD]
        if waiting:
            note = (
                "the person's records are scrubbed; the request keeps its identifiers until "
                + (", ".join(f"delivery {d.id} to {d.destination} ({d.status})" for d in waiting))
                + " is done"
            )
            await session.execute(
                sa.update(ERASURES).where(ERASURES.c.id == job.id).values(note=note)
            )
            return False
        counts = Counts()
        person = _request_person(job)
        await _scrub_request_rows(session, job, person, [int(d.id) for d in deliveries], counts)
        stored = await session.scalar(sa.select(ERASURES.c.counts).where(ERASURES.c.id == job.id))
        total = counts.merge_into(stored or {})
        now = utcnow()
        await session.execute(
            sa.update(ERASURES)
            .where(ERASURES.c.id == job.id)
            .values(
                status=DONE,
                counts=total,
                ref_hashes=None,
                finished_at=now,
                updated_at=now,
                note=f"done; passed on to {len(deliveries)} connected system(s)",
            )
        )
        await session.execute(
            sa.insert(FINDINGS).values(
                kind="customer_erased",
                connection_id=job.source,
                entity_key=job.entity_key,
                delivery_id=None,
                message=_summary(job, total),
                data={"erasure_id": job.id, "counts": total},
                created_at=now,
            )
        )
    log.info("erasure done", erasure_id=job.id, counts=total)
    return True


def _summary(job: _Job, counts: dict[str, int]) -> str:
    kinds = ", ".join(
        f"{n} {kind.replace('_', ' ')}"
        for kind, n in sorted(counts.items())
        if kind not in ("values", "events_processed") and n
    )
    return (
        f"erase request {job.id} ({job.entity_key}) carried out: "
        f"{counts.get('events_processed', 0)} events of the person; scrubbed {kinds or 'nothing'} "
        f"({counts.get('values', 0)} values); the request was passed on to every route"
    )


def _request_person(job: _Job) -> Person:
    person = Person()
    request = job.request
    person.add_email(request.email)
    if request.phone:
        default = job.rules.customers.default_country_code
        person.add_phone(request.phone, erasure_request_phones(request.phone, default))
    return person


async def _scrub_request_rows(
    session: AsyncSession, job: _Job, person: Person, delivery_ids: list[int], counts: Counts
) -> None:
    row = (
        await session.execute(
            sa.select(EVENTS.c.payload, EVENTS.c.inbound_event_id).where(
                EVENTS.c.id == job.event_id
            )
        )
    ).one()
    payload = dict(row.payload)
    replaced = sum(1 for name in ("email", "phone") if payload.get(name))
    payload["email"] = payload["phone"] = None
    if not payload.get("customer_external_id"):
        # the payload must still name someone to stay a valid request: a hash, not a person
        payload["email"] = job.entity_key.rsplit(":", 1)[-1] + "@erased.invalid"
    counts.add("canonical_events", replaced)
    if replaced:
        await session.execute(
            sa.update(EVENTS).where(EVENTS.c.id == job.event_id).values(payload=payload)
        )
    if row.inbound_event_id is not None:
        inbound = (
            await session.execute(
                sa.select(INBOUND.c.id, INBOUND.c.body, INBOUND.c.headers, INBOUND.c.note).where(
                    INBOUND.c.id == row.inbound_event_id
                )
            )
        ).one()
        await _scrub_inbound_row(session, person, inbound, whole=True, counts=counts)
    if not person:
        return
    deliveries = (
        await session.execute(
            sa.select(
                DELIVERIES.c.id,
                DELIVERIES.c.payload,
                DELIVERIES.c.directives,
                DELIVERIES.c.last_error,
            ).where(DELIVERIES.c.id.in_(delivery_ids))
        )
    ).all()
    for d in deliveries:
        values: dict[str, Any] = {}
        n_all = 0
        for name in ("payload", "directives"):
            value = getattr(d, name)
            if value is not None:
                value, n = scrub_doc(value, person, whole=True)
                if n:
                    values[name] = value
                    n_all += n
        if d.last_error:
            text, n = person.text(d.last_error, fields=True)
            if n:
                values["last_error"] = text
                n_all += n
        counts.add("deliveries", n_all)
        if values:
            await session.execute(
                sa.update(DELIVERIES).where(DELIVERIES.c.id == d.id).values(**values)
            )
    await _scrub_attempts(session, person, delivery_ids, counts)
    await _scrub_findings(session, person, [job.entity_key], counts)


# --- 0. the index for events recorded before it existed -------------------------------------


async def backfill_refs(rt: Runtime) -> bool:
    """Index events recorded before ``person_refs`` existed; True once nothing is left.

    The state is one ``poll_cursors`` row: ``<last id>/<highest id to index>``, then "done".
    Events that already have refs (recorded since) are skipped.
    """
    async with transaction(rt.sessions) as session:
        state = await session.scalar(
            sa.select(CURSORS.c.cursor).where(
                CURSORS.c.connection_id == BACKFILL_OWNER, CURSORS.c.stream == BACKFILL_STREAM
            )
        )
        if state == "done":
            return True
        if state is None:
            target = int(await session.scalar(sa.select(sa.func.max(EVENTS.c.id))) or 0)
            state = f"0/{target}"
        done_through, target = (int(part) for part in state.split("/", 1))
        rules = await effective_rules(session, rt.config.rules)
        default_country = rules.customers.default_country_code
        for _ in range(BACKFILL_BATCHES_PER_RUN):
            if done_through >= target:
                break
            rows = (
                await session.execute(
                    sa.select(
                        EVENTS.c.id,
                        EVENTS.c.source,
                        EVENTS.c.event_type,
                        EVENTS.c.entity_type,
                        EVENTS.c.payload,
                    )
                    .where(EVENTS.c.id > done_through, EVENTS.c.id <= target)
                    .order_by(EVENTS.c.id)
                    .limit(BACKFILL_BATCH)
                )
            ).all()
            if not rows:
                done_through = target
                break
            ids = [int(r.id) for r in rows]
            indexed = set(
                (
                    await session.execute(
                        sa.select(PERSON_REFS.c.canonical_event_id)
                        .where(PERSON_REFS.c.canonical_event_id.in_(ids))
                        .distinct()
                    )
                ).scalars()
            )
            values = [
                ref_row(r.source, ref, int(r.id))
                for r in rows
                if r.id not in indexed
                for ref in sorted(
                    event_refs(r.event_type, r.entity_type, r.payload, default_country)
                )
            ]
            if values:
                await session.execute(sa.insert(PERSON_REFS), values)
            done_through = ids[-1]
        finished = done_through >= target
        new_state = "done" if finished else f"{done_through}/{target}"
        stmt = insert_for(session, PollCursor).values(
            connection_id=BACKFILL_OWNER, stream=BACKFILL_STREAM, cursor=new_state, last_count=0
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["connection_id", "stream"], set_={"cursor": new_state}
            )
        )
    if not finished:
        log.info("indexing earlier events for erasure", done_through=done_through, target=target)
    return finished
