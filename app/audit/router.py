"""/api/v1/audit: the operator actions, newest first (viewer keys and up)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import PiiDep, SessionDep
from app.api.params import UtcDateTime
from app.api.pii import mask_response
from app.audit.listing import AuditFilter, AuditOut, list_actions
from app.ops.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get(
    "",
    summary="The audit trail of operator actions",
    description="Who (a fingerprint of the API key and its role, never the key), what, on "
    "what and when: replays, approvals and rejections, mapping and rule changes, pause and "
    "resume, quarantine replays, jobs run by hand, and erase requests (by the connection "
    "that sent them). Each row was written in the action's own transaction: a failed "
    "action has none. `since` bounds `at` (inclusive; no offset means UTC). Newest first; "
    "page with `cursor` = the previous page's `next_cursor`. Viewer keys get personal data "
    "in `details` masked.",
)
async def get_audit(
    session: SessionDep,
    pii: PiiDep,
    action: Annotated[str | None, Query(max_length=64, description="e.g. delivery.replay")] = None,
    actor: Annotated[str | None, Query(max_length=80, description="e.g. key:1a2b3c4d")] = None,
    target: Annotated[str | None, Query(max_length=256, description="e.g. delivery:42")] = None,
    since: Annotated[UtcDateTime | None, Query(description="ISO-8601, inclusive")] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[AuditOut]:
    page = await list_actions(session, AuditFilter(action, actor, target, since), cursor, limit)
    if pii:
        return page
    return Page(items=[mask_response(item) for item in page.items], next_cursor=page.next_cursor)
