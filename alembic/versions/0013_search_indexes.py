"""search and replays: what an operator finds an entity by is indexed (an order's number, the
SKUs of its lines, an ERP's document id, a delivery's creation time), and deliveries count
the attempts of their current run apart from all their attempts (a replay keeps numbering)

On Postgres the indexes of the big tables are built CONCURRENTLY (outside the migration's
transaction), so webhooks keep being stored while they build.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The expressions app/ops/search.py queries, written the same way (an expression index
# serves only the expression it was built on).
_POSTGRES = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_deliveries_created_at ON deliveries (created_at)",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_entity_links_remote_id ON entity_links (remote_id)",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_canonical_order_number "
    "ON canonical_events ((payload ->> 'number')) WHERE entity_type = 'order'",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_canonical_order_skus "
    "ON canonical_events USING gin "
    "(jsonb_path_query_array(payload, '$.lines[*].sku') jsonb_path_ops) "
    "WHERE entity_type = 'order'",
)
_SQLITE = (
    "CREATE INDEX IF NOT EXISTS ix_deliveries_created_at ON deliveries (created_at)",
    "CREATE INDEX IF NOT EXISTS ix_entity_links_remote_id ON entity_links (remote_id)",
    "CREATE INDEX IF NOT EXISTS ix_canonical_order_number "
    "ON canonical_events (json_extract(payload, '$.number')) WHERE entity_type = 'order'",
)
_INDEXES = (
    "ix_canonical_order_skus",
    "ix_canonical_order_number",
    "ix_entity_links_remote_id",
    "ix_deliveries_created_at",
)


def upgrade() -> None:
    # a constant default: no table rewrite on Postgres
    op.add_column(
        "deliveries",
        sa.Column("run_attempts", sa.Integer(), nullable=False, server_default="0"),
    )
    # deliveries retrying now keep their backoff where it was
    op.execute(
        "UPDATE deliveries SET run_attempts = attempts "
        "WHERE attempts > 0 AND status IN ('pending', 'in_flight')"
    )
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            for statement in _POSTGRES:
                op.execute(statement)
    else:
        for statement in _SQLITE:
            op.execute(statement)


def downgrade() -> None:
    for name in _INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_column("run_attempts")
