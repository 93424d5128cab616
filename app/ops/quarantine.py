"""/api/v1/quarantine: signed webhooks whose body could not be parsed, listed and replayed.

Listing is for viewers (personal data masked, like every inbound event); replaying is for
operators. A replay parses the stored body again with today's code: its events are
recorded with the usual dedupe, or the webhook stays in quarantine with the new error
(``app.ingest.quarantine``). Queueing what a replay records runs after the request's
transaction commits.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import OperatorActor, PiiDep, RuntimeDep, SessionDep
from app.api.params import id_path
from app.api.pii import mask_response
from app.audit.actor import Actor
from app.audit.service import record_action
from app.db import transaction
from app.ingest import quarantine
from app.ops import inbound_events
from app.ops.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from app.ops.schemas import InboundOut
from app.runtime import Runtime

router = APIRouter(prefix="/quarantine", tags=["quarantine"])

BULK_CAP = 500  # one request's replays (each parses a body and may record events)
InboundEventId = Annotated[int, id_path("inbound event id")]


class ReplayOut(BaseModel):
    id: int = Field(description="the inbound event")
    outcome: Literal["recorded", "quarantined", "duplicate"] = Field(
        description="recorded: parsed, its events recorded (none if they were already "
        "recorded, e.g. read by a backfill poll); quarantined: still cannot be parsed; "
        "duplicate: the same delivery was stored meanwhile, nothing recorded"
    )
    event_ids: list[int] = Field(default_factory=list, description="canonical events recorded")
    error: str | None = Field(default=None, description="why it is still in quarantine")
    duplicate_of: int | None = None


class BulkReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connection_id: str | None = Field(default=None, max_length=64, description="only this one")
    limit: int = Field(default=100, ge=1, le=BULK_CAP, description="oldest first")


class BulkReplayOut(BaseModel):
    items: list[ReplayOut]
    remaining: int = Field(description="still quarantined after this call")


@router.get(
    "",
    summary="List quarantined webhooks",
    description="Signed webhooks the parser could not handle, newest first, with the error "
    "in `note`. They were answered 200 (so the sender does not retry and unsubscribe); "
    "replay them once a new gateway version can read them. Each one's body: "
    "`GET /api/v1/inbound-events/{id}`. Viewer keys get personal data masked.",
)
async def list_quarantined(
    session: SessionDep,
    pii: PiiDep,
    connection_id: str | None = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[InboundOut]:
    where = inbound_events.InboundFilter(connection_id, status=quarantine.QUARANTINED)
    page = await inbound_events.list_inbound_events(session, where, cursor, limit)
    return page if pii else mask_response(page)


@router.post(
    "/replay",
    summary="Replay quarantined webhooks",
    description="Parses the oldest quarantined webhooks (of one connection, if given) again "
    f"with today's code, at most {BULK_CAP} per call; `remaining` says how many are still "
    "in quarantine (those that failed again, and those not reached: call again).",
    responses={403: {"description": "needs an operator key"}},
)
async def replay_all(body: BulkReplayIn, rt: RuntimeDep, actor: OperatorActor) -> BulkReplayOut:
    async with transaction(rt.sessions) as session:
        ids, _ = await quarantine.quarantined_ids(session, body.connection_id, body.limit)
    items = []
    for inbound_id in ids:
        # one transaction each: a webhook's failure never undoes another's replay, and what
        # each one records is queued as soon as it commits
        async with transaction(rt.sessions) as session:
            items.append(await _replay(session, rt, actor, inbound_id))
    async with transaction(rt.sessions) as session:
        _, remaining = await quarantine.quarantined_ids(session, body.connection_id, 0)
    return BulkReplayOut(items=items, remaining=remaining)


@router.post(
    "/{inbound_event_id}/replay",
    summary="Replay one quarantined webhook",
    description="Parses it again with today's code: `recorded` (its events recorded with "
    "the usual dedupe), `quarantined` (still failing; `error` is the new reason, kept in "
    "its note) or `duplicate`.",
    responses={
        403: {"description": "needs an operator key"},
        404: {"description": "no quarantined inbound event with this id"},
    },
)
async def replay_one(
    inbound_event_id: InboundEventId, session: SessionDep, rt: RuntimeDep, actor: OperatorActor
) -> ReplayOut:
    return await _replay(session, rt, actor, inbound_event_id)


async def _replay(session: AsyncSession, rt: Runtime, actor: Actor, inbound_id: int) -> ReplayOut:
    """One replay and its audit row, in the same transaction."""
    out = _out(await quarantine.replay(session, rt, inbound_id))
    details = out.model_dump(mode="json", include={"outcome", "event_ids", "duplicate_of"})
    await record_action(session, actor, "quarantine.replay", f"inbound_event:{inbound_id}", details)
    return out


def _out(done: quarantine.Replayed) -> ReplayOut:
    return ReplayOut(
        id=done.id,
        outcome=done.outcome,
        event_ids=done.event_ids,
        error=done.error,
        duplicate_of=done.duplicate_of,
    )
