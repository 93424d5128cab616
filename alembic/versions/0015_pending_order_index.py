"""pending order index: a finished delivery finds the next one of its entity by index

A finished delivery releases the first pending delivery of its own ordering key. Prepared
statements get a generic plan after five runs, and for that look-up it was the pending
rows of the destination after this delivery's id, filtered by ordering key: every finish
read the whole backlog behind it (2.9 ms per finish with 4,000 pending; seconds at an
outage's size). A partial index of pending rows by (destination, ordering_key, id) answers
it exactly, whatever the plan, and stays as small as the backlog.

Built CONCURRENTLY on Postgres, as 0014's.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ix_deliveries_pending_order"
_SPEC = "deliveries (destination, ordering_key, id) WHERE status = 'pending'"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {_NAME} ON {_SPEC}")
    else:
        op.execute(f"CREATE INDEX IF NOT EXISTS {_NAME} ON {_SPEC}")


def downgrade() -> None:
    op.execute(f"DROP INDEX IF EXISTS {_NAME}")
