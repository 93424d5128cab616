"""incidents: what stopped working by itself (a silent flow, a breaker open too long, a
failing poll, ...) with at most one active row per kind, connection and flow; the messages
about each to each notification sink with their sent state; when a poll stream last read
something new; an index to count a source's events of a flow in time windows

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_ACTIVE = sa.text("status IN ('pending', 'open')")


def upgrade() -> None:
    # nullable, no default: no table rewrite on Postgres
    op.add_column("poll_cursors", sa.Column("last_events_at", sa.DateTime(timezone=True)))
    op.create_index(
        "ix_canonical_volume", "canonical_events", ["source", "event_type", "created_at"]
    )
    op.create_table(
        "incidents",
        sa.Column("id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("connection_id", sa.String(length=64), nullable=False),
        sa.Column("flow", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("details", _JSON, nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True)),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_incidents_active",
        "incidents",
        ["kind", "connection_id", "flow"],
        unique=True,
        postgresql_where=_ACTIVE,
        sqlite_where=_ACTIVE,
    )
    op.create_index("ix_incidents_status", "incidents", ["status", "id"])
    op.create_table(
        "incident_notices",
        sa.Column("id", _ID, nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("sink", sa.String(length=64), nullable=False),
        sa.Column("message", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id", "sink", "message", name="uq_incident_notice"),
    )
    op.create_index("ix_incident_notices_due", "incident_notices", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_incident_notices_due", table_name="incident_notices")
    op.drop_table("incident_notices")
    op.drop_index("ix_incidents_status", table_name="incidents")
    op.drop_index("uq_incidents_active", table_name="incidents")
    op.drop_table("incidents")
    op.drop_index("ix_canonical_volume", table_name="canonical_events")
    with op.batch_alter_table("poll_cursors") as batch_op:
        batch_op.drop_column("last_events_at")
