"""Planner statistics of the hot tables, taken by the gateway itself once they are stale.

Postgres plans every query from the statistics autovacuum keeps. With autovacuum off (as
on the machine this project's CI runs on), and on a new install's first burst before
autovacuum's first pass, the planner believes the tables hold what they held when they
were made: nothing. It then rates pending rows at 0.5 % of the deliveries and a partial
index of them as tiny, and may walk a whole backlog through the wrong index (3.4 ms per
finished delivery with 7,000 pending, seen on the benchmark). The sweeper calls this after
each pass: a table changed by more than ``STALE_ROWS`` plus ``STALE_SHARE`` of its rows
since its last ANALYZE (the thresholds autovacuum's own analyze uses, by default) is
analyzed now, once it holds ``MIN_ROWS``: statistics of a tiny table make the planner prefer
reading it whole, and a prepared statement planned then keeps that plan while the table
grows; a table never analyzed is planned with defaults that favour the indexes. Postgres
only; SQLite plans without such statistics.
"""

from __future__ import annotations

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

log = structlog.get_logger("gateway.statistics")

HOT_TABLES = (
    "deliveries",
    "canonical_events",
    "inbound_events",
    "delivery_attempts",
    "entity_links",
    "person_refs",
)
STALE_ROWS = 500
STALE_SHARE = 0.1
MIN_ROWS = 2000

_STALE = sa.text(
    "SELECT relname FROM pg_stat_user_tables"
    " WHERE schemaname = current_schema() AND relname = ANY(:tables)"
    " AND n_live_tup >= :min_rows"
    " AND n_mod_since_analyze > :rows + :share * n_live_tup"
    " ORDER BY relname"
)


async def analyze_stale_tables(engine: AsyncEngine) -> list[str]:
    """ANALYZE the hot tables whose statistics are stale; returns their names."""
    if engine.dialect.name != "postgresql":
        return []
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            params = {
                "tables": list(HOT_TABLES),
                "rows": STALE_ROWS,
                "share": STALE_SHARE,
                "min_rows": MIN_ROWS,
            }
            stale = [str(name) for name in (await conn.execute(_STALE, params)).scalars()]
            for table in stale:  # names from HOT_TABLES only, never from input
                # SKIP_LOCKED: autovacuum (or another gateway) analyzing it now is as good
                await conn.execute(sa.text(f"ANALYZE (SKIP_LOCKED) {table}"))
    except sa.exc.DBAPIError as exc:  # e.g. a role that may not ANALYZE: plans as before
        log.warning(
            "could not refresh planner statistics; is autovacuum on?",
            error=str(exc.orig),
        )
        return []
    if stale:
        log.debug("planner statistics refreshed", tables=stale)
    return stale
