"""/api/v1/incidents (what stopped working by itself) and /api/v1/notifications/test."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from app.api.deps import OperatorDep, PiiDep, RuntimeDep, SessionDep, ViewerDep
from app.api.params import id_path
from app.api.pii import mask_response
from app.errors import Conflict
from app.incidents import service
from app.incidents.schemas import IncidentOut, NotificationTestOut, SinkTestOut
from app.incidents.sinks import Message, SinkError, send
from app.observability import metrics
from app.ops.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page

router = APIRouter(
    dependencies=[ViewerDep],
    responses={
        401: {"description": "missing or unknown API key"},
        422: {"description": "invalid parameters; the message names the field"},
    },
)

Status = Literal["pending", "open", "resolved"]
_MASKED = " Viewer keys get e-mail addresses (e.g. in a poll's error) masked."


@router.get(
    "/incidents",
    tags=["incidents"],
    summary="Incidents: flows gone silent, breakers open too long, failing polls, …",
    description="One row per incident, raised once and resolved by itself when the flow "
    "recovers. `status`: pending (the symptom is seen, not yet as long as its detector "
    "waits), open, resolved. `notifications`: each sink's firing and resolved message and "
    "its state (pending, sending, sent, skipped, failed, unconfirmed). Newest first; page "
    "with `cursor` = the previous page's `next_cursor`." + _MASKED,
)
async def list_incidents(
    session: SessionDep,
    pii: PiiDep,
    status: Status | None = None,
    kind: Annotated[str | None, Query(max_length=32, description="e.g. flow_silent")] = None,
    connection_id: Annotated[str | None, Query(max_length=64)] = None,
    flow: Annotated[str | None, Query(max_length=64, description="flow or poll stream")] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[IncidentOut]:
    where = service.IncidentFilter(status, kind, connection_id, flow)
    page = await service.list_incidents(session, where, cursor, limit)
    if pii:
        return page
    return Page(items=[mask_response(item) for item in page.items], next_cursor=page.next_cursor)


@router.get(
    "/incidents/{incident_id}",
    tags=["incidents"],
    summary="One incident with its notifications",
    description=_MASKED.strip(),
    responses={404: {"description": "no such incident"}},
)
async def get_incident(
    incident_id: Annotated[int, id_path("incident id")], session: SessionDep, pii: PiiDep
) -> IncidentOut:
    incident = await service.get_incident(session, incident_id)
    return incident if pii else mask_response(incident)


@router.post(
    "/notifications/test",
    tags=["incidents"],
    dependencies=[OperatorDep],
    summary="Send a test message to every notification sink",
    description="Each configured sink (monitoring.notifications.sinks) gets one test message "
    "now; the answer says per sink whether it took it, or the error (URLs, headers and "
    "logins are never shown). 409 when no sink is configured.",
    responses={
        403: {"description": "needs an operator key"},
        409: {"description": "no sink is configured"},
    },
)
async def test_notifications(rt: RuntimeDep) -> NotificationTestOut:
    sinks = rt.config.monitoring.notifications.sinks
    if not sinks:
        raise Conflict(
            "no notification sink is configured",
            hint="add monitoring.notifications.sinks to the config file (webhook or smtp)",
        )
    message = Message(
        status="test",
        kind="test",
        connection="erp-gateway",
        flow="",
        summary="a test message from erp-gateway: this sink receives incident notifications",
    )

    async def one(sink_index: int) -> SinkTestOut:
        sink = sinks[sink_index]
        try:
            await send(sink, message)
        except SinkError as exc:
            metrics.NOTIFICATIONS.labels(sink.name, "test", "failed").inc()
            return SinkTestOut(sink=sink.name, type=sink.type, ok=False, error=str(exc))
        metrics.NOTIFICATIONS.labels(sink.name, "test", "sent").inc()
        return SinkTestOut(sink=sink.name, type=sink.type, ok=True)

    results = await asyncio.gather(*(one(i) for i in range(len(sinks))))
    return NotificationTestOut(items=list(results))
