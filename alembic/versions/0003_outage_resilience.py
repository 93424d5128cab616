"""outage resilience: a delivery's failing-since time (retries bounded by time, not count),
the circuit breaker's shared state per connection, and worker heartbeats for /readyz

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("connection_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("breaker_state", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("breaker_changed_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("breaker_reopens_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("worker_id"),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeats")
    with op.batch_alter_table("connection_states", schema=None) as batch_op:
        batch_op.drop_column("breaker_reopens_at")
        batch_op.drop_column("breaker_changed_at")
        batch_op.drop_column("breaker_state")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("failing_since")
