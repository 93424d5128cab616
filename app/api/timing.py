"""How long each request took, in ``gateway_http_request_duration_seconds{method,route}``.

A pure ASGI middleware just inside ``RequestContext``: it times the whole answer (body read,
route, response sent), also when the route raises (the 500 is then written outside it). The
route label is the matched template, so label values stay bounded; so does the method (an
unknown one is ``other``).
"""

from __future__ import annotations

import time

from app.api.request_id import ASGIApp, Receive, Scope, Send
from app.errors import route_label
from app.observability.metrics import HTTP_REQUEST_SECONDS

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestTiming:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            method = scope.get("method", "")
            HTTP_REQUEST_SECONDS.labels(
                method if method in _METHODS else "other", route_label(scope)
            ).observe(time.perf_counter() - started)
