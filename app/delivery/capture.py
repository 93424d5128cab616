"""Record the HTTP exchanges a connector makes during one attempt, with secrets redacted.

The shared httpx client carries event hooks that append to a context-local list while an
attempt is running; connectors stay unaware of it.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

MAX_BODY_CHARS = 4000
_SENSITIVE_HEADERS = {
    "authorization",
    "cookie",
    "set-cookie",
    "x-shopify-access-token",
    "x-auth-token",
    "x-api-key",
    "proxy-authorization",
}
_SECRET_QUERY = re.compile(r"(?i)((?:token|secret|signature|password|key)=)[^&]+")

_current: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "http_exchanges", default=None
)


@contextmanager
def capture_exchanges() -> Iterator[list[dict[str, Any]]]:
    exchanges: list[dict[str, Any]] = []
    token = _current.set(exchanges)
    try:
        yield exchanges
    finally:
        _current.reset(token)


def _headers(headers: httpx.Headers) -> dict[str, str]:
    return {k: ("***" if k.lower() in _SENSITIVE_HEADERS else v) for k, v in headers.items()}


def _body(content: bytes) -> str:
    text = content.decode("utf-8", errors="replace")
    return text if len(text) <= MAX_BODY_CHARS else text[:MAX_BODY_CHARS] + "…(truncated)"


async def _on_request(request: httpx.Request) -> None:
    exchanges = _current.get()
    if exchanges is None:
        return
    body = request.content if isinstance(request.stream, httpx.ByteStream) else b""
    exchanges.append(
        {
            "request": {
                "method": request.method,
                "url": _SECRET_QUERY.sub(r"\1***", str(request.url)),
                "headers": _headers(request.headers),
                "body": _body(body),
            }
        }
    )


async def _on_response(response: httpx.Response) -> None:
    exchanges = _current.get()
    if not exchanges:
        return
    await response.aread()
    exchanges[-1]["response"] = {
        "status": response.status_code,
        "headers": _headers(response.headers),
        "body": _body(response.content),
    }


def make_http_client(timeout_seconds: float = 30.0, **kwargs: Any) -> httpx.AsyncClient:
    """The one shared httpx client of a process."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds)),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        event_hooks={"request": [_on_request], "response": [_on_response]},
        **kwargs,
    )
