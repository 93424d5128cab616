"""/console: the operator console, server-rendered pages over the operator API's own code.

Every page and action calls the endpoint functions of ``/api/v1`` (``app.ops.router``,
``app.approvals.router``, ``app.mappings.router``, ``app.scheduling.router``,
``app.flows.api``) with the request's one transaction and the signed-in key's role: the
same checks, the same masking of personal data for viewers, the same audit rows (the actor
is the key's fingerprint, as with the API). Nothing here decides anything on its own.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import structlog
from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ValidationError
from starlette.datastructures import URL

from app.api.deps import RuntimeDep, SessionDep
from app.api.params import id_path
from app.api.pii import mask_response
from app.approvals import router as approvals_api
from app.approvals.schemas import ApprovalOut, BulkDecisionRequest, DecisionRequest
from app.configuration.maintenance import WEEKDAYS, MaintenanceWindow
from app.console import health, mapping_overview
from app.console.auth import (
    CSRF_FIELD,
    Operator,
    Viewer,
    anonymous_csrf,
    check_key,
    clear_session,
    csrf_ok,
    session_data,
    sign_in,
)
from app.console.pages import PREFIX, ConsoleRoute, back_to, done, render
from app.errors import Forbidden, NotFound, Unprocessable
from app.flows import api as flows_api
from app.maintenance import router as maintenance_api
from app.mappings import router as mappings_api
from app.mappings.schemas import MappingPut
from app.models import DeliveryStatus
from app.ops import router as ops_api
from app.ops import search as search_service
from app.ops.connections import connection_or_404
from app.ops.pagination import DEFAULT_LIMIT, Page
from app.ops.schemas import BulkReplayRequest, ConnectionOut, DeliveryOut
from app.scheduling import router as jobs_api
from kernel.mappings import MAPPING_KINDS

log = structlog.get_logger("gateway.console")

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

LISTS = {
    "dead": "Dead: failed for good, replay once the cause is fixed",
    "parked": "Parked: waiting for a mapping; adding it releases them",
    "held": "Held: waiting for a person to approve or reject",
}
Back = Annotated[str | None, Form()]
DeliveryId = Annotated[int, id_path("delivery id")]
WindowId = Annotated[int, id_path("maintenance window id")]
Ids = Annotated[list[int], Form(alias="ids")]
Note = Annotated[str | None, Form(max_length=1000)]


M = TypeVar("M", bound=BaseModel)


def typed(model: type[M], value: BaseModel) -> M:
    """An endpoint's answer as ``model``: a page masked for a viewer comes back with its
    items as plain JSON (the API serializes either the same), the templates want models."""
    return model.model_validate(value.model_dump())


def _bad_input(exc: ValidationError) -> Unprocessable:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return Unprocessable(f"{where}: {first.get('msg')}" if where else str(first.get("msg")))


# --- sign-in --------------------------------------------------------------------------------


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    response = Response()
    token = anonymous_csrf(request, response)
    page = render(request, "login.html", {"token": token, "next": back_to(request, next)})
    for header in response.headers.getlist("set-cookie"):
        page.headers.append("set-cookie", header)
    return page


@router.post("/login")
async def login(
    request: Request,
    key: Annotated[str, Form(max_length=1024)] = "",
    csrf: Annotated[str, Form()] = "",
    next: Back = None,
) -> Response:
    expected = session_data(request).get("csrf")
    if not isinstance(expected, str) or not csrf_ok(request, expected, csrf):
        log.info("console sign-in refused: stale form")
        return await _login_again(request, "The form was stale; please sign in again.", next)
    role = check_key(request, key.strip())
    if role is None:
        log.warning("console sign-in with an unknown API key")
        return await _login_again(request, "Unknown API key.", next, status_code=401)
    response = RedirectResponse(back_to(request, next), status_code=303)
    sign_in(request, response, key.strip(), role)
    log.info("console sign-in", role=role)
    return response


async def _login_again(
    request: Request, message: str, next: str | None, status_code: int = 403
) -> Response:
    response = Response()
    token = anonymous_csrf(request, response)
    context = {"token": token, "next": back_to(request, next), "error": message}
    page = render(request, "login.html", context, status_code=status_code)
    for header in response.headers.getlist("set-cookie"):
        page.headers.append("set-cookie", header)
    return page


@router.post("/logout")
async def logout(request: Request, user: Viewer, csrf: Annotated[str, Form()] = "") -> Response:
    if not csrf_ok(request, user.csrf, csrf):
        return done(request, None, "The form was stale; reload and try again.", kind="error")
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    clear_session(response)
    return response


# --- health ---------------------------------------------------------------------------------


@router.get("/")
async def home(request: Request, user: Viewer, session: SessionDep, rt: RuntimeDep) -> Response:
    page = typed(
        Page[ConnectionOut],
        await ops_api.list_connections(session=session, rt=rt, pii=user.sees_pii),
    )
    ids = [c.id for c in page.items]
    oldest = await health.oldest_pending(session, ids)
    volumes = await health.volumes(session, ids)
    rows = [{"c": c, "oldest": oldest.get(c.id), "volume": volumes[c.id]} for c in page.items]
    totals = {
        status: sum(getattr(c.queue, status) for c in page.items)
        for status in ("dead", "parked", "held", "pending")
    }
    return render(request, "home.html", {"rows": rows, "totals": totals})


# --- search and trace -----------------------------------------------------------------------


@router.get("/search")
async def search(
    request: Request,
    user: Viewer,
    session: SessionDep,
    rt: RuntimeDep,
    q: Annotated[str, Query(max_length=search_service.MAX_QUERY_CHARS)] = "",
) -> Response:
    """What the operator API's search finds (``app.ops.search``); one match opens its trace."""
    context: dict[str, Any] = {"q": q.strip(), "matches": None, "refused": None}
    if not q.strip():
        return render(request, "search.html", context)
    sources = [c.id for c in rt.config.connections]
    try:
        found = await search_service.find(session, q, sources, may_see_pii=user.sees_pii)
    except Forbidden as exc:  # an e-mail searched by a viewer
        return render(request, "search.html", context | {"refused": exc.message})
    if len(found) == 1:
        return RedirectResponse(trace_url(found[0].entity_key), status_code=303)
    page = Page[search_service.Match](items=found, next_cursor=None)
    shown = page if user.sees_pii else mask_response(page)
    return render(request, "search.html", context | {"matches": shown.items})


def trace_url(entity_key: str) -> str:
    return str(URL(f"{PREFIX}/trace").include_query_params(key=entity_key))


@router.get("/trace")
async def trace(
    request: Request,
    user: Viewer,
    session: SessionDep,
    key: Annotated[str, Query(min_length=1, max_length=256)],
) -> Response:
    out = await ops_api.trace(session=session, pii=user.sees_pii, entity_key=key)
    return render(request, "trace.html", {"trace": out, "replayable": _REPLAYABLE})


_REPLAYABLE = frozenset(
    {
        DeliveryStatus.DEAD,
        DeliveryStatus.PARKED,
        DeliveryStatus.DELIVERED,
        DeliveryStatus.SUPERSEDED,
    }
)


# --- deliveries: dead, parked, held ---------------------------------------------------------


@router.get("/deliveries")
async def deliveries(
    request: Request,
    user: Viewer,
    session: SessionDep,
    status: Annotated[str, Query(pattern="^(dead|parked|held)$")] = "dead",
    destination: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    destination = destination or None
    if status == "held":
        held = await approvals_api.list_approvals(
            session=session,
            pii=user.sees_pii,
            destination=destination,
            flow=None,
            event_type=None,
            entity_key=None,
            cursor=cursor,
            limit=DEFAULT_LIMIT,
        )
        page: Any = typed(Page[ApprovalOut], held)
    else:
        listed = await ops_api.list_deliveries(
            session=session,
            pii=user.sees_pii,
            status=[status],  # type: ignore[list-item]
            destination=destination,
            source=None,
            flow=None,
            entity_key=None,
            event_type=None,
            cursor=cursor,
            limit=DEFAULT_LIMIT,
        )
        page = typed(Page[DeliveryOut], listed)
    context = {
        "status": status,
        "lists": LISTS,
        "page": page,
        "destination": destination or "",
        "here": str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
    }
    return render(request, "deliveries.html", context)


@router.get("/deliveries/{delivery_id}")
async def delivery(
    request: Request, user: Viewer, session: SessionDep, delivery_id: DeliveryId
) -> Response:
    out = await ops_api.get_delivery(delivery_id=delivery_id, session=session, pii=user.sees_pii)
    return render(request, "delivery.html", {"d": out, "replayable": _REPLAYABLE})


@router.post("/deliveries/{delivery_id}/replay")
async def replay_one(
    request: Request,
    user: Operator,
    session: SessionDep,
    rt: RuntimeDep,
    delivery_id: DeliveryId,
    back: Back = None,
) -> Response:
    out = await ops_api.replay_delivery(
        delivery_id=delivery_id, session=session, rt=rt, actor=user.actor
    )
    if out.status == DeliveryStatus.HELD:
        message = f"Delivery {delivery_id} is held for a decision: {out.last_error}"
    else:
        message = f"Delivery {delivery_id} queued again."
    return done(request, back, message, data={"status": out.status})


@router.post("/deliveries/replay")
async def replay_many(
    request: Request,
    user: Operator,
    session: SessionDep,
    rt: RuntimeDep,
    ids: Ids,
    back: Back = None,
) -> Response:
    try:
        asked = BulkReplayRequest(ids=ids, dry_run=False)
    except ValidationError as exc:
        raise _bad_input(exc) from None
    out = await ops_api.bulk_replay(request=asked, session=session, rt=rt, actor=user.actor)
    message = f"{len(out.replayed)} of {len(ids)} queued again"
    if out.held:
        message += f", {len(out.held)} held for a decision"
    if out.skipped:
        message += f", {len(out.skipped)} skipped (on their way, held or gone)"
    return done(request, back, message + ".", data={"done": len(ids), "result": out.model_dump()})


@router.post("/approvals/{delivery_id}/{decision}")
async def decide_one(
    request: Request,
    user: Operator,
    session: SessionDep,
    rt: RuntimeDep,
    delivery_id: DeliveryId,
    decision: str,
    note: Note = None,
    back: Back = None,
) -> Response:
    decide = {"approve": approvals_api.approve, "reject": approvals_api.reject}.get(decision)
    if decide is None:
        raise NotFound(f"no decision {decision!r}", hint="approve or reject")
    try:
        body = DecisionRequest(note=note or None)
    except ValidationError as exc:
        raise _bad_input(exc) from None
    out = await decide(delivery_id=delivery_id, session=session, rt=rt, actor=user.actor, body=body)
    message = f"Delivery {delivery_id} {out.decision}."
    return done(request, back, message, data={"status": out.status})


@router.post("/approvals/{decision}")
async def decide_many(
    request: Request,
    user: Operator,
    session: SessionDep,
    rt: RuntimeDep,
    decision: str,
    ids: Ids,
    note: Note = None,
    back: Back = None,
) -> Response:
    decide = {"approve": approvals_api.approve_many, "reject": approvals_api.reject_many}.get(
        decision
    )
    if decide is None:
        raise NotFound(f"no decision {decision!r}", hint="approve or reject")
    try:
        asked = BulkDecisionRequest(ids=ids, note=note or None, dry_run=False)
    except ValidationError as exc:
        raise _bad_input(exc) from None
    out = await decide(request=asked, session=session, rt=rt, actor=user.actor)
    message = f"{out.count} of {len(ids)} {out.decision}"
    if out.skipped:
        message += f", {len(out.skipped)} skipped (no longer held)"
    return done(request, back, message + ".", data={"done": len(ids), "result": out.model_dump()})


# --- mappings -------------------------------------------------------------------------------


@router.get("/mappings")
async def mappings(
    request: Request,
    user: Viewer,
    session: SessionDep,
    rt: RuntimeDep,
    kind: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
    connection: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    if kind and connection:  # the "open table" form
        connection_or_404(rt, connection)
        return RedirectResponse(f"{PREFIX}/mappings/{kind}/{quote(connection)}", status_code=303)
    context = {
        "tables": await mapping_overview.tables(session),
        "needs": await mapping_overview.parked_needs(session),
        "kinds": MAPPING_KINDS,
        "connections": [c.id for c in rt.config.connections],
    }
    return render(request, "mappings.html", context)


@router.get("/mappings/{kind}/{connection_id}")
async def mapping_table(
    request: Request,
    user: Viewer,
    session: SessionDep,
    rt: RuntimeDep,
    kind: mappings_api.Kind,
    connection_id: str,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    our_key: Annotated[str, Query(max_length=256)] = "",
) -> Response:
    page = await mappings_api.list_mappings(
        kind=kind,
        connection_id=connection_id,
        session=session,
        rt=rt,
        cursor=cursor,
        limit=DEFAULT_LIMIT,
    )
    context = {"kind": kind, "connection_id": connection_id, "page": page, "our_key": our_key}
    return render(request, "mapping_table.html", context)


@router.post("/mappings/{kind}/{connection_id}")
async def put_mapping(
    request: Request,
    user: Operator,
    session: SessionDep,
    rt: RuntimeDep,
    kind: mappings_api.Kind,
    connection_id: str,
    our_key: Annotated[str, Form(min_length=1, max_length=256)],
    their_key: Annotated[str, Form(min_length=1, max_length=256)],
    back: Back = None,
) -> Response:
    try:
        body = MappingPut(entries={our_key.strip(): their_key.strip()})
    except ValidationError as exc:
        raise _bad_input(exc) from None
    out = await mappings_api.put_mappings(
        kind=kind,
        connection_id=connection_id,
        body=body,
        session=session,
        rt=rt,
        actor=user.actor,
    )
    released = len(out.released_deliveries)
    message = f"Saved {kind} {our_key.strip()} → {their_key.strip()} for {connection_id}"
    message += f"; {released} parked deliver{'y' if released == 1 else 'ies'} released."
    return done(request, back, message, data={"released": out.released_deliveries})


@router.post("/mappings/{kind}/{connection_id}/delete")
async def delete_mapping(
    request: Request,
    user: Operator,
    session: SessionDep,
    rt: RuntimeDep,
    kind: mappings_api.Kind,
    connection_id: str,
    our_key: Annotated[str, Form(min_length=1, max_length=256)],
    back: Back = None,
) -> Response:
    out = await mappings_api.delete_mappings(
        kind=kind,
        connection_id=connection_id,
        session=session,
        rt=rt,
        actor=user.actor,
        keys=[our_key],
        delete_all=False,
        body=None,
    )
    return done(request, back, f"Deleted {out.deleted} entry ({kind} {our_key}).")


@router.get("/mappings/{kind}/{connection_id}/export")
async def export_mapping(
    user: Viewer, rt: RuntimeDep, kind: mappings_api.Kind, connection_id: str
) -> Response:
    return await mappings_api.export_mappings(kind=kind, connection_id=connection_id, rt=rt)


@router.post("/mappings/{kind}/{connection_id}/import")
async def import_mapping(
    request: Request,
    user: Operator,
    rt: RuntimeDep,
    kind: mappings_api.Kind,
    connection_id: str,
    replace: bool = False,
) -> Response:
    """The CSV as the request body (the console's script sends the chosen file), progress
    streamed as the API streams it: a JSON line per committed batch, the result last."""
    connection_or_404(rt, connection_id)
    out = await mappings_api.import_mappings(
        kind=kind,
        connection_id=connection_id,
        request=request,
        rt=rt,
        actor=user.actor,
        replace=replace,
    )
    if isinstance(out, Response):
        return out
    return done(request, None, "imported", data=out.model_dump())


# --- findings -------------------------------------------------------------------------------


@router.get("/findings")
async def findings(
    request: Request,
    user: Viewer,
    session: SessionDep,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    connection_id: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    page = await flows_api.get_findings(
        session=session,
        may_see_pii=user.sees_pii,
        kind=kind or None,
        entity_key=None,
        connection_id=connection_id or None,
        since=None,
        cursor=cursor,
        limit=DEFAULT_LIMIT,
    )
    context = {"page": page, "kind": kind or "", "connection_id": connection_id or ""}
    return render(request, "findings.html", context)


# --- jobs and connections -------------------------------------------------------------------


@router.get("/jobs")
async def jobs(request: Request, user: Viewer, session: SessionDep, rt: RuntimeDep) -> Response:
    listed: Any = await jobs_api.list_jobs(session=session, rt=rt, pii=user.sees_pii)
    if isinstance(listed, Page):  # the jobs list is moving to the API's page shape
        listed = listed.items
    connections = typed(
        Page[ConnectionOut],
        await ops_api.list_connections(session=session, rt=rt, pii=user.sees_pii),
    )
    windows = [
        await maintenance_api.list_windows(connection_id=c.id, session=session, rt=rt)
        for c in connections.items
    ]
    context = {
        "jobs": listed,
        "connections": connections.items,
        "windows": windows,
        "weekdays": WEEKDAYS,
    }
    return render(request, "jobs.html", context)


@router.post("/jobs/{name}/run")
async def run_job(
    request: Request, user: Operator, rt: RuntimeDep, name: str, back: Back = None
) -> Response:
    out = await jobs_api.run_job(name=name, rt=rt, actor=user.actor)
    return done(request, back, f"Job {name} ran: result {out.result}.", data={"result": out.result})


@router.post("/connections/{connection_id}/{action}")
async def pause_or_resume(
    request: Request,
    user: Operator,
    session: SessionDep,
    rt: RuntimeDep,
    connection_id: str,
    action: str,
    back: Back = None,
) -> Response:
    if action == "pause":
        await ops_api.pause_connection(
            connection_id=connection_id, session=session, rt=rt, actor=user.actor
        )
        return done(request, back, f"Deliveries to {connection_id} paused.")
    if action == "resume":
        out = await ops_api.resume_connection(
            connection_id=connection_id, session=session, rt=rt, actor=user.actor
        )
        return done(request, back, f"{connection_id} resumed; {out.requeued} queued again.")
    raise NotFound(f"no action {action!r}", hint="pause or resume")


# --- maintenance windows ------------------------------------------------------------------


@router.post("/maintenance")
async def add_maintenance_window(
    request: Request,
    user: Operator,
    session: SessionDep,
    rt: RuntimeDep,
    connection_id: Annotated[str, Form(alias="connection", max_length=64)],
    starts: Annotated[str, Form(alias="from", max_length=64)],
    to: Annotated[str, Form(max_length=64)],
    every: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
    timezone: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=200)] = "",
    back: Back = None,
) -> Response:
    written = {
        "every": every or None,
        "from": starts.strip(),
        "to": to.strip(),
        "timezone": timezone.strip() or None,
        "reason": reason.strip() or None,
    }
    try:
        window = MaintenanceWindow.model_validate(written)
    except ValidationError as exc:
        raise _bad_input(exc) from None
    out = await maintenance_api.add_window(
        connection_id=connection_id, window=window, session=session, rt=rt, actor=user.actor
    )
    return done(request, back, f"Maintenance window for {connection_id}: {out.described}.")


@router.post("/maintenance/{connection_id}/{window_id}/delete")
async def delete_maintenance_window(
    request: Request,
    user: Operator,
    session: SessionDep,
    rt: RuntimeDep,
    connection_id: str,
    window_id: WindowId,
    back: Back = None,
) -> Response:
    await maintenance_api.delete_window(
        connection_id=connection_id, window_id=window_id, session=session, rt=rt, actor=user.actor
    )
    return done(request, back, f"Maintenance window {window_id} of {connection_id} deleted.")


__all__ = ["CSRF_FIELD", "router"]
