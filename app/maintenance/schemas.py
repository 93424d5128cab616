"""What the API shows of maintenance windows: the windows themselves (config file and API)
and, per connection, the window open now and the next one."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.maintenance.windows import Window


class OpeningOut(BaseModel):
    """One opening of the connection's windows (windows that overlap or touch are one)."""

    starts_at: datetime
    ends_at: datetime = Field(description="what waited for the connection goes out then")
    reason: str | None = None

    @classmethod
    def of(cls, window: Window | None) -> OpeningOut | None:
        if window is None:
            return None
        return cls(starts_at=window.start, ends_at=window.end, reason=window.reason)


class MaintenanceNowOut(BaseModel):
    in_maintenance: bool = Field(
        description="deliveries to it wait (no attempt used) and its polls are skipped"
    )
    current: OpeningOut | None = Field(description="the window open now")
    next: OpeningOut | None = Field(description="the next window to open")


class MaintenanceWindowOut(BaseModel):
    id: int | None = Field(
        description="for DELETE; null for a window of the config file (change it there)"
    )
    source: Literal["config", "api"]
    window: dict[str, Any] = Field(
        description="as written: every, from, to, timezone, reason (see the POST body)"
    )
    described: str = Field(description="e.g. every sunday 02:00-04:00 Europe/Berlin")
    created_at: datetime | None = None
    created_by: str | None = Field(
        default=None, description="the API key that added it (key:<fingerprint>)"
    )


class MaintenanceWindowsOut(MaintenanceNowOut):
    connection_id: str
    items: list[MaintenanceWindowOut]
    next_cursor: str | None = Field(default=None, description="always null: one page holds all")
