"""What every /api/v1 route promises, checked over every route the app has (a new route is
checked without anyone remembering to): a query parameter it does not take is a 422 that
names it and what the route takes; every list is ``{items, next_cursor}``; every error is
the one ``{"error": {...}}`` shape, declared in the OpenAPI document."""

from __future__ import annotations

import re
import typing
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts

from app.api.openapi import Error, ErrorDetail
from app.main import create_app
from app.ops.pagination import Page
from tests.api.conftest import OPERATOR, VIEWER, Gateway, seed
from tests.conftest import make_config, make_settings

_APP = create_app(make_settings("sqlite+aiosqlite:///:memory:"), make_config())
_ROUTES = [
    route
    for route in iter_route_contexts(_APP.routes)
    if (route.path_format or "").startswith("/api/v1/")
]
GET_ROUTES = sorted(r.path_format for r in _ROUTES if "GET" in (r.methods or ()))
# a list answers a page; a route whose model is a bare list would not say if there is more
LIST_ROUTES = sorted(
    r.path_format
    for r in _ROUTES
    if "GET" in (r.methods or ())
    and isinstance(r.response_model, type)
    and issubclass(r.response_model, Page)
)
# what a route's path parameters take in the test gateway (anything else: 1)
_PATH_VALUES = {"kind": "sku", "connection_id": "erp", "section": "orders"}
_REQUIRED_QUERY = {"/api/v1/search": {"q": "SKU-RED-M"}}


def _url(path: str, **values: str) -> str:
    return re.sub(
        r"{([a-z_]+)(?::path)?}", lambda m: values.get(m[1], _PATH_VALUES.get(m[1], "1")), path
    )


def test_the_conventions_see_the_routes() -> None:
    assert "/api/v1/deliveries" in LIST_ROUTES and "/api/v1/jobs" in LIST_ROUTES
    assert len(GET_ROUTES) >= 25, GET_ROUTES


def test_no_get_route_answers_a_bare_list() -> None:
    bare = [
        r.path_format
        for r in _ROUTES
        if "GET" in (r.methods or ()) and typing.get_origin(r.response_model) is list
    ]
    assert bare == [], "a list answers Page[...] ({items, next_cursor})"


@pytest.mark.parametrize("path", GET_ROUTES)
async def test_an_unknown_query_parameter_is_422_naming_it(gw: Gateway, path: str) -> None:
    answer = await gw.client.get(_url(path), params={"stauts": "dead"}, headers=OPERATOR)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "unprocessable"
    assert error["message"] == "unknown query parameter: stauts"
    assert error["hint"].startswith(f"{path} takes "), error


async def test_the_422_lists_what_the_route_takes_and_known_ones_still_work(gw: Gateway) -> None:
    answer = await gw.get("/deliveries", stauts="dead", limt="5", status="dead")
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["message"] == "unknown query parameters: limt, stauts"
    for name in ("status", "destination", "since", "until", "cursor", "limit"):
        assert name in error["hint"], error["hint"]
    assert (await gw.get("/deliveries", status="dead", limit="5")).status_code == 200


async def test_dry_run_as_a_query_parameter_is_refused_not_a_silent_dry_run(gw: Gateway) -> None:
    """``dry_run`` belongs in the body: ``?dry_run=false`` used to look like a replay and
    quietly do a dry run."""
    dead = await seed(gw.rt, status="dead")
    answer = await gw.write(
        "POST", "/deliveries/replay", params={"dry_run": "false"}, json={"status": "dead"}
    )
    assert answer.status_code == 422, answer.text
    assert "dry_run" in answer.json()["error"]["message"]
    assert await gw.status_of(dead.delivery) == "dead"


async def test_webhooks_still_take_any_query_parameter(gw: Gateway) -> None:
    answer = await gw.client.post("/webhooks/shop?anything=1", content=b"{}")
    assert answer.status_code == 401  # the signature, not the query, is what is checked


@pytest.mark.parametrize("path", LIST_ROUTES)
async def test_every_list_is_items_and_next_cursor(gw: Gateway, path: str) -> None:
    params = _REQUIRED_QUERY.get(path, {})
    answer = await gw.client.get(_url(path), params=params, headers=OPERATOR)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert set(body) == {"items", "next_cursor"}, body
    assert isinstance(body["items"], list)
    assert body["next_cursor"] is None or isinstance(body["next_cursor"], str)


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    ]


async def test_every_operation_is_described_with_one_error_schema(gw: Gateway) -> None:
    spec = (await gw.client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for method, path, operation in _operations(spec):
        assert operation.get("summary") and operation.get("description"), (method, path)
        errors = {s: r for s, r in operation["responses"].items() if s[0] in "45"}
        if path.startswith("/api/v1/"):
            assert {"401", "422"} <= set(errors), (method, path)
        for response in errors.values():
            media = response["content"]["application/json"]
            assert media["schema"] == {"$ref": "#/components/schemas/Error"}, (method, path)
            for example in media["examples"].values():
                Error.model_validate(example["value"])


async def test_the_main_operations_show_examples(gw: Gateway) -> None:
    spec = (await gw.client.get("/openapi.json")).json()
    paths = spec["paths"]

    def param_examples(path: str, name: str) -> dict[str, Any]:
        (param,) = [p for p in paths[path]["get"]["parameters"] if p["name"] == name]
        return dict(param.get("examples") or {})

    assert "#1019" in str(param_examples("/api/v1/search", "q"))
    assert "#1019" in str(param_examples("/api/v1/trace", "q"))
    assert param_examples("/api/v1/deliveries", "status")
    assert param_examples("/api/v1/deliveries", "since")
    replay = paths["/api/v1/deliveries/replay"]["post"]["requestBody"]["content"]
    assert replay["application/json"]["examples"]
    put = paths["/api/v1/mappings/{kind}/{connection_id}"]["put"]["requestBody"]["content"]
    assert put["application/json"].get("examples") or put["application/json"].get("example")


async def test_every_error_answered_has_the_documented_shape(gw: Gateway) -> None:
    """The schema the document declares is the one the gateway answers, for each kind."""
    s = await seed(gw.rt, status="pending")
    answers = [
        await gw.client.get("/api/v1/deliveries"),  # 401
        await gw.client.post(f"/api/v1/deliveries/{s.delivery}/replay", headers=VIEWER),  # 403
        await gw.get("/deliveries/424242"),  # 404
        await gw.write("POST", f"/deliveries/{s.delivery}/replay"),  # 409
        await gw.get("/deliveries", limit="5000"),  # 422, a field
        await gw.get("/deliveries", stauts="dead"),  # 422, an unknown parameter
        await gw.get("/deliveries", cursor="not-a-cursor"),  # 400
        await gw.get("/mappings/skus/erp"),  # 422, an unknown kind
    ]
    assert [a.status_code for a in answers] == [401, 403, 404, 409, 422, 422, 400, 422]
    for answer in answers:
        body = answer.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) <= set(ErrorDetail.model_fields), body
        Error.model_validate(body)


def _runs_on_the_loop(call: Any) -> bool:
    import inspect

    return (
        inspect.iscoroutinefunction(call)
        or inspect.isasyncgenfunction(call)
        or inspect.iscoroutinefunction(type(call).__call__)  # an instance (HTTPBearer)
    )


def test_no_endpoint_or_dependency_runs_in_the_thread_pool() -> None:
    # FastAPI runs a plain ``def`` endpoint or dependency in its thread pool: a thread
    # hand-off per request (the runtime dependency of every webhook cost more CPU than the
    # order's parsing). None of ours blocks, so every one is a coroutine.
    in_pool: set[str] = set()
    for context in iter_route_contexts(_APP.routes):
        dependant = getattr(context.route, "dependant", None)
        if dependant is None:
            continue
        stack = [dependant]
        while stack:
            current = stack.pop()
            stack.extend(current.dependencies)
            if current.call is not None and not _runs_on_the_loop(current.call):
                in_pool.add(
                    f"{context.path_format}: {getattr(current.call, '__qualname__', current.call)}"
                )
    assert not in_pool, sorted(in_pool)
