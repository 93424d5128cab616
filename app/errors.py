"""The gateway's error hierarchy and its one HTTP handler.

Every error a client can cause maps to a status and a JSON body that says what was wrong and
what to do next: ``{"error": {"code": ..., "message": ..., "hint": ...}}``.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger("gateway.errors")

# How long a client should wait before retrying while the database is unreachable.
DATABASE_RETRY_AFTER_SECONDS = 5


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
