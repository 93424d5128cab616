"""Every request gets an id, every answer carries it, and no exception escapes as plain text.

One pure ASGI middleware, outermost, for every route:

- the request id is the caller's ``X-Request-ID`` when it is sane (1-128 of letters, digits,
  ``.``, ``_``, ``-``, ``:``), else a new one; it is bound to structlog's context (every log
  line of the request carries ``request_id``), kept in ``request.state.request_id`` and
  echoed in the response's ``X-Request-ID``;
- an unexpected exception becomes the JSON 500 of ``app.errors.internal_error_response``
  (logged once with its traceback, never re-raised to be logged again by the server); if
  the response had already started (a stream), it is logged and the connection cut short;
- every 5xx answer is counted in ``gateway_http_errors_total{route,status}``;
- a URL with a NUL character is refused with 400 before any route sees it: no id, key or
  filter is ever legitimately one, and Postgres refuses NUL in text (a 500 otherwise).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog
from fastapi.responses import JSONResponse

from app.errors import error_body, internal_error_response, route_label
from app.observability.metrics import HTTP_ERRORS

log = structlog.get_logger("gateway.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_HEADER = b"x-request-id"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def new_request_id() -> str:
    return uuid.uuid4().hex


def incoming_request_id(scope: Scope) -> str | None:
    """The caller's X-Request-ID if it is sane (so it cannot forge log lines or headers)."""
    for name, value in scope.get("headers", ()):
        if name.lower() == _HEADER:
            text = bytes(value).decode("latin-1").strip()
            return text if _SANE_ID.fullmatch(text) else None
    return None


def _has_nul(scope: Scope) -> bool:
    query = bytes(scope.get("query_string", b""))
    return "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query


class RequestContext:
    """Request id, catch-all error answer and 5xx metrics, around the whole app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope) or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        header = (_HEADER, request_id.encode("ascii"))
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _HEADER]
                message = {**message, "headers": [*headers, header]}
                status = int(message["status"])
                if status >= 500:
                    HTTP_ERRORS.labels(route=route_label(scope), status=str(status)).inc()
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            if _has_nul(scope):
                refused = JSONResponse(
                    error_body(
                        "bad_request",
                        "the URL contains a NUL character",
                        "remove %00 from the path and the query string",
                    ),
                    400,
                )
                await refused(scope, receive, send_with_id)
                return
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:  # the catch-all: whatever a route did not expect
                method, path = scope.get("method", ""), scope.get("path", "")
                if started:
                    # the status line is out (a stream broke): all that is left is to log
                    # it and let the server cut the connection short
                    HTTP_ERRORS.labels(route=route_label(scope), status="500").inc()
                    log.error(
                        "unhandled error after the response started; connection cut short",
                        exc_info=exc,
                        method=method,
                        path=path,
                        route=route_label(scope),
                        error=type(exc).__name__,
                    )
                    return
                response = internal_error_response(
                    exc,
                    request_id=request_id,
                    method=method,
                    path=path,
                    route=route_label(scope),
                )
                await response(scope, receive, send_with_id)
