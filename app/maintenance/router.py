"""/api/v1/connections/{id}/maintenance-windows: the connection's windows (config file and
API), the one open now and the next; operators add and delete the API's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from app.api.deps import OperatorActor, RuntimeDep, SessionDep
from app.api.params import id_path
from app.audit.service import record_action
from app.configuration.maintenance import MaintenanceWindow
from app.maintenance import service
from app.maintenance.schemas import MaintenanceWindowOut, MaintenanceWindowsOut

router = APIRouter(tags=["maintenance"])

ConnectionId = Annotated[str, Path(description="connection id from the config")]
WindowId = Annotated[int, id_path("window id (GET lists them)")]
_PATH = "/connections/{connection_id}/maintenance-windows"
_NOT_FOUND: dict[int | str, dict[str, str]] = {404: {"description": "no such connection"}}
_FORBIDDEN: dict[int | str, dict[str, str]] = {403: {"description": "needs an operator key"}}


@router.get(
    _PATH,
    summary="A connection's maintenance windows",
    description="Its windows from the config file (id null: change them there) and from "
    "this API, the window open now and the next one. While a window is open, deliveries to "
    "the connection wait without using attempts and go out when it ends; its polls are "
    "skipped; webhooks from it are still accepted.",
    responses=_NOT_FOUND,
)
async def list_windows(
    connection_id: ConnectionId, session: SessionDep, rt: RuntimeDep
) -> MaintenanceWindowsOut:
    return await service.list_windows(session, rt, connection_id)


@router.post(
    _PATH,
    status_code=201,
    summary="Add a maintenance window",
    description="Once: `from` and `to` are date-times with an offset (or a `timezone`). "
    'Every week: `every` names the days, `from`/`to` are times of day ("02:00") in '
    "`timezone` (a `to` not after `from` ends the next day). Every process honours it from "
    "its next claim; 422 names what is wrong (e.g. a window that ends before it starts).",
    responses={
        **_NOT_FOUND,
        **_FORBIDDEN,
        409: {"description": "the connection has too many windows; delete ended ones"},
    },
)
async def add_window(
    connection_id: ConnectionId,
    window: MaintenanceWindow,
    session: SessionDep,
    rt: RuntimeDep,
    actor: OperatorActor,
) -> MaintenanceWindowOut:
    out = await service.add_window(session, rt, connection_id, window, actor.name)
    await record_action(
        session,
        actor,
        "maintenance.add",
        f"connection:{connection_id}",
        out.model_dump(mode="json"),
    )
    return out


@router.delete(
    _PATH + "/{window_id}",
    summary="Delete a maintenance window added through the API",
    description="What waited for it goes out at once, unless another window still holds "
    "the connection. A window of the config file is changed in the file.",
    responses={404: {"description": "no such connection or window"}, **_FORBIDDEN},
)
async def delete_window(
    connection_id: ConnectionId,
    window_id: WindowId,
    session: SessionDep,
    rt: RuntimeDep,
    actor: OperatorActor,
) -> MaintenanceWindowsOut:
    out = await service.delete_window(session, rt, connection_id, window_id)
    await record_action(
        session, actor, "maintenance.delete", f"connection:{connection_id}", {"id": window_id}
    )
    return out
