"""lz4 compression for the large values every order writes

An order webhook stores its raw body (~8.5 KB for a Shopify order) and its canonical event
(~2.4 KB of JSON); each delivery attempt stores the exchanges it captured (~3.3 KB). Postgres
compresses values over ~2 KB, by default with pglz, which is several times slower than lz4
at a similar ratio here. lz4 (Postgres 14 and later, when built with it, as Debian's and the
official images are) for these columns; values already stored keep their compression, and a
server without lz4 keeps pglz (this migration then changes nothing).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("inbound_events", "body"),
    ("inbound_events", "headers"),
    ("canonical_events", "payload"),
    ("deliveries", "payload"),
    ("delivery_attempts", "exchanges"),
)


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or bind.dialect.server_version_info < (14,):
        return False
    # 'lz4' is a valid value of this setting only on a server built with lz4
    return bool(
        bind.execute(
            sa.text(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings"
                " WHERE name = 'default_toast_compression'"
            )
        ).scalar()
    )


def _set(method: str) -> None:
    if not _lz4_available():
        return
    for table, column in COLUMNS:  # a catalog change: nothing is rewritten
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method}")


def upgrade() -> None:
    _set("lz4")


def downgrade() -> None:
    _set("default")
