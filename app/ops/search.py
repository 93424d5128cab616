"""Find business entities by what a person knows, not only by their entity key.

``find(session, q, sources)`` takes what someone typed and returns the entity keys it names,
each with what matched and a label a person recognizes; ``/api/v1/trace?q=`` traces the
first, ``/api/v1/search`` lists them, the console's search box shows them. Every lookup is
an index lookup (migration 0013 adds the missing ones):

- an entity key (``shop:order:5001``), as it is;
- a store order number: ``#1019`` or ``1019`` (the order's ``number``, an expression index);
- an id at the source (``shop:<type>:<q>`` for each connection and entity type);
- an id another system gave the entity: an ERP document's internal id, e.g. the NetSuite
  sales order id (``entity_links.remote_id``);
- a customer's e-mail, any case: through the erasure's index of hashed identity references
  (``person_refs``; the address itself is not stored there). Needs a key that sees personal
  data: a viewer cannot probe which addresses are customers;
- a SKU: its product, its prices (``price_records``), its stock per location
  (``stock_levels``), what stores were told of it (``stock_pushes``), and the orders with a
  line of it (Postgres: a GIN index on the lines' SKUs; SQLite, the embedded default, has
  no such index: it looks through the newest ``SQLITE_ORDER_SCAN`` order events only).

Not found: NetSuite ``tranId`` document numbers (SO1234): only the internal ids are kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.erasure.refs import email_ref, ref_hash
from app.errors import Forbidden
from app.models import (
    CanonicalEventRow,
    EntityLink,
    PersonRef,
    PriceRecord,
    StockLevel,
    StockPush,
)
from kernel.canonical.events import EVENT_TYPES

MAX_MATCHES = 50
SQLITE_ORDER_SCAN = 10_000
MAX_QUERY_CHARS = 256
# built by migration 0013 on these exact expressions (see _order_number, _order_skus)
EXPRESSION_INDEXES = frozenset({"ix_canonical_order_number", "ix_canonical_order_skus"})

EVENTS: sa.Table = CanonicalEventRow.__table__  # type: ignore[attr-defined]
ENTITY_TYPES = tuple(sorted({kind.entity for kind in EVENT_TYPES.values()}))
# literals, not bound parameters: a partial or expression index serves only a query that
# names the same constant
_ORDERS = EVENTS.c.entity_type == sa.literal_column("'order'")

MatchKind = Literal["entity_key", "order_number", "external_id", "remote_id", "email", "sku"]


class Match(BaseModel):
    """One entity that ``q`` names."""

    entity_key: str = Field(description="trace it with /api/v1/trace?entity_key=…")
    entity_type: str = Field(description="order, customer, product, price, inventory, …")
    matched: MatchKind = Field(description="what ``q`` was found as")
    detail: str = Field(description="where it matched, e.g. 'id 9876 at erp', 'order line'")
    label: str = Field(description="what a person calls it, e.g. 'order #1019 (shop)'")


def entity_type_of(key: str) -> str:
    parts = key.split(":", 2)
    return parts[1] if len(parts) == 3 else parts[0]


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _order_number(dialect: str) -> Any:
    if dialect == "postgresql":
        return EVENTS.c.payload.op("->>", return_type=sa.Text)(sa.literal_column("'number'"))
    return sa.func.json_extract(EVENTS.c.payload, sa.literal_column("'$.number'"))


class _Found:
    """Matches in the order they were found, one per entity key, at most MAX_MATCHES."""

    def __init__(self) -> None:
        self.by_key: dict[str, tuple[MatchKind, str]] = {}

    @property
    def full(self) -> bool:
        return len(self.by_key) >= MAX_MATCHES

    def add(self, keys: Iterable[str], matched: MatchKind, detail: str) -> None:
        for key in keys:
            if not self.full:
                self.by_key.setdefault(key, (matched, detail))


async def _known(session: AsyncSession, keys: Sequence[str]) -> list[str]:
    """Those of ``keys`` that have an event or a remote id (both lookups indexed)."""
    if not keys:
        return []
    events = await session.execute(
        sa.select(EVENTS.c.entity_key).where(EVENTS.c.entity_key.in_(list(keys))).distinct()
    )
    links = await session.execute(
        sa.select(col(EntityLink.our_key)).where(col(EntityLink.our_key).in_(list(keys)))
    )
    found = {str(k) for (k,) in events} | {str(k) for (k,) in links}
    return [k for k in keys if k in found]


def orders_numbered_query(dialect: str, numbers: Sequence[str]) -> Any:
    """Order keys whose number is one of ``numbers``, newest first (index
    ix_canonical_order_number)."""
    number = _order_number(dialect)
    newest = sa.func.max(EVENTS.c.id)
    return (
        sa.select(EVENTS.c.entity_key, newest)
        .where(_ORDERS, number.in_(list(numbers)))
        .group_by(EVENTS.c.entity_key)
        .order_by(newest.desc())
        .limit(MAX_MATCHES)
    )


async def _orders_numbered(session: AsyncSession, numbers: Sequence[str]) -> list[str]:
    rows = await session.execute(orders_numbered_query(_dialect(session), numbers))
    return [str(key) for key, _ in rows]


async def _by_remote_id(session: AsyncSession, remote_id: str) -> list[tuple[str, str]]:
    rows = await session.execute(
        sa.select(col(EntityLink.our_key), col(EntityLink.connection_id))
        .where(col(EntityLink.remote_id) == remote_id)
        .order_by(col(EntityLink.id).desc())
        .limit(MAX_MATCHES)
    )
    return [(str(key), str(conn)) for key, conn in rows]


async def _by_email(session: AsyncSession, email: str, sources: Sequence[str]) -> list[str]:
    hashes = [ref_hash(r) for r in (email_ref(s, email) for s in sources) if r]
    if not hashes:
        return []
    newest = sa.func.max(EVENTS.c.id)
    rows = await session.execute(
        sa.select(EVENTS.c.entity_key, newest)
        .join(PersonRef, col(PersonRef.canonical_event_id) == EVENTS.c.id)
        .where(col(PersonRef.ref_hash).in_(hashes))
        .group_by(EVENTS.c.entity_key)
        .order_by(newest.desc())
        .limit(MAX_MATCHES)
    )
    return [str(key) for key, _ in rows]


def orders_with_sku_query(dialect: str, sku: str) -> Any:
    """Order keys with a line of ``sku``, newest first. Postgres: index
    ix_canonical_order_skus; SQLite: the newest SQLITE_ORDER_SCAN order events, read."""
    if dialect == "postgresql":
        skus = sa.func.jsonb_path_query_array(
            EVENTS.c.payload, sa.literal_column("'$.lines[*].sku'")
        )
        newest = sa.func.max(EVENTS.c.id)
        return (
            sa.select(EVENTS.c.entity_key, newest)
            .where(_ORDERS, skus.op("@>")(sa.cast(sa.literal(json.dumps([sku]), sa.Text), JSONB)))
            .group_by(EVENTS.c.entity_key)
            .order_by(newest.desc())
            .limit(MAX_MATCHES)
        )
    recent = (
        sa.select(EVENTS.c.id, EVENTS.c.entity_key, EVENTS.c.payload)
        .where(_ORDERS)
        .order_by(EVENTS.c.id.desc())
        .limit(SQLITE_ORDER_SCAN)
        .subquery()
    )
    line = sa.func.json_each(recent.c.payload, "$.lines").table_valued("value").alias("line")
    has_line = sa.exists(
        sa.select(sa.literal(1))
        .select_from(line)
        .where(sa.func.json_extract(line.c.value, "$.sku") == sku)
    )
    newest = sa.func.max(recent.c.id)
    return (
        sa.select(recent.c.entity_key, newest)
        .where(has_line)
        .group_by(recent.c.entity_key)
        .order_by(newest.desc())
        .limit(MAX_MATCHES)
    )


async def _orders_with_sku(session: AsyncSession, sku: str) -> list[str]:
    rows = await session.execute(orders_with_sku_query(_dialect(session), sku))
    return [str(key) for key, _ in rows]


async def _sku_keys(
    session: AsyncSession, sku: str, sources: Sequence[str]
) -> list[tuple[str, str]]:
    """(entity key, what it is) of everything about one SKU, orders last."""
    found = [
        (key, "product") for key in await _known(session, [f"{s}:product:{sku}" for s in sources])
    ]
    prices = await session.execute(
        sa.select(col(PriceRecord.source), col(PriceRecord.currency))
        .where(col(PriceRecord.source).in_(list(sources)), col(PriceRecord.sku) == sku)
        .order_by(col(PriceRecord.source), col(PriceRecord.currency))
    )
    found += [(f"{src}:price:{sku}:{ccy}", f"price in {ccy}") for src, ccy in prices]
    levels = await session.execute(
        sa.select(col(StockLevel.source), col(StockLevel.location))
        .where(col(StockLevel.sku) == sku)
        .order_by(col(StockLevel.source), col(StockLevel.location))
        .limit(MAX_MATCHES)
    )
    found += [(f"{src}:inventory:{sku}@{loc}", f"stock at {loc}") for src, loc in levels]
    pushes = await session.execute(
        sa.select(col(StockPush.location))
        .where(col(StockPush.destination).in_(list(sources)), col(StockPush.sku) == sku)
        .distinct()
    )
    for (location,) in pushes:
        where = location or "default"
        found.append((f"availability:{sku}@{where}", f"availability at {where}"))
    found += [(key, "order line") for key in await _orders_with_sku(session, sku)]
    return found


async def _labels(session: AsyncSession, keys: Sequence[str]) -> dict[str, str]:
    """What a person calls each entity: an order by its number, the rest by their id."""
    labels: dict[str, str] = {}
    for key in keys:
        parts = key.split(":", 2)
        labels[key] = f"{parts[1]} {parts[2]} ({parts[0]})" if len(parts) == 3 else key
    orders = [k for k in keys if entity_type_of(k) == "order"]
    if orders:
        number = _order_number(_dialect(session)).label("number")
        rows = await session.execute(
            sa.select(EVENTS.c.entity_key, number)
            .where(EVENTS.c.entity_key.in_(orders), _ORDERS)
            .order_by(EVENTS.c.id)
        )
        for key, value in rows:  # the newest event's number wins
            if value:
                labels[str(key)] = f"order {value} ({str(key).split(':', 1)[0]})"
    return labels


def looks_like_email(q: str) -> bool:
    return "@" in q and ":" not in q and " " not in q


async def find(
    session: AsyncSession, q: str, sources: Sequence[str], *, may_see_pii: bool = True
) -> list[Match]:
    """The entities ``q`` names, most specific first (an entity key, an order number, an id
    at the source, an id elsewhere, an e-mail, a SKU), at most ``MAX_MATCHES``.

    ``sources`` are the connection ids to look under (the config's connections). An e-mail
    from a caller who may not see personal data is refused (``Forbidden``), not searched.
    """
    q = q.strip()
    if not q or len(q) > MAX_QUERY_CHARS or "\x00" in q:
        return []
    found = _Found()
    if looks_like_email(q):
        if not may_see_pii:
            raise Forbidden(
                "searching by e-mail needs an operator or pii-reader key",
                hint="search by the order number, the SKU or the ERP's document id instead",
            )
        found.add(await _by_email(session, q, sources), "email", "the customer's e-mail")
        return await _matches(session, found)
    if q.count(":") >= 2 or q.startswith("availability:"):
        found.add(await _known(session, [q]), "entity_key", "entity key")
    bare = q.removeprefix("#")
    if bare:
        number = f"#{bare}"
        found.add(await _orders_numbered(session, [number, bare]), "order_number", number)
        for key in await _known(
            session, [f"{s}:{t}:{bare}" for s in sources for t in ENTITY_TYPES]
        ):
            found.add([key], "external_id", f"id {bare} at {key.split(':', 1)[0]}")
    for key, connection in await _by_remote_id(session, q):
        found.add([key], "remote_id", f"id {q} at {connection}")
    if not q.startswith("#"):
        for key, what in await _sku_keys(session, q, sources):
            found.add([key], "sku", what)
    return await _matches(session, found)


async def _matches(session: AsyncSession, found: _Found) -> list[Match]:
    labels = await _labels(session, list(found.by_key))
    return [
        Match(
            entity_key=key,
            entity_type=entity_type_of(key),
            matched=matched,
            detail=detail,
            label=labels[key],
        )
        for key, (matched, detail) in found.by_key.items()
    ]
