"""The hot queries stay index lookups when the tables are large (issue 12, item 5).

The real code paths run against a Postgres database while an engine hook records the SQL
they send (with its bound values); then the big tables get 100,000 rows each, ANALYZE
refreshes the statistics, and ``EXPLAIN`` of every recorded statement must not read a
big table whole: a sequential scan there costs a hundred times more at 10M rows. The
queries over an outage's backlog must use the partial indexes made for them (0014).
Postgres only (SQLite plans nothing like it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from app.cli import migrate
from app.runtime import Runtime, build_runtime
from bench.hot_queries import (
    BIG_TABLES,
    SEED,
    Recorded,
    explain,
    fill_statements,
    record,
    run_hot_paths,
)
from tests.conftest import (
    _create_pg_database,
    _drop_pg_database,
    make_config,
    make_settings,
    require_postgres,
)

pytestmark = pytest.mark.integration

ROWS = 100_000
# an outage's backlog waiting for the ERP: 10,000 deliveries (a tenth of the table). With
# one in a thousand the planner looked up each of them; with this many it hashed the whole
# event table to join the orders in transit, a read that grows with the history
BACKLOG_EVERY = 10

# Queries over what waits for a destination: without their partial index (0014) they read
# every pending delivery, the whole backlog of an outage, at every sweep or finish.
EXPECTED_INDEX = {
    "outbox: waiting behind": {"ix_deliveries_pending_order", "ix_deliveries_pending_dependents"},
    # the next of its own entity, and the first of each entity that depends on it (0015)
    "finish": {"ix_deliveries_pending_order", "ix_deliveries_pending_dependents"},
    "sweeper: trial candidates": {"ix_deliveries_breaker_wait"},
    "sweeper: destinations waiting": {"ix_deliveries_breaker_wait"},
}


@pytest.fixture
def plans_db() -> Iterator[str]:
    """A database of its own: the bulk rows must not slow the other tests' clean-ups."""
    url = asyncio.run(_create_pg_database(require_postgres()))
    migrate(url)
    yield url
    asyncio.run(_drop_pg_database(url))


@pytest.fixture
async def rt(plans_db: str) -> AsyncIterator[Runtime]:
    runtime = build_runtime(make_settings(plans_db), make_config())
    async with runtime.engine.begin() as conn:
        for statement in SEED:
            await conn.execute(sa.text(statement))
    yield runtime
    await runtime.close()


def _nodes(plan: dict[str, Any]) -> list[str]:
    """Each node of a plan as 'type:table:index:rows', for the failure message."""
    node = [plan["Node Type"], plan.get("Relation Name"), plan.get("Index Name"), plan["Plan Rows"]]
    out = [":".join(str(part or "") for part in node)]
    for child in plan.get("Plans", []):
        out += _nodes(child)
    return out


def _seq_scans(plan: dict[str, Any]) -> list[str]:
    found = []
    if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") in BIG_TABLES:
        found.append(str(plan["Relation Name"]))
    for child in plan.get("Plans", []):
        found += _seq_scans(child)
    return found


async def test_hot_queries_use_indexes_on_large_tables(rt: Runtime) -> None:
    recorded: Recorded = []
    label = [""]
    record(rt, recorded, label)
    await run_hot_paths(rt, label)
    touching = [r for r in recorded if any(t in r[1] for t in BIG_TABLES)]
    assert {what for what, _, _ in touching} >= {
        "claim",
        "outbox: waiting behind",
        "finish",
        "sweeper: trial candidates",
        "sweeper: destinations waiting",
        "sweeper",
        "orders in transit",
        "webhook dedupe",
        "delivery lookups",
        "erasure",
    }
    async with rt.engine.begin() as conn:
        for statement in fill_statements(1, ROWS, waiting_every=BACKLOG_EVERY):
            await conn.execute(sa.text(statement))
        for table in BIG_TABLES:  # the statistics are ours to take, not autovacuum's
            await conn.execute(sa.text(f"ALTER TABLE {table} SET (autovacuum_enabled = off)"))
    scans = []
    async with rt.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        # first as a new install under its first burst: no statistics taken yet, and the
        # indexes made when the table was empty; then with the statistics of the big tables
        for stats in ("no statistics", "analyzed"):
            if stats == "analyzed":
                await raw.execute("ANALYZE")
            for what, statement, params in touching:
                for kind, doc in await explain(raw, statement, params):
                    plan = doc["Plan"]
                    tables = _seq_scans(plan)
                    indexes = {n.split(":")[2] for n in _nodes(plan)}
                    found = f"{what} ({kind} plan, {stats})"
                    expected = EXPECTED_INDEX.get(what, set())
                    if expected - indexes:
                        scans.append(f"{found}: not by {expected - indexes}: {_nodes(plan)}")
                    if tables and stats == "analyzed":
                        sql = " ".join(statement.split())[:300]
                        scans.append(f"{found}: {tables} read whole: {_nodes(plan)} for {sql}")
    assert not scans, "\n".join(scans)
