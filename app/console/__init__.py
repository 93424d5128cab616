"""The operator console at /console: server-rendered pages over the operator API's code."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.console.pages import HERE, PREFIX


def install_console(app: FastAPI) -> None:
    from app.console.router import router

    app.include_router(router, prefix=PREFIX)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")
