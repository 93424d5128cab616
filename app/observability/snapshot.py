"""The gauges the API's /metrics reads from the database at each scrape.

Queue depth and age, breaker state, quarantined webhooks, failing polls, recent findings,
live workers and connections in maintenance are facts about the whole system, not about one
process: read from the database, they are right whatever process delivered, polled or
recorded (``metrics.DATABASE_GAUGES``).
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col

from app.delivery.heartbeat import live_workers
from app.delivery.sweeper import refresh_queue_gauges
from app.ingest.quarantine import refresh_quarantine_gauge
from app.maintenance.store import in_maintenance
from app.models import Finding, Incident, IncidentStatus, PollCursor, utcnow
from app.observability import metrics
from app.runtime import Runtime

FINDINGS_WINDOW = timedelta(hours=24)
WORKER_STATES = ("consuming", "starting", "queue_unreachable", "stopping")

_finding_kinds: set[str] = set()  # kinds shown once stay, at 0, rather than vanish
_incident_labels: set[tuple[str, str, str]] = set()  # likewise, an incident once open


async def refresh_database_gauges(rt: Runtime) -> None:
    await refresh_queue_gauges(rt)
    await refresh_quarantine_gauge(rt)
    async with rt.sessions() as session:
        rows = await session.execute(
            sa.select(col(PollCursor.connection_id), col(PollCursor.stream)).where(
                col(PollCursor.last_error).is_not(None)
            )
        )
        failing = {(str(conn), str(stream)) for conn, stream in rows}
        findings = (
            await session.execute(
                sa.select(col(Finding.kind), sa.func.count())
                .where(col(Finding.created_at) >= utcnow() - FINDINGS_WINDOW)
                .group_by(col(Finding.kind))
            )
        ).all()
        workers = await live_workers(session)
        incidents = (
            await session.execute(
                sa.select(
                    col(Incident.kind), col(Incident.connection_id), col(Incident.flow)
                ).where(col(Incident.status) == IncidentStatus.OPEN)
            )
        ).all()
        closed = await in_maintenance(session, rt, utcnow())
    for conn in rt.config.connections:
        metrics.CONNECTION_IN_MAINTENANCE.labels(conn.id).set(int(conn.id in closed))
        for stream in conn.poll.streams if conn.poll is not None else ():
            metrics.POLL_FAILING.labels(conn.id, stream).set(int((conn.id, stream) in failing))
    counts = {str(kind): int(n) for kind, n in findings}
    _finding_kinds.update(counts)
    for kind in _finding_kinds:
        metrics.FINDINGS_LAST_24H.labels(kind).set(counts.get(kind, 0))
    for state in {*WORKER_STATES, *(w.state for w in workers)}:
        metrics.WORKERS.labels(state).set(sum(w.state == state for w in workers))
    open_now = {(str(kind), str(conn), str(flow)) for kind, conn, flow in incidents}
    _incident_labels.update(open_now)
    for labels in _incident_labels:
        metrics.INCIDENTS_OPEN.labels(*labels).set(int(labels in open_now))
