"""Maintenance windows for operators: list, add and delete the API's windows of a
connection, and the window open now and the next one (the API, the console and the metrics
show these).

A window added here is committed with the request and read by every process at its next
claim or poll; a deleted one releases what waited for it at once.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.configuration.maintenance import MaintenanceWindow
from app.dbutil import rowcount
from app.errors import Conflict, NotFound, Unprocessable
from app.maintenance.schemas import (
    MaintenanceNowOut,
    MaintenanceWindowOut,
    MaintenanceWindowsOut,
    OpeningOut,
)
from app.maintenance.store import (
    StoredWindow,
    config_windows,
    release_ended,
    stored_windows,
    windows_for,
)
from app.maintenance.windows import Window, next_window, window_at
from app.models import MaintenanceWindowRow, utcnow
from app.runtime import Runtime

# windows a connection may have through the API (each claim to it reads them all)
MAX_STORED_WINDOWS = 50


async def current_and_next(
    session: AsyncSession, rt: Runtime, connection_id: str, now: datetime | None = None
) -> tuple[Window | None, Window | None]:
    """The connection's window open now and the next one to open (None: there is none),
    config file's and API's together. For the console and anything that shows one
    connection; ``Window`` has start, end (UTC) and reason."""
    windows = await windows_for(session, rt, connection_id)
    now = now or utcnow()
    return window_at(windows, now), next_window(windows, now)


def maintenance_now(windows: list[MaintenanceWindow], now: datetime) -> MaintenanceNowOut:
    """The window open now and the next one, as the API shows them."""
    current, upcoming = window_at(windows, now), next_window(windows, now)
    return MaintenanceNowOut(
        in_maintenance=current is not None,
        current=OpeningOut.of(current),
        next=OpeningOut.of(upcoming),
    )


def _known(rt: Runtime, connection_id: str) -> None:
    if rt.config.connection(connection_id) is None:
        known = ", ".join(c.id for c in rt.config.connections) or "none configured"
        raise NotFound(f"no connection {connection_id!r}", hint=f"configured: {known}")


def _config_out(window: MaintenanceWindow) -> MaintenanceWindowOut:
    return MaintenanceWindowOut(
        id=None,
        source="config",
        window=window.model_dump(mode="json", by_alias=True, exclude_none=True),
        described=window.described(),
    )


def _stored_out(stored: StoredWindow) -> MaintenanceWindowOut:
    return MaintenanceWindowOut(
        id=stored.id,
        source="api",
        window=stored.window.model_dump(mode="json", by_alias=True, exclude_none=True),
        described=stored.window.described(),
        created_at=stored.created_at,
        created_by=stored.created_by,
    )


async def list_windows(
    session: AsyncSession, rt: Runtime, connection_id: str
) -> MaintenanceWindowsOut:
    _known(rt, connection_id)
    from_config = config_windows(rt, connection_id)
    stored = await stored_windows(session, connection_id)
    now = maintenance_now([*from_config, *(s.window for s in stored)], utcnow())
    return MaintenanceWindowsOut(
        connection_id=connection_id,
        items=[*map(_config_out, from_config), *map(_stored_out, stored)],
        **now.model_dump(),
    )


async def add_window(
    session: AsyncSession, rt: Runtime, connection_id: str, window: MaintenanceWindow, who: str
) -> MaintenanceWindowOut:
    """Store a window; deliveries to the connection wait from its start."""
    _known(rt, connection_id)
    now = utcnow()
    if window.every is None and window.ends_at() <= now:
        raise Unprocessable(
            f"the window already ended ({window.ends_at().isoformat()}); nothing was stored",
            hint="give a window that ends in the future",
        )
    count = await session.scalar(
        sa.select(sa.func.count()).where(col(MaintenanceWindowRow.connection_id) == connection_id)
    )
    if (count or 0) >= MAX_STORED_WINDOWS:
        raise Conflict(
            f"{connection_id} has {MAX_STORED_WINDOWS} maintenance windows added through "
            "the API already; nothing was stored",
            hint="DELETE the ones that ended (GET lists them), then add this one again",
        )
    row = MaintenanceWindowRow(
        connection_id=connection_id,
        window=window.model_dump(mode="json", by_alias=True, exclude_none=True),
        created_at=now,
        created_by=who,
    )
    session.add(row)
    await session.flush()
    assert row.id is not None
    return _stored_out(StoredWindow(row.id, connection_id, window, now, who))


async def delete_window(
    session: AsyncSession, rt: Runtime, connection_id: str, window_id: int
) -> MaintenanceWindowsOut:
    """Drop a window added through the API; what waited for it is released (queued once
    the delete commits) unless another window still holds the connection."""
    _known(rt, connection_id)
    deleted = await session.execute(
        sa.delete(MaintenanceWindowRow).where(
            col(MaintenanceWindowRow.id) == window_id,
            col(MaintenanceWindowRow.connection_id) == connection_id,
        )
    )
    if not rowcount(deleted):
        raise NotFound(
            f"{connection_id} has no maintenance window {window_id} added through the API",
            hint=f"GET /api/v1/connections/{connection_id}/maintenance-windows lists them; "
            "a window of the config file is changed there",
        )
    await release_ended(session, rt, only=connection_id)
    return await list_windows(session, rt, connection_id)
