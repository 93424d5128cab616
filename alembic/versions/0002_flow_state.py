"""flow state: findings, stock levels, prices, rule overrides, poll cursors, customer
matches; deliveries carry their own payload, directives, dependency, hold reason, priority

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_matches",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("match_key", sa.String(length=256), nullable=False),
        sa.Column("customer_key", sa.String(length=256), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("match_key", "customer_key", name="uq_customer_match"),
    )
    with op.batch_alter_table("customer_matches", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_matches_customer_key"), ["customer_key"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_customer_matches_match_key"), ["match_key"], unique=False
        )

    op.create_table(
        "findings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("connection_id", sa.String(length=64), nullable=True),
        sa.Column("entity_key", sa.String(length=256), nullable=True),
        sa.Column("delivery_id", sa.BigInteger(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_findings_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_findings_entity_key"), ["entity_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_findings_kind"), ["kind"], unique=False)

    op.create_table(
        "poll_cursors",
        sa.Column("connection_id", sa.String(length=64), nullable=False),
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_count", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("connection_id", "stream"),
    )
    op.create_table(
        "price_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=128), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "price", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("next_change_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "sku", "currency", name="uq_price_record"),
    )
    with op.batch_alter_table("price_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_price_records_next_change_at"), ["next_change_at"], unique=False
        )

    op.create_table(
        "rule_overrides",
        sa.Column("flow", sa.String(length=32), nullable=False),
        sa.Column(
            "rules", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("flow"),
    )
    op.create_table(
        "sent_prices",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("destination", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=128), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("effective", sa.Numeric(precision=18, scale=6), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("destination", "sku", "currency", name="uq_sent_price"),
    )
    op.create_table(
        "stock_levels",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=128), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=False),
        sa.Column(
            "level", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sellable", sa.Numeric(18, 6), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "sku", "location", name="uq_stock_level"),
    )
    with op.batch_alter_table("stock_levels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stock_levels_sku"), ["sku"], unique=False)

    op.create_table(
        "stock_pushes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("destination", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=128), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=False),
        sa.Column("baseline", sa.Numeric(18, 6), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("destination", "sku", "location", name="uq_stock_push"),
    )
    op.create_table(
        "order_allocations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("store", sa.String(length=64), nullable=False),
        sa.Column("erp", sa.String(length=64), nullable=False),
        sa.Column("order_key", sa.String(length=256), nullable=False),
        sa.Column("sku", sa.String(length=128), nullable=False),
        sa.Column("quantity", sa.Numeric(18, 6), nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("store", "erp", "order_key", "sku", name="uq_order_allocation"),
    )
    with op.batch_alter_table("order_allocations", schema=None) as batch_op:
        batch_op.create_index("ix_order_allocations_sku", ["store", "erp", "sku"], unique=False)

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column(
                "directives",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("depends_on", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("held_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_table("order_allocations")
    op.drop_table("stock_pushes")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("priority")
        batch_op.drop_column("held_reason")
        batch_op.drop_column("depends_on")
        batch_op.drop_column("directives")
        batch_op.drop_column("payload")

    with op.batch_alter_table("stock_levels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stock_levels_sku"))

    op.drop_table("stock_levels")
    op.drop_table("sent_prices")
    op.drop_table("rule_overrides")
    with op.batch_alter_table("price_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_price_records_next_change_at"))

    op.drop_table("price_records")
    op.drop_table("poll_cursors")
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_findings_kind"))
        batch_op.drop_index(batch_op.f("ix_findings_entity_key"))
        batch_op.drop_index(batch_op.f("ix_findings_created_at"))

    op.drop_table("findings")
    with op.batch_alter_table("customer_matches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_matches_match_key"))
        batch_op.drop_index(batch_op.f("ix_customer_matches_customer_key"))

    op.drop_table("customer_matches")
