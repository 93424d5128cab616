"""retention and audit: purged_at on inbound and canonical events (with partial indexes the
retention job walks by id), and audit_log, the operator actions (who, what, on what, when)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNPURGED = sa.text("purged_at IS NULL")


def upgrade() -> None:
    # nullable, no default: no table rewrite on Postgres
    op.add_column("inbound_events", sa.Column("purged_at", sa.DateTime(timezone=True)))
    op.add_column("canonical_events", sa.Column("purged_at", sa.DateTime(timezone=True)))
    op.create_index(
        "ix_inbound_unpurged",
        "inbound_events",
        ["id"],
        postgresql_where=_UNPURGED,
        sqlite_where=_UNPURGED,
    )
    op.create_index(
        "ix_canonical_unpurged",
        "canonical_events",
        ["id"],
        postgresql_where=_UNPURGED,
        sqlite_where=_UNPURGED,
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=256), nullable=False),
        sa.Column(
            "details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_action", "audit_log", ["action", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_action", table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_canonical_unpurged", table_name="canonical_events")
    op.drop_index("ix_inbound_unpurged", table_name="inbound_events")
    with op.batch_alter_table("canonical_events") as batch_op:
        batch_op.drop_column("purged_at")
    with op.batch_alter_table("inbound_events") as batch_op:
        batch_op.drop_column("purged_at")
