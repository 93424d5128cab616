"""Writing audit entries: one helper, called in the transaction of the action."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.actor import Actor
from app.db import after_commit
from app.models import AuditEntry, utcnow

log = structlog.get_logger("gateway.audit")

AUDIT: sa.Table = AuditEntry.__table__  # type: ignore[attr-defined]
TARGET_MAX = 256


async def record_action(
    session: AsyncSession,
    actor: Actor,
    action: str,
    target: str,
    details: dict[str, Any] | None = None,
) -> None:
    """One audit row for ``action`` on ``target``, in the caller's transaction: it commits
    with the action or not at all. ``details`` must be JSON (ids, counts, keys; no secrets)."""
    await session.execute(
        sa.insert(AUDIT).values(
            at=utcnow(),
            actor=actor.name,
            role=actor.role,
            action=action,
            target=target[:TARGET_MAX],
            details=details or {},
        )
    )

    async def logged() -> None:  # only once the action (and this row) committed
        log.info("audited", actor=actor.name, role=actor.role, action=action, target=target)

    after_commit(session, logged)
