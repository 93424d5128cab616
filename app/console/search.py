"""The console's search box: an order number, a customer's e-mail, a SKU or an entity key,
turned into the entities it names (each opens its trace).

- ``shop:order:5001`` (two colons or more): that entity key as it is;
- ``#1001`` or ``1001``: orders whose number is that (newest first), and orders whose
  external id is those digits;
- an e-mail: every entity whose events name that address at some connection, through the
  erasure's index of hashed person references (the address itself is not stored there);
- anything else: a SKU, as each connection's product key, and its mapping entries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.erasure.refs import email_ref, ref_hash
from app.models import CanonicalEventRow, EntityLink, Mapping, PersonRef
from app.runtime import Runtime

MAX_HITS = 50
_DIGITS = re.compile(r"#?(\d{1,20})")
EVENTS: sa.Table = CanonicalEventRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Hit:
    entity_key: str
    why: str


@dataclass
class SearchResult:
    query: str
    looked_for: str
    hits: list[Hit] = field(default_factory=list)
    mappings: list[Mapping] = field(default_factory=list)
    refused: str | None = None  # why the search was not run (an e-mail for a viewer)


def _add(hits: list[Hit], key: str, why: str) -> None:
    if all(h.entity_key != key for h in hits) and len(hits) < MAX_HITS:
        hits.append(Hit(key, why))


async def _known_keys(session: AsyncSession, keys: list[str]) -> list[str]:
    """Those of ``keys`` with an event or a remote id (exact lookups, both indexed)."""
    if not keys:
        return []
    events = await session.execute(
        sa.select(col(CanonicalEventRow.entity_key))
        .where(col(CanonicalEventRow.entity_key).in_(keys))
        .distinct()
    )
    links = await session.execute(
        sa.select(col(EntityLink.our_key)).where(col(EntityLink.our_key).in_(keys)).distinct()
    )
    found = {str(k) for (k,) in events} | {str(k) for (k,) in links}
    return [k for k in keys if k in found]


async def _orders_numbered(session: AsyncSession, numbers: list[str]) -> list[str]:
    """Order keys whose payload number is one of ``numbers``, newest first.

    No index serves this (the number is inside the payload): walking the events newest
    first stops at the first matches, so a recent order is found at once."""
    number = EVENTS.c.payload["number"].as_string()
    rows = await session.execute(
        sa.select(EVENTS.c.entity_key, EVENTS.c.id)
        .where(EVENTS.c.entity_type == "order", number.in_(numbers))
        .order_by(EVENTS.c.id.desc())
        .limit(MAX_HITS)
    )
    return list(dict.fromkeys(str(key) for key, _ in rows))


async def _by_email(session: AsyncSession, rt: Runtime, email: str) -> list[str]:
    refs = [email_ref(conn.id, email) for conn in rt.config.connections]
    hashes = [ref_hash(r) for r in refs if r]
    if not hashes:
        return []
    rows = await session.execute(
        sa.select(col(CanonicalEventRow.entity_key), sa.func.max(col(CanonicalEventRow.id)))
        .join(PersonRef, col(PersonRef.canonical_event_id) == col(CanonicalEventRow.id))
        .where(col(PersonRef.ref_hash).in_(hashes))
        .group_by(col(CanonicalEventRow.entity_key))
        .order_by(sa.func.max(col(CanonicalEventRow.id)).desc())
        .limit(MAX_HITS)
    )
    return [str(key) for key, _ in rows]


async def _sku_mappings(session: AsyncSession, sku: str) -> list[Mapping]:
    rows = await session.execute(
        sa.select(Mapping)
        .where(col(Mapping.kind) == "sku", col(Mapping.our_key) == sku)
        .order_by(col(Mapping.connection_id))
    )
    return list(rows.scalars())


async def search(session: AsyncSession, rt: Runtime, query: str, sees_pii: bool) -> SearchResult:
    q = query.strip()
    connections = [c.id for c in rt.config.connections]
    if q.count(":") >= 2:
        result = SearchResult(q, "an entity key")
        for key in await _known_keys(session, [q]):
            _add(result.hits, key, "entity key")
        return result
    if "@" in q:
        result = SearchResult(q, "a customer's e-mail")
        if not sees_pii:
            result.refused = "searching by e-mail needs an operator or pii-reader key"
            return result
        for key in await _by_email(session, rt, q):
            _add(result.hits, key, "names this e-mail")
        return result
    digits = _DIGITS.fullmatch(q)
    if digits:
        result = SearchResult(q, "an order number")
        number = digits.group(1)
        for key in await _orders_numbered(session, [f"#{number}", number]):
            _add(result.hits, key, f"order #{number}")
        for key in await _known_keys(session, [f"{c}:order:{number}" for c in connections]):
            _add(result.hits, key, "order id")
        if q.startswith("#"):
            return result
    else:
        result = SearchResult(q, "a SKU")
    for key in await _known_keys(session, [f"{c}:product:{q}" for c in connections]):
        _add(result.hits, key, "product (SKU)")
    result.mappings = await _sku_mappings(session, q)
    return result
