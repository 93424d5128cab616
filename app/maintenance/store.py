"""Every maintenance window of a connection: the config file's and the ones operators added
through the API (``maintenance_windows``, read from the database each time, so every process
honours a window from the moment it is committed); and the release of deliveries that waited
for a window that no longer holds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.configuration.maintenance import MaintenanceWindow
from app.dbutil import id_list
from app.delivery.outbox import DELIVERIES, enqueue_after_commit
from app.maintenance.windows import window_at
from app.models import DeliveryStatus, MaintenanceWindowRow, utcnow
from app.runtime import Runtime

log = structlog.get_logger("gateway.maintenance")

# last_error_class of a pending delivery that waits for its destination's maintenance window
IN_MAINTENANCE = "maintenance"
# how many released deliveries are queued at once; the sweeper queues the rest as due work
RELEASE_BATCH = 200

WINDOWS: sa.Table = MaintenanceWindowRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class StoredWindow:
    """A window added through the API, with its row's id (to delete it by)."""

    id: int
    connection_id: str
    window: MaintenanceWindow
    created_at: datetime
    created_by: str | None


def config_windows(rt: Runtime, connection_id: str) -> list[MaintenanceWindow]:
    conn = rt.config.connection(connection_id)
    return list(conn.maintenance) if conn is not None else []


async def stored_windows(
    session: AsyncSession, connection_id: str | None = None
) -> list[StoredWindow]:
    """The windows added through the API (of one connection, or all), oldest first."""
    stmt = sa.select(MaintenanceWindowRow).order_by(col(MaintenanceWindowRow.id))
    if connection_id is not None:
        stmt = stmt.where(col(MaintenanceWindowRow.connection_id) == connection_id)
    found = []
    for row in (await session.execute(stmt)).scalars():
        try:
            window = MaintenanceWindow.model_validate(row.window)
        except ValidationError as exc:  # written by another version: shown, never fatal
            log.warning("stored maintenance window unreadable; ignored", id=row.id, error=str(exc))
            continue
        assert row.id is not None
        found.append(
            StoredWindow(row.id, row.connection_id, window, row.created_at, row.created_by)
        )
    return found


async def windows_for(
    session: AsyncSession, rt: Runtime, connection_id: str, *, stored: bool = True
) -> list[MaintenanceWindow]:
    """The config file's windows of the connection and, unless the caller knows there are
    none (``stored=False``), the API's."""
    found = config_windows(rt, connection_id)
    if stored:
        found += [s.window for s in await stored_windows(session, connection_id)]
    return found


async def windows_by_connection(
    session: AsyncSession, rt: Runtime
) -> dict[str, list[MaintenanceWindow]]:
    """Every configured connection's windows, in one query."""
    found = {conn.id: list(conn.maintenance) for conn in rt.config.connections}
    for s in await stored_windows(session):
        if s.connection_id in found:
            found[s.connection_id].append(s.window)
    return found


async def in_maintenance(session: AsyncSession, rt: Runtime, now: datetime) -> dict[str, datetime]:
    """The connections in a maintenance window at ``now``, each with when its window ends."""
    return {
        connection_id: current.end
        for connection_id, windows in (await windows_by_connection(session, rt)).items()
        if windows and (current := window_at(windows, now)) is not None
    }


def has_stored_windows() -> sa.Exists:
    """SQL for the claim: has the delivery's destination windows added through the API?
    (one subquery in the claim's RETURNING instead of a round trip per delivery)"""
    return sa.exists().where(WINDOWS.c.connection_id == DELIVERIES.c.destination)


async def release_ended(
    session: AsyncSession, rt: Runtime, now: datetime | None = None, *, only: str | None = None
) -> list[int]:
    """Deliveries that wait for a window which no longer holds them that long (it was
    deleted or shortened, through the API or in the config file) are due when it now ends:
    at once if the destination is out of maintenance (the first ``RELEASE_BATCH`` are queued
    after the commit, the sweeper takes the rest). Returns the ids due now."""
    now = now or utcnow()
    waiting = sa.and_(
        DELIVERIES.c.status == DeliveryStatus.PENDING,
        DELIVERIES.c.last_error_class == IN_MAINTENANCE,
        DELIVERIES.c.next_attempt_at > now,
    )
    if only is not None:
        waiting = sa.and_(waiting, DELIVERIES.c.destination == only)
    closed = await in_maintenance(session, rt, now)
    for destination, end in closed.items():
        if only in (None, destination):
            await session.execute(
                sa.update(DELIVERIES)
                .where(
                    waiting,
                    DELIVERIES.c.destination == destination,
                    DELIVERIES.c.next_attempt_at > end,
                )
                .values(next_attempt_at=end)
            )
    released = id_list(
        (
            await session.execute(
                sa.update(DELIVERIES)
                .where(waiting, DELIVERIES.c.destination.not_in(list(closed)))
                .values(next_attempt_at=now, updated_at=now)
                .returning(DELIVERIES.c.id)
            )
        ).scalars()
    )
    if released:
        released.sort()
        enqueue_after_commit(session, rt, released[:RELEASE_BATCH])
        log.info("maintenance window gone: waiting deliveries released", count=len(released))
    return released
