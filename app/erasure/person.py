"""Finding the person an erase request is about (step 1 of the job).

The request becomes ref hashes; the ``person_refs`` index gives the person's events at
the requesting connection, and the refs of those events expand the set once. With
``rules.customers.erase_linked_erp_records`` the ERP-side customers linked to the person
join. ``read_person`` collects the identifying strings the scrubbing replaces.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.erasure.progress import BACKFILL_BATCH, EVENTS, LINKS, MATCHES, SCRUBBING, Job, set_fields
from app.erasure.refs import PERSON_REFS, key_ref, ref_hash, request_refs
from app.erasure.scrub import Person
from app.flows.customers.rules import erasure_phones, erasure_request_phones
from app.models import utcnow
from app.runtime import Runtime

log = structlog.get_logger("gateway.erasure")


async def resolve(rt: Runtime, job: Job) -> None:
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
            await read_person(session, job)
            linked = await linked_erp_customers(session, job)
            job.hashes = sorted(
                set(job.hashes) | {ref_hash(key_ref("customer", k)) for k in linked}
            )
        found_count = await session.scalar(
            sa.select(sa.func.count(sa.distinct(PERSON_REFS.c.canonical_event_id))).where(
                *where_person(job)
            )
        )
    now = utcnow()
    await set_fields(
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


def where_person(job: Job, after: int | None = None) -> list[Any]:
    where: list[Any] = [PERSON_REFS.c.ref_hash.in_(job.hashes)]
    if not job.linked:
        where.append(PERSON_REFS.c.source == job.source)
    if after is not None:
        where.append(PERSON_REFS.c.canonical_event_id > after)
    return where


async def person_event_ids(session: AsyncSession, job: Job, after: int, limit: int) -> list[int]:
    rows = await session.execute(
        sa.select(PERSON_REFS.c.canonical_event_id)
        .where(*where_person(job, after))
        .group_by(PERSON_REFS.c.canonical_event_id)
        .order_by(PERSON_REFS.c.canonical_event_id)
        .limit(limit)
    )
    return [int(i) for i in rows.scalars()]


async def read_person(session: AsyncSession, job: Job) -> None:
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
        ids = await person_event_ids(session, job, after, BACKFILL_BATCH)
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
    person: Person, job: Job, entity_type: str, payload: Any, default_country: str | None
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


async def linked_erp_customers(session: AsyncSession, job: Job) -> set[str]:
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
