"""deliveries.lookup: what the claim reads along with the lease

The mapping kinds and keys and the related entity keys an attempt asks for, written with
the delivery, so the claim's UPDATE also returns the mappings and remote ids it needs (one
round trip per delivery less). NULL for rows written before, or by paths that do not know
them: those are read after the claim, as before.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("lookup", json, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("lookup")
