"""pending key indexes: a finished delivery finds what waited behind it by index

A finished delivery releases the first pending delivery of its own ordering key and of
each key that depends on it. Both look-ups filter pending rows of one destination; with
partial indexes of pending rows that both began with the destination, the planner could
take either for either look-up (a tie it breaks at random when the table has no statistics
yet, as on a new install under its first burst; and in generic plans, which prepared
statements get after five runs) and then walked every pending delivery of the destination
after this one: 3.4 ms per finish with 7,000 pending, seconds at an outage's size.

Each index now leads with the key it answers for, so it serves only its own look-up:

- ``ix_deliveries_pending_order``: (ordering_key, destination, id), new;
- ``ix_deliveries_pending_dependents``: (depends_on, destination, id), replacing 0014's
  ``ix_deliveries_pending_deps`` (destination, depends_on, id), made before that is dropped.

Built CONCURRENTLY on Postgres, as 0014's.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = "WHERE status = 'pending'"
_NEW = {
    "ix_deliveries_pending_order": f"deliveries (ordering_key, destination, id) {_PENDING}",
    "ix_deliveries_pending_dependents": f"deliveries (depends_on, destination, id) {_PENDING}",
}
_OLD = {"ix_deliveries_pending_deps": f"deliveries (destination, depends_on, id) {_PENDING}"}


def _create(indexes: dict[str, str]) -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    how = "CONCURRENTLY " if postgres else ""
    for name, spec in indexes.items():
        op.execute(f"CREATE INDEX {how}IF NOT EXISTS {name} ON {spec}")


def _drop(indexes: dict[str, str]) -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    how = "CONCURRENTLY " if postgres else ""
    for name in indexes:
        op.execute(f"DROP INDEX {how}IF EXISTS {name}")


def _swap(make: dict[str, str], drop: dict[str, str]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            _create(make)
            _drop(drop)
    else:
        _create(make)
        _drop(drop)


def upgrade() -> None:
    _swap(_NEW, _OLD)


def downgrade() -> None:
    _swap(_OLD, _NEW)
