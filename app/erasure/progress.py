"""The erasure job's state: statuses, batch sizes, the lease on a request, its progress.

One run's view of one request is a ``Job``; what a batch changed is ``Counts`` (rows per
table, values replaced), added to the request's stored counts with the cursor after each
batch, so a restart resumes where the last committed batch ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import transaction
from app.dbutil import rowcount
from app.erasure.refs import ERASURES
from app.erasure.scrub import Person
from app.flows.rules import RulesConfig
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

BATCH = 100  # events scrubbed per transaction
MAX_BATCHES_PER_RUN = 50
BACKFILL_BATCH = 500
BACKFILL_BATCHES_PER_RUN = 10
LEASE_SECONDS = 300
BACKFILL_OWNER, BACKFILL_STREAM = "*", "erasure_refs"

PENDING, SCRUBBING, AWAITING, DONE = "pending", "scrubbing", "awaiting_delivery", "done"
OPEN_STATUSES = (PENDING, SCRUBBING, AWAITING)
# the request's own deliveries after which nothing will send it again
SENT_FOR_GOOD = (DeliveryStatus.DELIVERED, DeliveryStatus.SUPERSEDED, DeliveryStatus.REJECTED)
FINAL = (*SENT_FOR_GOOD, DeliveryStatus.DEAD)

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


async def lease(rt: Runtime, erasure_id: int) -> bool:
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


async def set_fields(rt: Runtime, erasure_id: int, **values: Any) -> None:
    async with transaction(rt.sessions) as session:
        await session.execute(
            sa.update(ERASURES).where(ERASURES.c.id == erasure_id).values(**values)
        )


@dataclass
class Job:
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


async def record_progress(
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
