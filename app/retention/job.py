"""The retention job: each kind's batches, their progress, and the pace of the runs.

A run walks every kind from the start of its table (the rows already purged are not read
again, see ``purge``), at most ``max_batches_per_run`` batches per kind. Each batch commits
on its own with the progress (``poll_cursors`` row ``*``/``retention``, shown by
``GET /api/v1/jobs``) and is logged when it purged something. A run that stops at its
budget leaves a backlog: it makes itself due again at the next tick instead of after
``interval_seconds``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.configuration.retention import RetentionConfig
from app.db import transaction
from app.dbutil import insert_ignore
from app.models import PollCursor, utcnow
from app.retention import purge
from app.runtime import Runtime

log = structlog.get_logger("gateway.retention")

# the job's row in poll_cursors: gateway-wide jobs are owned by "*" (app.scheduling.jobs)
OWNER, STREAM = "*", "retention"
CURSORS: sa.Table = PollCursor.__table__  # type: ignore[attr-defined]
# Postgres: a batch never waits long behind a row someone else holds; it fails and the
# next run tries again
LOCK_TIMEOUT = "2s"

KINDS: dict[str, purge.PurgeBatch] = {
    "inbound_bodies": purge.inbound_bodies,
    "payloads": purge.payloads,
    "attempt_logs": purge.attempt_logs,
    "findings": purge.findings,
}


def horizon_days(config: RetentionConfig, kind: str) -> int:
    days: int = getattr(config, f"{kind}_days")
    return days


async def run_retention(rt: Runtime) -> int:
    """Purge what is past its horizon, kind by kind; returns how many rows were purged."""
    config = rt.config.retention
    async with transaction(rt.sessions) as session:  # a run from the API may come first
        await insert_ignore(
            session, PollCursor, {"connection_id": OWNER, "stream": STREAM, "last_count": 0}
        )
    progress: dict[str, dict[str, Any]] = {}
    total = 0
    backlog = False
    errors: list[str] = []
    for kind, batch_of in KINDS.items():
        days = horizon_days(config, kind)
        if days == 0:
            progress[kind] = {"kept": "forever", "done": True}
            continue
        horizon = utcnow() - timedelta(days=days)
        purged, after, done = 0, 0, False
        for _ in range(config.max_batches_per_run):
            try:
                async with transaction(rt.sessions) as session:
                    await _short_lock_waits(session)
                    batch = await batch_of(session, horizon, after, config.batch_size)
                    purged += batch.purged
                    progress[kind] = {"purged": purged, "up_to_id": batch.scanned_to}
                    await _store(session, progress, total + purged)
            except sa.exc.DBAPIError as exc:  # a lock wait that timed out, a lost connection
                error = str(exc.orig) if exc.orig else str(exc)
                log.warning(
                    "retention batch failed; the next run continues",
                    kind=kind,
                    after_id=after,
                    error=error,
                )
                errors.append(f"{kind}: {error}")
                progress[kind] = {"purged": purged, "up_to_id": after}
                break
            if batch.purged:
                log.info(
                    "retention batch purged",
                    kind=kind,
                    rows=batch.purged,
                    up_to_id=batch.scanned_to,
                    purged_this_run=purged,
                )
            after, done = batch.scanned_to, batch.done
            if done:
                break
        else:
            backlog = True
        progress[kind]["done"] = done
        total += purged
    async with transaction(rt.sessions) as session:
        await _store(
            session,
            progress,
            total,
            error="; ".join(errors) or None,
            due_again=config.interval_seconds if backlog else None,
        )
    log.info("retention run finished", purged=total, backlog=backlog, kinds=progress)
    return total


async def _short_lock_waits(session: AsyncSession) -> None:
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))


async def _store(
    session: AsyncSession,
    progress: dict[str, Any],
    total: int,
    *,
    error: str | None = None,
    due_again: float | None = None,
) -> None:
    """The run's progress on the job's row. ``due_again`` (the interval) when the run left
    a backlog: the job is then due at the next tick."""
    values: dict[str, Any] = {
        "cursor": json.dumps(progress),
        "last_count": total,
        "last_error": error,
    }
    if due_again is not None:
        values["polled_at"] = utcnow() - timedelta(seconds=due_again)
    await session.execute(
        sa.update(CURSORS)
        .where(CURSORS.c.connection_id == OWNER, CURSORS.c.stream == STREAM)
        .values(**values)
    )
