"""/api/v1/erasures: erase requests (GDPR/CCPA) and how far the erasure job has got.

Read only, for viewers and operators; requests arrive as webhooks (Shopify
``customers/redact``, a custom shop's ``customer.erase_requested``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from app.api.deps import SessionDep, ViewerDep
from app.api.params import INT64_MAX
from app.erasure import service
from app.erasure.schemas import ErasureOut
from app.ops.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page

router = APIRouter(
    prefix="/erasures",
    tags=["erasures"],
    dependencies=[ViewerDep],
    responses={
        401: {"description": "missing or unknown API key"},
        422: {"description": "invalid parameters; the message names the field"},
    },
)

Status = Literal["pending", "scrubbing", "awaiting_delivery", "done"]


@router.get(
    "",
    summary="Erase requests",
    description="Every erase request with its status, the counts of what was scrubbed per "
    "kind and what the job waits for. Identifiers appear only as ids and hashes. Newest "
    "first; page with `cursor` = the previous page's `next_cursor`.",
)
async def list_erasures(
    session: SessionDep,
    status: Annotated[Status | None, Query(description="only requests in this status")] = None,
    source: Annotated[str | None, Query(description="the connection that asked")] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[ErasureOut]:
    return await service.list_erasures(
        session, status=status, source=source, cursor=cursor, limit=limit
    )


@router.get(
    "/{erasure_id}",
    summary="One erase request",
    description="Its status (pending, scrubbing, awaiting_delivery, done), what was "
    "scrubbed per table, and the request's identifiers as hashes, never the values.",
    responses={404: {"description": "no such erase request"}},
)
async def get_erasure(
    session: SessionDep, erasure_id: Annotated[int, Path(ge=1, le=INT64_MAX)]
) -> ErasureOut:
    return await service.get_erasure(session, erasure_id)
