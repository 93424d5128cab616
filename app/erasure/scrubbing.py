"""Scrubbing the person's rows (step 2 of the job), a batch of events per transaction.

Each canonical payload, its raw webhook (partially if it also carried other people), its
deliveries and their attempt logs, and the findings about it; then the person's duplicate
match keys, guest link keys, connection errors and index entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import transaction
from app.dbutil import rowcount
from app.erasure.person import linked_erp_customers, person_event_ids, read_person, where_person
from app.erasure.progress import (
    ATTEMPTS,
    AWAITING,
    BACKFILL_BATCH,
    BATCH,
    CURSORS,
    DELIVERIES,
    EVENTS,
    FINAL,
    FINDINGS,
    INBOUND,
    LINKS,
    MATCHES,
    STATES,
    Counts,
    Job,
    record_progress,
)
from app.erasure.refs import ERASE_REQUESTED, ERASURES, PERSON_REFS
from app.erasure.scrub import Person, scrub_body, scrub_doc
from app.models import DeliveryStatus, utcnow
from app.runtime import Runtime


async def scrub_all(rt: Runtime, job: Job, cursor: int, budget: int) -> tuple[int, bool]:
    async with rt.sessions() as session:
        await read_person(session, job)
        if job.linked and job.erp_connections:
            await linked_erp_customers(session, job)
    while budget > 0:
        async with transaction(rt.sessions) as session:
            ids = await person_event_ids(session, job, cursor, BATCH)
            if not ids:
                counts = await _scrub_tables(session, job)
                await record_progress(session, job.id, counts, cursor, status=AWAITING)
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
            await record_progress(session, job.id, counts, cursor)
        budget -= 1
    return budget, False


async def _scrub_events(
    session: AsyncSession, job: Job, event_ids: list[int], counts: Counts
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
                DELIVERIES.c.lookup,
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
            d.payload is None and d.status not in FINAL and int(d.canonical_event_id) in scrubbed
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
        if d.lookup is not None:
            # the keys its claim reads by (a customer's may be made of an email): dropped,
            # the claim then asks the connector again, of the scrubbed payload
            values["lookup"] = sa.null()
        if values:
            await session.execute(
                sa.update(DELIVERIES).where(DELIVERIES.c.id == d.id).values(**values)
            )

    delivery_ids = [int(d.id) for d in deliveries]
    await scrub_attempts(session, person, delivery_ids, counts)
    entity_keys |= {d.entity_key for d in deliveries}
    entity_keys |= {f"{job.source}:customer:guest:{email}" for email in person.emails}
    await scrub_findings(session, person, sorted(entity_keys), counts)
    return None


async def _scrub_inbound(
    session: AsyncSession, job: Job, inbound_ids: list[int], counts: Counts
) -> None:
    person = job.person
    # a raw webhook that also carried someone else's events is scrubbed only where it
    # names the person
    others = sa.select(PERSON_REFS.c.canonical_event_id).where(*where_person(job))
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
        await scrub_inbound_row(session, person, row, whole=row.id not in shared, counts=counts)


async def scrub_inbound_row(
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


async def scrub_attempts(
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


async def scrub_findings(
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


async def _scrub_tables(session: AsyncSession, job: Job) -> Counts:
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
        ids = await person_event_ids(session, job, after, BACKFILL_BATCH)
        if not ids:
            break
        result = await session.execute(
            sa.delete(PERSON_REFS).where(PERSON_REFS.c.canonical_event_id.in_(ids))
        )
        counts.deleted("person_refs", rowcount(result))
        after = ids[-1]
    return counts
