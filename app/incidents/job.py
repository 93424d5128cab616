"""The scheduled ``incidents`` job: read the facts, judge them, raise or resolve, notify.

Run by ``app.scheduling.jobs.run_due_jobs`` every ``monitoring.interval_seconds``, claimed
like the other jobs so one process evaluates at a time (and the engine's conditional writes
keep even two at once from raising anything twice).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.configuration.monitoring import MonitoringConfig, SilenceFloor, zone_of
from app.incidents import detectors as d
from app.incidents import stats
from app.incidents.engine import Changes, apply
from app.incidents.notices import send_due
from app.maintenance.store import in_maintenance
from app.models import utcnow
from app.runtime import Runtime

log = structlog.get_logger("gateway.incidents")


async def run_incidents(rt: Runtime, now: datetime | None = None) -> int:
    """One evaluation and one round of notifications; returns incidents raised + resolved
    + messages sent."""
    now = now or utcnow()
    monitoring = rt.config.monitoring
    async with rt.sessions() as session:
        observations = await observe(session, rt, now)
    sinks = [sink.name for sink in monitoring.notifications.sinks]
    changes: Changes = await apply(rt.sessions, observations, now, sinks)
    sent = await send_due(rt.sessions, monitoring.notifications, now) if sinks else 0
    if changes.raised or changes.resolved or sent:
        log.info(
            "incidents evaluated",
            raised=len(changes.raised),
            resolved=len(changes.resolved),
            notifications_sent=sent,
        )
    return len(changes.raised) + len(changes.resolved) + sent


def floor_for(floors: list[SilenceFloor], source: str, flow: str) -> SilenceFloor | None:
    """The floor of this source's flow: one naming the connection, else one for every source."""
    mine = [f for f in floors if f.flow == flow and f.connection == source]
    every = [f for f in floors if f.flow == flow and f.connection is None]
    chosen = mine or every
    return chosen[0] if chosen else None


async def observe(session: AsyncSession, rt: Runtime, now: datetime) -> list[d.Observation]:
    """Every detector's observation now (the flows of the routes, their destinations, the
    configured polls); none raises anything for a connection in a maintenance window."""
    monitoring = rt.config.monitoring
    observations: list[d.Observation] = []
    sources = sorted({(r.from_, r.flow) for r in rt.config.routes})
    for source, flow in sources:
        observations += await _flow_observations(session, rt, monitoring, source, flow, now)
    observations += await _delivery_observations(session, rt, monitoring, now)
    observations += await _poll_observations(session, rt, monitoring, now)
    closed = set(await in_maintenance(session, rt, now))
    return [d.in_maintenance(obs, closed) for obs in observations]


async def _flow_observations(
    session: AsyncSession,
    rt: Runtime,
    monitoring: MonitoringConfig,
    source: str,
    flow: str,
    now: datetime,
) -> list[d.Observation]:
    learned = monitoring.learned if monitoring.learned.enabled else None
    floor = floor_for(monitoring.floors, source, flow)
    gap = monitoring.webhook_gap if _has_backfill(rt, source, flow) else None
    if learned is None and floor is None and gap is None:
        return []
    tz = zone_of(monitoring.timezone)
    window = timedelta(minutes=monitoring.learned.window_minutes)
    history = d.history_windows(now, monitoring.learned, tz) if learned else []
    windows: list[tuple[d.Window, stats.Via]] = [(d.Window(now - window, now), "any")]
    windows += [(w, "any") for w in history]
    if floor is not None:
        windows.append((d.Window(now - timedelta(minutes=floor.quiet_minutes), now), "any"))
    if gap is not None:
        recent = d.Window(now - timedelta(minutes=gap.window_minutes), now)
        windows += [(recent, "poll"), (recent, "webhook")]
    counts = await stats.count_events(session, source, flow, windows)
    first = await stats.first_event_at(session, source, flow) if history else None
    weekly: list[int | None] = [
        n if first is not None and first <= w.start else None
        for n, w in zip(counts[1 : 1 + len(history)], history, strict=True)
    ]
    rest = counts[1 + len(history) :]
    quiet = rest.pop(0) if floor is not None else None
    out: list[d.Observation] = []
    if learned is not None or floor is not None:
        volume = d.Volume(actual=counts[0], weekly=weekly, quiet=quiet)
        floor_tz = zone_of(floor.timezone or monitoring.timezone) if floor else None
        out.append(
            d.silence(d.Key(d.FLOW_SILENT, source, flow), volume, learned, floor, now, tz, floor_tz)
        )
    if gap is not None:
        polled, by_webhook = rest
        found = d.webhooks_missing(
            d.Key(d.WEBHOOKS_MISSING, source, flow),
            polled,
            by_webhook,
            gap,
            await stats.sent_webhooks(session, source, flow),
        )
        if found is not None:
            out.append(found)
    return out


def _has_backfill(rt: Runtime, source: str, flow: str) -> bool:
    """A store that sends the flow by webhook and whose poll reads it back (its events have
    no inbound event; an ERP's would mix with events the gateway makes itself)."""
    conn = rt.config.connection(source)
    connector = rt.connector(source)
    return (
        conn is not None
        and conn.poll is not None
        and flow in conn.poll.streams
        and connector is not None
        and connector.side == "store"
    )


async def _delivery_observations(
    session: AsyncSession, rt: Runtime, monitoring: MonitoringConfig, now: datetime
) -> list[d.Observation]:
    out: list[d.Observation] = []
    destinations = sorted({(r.to, r.flow) for r in rt.config.routes})
    facts = await stats.connection_facts(session)
    if monitoring.breaker_open_minutes is not None:
        for dest in sorted({to for to, _ in destinations}):
            fact = facts.get(dest)
            out.append(
                d.breaker_open(
                    d.Key(d.BREAKER_OPEN, dest),
                    fact.breaker_state if fact else None,
                    fact.breaker_changed_at if fact else None,
                    monitoring.breaker_open_minutes,
                )
            )
    if monitoring.dead_letters is not None:
        window = timedelta(minutes=monitoring.dead_letters.window_minutes)
        dead = await stats.new_dead_letters(session, now - window)
        for dest, flow in destinations:
            out.append(
                d.dead_letters(
                    d.Key(d.DEAD_LETTERS, dest, flow),
                    dead.get((dest, flow), 0),
                    monitoring.dead_letters,
                )
            )
    if monitoring.oldest_pending_minutes is not None:
        oldest = await stats.oldest_pending(session)
        for dest, flow in destinations:
            fact = facts.get(dest)
            out.append(
                d.oldest_pending(
                    d.Key(d.OLDEST_PENDING, dest, flow),
                    oldest.get((dest, flow)),
                    bool(fact and fact.paused),
                    monitoring.oldest_pending_minutes,
                    now,
                )
            )
    return out


async def _poll_observations(
    session: AsyncSession, rt: Runtime, monitoring: MonitoringConfig, now: datetime
) -> list[d.Observation]:
    out: list[d.Observation] = []
    polls = await stats.poll_facts(session)
    if monitoring.poll_failing_minutes is not None:
        for conn in rt.config.connections:
            for stream in conn.poll.streams if conn.poll is not None else ():
                fact = polls.get((conn.id, stream))
                out.append(
                    d.poll_failing(
                        d.Key(d.POLL_FAILING, conn.id, stream),
                        fact.last_error if fact else None,
                        monitoring.poll_failing_minutes,
                    )
                )
    for watch in monitoring.poll_empty:
        fact = polls.get((watch.connection, watch.stream))
        out.append(
            d.poll_empty(
                d.Key(d.POLL_EMPTY, watch.connection, watch.stream),
                fact.last_events_at if fact else None,
                bool(fact and fact.last_error),
                watch.minutes,
                now,
            )
        )
    return out
