"""/api/v1/approvals: held deliveries a person approves or rejects.

Thin endpoints over ``app.approvals.service``; reads need a viewer key, decisions an
operator key. Everything a decision queues goes out only after the request's commit.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import OperatorActor, PiiDep, RuntimeDep, SessionDep
from app.api.params import id_path
from app.api.pii import mask_response
from app.approvals import service
from app.approvals.schemas import (
    BULK_DECISION_CAP,
    ApprovalOut,
    BulkDecisionOut,
    BulkDecisionRequest,
    DecisionOut,
    DecisionRequest,
)
from app.audit.actor import Actor
from app.audit.service import record_action
from app.ops.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page

router = APIRouter(prefix="/approvals", tags=["approvals"])

DeliveryId = Annotated[int, id_path("id of the held (or rejected) delivery")]
NoteBody = Annotated[DecisionRequest | None, Body()]

_FORBIDDEN: dict[int | str, dict[str, str]] = {403: {"description": "needs an operator key"}}
_ONE: dict[int | str, dict[str, str]] = {
    **_FORBIDDEN,
    404: {"description": "no such delivery"},
    409: {"description": "the delivery is not held (the message says its status)"},
}
_BULK_DOC = (
    "Give `ids` or a filter (destination, flow, event_type, entity_key), or both (all must "
    "match); a call never sweeps every held delivery. Oldest first, at most "
    f"{BULK_DECISION_CAP} per call (`capped` says more matched; call again). `dry_run` only "
    "reports what would be decided."
)


@router.get(
    "",
    summary="Deliveries waiting for a decision",
    description="Held deliveries (price guard, amendments a person must decide, over-shipments, "
    "over-returns) with why they are held; price changes show `previous_price` and "
    "`effective_price`. Newest first; page with `cursor` = the previous page's `next_cursor`. "
    "Viewer keys get e-mail addresses masked (in guests' entity keys and reasons).",
)
async def list_approvals(
    session: SessionDep,
    pii: PiiDep,
    destination: Annotated[str | None, Query(description="destination connection id")] = None,
    flow: Annotated[str | None, Query(description="e.g. products")] = None,
    event_type: Annotated[str | None, Query(description="e.g. price.changed")] = None,
    entity_key: Annotated[str | None, Query(description="e.g. erp:price:SKU-1:USD")] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[ApprovalOut]:
    where = service.held_filter(destination, flow, event_type, entity_key)
    page = await service.list_approvals(session, where, cursor, limit)
    return page if pii else mask_response(page)


@router.post(
    "/approve",
    summary="Approve held deliveries in bulk",
    description="Each one is sent on as an approval of one would. " + _BULK_DOC,
    responses=_FORBIDDEN,
)
async def approve_many(
    request: BulkDecisionRequest, session: SessionDep, rt: RuntimeDep, actor: OperatorActor
) -> BulkDecisionOut:
    out = await service.decide_bulk(session, rt, "approved", request, actor.role)
    await _record_bulk(session, actor, "approval.approve", request, out)
    return out


@router.post(
    "/reject",
    summary="Reject held deliveries in bulk",
    description="Each one is rejected as a rejection of one would be. " + _BULK_DOC,
    responses=_FORBIDDEN,
)
async def reject_many(
    request: BulkDecisionRequest, session: SessionDep, rt: RuntimeDep, actor: OperatorActor
) -> BulkDecisionOut:
    out = await service.decide_bulk(session, rt, "rejected", request, actor.role)
    await _record_bulk(session, actor, "approval.reject", request, out)
    return out


async def _record_bulk(
    session: AsyncSession,
    actor: Actor,
    action: str,
    request: BulkDecisionRequest,
    out: BulkDecisionOut,
) -> None:
    """A bulk decision's audit row: what was asked and which deliveries it decided (a dry
    run decides nothing and leaves none)."""
    if request.dry_run:
        return
    asked = request.model_dump(mode="json", exclude={"dry_run"}, exclude_none=True)
    details = asked | {"decided": out.decided, "capped": out.capped}
    await record_action(session, actor, action, "deliveries", details)


@router.post(
    "/{delivery_id}/approve",
    summary="Approve one held delivery",
    description="The delivery goes out now with a fresh attempt budget. An approved price "
    "change becomes the price guard's baseline, so the same price is not held again.",
    responses=_ONE,
)
async def approve(
    delivery_id: DeliveryId,
    session: SessionDep,
    rt: RuntimeDep,
    actor: OperatorActor,
    body: NoteBody = None,
) -> DecisionOut:
    note = body.note if body else None
    out = await service.decide(session, rt, delivery_id, "approved", note, actor.role)
    await record_action(
        session, actor, "approval.approve", f"delivery:{delivery_id}", {"note": note}
    )
    return out


@router.post(
    "/{delivery_id}/reject",
    summary="Reject one held delivery",
    description="The delivery gets the final status `rejected` (the note in `last_error`): no "
    "replay of dead deliveries picks it up. What waited behind it for the same entity goes "
    "out. To decide again, re-open it (`POST /approvals/{id}/reopen`): it is held again.",
    responses=_ONE,
)
async def reject(
    delivery_id: DeliveryId,
    session: SessionDep,
    rt: RuntimeDep,
    actor: OperatorActor,
    body: NoteBody = None,
) -> DecisionOut:
    note = body.note if body else None
    out = await service.decide(session, rt, delivery_id, "rejected", note, actor.role)
    await record_action(
        session, actor, "approval.reject", f"delivery:{delivery_id}", {"note": note}
    )
    return out


@router.post(
    "/{delivery_id}/reopen",
    summary="Re-open a rejected delivery",
    description="A rejected delivery is held again, to be approved or rejected anew. Nothing "
    "is sent until someone approves it.",
    responses=_ONE,
)
async def reopen(
    delivery_id: DeliveryId,
    session: SessionDep,
    rt: RuntimeDep,
    actor: OperatorActor,
    body: NoteBody = None,
) -> DecisionOut:
    note = body.note if body else None
    out = await service.reopen(session, rt, delivery_id, note, actor.role)
    await record_action(
        session, actor, "approval.reopen", f"delivery:{delivery_id}", {"note": note}
    )
    return out
