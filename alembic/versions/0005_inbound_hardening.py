"""inbound events: the body's hash, unique per topic (a replayed body with a fresh webhook id
is a duplicate); signature headers taken out of the stored headers (replay material)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE_HEADERS = ("x-shopify-hmac-sha256", "x-gateway-signature", "webhook-signature")


def upgrade() -> None:
    with op.batch_alter_table("inbound_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body_hash", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(
            "uq_inbound_body", ["connection_id", "topic", "body_hash"]
        )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        removed = " - ".join(f"'{name}'" for name in SIGNATURE_HEADERS)
        op.execute(f"UPDATE inbound_events SET headers = headers - {removed}")
    else:
        paths = ", ".join(f"'$.\"{name}\"'" for name in SIGNATURE_HEADERS)
        op.execute(f"UPDATE inbound_events SET headers = json_remove(headers, {paths})")


def downgrade() -> None:
    with op.batch_alter_table("inbound_events", schema=None) as batch_op:
        batch_op.drop_constraint("uq_inbound_body", type_="unique")
        batch_op.drop_column("body_hash")
