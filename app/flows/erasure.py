"""GDPR/CCPA erasure of the gateway's own copies of a person's data.

The erase request itself is passed on to the connected systems as a delivery; here the
gateway scrubs what it stored: raw webhook bodies and headers, canonical payloads (and the
rule-made payloads of deliveries) and the request/response logs of delivery attempts. The
request event keeps the identifiers it needs until it is delivered, as the record of it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.canonical.customer import Customer, ErasureRequest
from app.flows.customers import erasure_needles
from app.flows.customers import scrub as scrub_text
from app.flows.customers import scrub_bytes as scrub_text_bytes
from app.models import CanonicalEventRow, Delivery, DeliveryAttempt, InboundEvent

log = structlog.get_logger("gateway.erasure")

# Fields that describe a person: in an object that names the erased person (by e-mail,
# phone or full name), these go too, even when they do not match on their own (a last name).
PERSON_FIELDS = frozenset(
    {
        "first_name",
        "last_name",
        "name",
        "firstname",
        "lastname",
        "firstName",
        "lastName",
        "phone",
        "email",
        "company",
        "companyName",
        "address1",
        "address2",
        "line1",
        "line2",
        "zip",
        "postal_code",
        "addr1",
        "addr2",
        "addressee",
        "attention",
        "note",
    }
)


def scrub(value: Any, needles: set[str]) -> tuple[Any, int]:
    """Replace the person's data: matching strings, and the person fields of their records."""
    if isinstance(value, dict):
        cleaned: dict[str, Any] = {}
        count = 0
        for key, item in value.items():
            new, n = scrub(item, needles)
            cleaned[key] = new
            count += n
        if count:  # this object is (or holds) the person's record
            for key in PERSON_FIELDS & set(cleaned):
                if isinstance(cleaned[key], str) and cleaned[key] not in ("", "[erased]"):
                    cleaned[key] = "[erased]"
                    count += 1
        return cleaned, count
    if isinstance(value, list):
        items = [scrub(item, needles) for item in value]
        return [i for i, _ in items], sum(n for _, n in items)
    return scrub_text(value, needles)


def scrub_bytes(body: bytes, needles: set[str]) -> tuple[bytes, int]:
    try:
        data = json.loads(body)
    except ValueError:
        return scrub_text_bytes(body, needles)
    cleaned, count = scrub(data, needles)
    return (json.dumps(cleaned).encode(), count) if count else (body, 0)


async def erase_local_copies(
    session: AsyncSession, request: ErasureRequest, *, keep_event_key: str
) -> int:
    """Scrub every stored value that identifies the person; returns how many were replaced."""
    known = await _known_records(session, request)
    needles = erasure_needles(request, known)
    for email in {request.email, *(c.email for c in known)} - {None, ""}:
        # ids systems derive from an e-mail (e.g. jane_doe_example_com) identify the person too
        needles.add(re.sub(r"[^a-z0-9]+", "_", str(email).strip().lower()).strip("_"))
    if not needles:
        return 0
    total = 0
    total += await _scrub_canonical(session, needles, keep_event_key)
    total += await _scrub_inbound(session, needles)
    total += await _scrub_attempts(session, needles)
    total += await _scrub_delivery_payloads(session, needles)
    log.info("erase request applied to stored data", scrubbed=total, entity_key=keep_event_key)
    return total


async def _known_records(session: AsyncSession, request: ErasureRequest) -> list[Customer]:
    """Customer records the gateway has seen for this person (for names and addresses)."""
    key = (
        f"{request.source}:customer:{request.customer_external_id}"
        if request.customer_external_id
        else None
    )
    stmt = sa.select(col(CanonicalEventRow.payload)).where(
        col(CanonicalEventRow.entity_type) == "customer",
        col(CanonicalEventRow.event_type) == "customer.upserted",
    )
    records: list[Customer] = []
    email = (request.email or "").strip().lower()
    for (payload,) in await session.execute(stmt.order_by(col(CanonicalEventRow.id))):
        try:
            customer = Customer.model_validate(payload)
        except ValueError:
            continue
        same_key = key is not None and customer.entity_key == key
        same_email = bool(email) and (customer.email or "").strip().lower() == email
        if same_key or same_email:
            records.append(customer)
    return records


async def _scrub_canonical(session: AsyncSession, needles: set[str], keep_key: str) -> int:
    count = 0
    rows = await session.execute(
        sa.select(
            col(CanonicalEventRow.id),
            col(CanonicalEventRow.payload),
            col(CanonicalEventRow.entity_key),
        ).where(col(CanonicalEventRow.event_type) != "customer.erase_requested")
    )
    for event_id, payload, _key in rows:
        cleaned, n = scrub(payload, needles)
        if n:
            count += n
            await session.execute(
                sa.update(CanonicalEventRow)
                .where(col(CanonicalEventRow.id) == event_id)
                .values(payload=cleaned)
            )
    return count


async def _scrub_inbound(session: AsyncSession, needles: set[str]) -> int:
    count = 0
    rows = await session.execute(
        sa.select(col(InboundEvent.id), col(InboundEvent.body), col(InboundEvent.headers)).where(
            col(InboundEvent.topic).not_in(["customers/redact", "customer.erase_requested"])
        )
    )
    for inbound_id, body, headers in rows:
        cleaned_body, n_body = scrub_bytes(bytes(body), needles)
        cleaned_headers, n_headers = scrub(headers, needles)
        if n_body or n_headers:
            count += n_body + n_headers
            await session.execute(
                sa.update(InboundEvent)
                .where(col(InboundEvent.id) == inbound_id)
                .values(body=cleaned_body, headers=cleaned_headers)
            )
    return count


async def _scrub_attempts(session: AsyncSession, needles: set[str]) -> int:
    count = 0
    rows = await session.execute(
        sa.select(
            col(DeliveryAttempt.id),
            col(DeliveryAttempt.exchanges),
            col(DeliveryAttempt.error_message),
        )
    )
    for attempt_id, exchanges, message in rows:
        cleaned, n = scrub(exchanges, needles)
        cleaned_message, m = scrub(message, needles) if message else (message, 0)
        if n or m:
            count += n + m
            await session.execute(
                sa.update(DeliveryAttempt)
                .where(col(DeliveryAttempt.id) == attempt_id)
                .values(exchanges=cleaned, error_message=cleaned_message)
            )
    return count


async def _scrub_delivery_payloads(session: AsyncSession, needles: set[str]) -> int:
    count = 0
    rows = await session.execute(
        sa.select(col(Delivery.id), col(Delivery.payload), col(Delivery.directives)).where(
            sa.or_(col(Delivery.payload).is_not(None), col(Delivery.directives).is_not(None))
        )
    )
    for delivery_id, payload, directives in rows:
        values: dict[str, Any] = {}
        cleaned, n = scrub(payload, needles) if payload else (payload, 0)
        cleaned_d, m = scrub(directives, needles) if directives else (directives, 0)
        if n:
            values["payload"] = cleaned
        if m:
            values["directives"] = cleaned_d
        if values:
            count += n + m
            await session.execute(
                sa.update(Delivery).where(col(Delivery.id) == delivery_id).values(**values)
            )
    return count
