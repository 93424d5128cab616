"""Unexpected errors: a JSON 500 with a request id, counted, logged once with its traceback.

Before, an exception in a route escaped as Starlette's plain-text "Internal Server Error",
uncounted, and the server logged it on its own terms.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, MutableMapping
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import exc as sa_exc

import app.errors as errors_module
from app.errors import install_error_handlers
from app.mappings import service as mappings_service
from app.ops import deliveries as ops_deliveries
from app.ops import events as ops_events
from tests.api.conftest import OPERATOR, VIEWER, Gateway


class RecordingLog:
    """Stands in for a module's structlog logger; keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        def record(event: str, **fields: Any) -> None:
            self.calls.append((level, event, fields))

        return record


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingLog]:
    log = RecordingLog()
    monkeypatch.setattr(errors_module, "log", log)
    yield log


def errors_counted(route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "gateway_http_errors_total", {"route": route, "status": status}
    )
    return value or 0.0


def _boom(*_: Any, **__: Any) -> Any:
    raise RuntimeError("boom: secret detail")


async def test_an_unexpected_error_is_a_json_500_with_a_request_id(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch, recorded: RecordingLog
) -> None:
    monkeypatch.setattr(ops_deliveries, "list_deliveries", _boom)
    before = errors_counted("/api/v1/deliveries", "500")

    # the in-process client raises what escapes the app: getting an answer proves it did not
    response = await gw.get("/deliveries")

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert error["message"]
    assert "secret detail" not in response.text  # the exception's text stays in the log
    request_id = response.headers["x-request-id"]
    assert error["request_id"] == request_id and len(request_id) >= 16

    assert errors_counted("/api/v1/deliveries", "500") == before + 1

    # logged once, with the exception (its traceback) as a field, and the request id
    assert len(recorded.calls) == 1
    level, _, fields = recorded.calls[0]
    assert level == "error"
    assert isinstance(fields["exc_info"], RuntimeError)
    assert fields["request_id"] == request_id
    assert fields["route"] == "/api/v1/deliveries"
    rendered = structlog.processors.format_exc_info(None, "error", dict(fields))
    line = json.loads(structlog.processors.JSONRenderer()(None, "error", rendered))
    assert "Traceback" in line["exception"] and "boom: secret detail" in line["exception"]


async def test_the_callers_request_id_is_kept_when_sane(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch, recorded: RecordingLog
) -> None:
    monkeypatch.setattr(ops_deliveries, "get_delivery", _boom)
    response = await gw.client.get(
        "/api/v1/deliveries/1", headers={**VIEWER, "X-Request-ID": "lb-4711.a_b:c"}
    )
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "lb-4711.a_b:c"
    assert response.json()["error"]["request_id"] == "lb-4711.a_b:c"
    assert recorded.calls[0][2]["route"] == "/api/v1/deliveries/{delivery_id}"

    for insane in ("x" * 129, "a b", "<script>", "id\tx", ""):
        response = await gw.client.get(
            "/api/v1/deliveries", headers={**VIEWER, "X-Request-ID": insane}
        )
        assert response.headers["x-request-id"] != insane
        assert len(response.headers["x-request-id"]) == 32


async def test_a_database_error_that_is_not_an_outage_is_a_500(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch, recorded: RecordingLog
) -> None:
    def bad_sql(*_: Any, **__: Any) -> Any:
        raise sa_exc.ProgrammingError("SELECT nonsense", {}, Exception("syntax error"))

    monkeypatch.setattr(ops_events, "list_events", bad_sql)
    response = await gw.get("/events")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert len(recorded.calls) == 1


async def test_the_database_being_unreachable_is_still_a_503_and_counted(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*_: Any, **__: Any) -> Any:
        raise sa_exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))

    monkeypatch.setattr(ops_events, "list_events", unreachable)
    before = errors_counted("/api/v1/events", "503")
    response = await gw.get("/events")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    assert response.headers["retry-after"]
    assert response.headers["x-request-id"]
    assert errors_counted("/api/v1/events", "503") == before + 1


async def test_an_error_in_the_middle_of_a_stream_is_logged_not_raised(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_export(*_: Any, **__: Any) -> Any:
        yield "our_key,their_key\r\n"
        raise RuntimeError("the database went away mid-export")

    monkeypatch.setattr(mappings_service, "export_csv", broken_export)
    route = "/api/v1/mappings/{kind}/{connection_id}/export"
    before = errors_counted(route, "500")
    sent: list[dict[str, Any]] = []

    requested = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/v1/mappings/sku/erp/export",
        "raw_path": b"/api/v1/mappings/sku/erp/export",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", OPERATOR["Authorization"].encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("gateway", 80),
    }
    # nothing escapes to the server (which would log it a second time) ...
    await gw.app(scope, receive, send)
    # ... and the body is never completed: the server cuts the connection, so the client
    # sees a broken download instead of a CSV that silently lacks its rest
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert bodies[0]["body"].startswith(b"our_key,their_key")
    assert all(m.get("more_body") for m in bodies)
    assert errors_counted(route, "500") == before + 1


async def test_the_handler_answers_json_outside_the_middleware_too(
    recorded: RecordingLog,
) -> None:
    """The Exception handler serves what fails outside app.api.request_id's middleware."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/fails")
    async def fails() -> None:
        raise RuntimeError("outside")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/fails")
    assert response.status_code == 500
    body = response.json()
    assert body["error"]["code"] == "internal_error"
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    assert len(recorded.calls) == 1
