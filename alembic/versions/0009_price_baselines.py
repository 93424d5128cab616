"""price baselines per price: the guard keeps the last accepted value of each price of a SKU
(base, sale, quantity break, group price and its breaks, customer price) instead of one
effective price; rows kept from before are marked kind 'effective' (read as the base, or as
the sale that ran when they were accepted)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sent_prices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="effective")
        )
        batch_op.add_column(
            sa.Column("price_key", sa.String(length=300), nullable=False, server_default="")
        )
        batch_op.alter_column("effective", new_column_name="amount")
        batch_op.drop_constraint("uq_sent_price", type_="unique")
        batch_op.create_unique_constraint(
            "uq_sent_price", ["destination", "sku", "currency", "kind", "price_key"]
        )
    # the defaults only marked the rows kept: the gateway always says which price a row is
    with op.batch_alter_table("sent_prices", schema=None) as batch_op:
        batch_op.alter_column("kind", server_default=None)
        batch_op.alter_column("price_key", server_default=None)


def downgrade() -> None:
    # one price per SKU again: the base (or a kept effective price) stays, the others go
    op.execute(
        "DELETE FROM sent_prices WHERE kind NOT IN ('base', 'effective') "
        "OR (kind = 'effective' AND EXISTS (SELECT 1 FROM sent_prices AS b "
        "WHERE b.kind = 'base' AND b.destination = sent_prices.destination "
        "AND b.sku = sent_prices.sku AND b.currency = sent_prices.currency))"
    )
    with op.batch_alter_table("sent_prices", schema=None) as batch_op:
        batch_op.drop_constraint("uq_sent_price", type_="unique")
        batch_op.alter_column("amount", new_column_name="effective")
        batch_op.drop_column("price_key")
        batch_op.drop_column("kind")
        batch_op.create_unique_constraint("uq_sent_price", ["destination", "sku", "currency"])
