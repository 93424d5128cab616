"""Recording an attempt's outcome on Postgres in one statement (one round trip).

The engine's finish writes, atomically: the delivery's new state (only while this worker
still holds the lease), the attempt row, the remote ids the call produced, and, for a
delivered or dead delivery, finds what waited behind it (the first pending delivery of each
ordering key that is its entity or depends on it). Done one statement each, that is four
round trips inside the transaction; here they are one statement of data-modifying CTEs:

    WITH finished AS (UPDATE deliveries SET … WHERE id AND lease_owner AND in_flight
                      RETURNING id),
         attempt  AS (INSERT INTO delivery_attempts … SELECT … FROM finished RETURNING id),
         links    AS (INSERT INTO entity_links … SELECT … FROM finished, unnest(…)
                      ON CONFLICT … DO UPDATE … RETURNING id)
    SELECT (count of finished), (count of attempt), (count of links), (next ids behind it)

A statement is atomic on its own; the attempt and the links are written only if the UPDATE
matched (they select from ``finished``), so a lost lease writes nothing. Postgres runs every
data-modifying CTE to completion whether or not the final SELECT reads it; the SELECT reads
them all anyway. The look-up of what waited sees the snapshot the statement started with,
as the separate SELECT after the UPDATE did (it reads other, pending rows).

SQLite cannot return from a CTE's UPDATE; the engine keeps its statement-per-step path there.
The statements are built once per set of changed columns (a handful: one per kind of outcome).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from app.delivery.outbox import DELIVERIES, behind
from app.models import DeliveryAttempt, DeliveryStatus, EntityLink, UTCDateTime
from kernel.types import RemoteLink

ATTEMPTS: sa.Table = DeliveryAttempt.__table__  # type: ignore[attr-defined]
LINKS: sa.Table = EntityLink.__table__  # type: ignore[attr-defined]

_TEXTS = postgresql.ARRAY(sa.String())


@dataclass(frozen=True)
class Recorded:
    """``owned``: the lease was still ours and everything was written; ``waiting``: the ids
    that waited behind the delivery (only asked for when it is delivered or dead)."""

    owned: bool
    waiting: list[int]


def _statement(columns: tuple[str, ...]) -> Any:
    param = sa.bindparam
    finished = (
        sa.update(DELIVERIES)
        .where(
            DELIVERIES.c.id == param("p_id"),
            DELIVERIES.c.lease_owner == param("p_owner"),
            DELIVERIES.c.status == DeliveryStatus.IN_FLIGHT,
        )
        .values({name: param(f"set_{name}", type_=DELIVERIES.c[name].type) for name in columns})
        .returning(DELIVERIES.c.id)
        .cte("finished")
    )
    attempt = (
        sa.insert(ATTEMPTS)
        .from_select(
            [
                "delivery_id",
                "number",
                "started_at",
                "duration_ms",
                "outcome",
                "error_class",
                "error_message",
                "exchanges",
            ],
            sa.select(
                finished.c.id,
                param("a_number", type_=ATTEMPTS.c.number.type),
                param("a_started_at", type_=UTCDateTime()),
                param("a_duration_ms", type_=ATTEMPTS.c.duration_ms.type),
                param("a_outcome", type_=ATTEMPTS.c.outcome.type),
                param("a_error_class", type_=ATTEMPTS.c.error_class.type),
                param("a_error_message", type_=ATTEMPTS.c.error_message.type),
                param("a_exchanges", type_=ATTEMPTS.c.exchanges.type),
            ),
        )
        .returning(ATTEMPTS.c.id)
        .cte("attempt")
    )
    given = (
        sa.func.unnest(
            param("p_link_types", type_=_TEXTS),
            param("p_link_keys", type_=_TEXTS),
            param("p_link_ids", type_=_TEXTS),
        )
        .table_valued("entity_type", "our_key", "remote_id")
        .render_derived(name="given")
    )
    upsert = postgresql.insert(LINKS).from_select(
        ["connection_id", "entity_type", "our_key", "remote_id", "updated_at"],
        sa.select(
            param("p_destination", type_=sa.String()),
            given.c.entity_type,
            given.c.our_key,
            given.c.remote_id,
            param("p_now", type_=UTCDateTime()),
        ).select_from(finished.join(given, sa.true())),
    )
    links = (
        upsert.on_conflict_do_update(
            index_elements=["connection_id", "entity_type", "our_key"],
            set_={"remote_id": upsert.excluded.remote_id, "updated_at": upsert.excluded.updated_at},
        )
        .returning(LINKS.c.id)
        .cte("links")
    )

    # what waited behind it (asked for only when it is delivered or dead)
    waiting = behind(
        param("p_destination", type_=sa.String()),
        param("p_ordering_key", type_=sa.String()),
        param("p_id"),
    )

    def count(cte: Any) -> Any:
        return sa.select(sa.func.count()).select_from(cte).scalar_subquery()

    return sa.select(
        count(finished).label("finished"),
        count(attempt).label("attempts"),
        count(links).label("links"),
        sa.select(sa.func.array_agg(waiting.c.next_id))
        .where(param("p_release", type_=sa.Boolean()))
        .scalar_subquery()
        .label("waiting"),
    )


_STATEMENTS: dict[tuple[str, ...], Any] = {}


def finish_statement(columns: Sequence[str]) -> Any:
    """The statement that sets ``columns`` of the delivery (built once per set)."""
    key = tuple(sorted(columns))
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        stmt = _STATEMENTS[key] = _statement(key)
    return stmt


async def record_finish(
    session: AsyncSession,
    *,
    delivery_id: int,
    owner: str,
    destination: str,
    ordering_key: str,
    values: dict[str, Any],
    attempt: dict[str, Any],
    links: Sequence[RemoteLink],
    release: bool,
    now: datetime,
) -> Recorded:
    """Write the outcome in one statement (Postgres); see the module docstring."""
    unique = {(link.entity_type, link.our_key): link.remote_id for link in links}  # one each
    # no parameter is named like a column: SQLAlchemy would add those to the UPDATE's SET
    params: dict[str, Any] = {
        "p_id": delivery_id,
        "p_owner": owner,
        "p_destination": destination,
        "p_ordering_key": ordering_key,
        "p_release": release,
        "p_now": now,
        "p_link_types": [t for t, _ in unique],
        "p_link_keys": [k for _, k in unique],
        "p_link_ids": list(unique.values()),
        **{f"set_{name}": value for name, value in values.items()},
        **{f"a_{name}": value for name, value in attempt.items()},
    }
    row = (await session.execute(finish_statement(list(values)), params)).one()
    return Recorded(bool(row.finished), sorted(int(i) for i in row.waiting or () if i is not None))
