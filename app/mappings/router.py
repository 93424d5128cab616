"""/api/v1/mappings/{kind}/{connection_id}: read, add and delete mapping entries.

Adding entries is how an operator unblocks parked deliveries, so a PUT releases every parked
delivery to the connection whose missing mappings now all exist, in the same transaction
(they are queued once it commits). Mapping tables are often kept in spreadsheets, hence CSV
export and import: the export keeps formulas from running (a leading ``'``), the import is
checked as a whole, then stored in batches of its own transactions (with its progress
streamed on request) and releases what it unblocked at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from app.api.deps import OperatorActor, RuntimeDep, SessionDep
from app.audit.actor import Actor
from app.audit.service import record_action
from app.db import transaction
from app.delivery.actions import release_parked
from app.errors import PayloadTooLarge, Unprocessable
from app.mappings import service
from app.mappings.schemas import (
    MAX_ENTRIES_PER_CALL,
    MappingDelete,
    MappingDeleteOut,
    MappingEntryOut,
    MappingImportOut,
    MappingImportProgress,
    MappingPut,
    MappingPutOut,
)
from app.ops.connections import connection_or_404
from app.ops.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, decode_cursor, page_of
from app.runtime import Runtime
from kernel.mappings import MAPPING_KINDS, MappingKind

router = APIRouter(prefix="/mappings", tags=["mappings"])

# an unknown kind is a 422 that lists the known ones (a typo never reads an empty table)
Kind = Annotated[MappingKind, Path(description=f"mapping kind: {', '.join(MAPPING_KINDS)}")]
ConnectionId = Annotated[str, Path(description="connection id from the config")]

_NOT_FOUND: dict[int | str, dict[str, str]] = {404: {"description": "unknown connection"}}
_WRITE: dict[int | str, dict[str, str]] = {
    **_NOT_FOUND,
    403: {"description": "needs an operator key"},
}

AUDITED_ENTRIES = 100  # an audit row lists this many entries of a change; the count says all


def _progress_schema() -> dict[str, Any]:
    """The NDJSON line's JSON Schema, its models referred to where OpenAPI keeps them
    (a nested ``$defs`` is not resolvable from the document: ReDoc refused the page)."""
    schema = MappingImportProgress.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)  # MappingImportOut is a component already (the 200 model)
    return schema


def _target(kind: str, connection_id: str) -> str:
    return f"mapping:{kind}/{connection_id}"


def _listed(entries: dict[str, str]) -> dict[str, object]:
    shown = dict(sorted(entries.items())[:AUDITED_ENTRIES])
    return {"count": len(entries), "shown": shown}


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
    responses=_WRITE,
)
async def put_mappings(
    kind: Kind,
    connection_id: ConnectionId,
    body: Annotated[
        MappingPut,
        Body(
            openapi_examples={
                "SKUs to NetSuite item ids": {
                    "value": {"entries": {"TSHIRT-RED-M": "1042", "TSHIRT-RED-L": "1043"}}
                },
                "a payment gateway": {"value": {"entries": {"shopify_payments": "7"}}},
            }
        ),
    ],
    session: SessionDep,
    rt: RuntimeDep,
    actor: OperatorActor,
) -> MappingPutOut:
    connection_or_404(rt, connection_id)
    updated = await service.upsert_entries(session, kind, connection_id, body.entries)
    released = await release_parked(session, rt, connection_id)
    details = {"entries": _listed(body.entries), "released_deliveries": released}
    await record_action(session, actor, "mapping.put", _target(kind, connection_id), details)
    return MappingPutOut(updated=updated, released_deliveries=released)


@router.delete(
    "/{kind}/{connection_id}",
    summary="Delete mapping entries",
    description="Deletes the entries named in `keys` (query, repeated, or JSON body "
    '`{"keys": [...]}`). Deleting every entry of the kind needs `?all=true`, so an empty '
    "filter never wipes a table by accident. Deliveries already sent are not affected; "
    "later ones that need a deleted key will park.",
    responses=_WRITE,
)
async def delete_mappings(
    kind: Kind,
    connection_id: ConnectionId,
    session: SessionDep,
    rt: RuntimeDep,
    actor: OperatorActor,
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
    asked = {"all": True} if delete_all else {"keys": sorted(wanted)[:AUDITED_ENTRIES]}
    details = asked | {"count": len(wanted), "deleted": deleted}
    await record_action(session, actor, "mapping.delete", _target(kind, connection_id), details)
    return MappingDeleteOut(deleted=deleted)


# --- CSV ----------------------------------------------------------------------------------

MAX_CSV_BYTES = 8 * 1024 * 1024
NDJSON = "application/x-ndjson"

log = structlog.get_logger("gateway.mappings")


async def _read_csv_body(request: Request) -> bytes:
    too_large = PayloadTooLarge(
        f"the CSV is over {MAX_CSV_BYTES // (1024 * 1024)} MiB, nothing was stored",
        hint="split it into several files and import them one after the other "
        "(without replace=true)",
    )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_CSV_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_CSV_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


@router.get(
    "/{kind}/{connection_id}/export",
    summary="Export mapping entries as CSV",
    description="Every entry of the kind, ordered by our key, as `text/csv` with the header "
    "`our_key,their_key` (UTF-8, RFC 4180 quoting). Streamed, so any table size fits; the "
    "same file can be imported into another connection. A key a spreadsheet would run as a "
    "formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) is written with a "
    "leading `'`, so it shows as text; the import takes that `'` off again.",
    response_class=StreamingResponse,
    responses={
        **_NOT_FOUND,
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV"},
    },
)
async def export_mappings(
    kind: Kind, connection_id: ConnectionId, rt: RuntimeDep
) -> StreamingResponse:
    connection_or_404(rt, connection_id)
    return StreamingResponse(
        service.export_csv(rt.sessions, kind, connection_id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{kind}-{connection_id}.csv"'},
    )


@router.post(
    "/{kind}/{connection_id}/import",
    summary="Import mapping entries from CSV",
    description="Body: `text/csv` with the header `our_key,their_key` (any column order; "
    "other columns are ignored), UTF-8 (a byte order mark is fine), quoted fields allowed, "
    "blank lines ignored; a leading `'` before a formula start (`'=…`, as the export writes "
    "it) is taken off. The whole file is checked first: a bad file is refused as a whole "
    "(422 naming each line and what is wrong), as is one over "
    f"{MAX_CSV_BYTES // (1024 * 1024)} MiB (413) or over {service.MAX_CSV_ROWS} entries "
    f"(422). Then it is stored {service.IMPORT_BATCH} entries per transaction (the API "
    "stays responsive during a big import), `replace=true` deletes the entries not in the "
    "file (in batches too), and parked deliveries whose mappings now all exist are "
    "released, as with PUT. If it fails half way, what was committed stays; import the "
    f"file again to finish. With `Accept: {NDJSON}` the answer is streamed: a JSON line per "
    "committed batch (`stage`, `done`, `total`), then `stage: done` with the result (or "
    "`stage: failed` with the error).",
    response_model=MappingImportOut,
    responses={
        **_WRITE,
        200: {
            "description": "the result; or, with Accept: application/x-ndjson, the progress",
            "content": {
                NDJSON: {"schema": _progress_schema()},
            },
        },
        413: {"description": "file too large"},
        422: {"description": "the file was refused (nothing was stored)"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "our_key,their_key\nTSHIRT-RED-M,1042\n",
                }
            },
        }
    },
)
async def import_mappings(
    kind: Kind,
    connection_id: ConnectionId,
    request: Request,
    rt: RuntimeDep,
    actor: OperatorActor,
    replace: Annotated[
        bool, Query(description="delete the entries of this kind that are not in the file")
    ] = False,
) -> MappingImportOut | Response:
    connection_or_404(rt, connection_id)
    data = await _read_csv_body(request)
    # parsing 100 000 lines takes a moment: off the event loop, so other requests go on
    entries = await asyncio.to_thread(service.parse_csv, data)
    if replace and not entries:
        raise Unprocessable(
            "the file has no entries; with replace=true it would delete every entry",
            hint=f"to empty the table use DELETE /api/v1/mappings/{kind}/{connection_id}?all=true",
        )
    if NDJSON in request.headers.get("accept", ""):
        return StreamingResponse(
            _import_progress(rt, actor, kind, connection_id, entries, replace),
            media_type=NDJSON,
        )
    return await _import(rt, actor, kind, connection_id, entries, replace)


async def _import(
    rt: Runtime,
    actor: Actor,
    kind: str,
    connection_id: str,
    entries: dict[str, str],
    replace: bool,
    progress: service.ProgressCallback | None = None,
) -> MappingImportOut:
    """The import in its batches; the audit row goes with the last transaction, or, if it
    stops half way, says so (what was committed stays)."""
    target = _target(kind, connection_id)
    asked = {"entries": len(entries), "replace": replace}
    try:
        updated, deleted = await service.import_entries(
            rt.sessions, kind, connection_id, entries, replace=replace, progress=progress
        )
    except Exception as exc:
        await _record_stopped(rt, actor, target, asked | {"stopped": type(exc).__name__})
        raise
    async with transaction(rt.sessions) as session:
        released = await release_parked(session, rt, connection_id)
        done = {"updated": updated, "deleted": deleted, "released_deliveries": released}
        await record_action(session, actor, "mapping.import", target, asked | done)
    return MappingImportOut(updated=updated, deleted=deleted, released_deliveries=released)


async def _record_stopped(rt: Runtime, actor: Actor, target: str, details: dict[str, Any]) -> None:
    try:
        async with transaction(rt.sessions) as session:
            await record_action(session, actor, "mapping.import", target, details)
    except Exception:  # the import's own error is what the caller hears about
        log.exception("the audit row of a stopped import could not be written", target=target)


async def _import_progress(
    rt: Runtime,
    actor: Actor,
    kind: str,
    connection_id: str,
    entries: dict[str, str],
    replace: bool,
) -> AsyncIterator[bytes]:
    """The import, a JSON line per committed batch; the last line says how it ended."""
    lines: asyncio.Queue[MappingImportProgress | None] = asyncio.Queue()

    def report(step: service.ImportProgress) -> None:
        lines.put_nowait(MappingImportProgress(stage=step.stage, done=step.done, total=step.total))

    async def run() -> None:
        try:
            result = await _import(rt, actor, kind, connection_id, entries, replace, report)
            lines.put_nowait(MappingImportProgress(stage="done", result=result))
        except Exception as exc:
            request_id = structlog.contextvars.get_contextvars().get("request_id", "")
            log.error(
                "mapping import failed half way",
                exc_info=exc,
                kind=kind,
                connection_id=connection_id,
            )
            error = {
                "code": "internal_error",
                "message": f"the import stopped ({type(exc).__name__}); the batches before "
                "it are stored: import the file again to finish",
                "request_id": str(request_id),
            }
            lines.put_nowait(MappingImportProgress(stage="failed", error=error))
        finally:
            lines.put_nowait(None)

    task = asyncio.create_task(run())
    try:
        while (line := await lines.get()) is not None:
            yield line.model_dump_json(exclude_none=True).encode() + b"\n"
    finally:
        if not task.done():  # the client went away: stop after the batch in progress
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
