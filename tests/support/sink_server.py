"""A notification receiver on loopback: a real HTTP server (uvicorn) that records what each
POST carried and can fail the next requests, like a Slack or PagerDuty endpoint that is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.processes import free_port


@dataclass
class SinkServer:
    port: int
    received: list[dict[str, Any]] = field(default_factory=list)  # bodies it took (2xx)
    headers: list[dict[str, str]] = field(default_factory=list)
    refused: int = 0  # requests it answered with an error
    fail_next: int = 0  # answer this many more requests with 503

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/T0-secret-path"

    def statuses(self) -> list[str]:
        return [str(body.get("status")) for body in self.received]


@asynccontextmanager
async def sink_server() -> AsyncIterator[SinkServer]:
    sink = SinkServer(free_port())

    async def hook(request: Request) -> JSONResponse:
        if sink.fail_next > 0:
            sink.fail_next -= 1
            sink.refused += 1
            return JSONResponse({"error": "temporarily unavailable"}, status_code=503)
        sink.received.append(await request.json())
        sink.headers.append(dict(request.headers))
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/hooks/{token}", hook, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=sink.port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the sink server did not start")
    try:
        yield sink
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
