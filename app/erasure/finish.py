"""The request itself (steps 3 and 4 of the job): it keeps its identifiers until every
delivery of it went out, then its own rows are scrubbed and a ``customer_erased`` finding
reports the counts."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import transaction
from app.erasure.progress import (
    DELIVERIES,
    DONE,
    EVENTS,
    FINDINGS,
    INBOUND,
    SENT_FOR_GOOD,
    Counts,
    Job,
)
from app.erasure.refs import ERASURES
from app.erasure.scrub import Person, scrub_doc
from app.erasure.scrubbing import scrub_attempts, scrub_findings, scrub_inbound_row
from app.flows.customers.rules import erasure_request_phones
from app.models import utcnow
from app.runtime import Runtime

log = structlog.get_logger("gateway.erasure")


async def finish(rt: Runtime, job: Job) -> bool:
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
        waiting = [d for d in deliveries if d.status not in SENT_FOR_GOOD]
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


def _summary(job: Job, counts: dict[str, int]) -> str:
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


def _request_person(job: Job) -> Person:
    person = Person()
    request = job.request
    person.add_email(request.email)
    if request.phone:
        default = job.rules.customers.default_country_code
        person.add_phone(request.phone, erasure_request_phones(request.phone, default))
    return person


async def _scrub_request_rows(
    session: AsyncSession, job: Job, person: Person, delivery_ids: list[int], counts: Counts
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
        await scrub_inbound_row(session, person, inbound, whole=True, counts=counts)
    if not person:
        return
    deliveries = (
        await session.execute(
            sa.select(
                DELIVERIES.c.id,
                DELIVERIES.c.payload,
                DELIVERIES.c.directives,
                DELIVERIES.c.lookup,
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
        if d.lookup is not None:  # the keys its claim read by (app/delivery/lookup.py)
            values["lookup"] = sa.null()
        if values:
            await session.execute(
                sa.update(DELIVERIES).where(DELIVERIES.c.id == d.id).values(**values)
            )
    await scrub_attempts(session, person, delivery_ids, counts)
    await scrub_findings(session, person, [job.entity_key], counts)
