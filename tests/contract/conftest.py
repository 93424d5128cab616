"""Fixtures of the conformance suite: served remotes, the published event schemas, and the
session's real Tryton server (started only when a Tryton case runs)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi import FastAPI

from tests.contract.harness import Harness, Remote
from tests.support.trytond import shared_server
from tests.tryton import server as srv


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Known connector failures (``Harness.known_failures``) become strict xfails."""
    from tests.contract import harnesses  # noqa: F401  (registers them)
    from tests.contract.harness import HARNESSES

    here = Path(__file__).parent
    for item in items:
        if not item.path.is_relative_to(here):
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        harness = HARNESSES.get(params.get("type_name", ""))
        if harness is None or not harness.known_failures:
            continue
        name = item.name.replace(f"[{harness.type_name}-", "[", 1)
        reason = harness.known_failures.get(name)
        if reason is not None:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


@pytest.fixture(scope="session")
def tryton_server(request: pytest.FixtureRequest) -> srv.TrytonServer:
    """The session's trytond, shared with whoever else asks ``shared_server`` for it."""
    return shared_server(request)


Serve = Callable[[Harness], Awaitable[Remote]]


@pytest.fixture
async def serve(request: pytest.FixtureRequest) -> AsyncIterator[Serve]:
    """``await serve(harness)``: its remote, running until the test ends. Asked for inside the
    test, after the capability checks, so a skipped case starts nothing."""
    async with AsyncExitStack() as stack:

        async def start(harness: Harness) -> Remote:
            needs = {name: request.getfixturevalue(name) for name in harness.fixtures}
            return await stack.enter_async_context(harness.serve(needs))

        yield start


@pytest.fixture(scope="session")
def published_schemas() -> dict[str, Any]:
    """event type → a validator of the JSON Schema ``GET /api/v1/schemas`` publishes."""
    from app.flows.api import router

    app = FastAPI()
    app.include_router(router, prefix="/api/v1")

    async def fetch() -> list[dict[str, Any]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            response = await client.get("/api/v1/schemas")
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    with ThreadPoolExecutor(1) as pool:  # its own event loop, whatever the test's is
        items = pool.submit(asyncio.run, fetch()).result()
    return {
        item["event_type"]: jsonschema_rs.validator_for(item["schema"], validate_formats=True)
        for item in items
    }
