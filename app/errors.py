"""The gateway's error hierarchy and its HTTP handlers.

Every error a client can cause maps to a status and a JSON body that says what was wrong and
what to do next: ``{"error": {"code": ..., "message": ..., "hint": ...}}``. Anything else
(a bug) is a JSON 500 ``{"error": {"code": "internal_error", "message": ...,
"request_id": ...}}`` with the request id in ``X-Request-ID`` too, logged once with its
traceback and counted in ``gateway_http_errors_total``; ``app.api.request_id`` catches it
for every route, the ``Exception`` handler here for what fails outside that middleware.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.observability.metrics import HTTP_ERRORS

log = structlog.get_logger("gateway.errors")

# How long a client should wait before retrying while the database is unreachable.
DATABASE_RETRY_AFTER_SECONDS = 5
REQUEST_ID_HEADER = "X-Request-ID"


class GatewayError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(
        self, message: str, *, hint: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.headers = headers


class BadRequest(GatewayError):
    status_code = 400
    code = "bad_request"


class Unauthorized(GatewayError):
    status_code = 401
    code = "unauthorized"


class Forbidden(GatewayError):
    status_code = 403
    code = "forbidden"


class NotFound(GatewayError):
    status_code = 404
    code = "not_found"


class Conflict(GatewayError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(GatewayError):
    status_code = 413
    code = "payload_too_large"


class Unprocessable(GatewayError):
    status_code = 422
    code = "unprocessable"


class ServiceUnavailable(GatewayError):
    status_code = 503
    code = "unavailable"


def error_body(code: str, message: str, hint: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if hint:
        body["hint"] = hint
    body.update(extra)
    return {"error": body}


def database_unreachable(exc: BaseException) -> bool:
    """A connection-level database failure (down, restarting, pool exhausted), not bad SQL."""
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(
            exc, sa_exc.OperationalError | sa_exc.InterfaceError
        )
    return isinstance(exc, sa_exc.TimeoutError | ConnectionError | TimeoutError | OSError)


def route_label(scope: Mapping[str, Any]) -> str:
    """The matched route's whole template (``/api/v1/deliveries/{delivery_id}``: bounded
    label values), or ``unmatched``.

    FastAPI keeps an included router's own route in ``scope["route"]`` (its path without
    the prefix) and the whole template in its effective route context.
    """
    fastapi_scope = scope.get("fastapi")
    context = (
        fastapi_scope.get("effective_route_context") if isinstance(fastapi_scope, Mapping) else None
    )
    for candidate in (
        getattr(context, "path_format", None),
        getattr(scope.get("route"), "path_format", None),
    ):
        if isinstance(candidate, str) and candidate:
            return candidate
    return "unmatched"


def internal_error_response(
    exc: BaseException, *, request_id: str, method: str, path: str, route: str
) -> JSONResponse:
    """The answer to an unexpected exception: logged once, with its traceback; the client
    gets the request id to quote, never the exception's text."""
    log.error(
        "unhandled error; answered 500",
        exc_info=exc,
        request_id=request_id,
        method=method,
        path=path,
        route=route,
        error=type(exc).__name__,
    )
    return JSONResponse(
        error_body(
            "internal_error",
            "the gateway hit an unexpected error while answering this request",
            "retry later; if it persists, report the request id: the error is logged with it",
            request_id=request_id,
        ),
        500,
        headers={REQUEST_ID_HEADER: request_id},
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(sa_exc.SQLAlchemyError)
    @app.exception_handler(OSError)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if not database_unreachable(exc):
            raise exc
        log.warning(
            "database unreachable; answered 503", path=request.url.path, error=type(exc).__name__
        )
        return JSONResponse(
            error_body(
                "database_unavailable",
                "the database is unreachable; nothing was stored",
                "retry after a few seconds (webhook senders retry by themselves)",
            ),
            503,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )

    @app.exception_handler(GatewayError)
    async def _gateway_error(_: Request, exc: GatewayError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.hint), exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
                "message": err.get("msg", ""),
            }
            for err in exc.errors()
        ]
        summary = "; ".join(f"{p['field'] or 'body'}: {p['message']}" for p in problems)
        return JSONResponse(error_body("invalid_request", summary, problems=problems), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            error_body("http_error", str(exc.detail)),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        # Reached only for what fails outside app.api.request_id's middleware (which answers
        # and counts everything inside it); Starlette's ServerErrorMiddleware calls this.
        request_id = getattr(request.state, "request_id", None) or uuid.uuid4().hex
        route = route_label(request.scope)
        HTTP_ERRORS.labels(route=route, status="500").inc()
        return internal_error_response(
            exc,
            request_id=request_id,
            method=request.method,
            path=request.url.path,
            route=route,
        )
