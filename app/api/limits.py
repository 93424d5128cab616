"""Bounded requests, before any route sees them: size, time, and who is asking.

One ASGI middleware for every route. It reads the whole body itself (bounded: webhooks 2 MiB,
operator API 1 MiB, CSV imports their own cap) within a deadline, and hands the route a body
already in memory, so:

- a body over its limit is refused with 413 as soon as it is known to be (by Content-Length,
  or when the chunks read pass it), without reading the rest;
- a body that trickles in (1 byte/s) is cut off with 408 at the deadline;
- on ``/api/v1`` the API key is checked before a single byte of the body is read, so an
  anonymous client cannot make the process buffer anything;
- a client that disconnects mid-body is logged at info, not as an error.

Roles (viewer, operator, …) are still checked by each route's dependency.
"""

from __future__ import annotations

import asyncio
import hmac
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import structlog

from app.settings import Settings

log = structlog.get_logger("gateway.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_PREFIX = "/api/v1/"
WEBHOOK_PREFIX = "/webhooks/"
CONSOLE_PREFIX = "/console/"  # its CSV import takes the same cap as the API's


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.hint = status, code, message, hint


class _Disconnected(Exception):
    pass


def known_key(keys: dict[str, Any], token: str) -> bool:
    """Whether ``token`` is one of the configured API keys (constant time, any characters)."""
    presented = token.encode("utf-8", "surrogatepass")
    return any(hmac.compare_digest(key.encode(), presented) for key in keys)


class RequestLimits:
    def __init__(self, app: ASGIApp, settings: Settings, api_keys: dict[str, Any]) -> None:
        self.app = app
        self.settings = settings
        self.api_keys = api_keys

    def _limit_for(self, path: str) -> int:
        if path.startswith(WEBHOOK_PREFIX):
            return self.settings.max_body_bytes
        if path.startswith((API_PREFIX, CONSOLE_PREFIX)) and path.rstrip("/").endswith("/import"):
            return self.settings.max_import_body_bytes
        return self.settings.max_api_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        try:
            if path.startswith(API_PREFIX):
                self._check_key(scope)
            body = await self._read_body(scope, receive, self._limit_for(path))
        except _Refused as refused:
            await _answer(send, refused)
            return
        except _Disconnected:
            log.info("client went away before its request body arrived", path=path)
            return

        if path.startswith(API_PREFIX) and _has_nul(body):
            await _answer(
                send,
                _Refused(
                    422,
                    "invalid_request",
                    "the body contains a NUL character (\\u0000), which no field accepts",
                ),
            )
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: only a disconnect can come

        await self.app(scope, replay, send)

    def _check_key(self, scope: Scope) -> None:
        header = _header(scope, b"authorization")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _Refused(
                401, "unauthorized", "missing API key", "send Authorization: Bearer <key>"
            )
        if not known_key(self.api_keys, token.strip()):
            raise _Refused(401, "unauthorized", "unknown API key", "check GATEWAY_API_KEYS")

    async def _read_body(self, scope: Scope, receive: Receive, limit: int) -> bytes:
        declared = _header(scope, b"content-length")
        if declared:
            if not declared.isascii() or not declared.isdigit():
                raise _Refused(400, "bad_request", "Content-Length is not a number")
            if int(declared) > limit:
                raise _too_large(limit)
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.settings.body_read_timeout_seconds):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _Disconnected
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(limit)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise _Refused(
                408,
                "request_timeout",
                f"the request body did not arrive within "
                f"{self.settings.body_read_timeout_seconds:g} s",
                "send the body at once; retry",
            ) from None


# a JSON-escaped NUL: \u0000 not itself escaped (an even run of backslashes before it)
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _has_nul(body: bytes) -> bool:
    """NUL cannot be stored in Postgres text or JSONB: refused here as bad input, not a 500."""
    return b"\x00" in body or (b"u0000" in body and _ESCAPED_NUL.search(body) is not None)


def _too_large(limit: int) -> _Refused:
    return _Refused(
        413,
        "payload_too_large",
        f"body is over the {limit} byte limit",
        "raise GATEWAY_MAX_BODY_BYTES (webhooks) or GATEWAY_MAX_API_BODY_BYTES if such "
        "payloads are legitimate",
    )


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


async def _answer(send: Send, refused: _Refused) -> None:
    error: dict[str, Any] = {"code": refused.code, "message": refused.message}
    if refused.hint:
        error["hint"] = refused.hint
    body = orjson.dumps({"error": error})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        # the rest of an over-long body is not read: the connection cannot be reused
        (b"connection", b"close"),
    ]
    if refused.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": refused.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
