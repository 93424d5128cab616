"""erasure: person_refs (who each canonical event is about, as hashes) and
erasure_requests (each erase request and the progress of the job that carries it out)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "person_refs",
        sa.Column("id", _ID, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref_hash", sa.String(length=64), nullable=False),
        sa.Column("canonical_event_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["canonical_event_id"], ["canonical_events.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("person_refs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_person_refs_hash", ["ref_hash", "canonical_event_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_person_refs_canonical_event_id"), ["canonical_event_id"], unique=False
        )

    op.create_table(
        "erasure_requests",
        sa.Column("id", _ID, nullable=False),
        sa.Column("canonical_event_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("entity_key", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("identifiers", _JSON, nullable=False),
        sa.Column("ref_hashes", _JSON, nullable=True),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("events_found", sa.Integer(), nullable=False),
        sa.Column("counts", _JSON, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scrubbed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["canonical_event_id"], ["canonical_events.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("canonical_event_id"),
    )
    with op.batch_alter_table("erasure_requests", schema=None) as batch_op:
        batch_op.create_index("ix_erasure_requests_status", ["status", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("erasure_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_erasure_requests_status")
    op.drop_table("erasure_requests")
    with op.batch_alter_table("person_refs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_person_refs_canonical_event_id"))
        batch_op.drop_index("ix_person_refs_hash")
    op.drop_table("person_refs")
