"""The OpenAPI document: one error schema for every error answer, with examples.

Every error the gateway answers has the shape ``app.errors.error_body`` builds:
``{"error": {"code", "message", "hint"?, "problems"?, "request_id"?}}``. Routes declare
their error statuses with a description only; here each 4xx/5xx response of every operation
gets that schema (``Error``) and an example of its status, FastAPI's own validation schema
(``HTTPValidationError``, a shape the gateway never answers) is replaced, and every
operation under /api/v1 declares the 401 and 422 that any of them can answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

API_PREFIX = "/api/v1/"
ERROR_REF = "#/components/schemas/Error"


class Problem(BaseModel):
    field: str = Field(description="where: query.limit, path.kind, body.entries…")
    message: str


class ErrorDetail(BaseModel):
    code: str = Field(
        description="invalid_request (a field is wrong; see problems), unprocessable, "
        "bad_request, unauthorized, forbidden, not_found, conflict, payload_too_large, "
        "request_timeout, http_error (e.g. a method the path does not take), unavailable, "
        "database_unavailable, internal_error"
    )
    message: str = Field(description="what was wrong, naming the field or the resource")
    hint: str | None = Field(default=None, description="what to do next")
    problems: list[Problem] | None = Field(
        default=None, description="invalid_request: each field and what is wrong with it"
    )
    request_id: str | None = Field(
        default=None, description="internal_error: quote it when reporting; it is in the logs"
    )


class Error(BaseModel):
    """Every error answer of the gateway."""

    error: ErrorDetail


def _example(code: str, message: str, hint: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if hint:
        body["hint"] = hint
    return {"error": body | extra}


EXAMPLES: dict[str, dict[str, Any]] = {
    "400": _example(
        "bad_request",
        "the cursor is not valid for this list",
        "pass next_cursor from the previous page unchanged",
    ),
    "401": _example("unauthorized", "missing API key", "send Authorization: Bearer <key>"),
    "403": _example(
        "forbidden",
        "this action needs an operator key",
        "viewer and pii-reader keys can only read",
    ),
    "404": _example("not_found", "no delivery 424242"),
    "409": _example(
        "conflict",
        "delivery 42 is already on its way (status in_flight)",
        "watch GET /api/v1/deliveries/{id} for the outcome",
    ),
    "413": _example(
        "payload_too_large",
        "body is over the 1048576 byte limit",
        "raise GATEWAY_MAX_BODY_BYTES (webhooks) or GATEWAY_MAX_API_BODY_BYTES if such "
        "payloads are legitimate",
    ),
    "422": _example(
        "invalid_request",
        "query.limit: Input should be less than or equal to 500",
        problems=[{"field": "query.limit", "message": "Input should be less than or equal to 500"}],
    ),
    "500": _example(
        "internal_error",
        "the gateway hit an unexpected error while answering this request",
        "retry later; if it persists, report the request id: the error is logged with it",
        request_id="6f1c0d2e9a8b4c7d",
    ),
    "503": _example(
        "database_unavailable",
        "the database is unreachable; nothing was stored",
        "retry after a few seconds (webhook senders retry by themselves)",
    ),
}
_UNKNOWN_QUERY = _example(
    "unprocessable",
    "unknown query parameter: stauts",
    "/api/v1/deliveries takes cursor, destination, entity_key, event_type, flow, limit, "
    "since, source, status, until",
)
_ALWAYS = {
    "401": "missing or unknown API key",
    "422": "invalid parameters (the message names the field) or a query parameter the "
    "operation does not take",
}


def _errors_described(operation: dict[str, Any], under_api: bool) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if under_api:
        for status, description in _ALWAYS.items():
            responses.setdefault(status, {"description": description})
    for status, response in responses.items():
        if status[:1] not in ("4", "5"):
            continue
        content = response.setdefault("content", {})
        media = content.get("application/json")
        if media is None or media.get("schema", {}).get("$ref", "").endswith(
            "/HTTPValidationError"
        ):
            examples: dict[str, Any] = {"example": {"value": EXAMPLES.get(status, EXAMPLES["400"])}}
            if status == "422" and under_api:
                examples["unknown query parameter"] = {"value": _UNKNOWN_QUERY}
            content["application/json"] = {"schema": {"$ref": ERROR_REF}, "examples": examples}


def install_openapi(app: FastAPI) -> None:
    """Build the document once, with the error schema on every error answer."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(
                Error.model_json_schema(ref_template="#/components/schemas/{model}")["$defs"]
            )
            error = Error.model_json_schema(ref_template="#/components/schemas/{model}")
            error.pop("$defs", None)
            schemas["Error"] = error
            for path, operations in spec.get("paths", {}).items():
                for operation in operations.values():
                    _errors_described(operation, path.startswith(API_PREFIX))
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
