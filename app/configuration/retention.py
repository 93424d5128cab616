"""The config's ``retention:`` section: how long the gateway keeps what it no longer needs.

Per kind of data, a number of days (0: keep forever). What is purged and what is always
kept is decided by the retention job (``app.retention``); these are only the horizons and
the job's pace.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DAYS = "days to keep; 0 keeps them forever"


class RetentionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inbound_bodies_days: int = Field(
        default=30,
        ge=0,
        description="raw webhook and poll bodies and their headers (blanked; the dedupe "
        f"keys and body hash stay, so a re-sent webhook is still a duplicate); {DAYS}",
    )
    payloads_days: int = Field(
        default=30,
        ge=0,
        description="canonical event and delivery payloads once every delivery of the "
        "event is final (the newest version of each entity stays: dedupe compares with "
        f"it); {DAYS}",
    )
    attempt_logs_days: int = Field(
        default=30,
        ge=0,
        description="delivery attempts (their HTTP exchanges) of final deliveries; the "
        f"delivery keeps its attempt count; {DAYS}",
    )
    findings_days: int = Field(default=30, ge=0, description=f"findings; {DAYS}")
    interval_seconds: float = Field(
        default=3600.0, gt=0, description="time between runs once there is no backlog"
    )
    batch_size: int = Field(
        default=1000, ge=1, le=10_000, description="rows per statement (one short transaction)"
    )
    max_batches_per_run: int = Field(
        default=50,
        ge=1,
        description="batches per kind in one run; a backlog continues at the next tick",
    )
