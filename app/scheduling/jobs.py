"""Scheduled work: polling for changes, stock reconciliation, sale price start and end,
erase requests (``app.erasure.job``), retention (``app.retention.job``), incidents
(``app.incidents.job``).

Plain async functions over a Runtime; arq runs ``run_due_jobs`` as a cron job and the
in-process worker calls it from its loop. Each job first claims its slot with one UPDATE on
``poll_cursors`` (due and not taken), so several workers never run the same job twice and a
restart resumes from the stored cursor.
"""

from __future__ import annotations

import weakref
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db import transaction
from app.dbutil import insert_ignore, rowcount, upsert
from app.erasure.job import run_erasures
from app.flows.inventory import rules as inventory_rules
from app.flows.inventory.planning import (
    availability_deliveries,
    in_transit_for,
    minus_in_transit,
)
from app.flows.inventory.state import stock_levels_for, upsert_stock_levels
from app.flows.plan import PlanContext, Planned
from app.flows.recorder import not_seen, record_events, record_planned
from app.flows.rules import effective_rules
from app.flows.state import mapping_table
from app.incidents.job import run_incidents
from app.ingest.quarantine import keep_unparsed
from app.ingest.reads import run_reads
from app.maintenance.store import in_maintenance
from app.models import Finding as FindingRow
from app.models import PollCursor, PriceRecord, StockLevel, utcnow
from app.observability import metrics
from app.retention.job import run_retention
from app.runtime import Runtime
from kernel.canonical.events import CanonicalEvent, make_event
from kernel.canonical.product import Price
from kernel.contract import ConnectorJob, JobReport
from kernel.errors import ConnectorError, RateLimitedError, TransientError
from kernel.types import Finding

log = structlog.get_logger("gateway.jobs")

GATEWAY = "*"  # the poll_cursors row owner for gateway-wide jobs
# per runtime (process): the connector jobs with run_at_start it has run since it started
# (by id, forgotten with the runtime: a Runtime is not hashable)
_STARTED: dict[int, set[tuple[str, str]]] = {}


def _started(rt: Runtime) -> set[tuple[str, str]]:
    if id(rt) not in _STARTED:
        _STARTED[id(rt)] = set()
        weakref.finalize(rt, _STARTED.pop, id(rt), None)
    return _STARTED[id(rt)]


async def run_due_jobs(rt: Runtime) -> dict[str, int]:
    """Run every job whose interval has passed; returns what each did (for logs and tests)."""
    done: dict[str, int] = {}
    closed = await _in_maintenance(rt)
    for conn in rt.config.connections:
        if conn.poll is None or conn.id in closed:
            continue  # in maintenance: not a failure; the poll runs once the window ends
        for stream in conn.poll.streams:
            if await _claim(rt, conn.id, stream, conn.poll.interval_seconds):
                done[f"poll:{conn.id}:{stream}"] = await poll_stream(rt, conn.id, stream)
    async with transaction(rt.sessions) as session:
        rules = await effective_rules(session, rt.config.rules)
    if await _claim(rt, GATEWAY, "prices", rt.settings.schedule_tick_seconds):
        done["prices"] = await apply_price_schedule(rt)
    if await _claim(rt, GATEWAY, "erasures", rt.settings.schedule_tick_seconds):
        done["erasures"] = await run_erasures(rt)
    if await _claim(rt, GATEWAY, "reads", rt.settings.schedule_tick_seconds):
        done["reads"] = await run_reads(rt)
    if await _claim(rt, GATEWAY, "retention", rt.config.retention.interval_seconds):
        done["retention"] = await run_retention(rt)
    started = _started(rt)
    for conn in rt.config.connections:
        connector = rt.connector(conn.id)
        if conn.id in closed:
            continue  # its own jobs call it too: they wait for the window's end as well
        for job in connector.jobs() if connector is not None else []:
            stream = f"job:{job.name}"
            # a job that runs at start runs once in every process that starts, due or not
            first = job.run_at_start and (conn.id, stream) not in started
            if await _claim(rt, conn.id, stream, 0.0 if first else job.interval_seconds):
                started.add((conn.id, stream))
                done[f"{stream}:{conn.id}"] = await run_connector_job(rt, conn.id, stream, job)
    if _has_inventory_routes(rt) and await _claim(
        rt, GATEWAY, "reconcile", rules.inventory.reconcile_interval_seconds
    ):
        done["reconcile"] = await reconcile_inventory(rt)
    if rt.config.monitoring.enabled and await _claim(
        rt, GATEWAY, "incidents", rt.config.monitoring.interval_seconds
    ):
        done["incidents"] = await run_incidents(rt)
    return done


_SKIP_LOGGED: dict[str, datetime] = {}  # connection → end of the window last logged


async def _in_maintenance(rt: Runtime) -> dict[str, datetime]:
    """The connections in a maintenance window now (their polls and jobs wait), logged once
    per window."""
    async with transaction(rt.sessions) as session:
        closed = await in_maintenance(session, rt, utcnow())
    for connection_id, until in closed.items():
        if _SKIP_LOGGED.get(connection_id) != until:
            _SKIP_LOGGED[connection_id] = until
            log.info(
                "connection in maintenance: its polls and jobs wait for the window's end",
                connection_id=connection_id,
                until=until.isoformat(),
            )
    return closed


async def run_connector_job(rt: Runtime, connection_id: str, stream: str, job: ConnectorJob) -> int:
    """A connector's own scheduled work (subscription renewal, token refresh); its state
    is kept like a poll cursor, so it survives restarts. Returns 1 if it ran."""
    async with transaction(rt.sessions) as session:
        state = await session.scalar(
            sa.select(col(PollCursor.cursor)).where(
                col(PollCursor.connection_id) == connection_id, col(PollCursor.stream) == stream
            )
        )
    try:
        outcome = await job.run(state)
    except Exception as exc:  # logged and shown with the jobs; the next run tries again
        log.warning(
            "connector job failed; it runs again at its next interval",
            connection_id=connection_id,
            job=job.name,
            error=str(exc) or type(exc).__name__,
        )
        async with transaction(rt.sessions) as session:
            await session.execute(
                sa.update(PollCursor)
                .where(
                    col(PollCursor.connection_id) == connection_id,
                    col(PollCursor.stream) == stream,
                )
                .values(last_error=str(exc) or type(exc).__name__)
            )
        return 0
    report = outcome if isinstance(outcome, JobReport) else JobReport(outcome)
    async with transaction(rt.sessions) as session:
        await session.execute(
            sa.update(PollCursor)
            .where(col(PollCursor.connection_id) == connection_id, col(PollCursor.stream) == stream)
            .values(cursor=report.state, last_error=None, last_count=1)
        )
        for finding in report.findings:
            _add_finding(session, connection_id, finding)
    return 1


def _add_finding(session: AsyncSession, connection_id: str, finding: Finding) -> None:
    """A finding a connector reported from a job or a poll (what it could not fix)."""
    entity_key = finding.data.get("entity_key")
    session.add(
        FindingRow(
            kind=finding.kind[:32],
            connection_id=connection_id,
            entity_key=str(entity_key)[:256] if entity_key else None,
            message=finding.message,
            data=finding.data,
            created_at=utcnow(),
        )
    )
    metrics.FINDINGS.labels(finding.kind).inc()
    log.warning("finding", kind=finding.kind, connection_id=connection_id, message=finding.message)


async def _claim(rt: Runtime, owner: str, stream: str, interval: float) -> bool:
    """Take this run of a job if it is due; False when it is not due or another worker has it."""
    now = utcnow()
    async with transaction(rt.sessions) as session:
        await insert_ignore(
            session,
            PollCursor,
            {"connection_id": owner, "stream": stream, "last_count": 0},
            key=["connection_id", "stream"],
        )
        result = await session.execute(
            sa.update(PollCursor)
            .where(
                col(PollCursor.connection_id) == owner,
                col(PollCursor.stream) == stream,
                sa.or_(
                    col(PollCursor.polled_at).is_(None),
                    col(PollCursor.polled_at) <= now - timedelta(seconds=interval),
                ),
            )
            .values(polled_at=now)
        )
        return rowcount(result) == 1


# --- polling ----------------------------------------------------------------------------------


async def poll_stream(rt: Runtime, connection_id: str, stream: str) -> int:
    """Read changes after the stored cursor, page by page; each page commits with its cursor.

    Returns how many new events were recorded. A failure keeps the cursor where the last
    committed page left it, so the next run starts there: nothing skipped, nothing twice.
    """
    conn = rt.config.connection(connection_id)
    connector = rt.connector(connection_id)
    if conn is None or conn.poll is None or connector is None:
        return 0
    recorded = 0
    for _ in range(conn.poll.max_pages):
        async with transaction(rt.sessions) as session:
            cursor = await session.scalar(
                sa.select(col(PollCursor.cursor)).where(
                    col(PollCursor.connection_id) == connection_id,
                    col(PollCursor.stream) == stream,
                )
            )
        try:
            page = await connector.poll(stream, cursor, conn.poll.page_size)
        except Exception as exc:  # typed or not, a failed poll is reported, never "nothing new"
            await _poll_failed(rt, connection_id, stream, exc)
            return recorded
        async with transaction(rt.sessions) as session:
            fresh = await not_seen(session, page.events)
            await record_events(session, rt, connection_id, fresh)
            for record in page.unparsed:  # kept in quarantine, never a reason to stop
                await keep_unparsed(session, connection_id, record)
            await _store_cursor(session, connection_id, stream, page.cursor, len(fresh))
        recorded += len(fresh)
        metrics.POLLED_EVENTS.labels(connection_id, stream).inc(len(fresh))
        metrics.POLL_FAILING.labels(connection_id, stream).set(0)
        log.info(
            "polled",
            connection_id=connection_id,
            stream=stream,
            rows=len(page.events),
            new_events=len(fresh),
            has_more=page.has_more,
        )
        if not page.has_more:
            break
    return recorded


async def _store_cursor(
    session: AsyncSession, connection_id: str, stream: str, cursor: str | None, count: int
) -> None:
    values: dict[str, Any] = {
        "connection_id": connection_id,
        "stream": stream,
        "cursor": cursor,
        "last_count": count,
        "last_error": None,
    }
    if count:  # for the poll_empty detector (app.incidents)
        values["last_events_at"] = utcnow()
    await upsert(session, PollCursor, values, key=["connection_id", "stream"])


async def _poll_failed(rt: Runtime, connection_id: str, stream: str, exc: Exception) -> None:
    """Keep the cursor; record the error on the stream, count it, and report a
    ``poll_failed`` finding when the stream starts failing (or fails differently)."""
    error_class = type(exc).__name__
    error = f"{error_class}: {exc}"
    log.warning(
        "poll failed; the next run resumes from the stored cursor",
        connection_id=connection_id,
        stream=stream,
        error=str(exc),
        error_class=error_class,
    )
    metrics.POLL_FAILURES.labels(connection_id, stream, error_class).inc()
    metrics.POLL_FAILING.labels(connection_id, stream).set(1)
    async with transaction(rt.sessions) as session:
        before = await session.scalar(
            sa.select(col(PollCursor.last_error)).where(
                col(PollCursor.connection_id) == connection_id, col(PollCursor.stream) == stream
            )
        )
        await upsert(
            session,
            PollCursor,
            {
                "connection_id": connection_id,
                "stream": stream,
                "last_error": error,
                "last_count": 0,
            },
            key=["connection_id", "stream"],
            update=["last_error"],
        )
        if before != error:  # once per episode, not once per run
            what = (
                "a person must fix it (query, credentials, role permissions); "
                if not isinstance(exc, TransientError | RateLimitedError)
                else "it is retried at every run; "
            )
            session.add(
                FindingRow(
                    kind="poll_failed",
                    connection_id=connection_id,
                    message=f"polling {stream} of {connection_id} failed: {error}; {what}"
                    "nothing after the stored cursor is read until it works again",
                    data={"stream": stream, "error_class": error_class, "error": str(exc)},
                    created_at=utcnow(),
                )
            )
            metrics.FINDINGS.labels("poll_failed").inc()


# --- sale prices ------------------------------------------------------------------------------


async def apply_price_schedule(rt: Runtime) -> int:
    """Send prices whose sale started or ended since they were last sent.

    Each step is planned like a new price: the guard checked the sale when it was scheduled,
    so a sale accepted or approved then passes, and one still held (or rejected) is held
    again instead of starting by itself.
    """
    now = utcnow()
    count = 0
    async with transaction(rt.sessions) as session:
        due = (
            (
                await session.execute(
                    sa.select(PriceRecord)
                    .where(col(PriceRecord.next_change_at) <= now)
                    .order_by(col(PriceRecord.next_change_at))
                    .limit(500)
                    .with_for_update(skip_locked=True)
                )
            )
            .scalars()
            .all()
        )
        by_source: dict[str, list[CanonicalEvent]] = {}
        for record in due:
            price = Price.model_validate(record.price)
            by_source.setdefault(record.source, []).append(make_event("price.changed", price, now))
        for source, events in by_source.items():
            await record_events(session, rt, source, events)
            count += len(events)
    if count:
        log.info("scheduled price changes sent", prices=count)
    return count


# --- stock reconciliation ---------------------------------------------------------------------


def _has_inventory_routes(rt: Runtime) -> bool:
    return any(r.flow == "inventory" for r in rt.config.routes)


async def reconcile_inventory(rt: Runtime) -> int:
    """Compare what each store shows with what the ERP's levels allow; correct the drift.

    The ERP's levels are read again from the ERP (``fetch_levels``) and stored first: the
    gateway's own copy is what a missed poll, a deleted transaction or a lost webhook would
    have left wrong, so it is never the reference. Writes one ``drift_report`` finding per
    store (SKUs checked, drifted) and one ``stock_drift`` finding per drifted SKU, and sends
    the right quantity again.
    """
    corrected = 0
    for route in [r for r in rt.config.routes if r.flow == "inventory"]:
        connector, erp = rt.connector(route.to), rt.connector(route.from_)
        if connector is None or erp is None:
            continue
        async with transaction(rt.sessions) as session:
            skus = list(
                (
                    await session.execute(
                        sa.select(col(StockLevel.sku))
                        .where(col(StockLevel.source) == route.from_)
                        .distinct()
                    )
                ).scalars()
            )
        if not await _reread_levels(rt, route.from_, erp, skus):
            continue
        async with transaction(rt.sessions) as session:
            rules = await effective_rules(session, rt.config.rules)
            locations = await mapping_table(session, route.to, "location")
            levels = await stock_levels_for(session, route.from_, skus)
            # what the store sold that the ERP has not booked: its stock is already that much
            # lower (and so is what a correction would send), which is no drift
            in_transit = await in_transit_for(session, route.to, route.from_, rules.inventory)
        now = utcnow()
        expected: dict[tuple[str, str | None], Decimal] = {}
        for sku in skus:
            for item in inventory_rules.availability(
                sku, levels.get(sku, []), rules.inventory, locations, source=route.from_, as_of=now
            ):
                item = minus_in_transit(item, in_transit, locations, rules.inventory)
                expected[(sku, item.location)] = item.available
        try:
            actual = await connector.fetch_availability(skus)
        except ConnectorError as exc:
            log.warning(
                "reconciliation skipped: the store did not answer", store=route.to, error=str(exc)
            )
            continue
        known = set(skus)
        actual = {k: Decimal(v) for k, v in actual.items() if k[0] in known}
        # a store without locations answers per its default location: compare like with like
        if rules.inventory.mode == "aggregate":
            summed: dict[tuple[str, str | None], Decimal] = {}
            for (sku, _loc), qty in actual.items():
                summed[(sku, None)] = summed.get((sku, None), Decimal(0)) + qty
            actual = summed
        drifts = inventory_rules.find_drift(expected, actual, rules.inventory.drift_tolerance)
        corrected += await _correct_drift(rt, route.from_, route.to, drifts, len(skus))
    return corrected


async def _reread_levels(rt: Runtime, source: str, erp: Any, skus: list[str]) -> bool:
    """Store the ERP's levels as it gives them now; False (logged) when it cannot."""
    if not skus:
        return True
    try:
        fresh = await erp.fetch_levels(skus)
    except ConnectorError as exc:
        log.warning(
            "reconciliation skipped: the ERP's stock could not be read again; it is never "
            "compared with the gateway's own copy",
            source=source,
            error=str(exc),
        )
        return False
    async with transaction(rt.sessions) as session:
        await upsert_stock_levels(session, fresh)
    return True


async def _correct_drift(
    rt: Runtime, source: str, store: str, drifts: list[inventory_rules.Drift], checked: int
) -> int:
    now = utcnow()
    async with transaction(rt.sessions) as session:
        rules = await effective_rules(session, rt.config.rules)
        ctx = PlanContext(
            session=session,
            config=rt.config,
            rules=rules,
            source=source,
            now=now,
            sides=rt.sides,
        )
        ctx.report(
            Finding(
                "drift_report",
                f"stock reconciliation {source} → {store}: {checked} SKUs checked, "
                f"{len(drifts)} drifted" + (", corrections sent" if drifts else ""),
                {
                    "checked": checked,
                    "drifted": [
                        {
                            "sku": d.sku,
                            "location": d.location,
                            "expected": str(d.expected),
                            "actual": str(d.actual),
                        }
                        for d in drifts
                    ],
                },
            ),
            connection_id=store,
        )
        planned: list[Planned] = []
        for drift in drifts:
            ctx.report(
                Finding(
                    "stock_drift",
                    f"{store} shows {drift.actual} of {drift.sku}"
                    + (f" at {drift.location}" if drift.location else "")
                    + f"; the ERP's levels allow {drift.expected}",
                    {
                        "sku": drift.sku,
                        "expected": str(drift.expected),
                        "actual": str(drift.actual),
                    },
                ),
                connection_id=store,
                entity_key=f"{source}:product:{drift.sku}",
            )
            for plan in await availability_deliveries(ctx, source, drift.sku, now):
                if plan.destination == store:
                    # a correction sets the quantity; the delta baseline restarts from it
                    plan.directives = {**(plan.directives or {}), "absolute": True}
                    planned.append(plan)
        await record_planned(session, rt, ctx, planned)
    log.info("stock reconciled", source=source, store=store, checked=checked, drifted=len(drifts))
    return len(drifts)
