"""Who each canonical event is about: the ``person_refs`` index, written at record time.

A ref is a normalized identity value, stored only as its SHA-256:

- ``<source>|email:<trimmed, lower-cased address>`` — the customer's e-mail
- ``<source>|phone:<+E.164 or bare digits>`` — the customer's own phone (not the phones
  of addresses: a gift's recipient is not the buyer)
- ``customer:<customer key>`` (``shop:customer:77``, a guest's ``shop:customer:guest:<e-mail>``)
- ``order:<order key>`` — on orders and on what refers to an order (returns, refunds,
  credit memos, shipments), so a person's orders bring their returns along

E-mail and phone refs carry the source connection: the same address at another connection
is another connection's person. Keys carry their connection already.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.actor import Actor
from app.audit.service import record_action
from app.flows.customers.rules import erasure_email, erasure_phones, erasure_request_phones
from app.models import ErasureRecord, PersonRef, utcnow
from kernel.canonical.customer import ErasureRequest
from kernel.canonical.events import CanonicalEvent

ERASE_REQUESTED = "customer.erase_requested"
PERSON_REFS: sa.Table = PersonRef.__table__  # type: ignore[attr-defined]
ERASURES: sa.Table = ErasureRecord.__table__  # type: ignore[attr-defined]
_INSERT_REFS = sa.insert(PERSON_REFS)
# what refers to an order by its key
_ORDER_LINKED = frozenset({"return", "refund", "credit_memo", "shipment"})


def ref_hash(ref: str) -> str:
    return hashlib.sha256(ref.encode("utf-8")).hexdigest()


def ref_kind(ref: str) -> str:
    """email, phone, customer or order: stored next to the hash (the expansion of a
    request goes through e-mails and keys, not through phones a household shares)."""
    return ref.split("|", 1)[-1].split(":", 1)[0]


def ref_row(source: str, ref: str, event_id: int) -> dict[str, Any]:
    return {
        "source": source,
        "kind": ref_kind(ref),
        "ref_hash": ref_hash(ref),
        "canonical_event_id": event_id,
    }


def identifier_hash(value: str) -> str:
    """How the erase request's own e-mail / phone are kept: a hash, never the value."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def email_ref(source: str, email: Any) -> str | None:
    normalized = erasure_email(email) if isinstance(email, str) else None
    return f"{source}|email:{normalized}" if normalized and "@" in normalized else None


def phone_refs(source: str, forms: Iterable[str]) -> set[str]:
    return {f"{source}|phone:{form}" for form in forms}


def key_ref(kind: str, key: str) -> str:
    return f"{kind}:{key}"


def _get(obj: Any, name: str) -> Any:
    """A field of a canonical model or of its JSON form."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _country(*addresses: Any) -> str | None:
    for address in addresses:
        code = _get(address, "country_code") if address is not None else None
        if isinstance(code, str) and code:
            return code
    return None


def order_customer_key(source: str, customer: Any) -> str | None:
    """``Order.customer_key`` for a model or its JSON form."""
    external = _get(customer, "external_id")
    if external:
        return f"{source}:customer:{external}"
    email = (_get(customer, "email") or "").strip().lower()
    return f"{source}:customer:guest:{email}" if email else None


def event_refs(
    event_type: str, entity_type: str, payload: Any, default_country: str | None
) -> set[str]:
    """The refs (plain, not yet hashed) of one event's payload (a model or its JSON)."""
    if event_type == ERASE_REQUESTED:
        return set()
    source = _get(payload, "source")
    if not isinstance(source, str):
        return set()
    refs: set[str] = set()
    if entity_type == "order":
        customer = _get(payload, "customer")
        country = _country(_get(payload, "billing_address"), _get(payload, "shipping_address"))
        if customer is not None:
            refs.update(r for r in [email_ref(source, _get(customer, "email"))] if r)
            refs |= phone_refs(
                source, erasure_phones(_get(customer, "phone"), country or default_country)
            )
            if key := order_customer_key(source, customer):
                refs.add(key_ref("customer", key))
        if external := _get(payload, "external_id"):
            refs.add(key_ref("order", f"{source}:order:{external}"))
    elif entity_type == "customer":
        addresses = _get(payload, "addresses") or []
        country = _country(*addresses) or default_country
        refs.update(r for r in [email_ref(source, _get(payload, "email"))] if r)
        refs |= phone_refs(source, erasure_phones(_get(payload, "phone"), country))
        if external := _get(payload, "external_id"):
            refs.add(key_ref("customer", f"{source}:customer:{external}"))
    elif entity_type in _ORDER_LINKED and (order_key := _get(payload, "order_key")):
        refs.add(key_ref("order", str(order_key)))
    return refs


def request_refs(request: ErasureRequest, default_country: str | None) -> set[str]:
    """What an erase request names, as refs: its e-mail, every form its phone may have been
    stored in, its customer id (and the guest key of its e-mail)."""
    source = request.source
    refs: set[str] = set()
    if ref := email_ref(source, request.email):
        refs.add(ref)
        refs.add(key_ref("customer", f"{source}:customer:guest:{erasure_email(request.email)}"))
    refs |= phone_refs(source, erasure_request_phones(request.phone, default_country))
    if request.customer_external_id:
        refs.add(key_ref("customer", f"{source}:customer:{request.customer_external_id}"))
    return refs


def request_identifiers(request: ErasureRequest) -> dict[str, Any]:
    """What the erasure record shows of the request: ids as given, e-mail/phone as hashes."""
    shown: dict[str, Any] = {"customer_external_id": request.customer_external_id}
    if request.email:
        shown["email_sha256"] = identifier_hash(erasure_email(request.email) or "")
    if request.phone:
        shown["phone_sha256"] = identifier_hash("".join(c for c in request.phone if c.isdigit()))
    shown["reason"] = request.reason
    return shown


async def note_event(
    session: AsyncSession,
    event_id: int,
    source: str,
    event: CanonicalEvent,
    default_country: str | None,
) -> None:
    """At record time: index whom the event is about; an erase request becomes a pending
    erasure for the background job (``app.erasure.job``)."""
    if event.type == ERASE_REQUESTED:
        await _register_request(session, event_id, source, event)
        return
    refs = event_refs(event.type, event.entity_type, event.payload, default_country)
    if refs:
        await session.execute(_INSERT_REFS, [ref_row(source, r, event_id) for r in sorted(refs)])


async def _register_request(
    session: AsyncSession, event_id: int, source: str, event: CanonicalEvent
) -> None:
    request = event.payload_as(ErasureRequest)
    now = utcnow()
    requested: datetime = request.requested_at
    await session.execute(
        sa.insert(ERASURES).values(
            canonical_event_id=event_id,
            source=request.source,
            entity_key=event.entity_key,
            status="pending",
            identifiers=request_identifiers(request),
            ref_hashes=None,
            cursor=0,
            events_found=0,
            counts={},
            note="waiting for the erasure job",
            requested_at=requested,
            created_at=now,
            updated_at=now,
        )
    )
    # the audit trail keeps who asked (the connection) and for which event, no identifiers
    await record_action(
        session, Actor.connection(source), "erasure.request", f"event:{event_id}", {}
    )
