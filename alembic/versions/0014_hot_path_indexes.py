"""hot path indexes: what waits for a destination is found without reading the backlog

During an outage the pending deliveries of a destination pile up (status ``pending``,
``last_error_class = 'breaker_open'``). Every sweep picked its trial candidates by sorting
all of them, and every finished delivery looked for what waited on it through all pending
rows (``depends_on`` had no index). Two partial indexes of pending rows, small whatever the
size of the table:

- ``ix_deliveries_breaker_wait``: the waiting deliveries of a destination, least recently
  tried first (the sweeper's trial candidates; the destinations that have any);
- ``ix_deliveries_pending_deps``: the pending deliveries that depend on an entity
  (``app.delivery.outbox.waiting_behind``, next to ``ix_deliveries_order``).

On Postgres they are built CONCURRENTLY (outside the migration's transaction), so
deliveries keep being written while they build.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the same statements on both backends (SQLite has partial indexes too)
_INDEXES = {
    "ix_deliveries_breaker_wait": "deliveries (destination, updated_at, id) "
    "WHERE status = 'pending' AND last_error_class = 'breaker_open'",
    "ix_deliveries_pending_deps": "deliveries (destination, depends_on, id) "
    "WHERE status = 'pending'",
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            for name, spec in _INDEXES.items():
                op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {spec}")
    else:
        for name, spec in _INDEXES.items():
            op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {spec}")


def downgrade() -> None:
    for name in _INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
