"""The price guard's baselines: the prices last accepted (sent, or approved) for a destination.

One row per destination, SKU, currency and price (kind and key, see ``price_checks``). They
are written as a set: accepting a price makes exactly its prices the baselines, so a tier or
a sale the store no longer has is not compared with later. Rows kept from before prices were
guarded one by one hold one effective price (kind ``effective``: the base, or the sale that
ran when it was accepted); they are read as the baseline of what they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.dbutil import insert_for
from app.flows.products.price_checks import BASE, EFFECTIVE, SALE, GuardedPrice, PriceId, sale_key
from app.models import SentPrice, utcnow
from kernel.canonical.product import SalePrice


def readable(value: Decimal) -> Decimal:
    """Stored as NUMERIC(18,6): 19.990000 reads back as 19.99 for people."""
    amount = Decimal(value).normalize()
    exponent = amount.as_tuple().exponent
    return (
        amount.quantize(Decimal("0.01")) if isinstance(exponent, int) and exponent > -2 else amount
    )


@dataclass(frozen=True)
class _Row:
    id: int | None
    kind: str
    price_key: str
    amount: Decimal
    updated_at: datetime


async def _stored(session: AsyncSession, destination: str, sku: str, currency: str) -> list[_Row]:
    # columns, not ORM objects: a row written earlier in this transaction reads back as it is
    stmt = sa.select(
        col(SentPrice.id),
        col(SentPrice.kind),
        col(SentPrice.price_key),
        col(SentPrice.amount),
        col(SentPrice.updated_at),
    ).where(
        col(SentPrice.destination) == destination,
        col(SentPrice.sku) == sku,
        col(SentPrice.currency) == currency,
    )
    return [_Row(*row) for row in (await session.execute(stmt)).all()]


def _ran_then(sale: SalePrice | None, row: _Row) -> bool:
    """Whether ``sale`` was running when ``row`` was accepted (its price was the sale's)."""
    if sale is None:
        return False
    started = sale.starts_at is None or sale.starts_at <= row.updated_at
    return started and (sale.ends_at is None or row.updated_at < sale.ends_at)


async def accepted_prices(
    session: AsyncSession, destination: str, sku: str, currency: str, sale: SalePrice | None
) -> dict[PriceId, Decimal]:
    """The baseline of each price (``sale``: the sale being checked, with its window)."""
    found: dict[PriceId, Decimal] = {}
    legacy: _Row | None = None
    for row in await _stored(session, destination, sku, currency):
        if row.kind == EFFECTIVE:
            legacy = row
        else:
            found[(row.kind, row.price_key)] = readable(row.amount)
    if legacy is not None:
        # an old effective price is the sale's if that sale ran when it was accepted
        was = (SALE, sale_key(sale)) if sale is not None and _ran_then(sale, legacy) else (BASE, "")
        found.setdefault(was, readable(legacy.amount))
    return found


async def accept_prices(
    session: AsyncSession,
    destination: str,
    sku: str,
    currency: str,
    prices: Sequence[GuardedPrice],
) -> None:
    """``prices`` become the baselines of this SKU and currency for ``destination``."""
    stored = await _stored(session, destination, sku, currency)
    carried = {p.id: p.amount for p in prices}
    gone = [r.id for r in stored if (r.kind, r.price_key) not in carried]
    if gone:
        await session.execute(sa.delete(SentPrice).where(col(SentPrice.id).in_(gone)))
    known = {(r.kind, r.price_key): r.amount for r in stored}
    changed = [p for p in prices if known.get(p.id) != p.amount]
    if not changed:
        return
    now = utcnow()
    rows = [
        {
            "destination": destination,
            "sku": sku,
            "currency": currency,
            "kind": p.kind,
            "price_key": p.key,
            "amount": p.amount,
            "updated_at": now,
        }
        for p in changed
    ]
    # one statement run for many rows (compiled once), not one statement with every row in
    # it: a B2B price may carry thousands of customer prices
    await session.execute(_upsert_statement(session), rows)


def _upsert_statement(session: AsyncSession) -> Any:
    stmt = insert_for(session, SentPrice)
    return stmt.on_conflict_do_update(
        index_elements=["destination", "sku", "currency", "kind", "price_key"],
        set_={"amount": stmt.excluded.amount, "updated_at": stmt.excluded.updated_at},
    )
