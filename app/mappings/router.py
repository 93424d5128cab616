"""/api/v1/mappings/{kind}/{connection_id}: read, add and delete mapping entries.

Adding entries is how an operator unblocks parked deliveries, so a PUT releases every
parked delivery to the connection whose missing mappings now all exist, in the same
transaction (they are queued once it commits).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query

from app.api.deps import OperatorDep, RuntimeDep, SessionDep
from app.delivery.actions import release_parked
from app.errors import Unprocessable
from app.mappings import service
from app.mappings.schemas import (
    MAX_ENTRIES_PER_CALL,
    MappingDelete,
    MappingDeleteOut,
    MappingEntryOut,
    MappingPut,
    MappingPutOut,
)
from app.ops.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, decode_cursor, page_of
from app.ops.service import connection_or_404

router = APIRouter(prefix="/mappings", tags=["mappings"])

Kind = Annotated[
    str, Path(pattern=r"^[a-z_]{1,32}$", description="mapping kind, e.g. sku, tax_code")
]
ConnectionId = Annotated[str, Path(description="connection id from the config")]

_NOT_FOUND: dict[int | str, dict[str, str]] = {404: {"description": "unknown connection"}}
_WRITE: dict[int | str, dict[str, str]] = {
    **_NOT_FOUND,
    403: {"description": "needs an operator key"},
}


@router.get(
    "/{kind}/{connection_id}",
    summary="List mapping entries",
    description="Our key → the connection's key for one kind, ordered by our key; page "
    "with `cursor` = the previous page's `next_cursor`.",
    responses=_NOT_FOUND,
)
async def list_mappings(
    kind: Kind,
    connection_id: ConnectionId,
    session: SessionDep,
    rt: RuntimeDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[MappingEntryOut]:
    connection_or_404(rt, connection_id)
    after = decode_cursor(cursor, str)
    rows = await service.list_entries(session, kind, connection_id, after=after, limit=limit + 1)
    items, next_cursor = page_of(rows, limit, lambda m: m.our_key)
    return Page(items=[MappingEntryOut.model_validate(m) for m in items], next_cursor=next_cursor)


@router.put(
    "/{kind}/{connection_id}",
    summary="Add or overwrite mapping entries",
    description="Upserts the entries, then requeues the parked deliveries to this "
    "connection whose missing mappings now all exist (`released_deliveries`). "
    f"At most {MAX_ENTRIES_PER_CALL} entries per call.",
    dependencies=[OperatorDep],
    responses=_WRITE,
)
async def put_mappings(
    kind: Kind, connection_id: ConnectionId, body: MappingPut, session: SessionDep, rt: RuntimeDep
) -> MappingPutOut:
    connection_or_404(rt, connection_id)
    updated = await service.upsert_entries(session, kind, connection_id, body.entries)
    released = await release_parked(session, rt, connection_id)
    return MappingPutOut(updated=updated, released_deliveries=released)


@router.delete(
    "/{kind}/{connection_id}",
    summary="Delete mapping entries",
    description="Deletes the entries named in `keys` (query, repeated, or JSON body "
    '`{"keys": [...]}`). Deleting every entry of the kind needs `?all=true`, so an empty '
    "filter never wipes a table by accident. Deliveries already sent are not affected; "
    "later ones that need a deleted key will park.",
    dependencies=[OperatorDep],
    responses=_WRITE,
)
async def delete_mappings(
    kind: Kind,
    connection_id: ConnectionId,
    session: SessionDep,
    rt: RuntimeDep,
    keys: Annotated[
        list[str] | None,
        Query(max_length=MAX_ENTRIES_PER_CALL, description="our keys to delete (repeat)"),
    ] = None,
    delete_all: Annotated[
        bool, Query(alias="all", description="delete every entry of this kind")
    ] = False,
    body: Annotated[MappingDelete | None, Body()] = None,
) -> MappingDeleteOut:
    connection_or_404(rt, connection_id)
    wanted = [*(keys or []), *(body.keys if body else [])]
    if wanted and delete_all:
        raise Unprocessable("give keys or all=true, not both")
    if not wanted and not delete_all:
        raise Unprocessable(
            "name the keys to delete",
            hint='pass ?keys=A&keys=B or a JSON body {"keys": [...]}; '
            "?all=true deletes every entry of this kind",
        )
    deleted = await service.delete_entries(session, kind, connection_id, wanted or None)
    return MappingDeleteOut(deleted=deleted)
