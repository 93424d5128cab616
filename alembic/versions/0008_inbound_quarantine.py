"""inbound quarantine: signed webhooks whose body could not be parsed are kept with status
'quarantined' (their error in note) to be replayed after a fix; a partial index finds the
few such rows in a large table

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHERE = sa.text("status = 'quarantined'")


def upgrade() -> None:
    op.create_index(
        "ix_inbound_quarantined",
        "inbound_events",
        ["connection_id", "id"],
        postgresql_where=_WHERE,
        sqlite_where=_WHERE,
    )


def downgrade() -> None:
    op.drop_index("ix_inbound_quarantined", table_name="inbound_events")
