"""What the operator lists share: UTC query datetimes and newest-first keyset pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.api.params import utc_in_range
from app.errors import Unprocessable
from app.ops.pagination import decode_cursor


def as_utc(value: datetime | None) -> datetime | None:
    """Query datetimes without an offset are taken as UTC (the storage only speaks UTC).

    422 for a date outside the sane range (``0001-01-01T00:00:00+14:00`` cannot even be
    moved to UTC), for callers that took a plain ``datetime`` query parameter.
    """
    if value is None:
        return None
    try:
        return utc_in_range(value)
    except ValueError as exc:
        raise Unprocessable(f"{value.isoformat()}: {exc}") from None


def check_range(since: datetime | None, until: datetime | None) -> None:
    """422 for a time range that ends before it starts (it would silently list nothing)."""
    if since is not None and until is not None and since > until:
        raise Unprocessable(
            f"since ({since.isoformat()}) is after until ({until.isoformat()})",
            hint="since is inclusive, until exclusive: give since <= until",
        )


def newest_first(stmt: Any, id_column: Any, cursor: str | None, limit: int) -> Any:
    """``stmt`` ordered by ``id_column`` descending, from after the cursor, ``limit + 1``
    rows (``page_of`` trims the extra one into the next cursor)."""
    after = decode_cursor(cursor, int)
    if after is not None:
        stmt = stmt.where(id_column < after)
    return stmt.order_by(id_column.desc()).limit(limit + 1)
