"""Serving a simulator over HTTP (``python -m simulators.<system>.simulator``)."""

from __future__ import annotations

from typing import Any


def serve(app: Any, *, host: str, port: int, log_level: str, access_log: bool = True) -> None:
    import uvicorn

    # a request a test left hanging (a simulated outage) is cut after a second when the
    # simulator is stopped, instead of holding its shutdown until the harness kills it
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
        timeout_graceful_shutdown=1,
    )
