"""Rendering the console: templates, the answer to an action, and errors as pages.

A page is a template with the signed-in user and the flash of the last action. An action
(POST) answers with a redirect to the page it came from and a flash that says what happened
(Post/Redirect/Get, so a reload never repeats it), or with JSON when the console's script
asked for it (``Accept: application/json``: bulk work in steps, with progress). A domain
error of the services the console calls becomes a page (GET) or a flash (POST); its
transaction was rolled back by the session dependency before it got here.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog
from fastapi import Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.datastructures import URL

from app.console.auth import (
    CSRF_FIELD,
    SignInRequired,
    clear_flash,
    read_flash,
    set_flash,
)
from app.errors import GatewayError

log = structlog.get_logger("gateway.console")

HERE = Path(__file__).parent
PREFIX = "/console"
templates = Jinja2Templates(directory=HERE / "templates")
# the pages load only their own script and styles, are never framed, never cached
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def _age(value: datetime | None) -> str:
    """A timestamp as people read it on a dashboard: how long ago."""
    if value is None:
        return "never"
    seconds = int((datetime.now(UTC) - value).total_seconds())
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


templates.env.filters["age"] = _age
templates.env.filters["when"] = _when


def wants_json(request: Request) -> bool:
    """The console's script asks for JSON (or a JSON-lines stream): answers and errors as
    JSON, never a redirect it would follow blindly."""
    accept = request.headers.get("accept", "")
    return "application/json" in accept or "application/x-ndjson" in accept


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    user = getattr(request.state, "console_user", None)
    shared = {"user": user, "csrf_field": CSRF_FIELD, "prefix": PREFIX}
    shared["flash"] = read_flash(request)
    response = templates.TemplateResponse(
        request, name, {**shared, **context}, status_code=status_code
    )
    clear_flash(request, response)  # shown once
    response.headers.update(SECURITY_HEADERS)
    return response


def back_to(request: Request, wanted: str | None) -> str:
    """Where an action returns: the page it names if that is a console page, else home."""
    if wanted:
        parts = urlsplit(wanted)
        if not parts.scheme and not parts.netloc and parts.path.startswith(f"{PREFIX}/"):
            return wanted
    return f"{PREFIX}/"


def done(
    request: Request,
    back: str | None,
    message: str,
    *,
    kind: str = "ok",
    data: dict[str, Any] | None = None,
) -> Response:
    """The answer to an action that worked: JSON for the script, else a redirect + flash."""
    if wants_json(request):
        return JSONResponse({"message": message, **(data or {})})
    response = RedirectResponse(back_to(request, back), status_code=303)
    set_flash(request, response, kind, message)
    return response


def _sign_in_redirect(request: Request) -> Response:
    target = request.url.path
    if request.url.query:
        target += f"?{request.url.query}"
    login = URL(f"{PREFIX}/login").include_query_params(next=target)
    if wants_json(request):
        return JSONResponse({"error": {"message": "signed out: sign in again"}}, 401)
    return RedirectResponse(str(login), status_code=303)


async def _form_back(request: Request) -> str | None:
    """The page a refused form came from: its ``back`` field, else the Referer's path."""
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        value = (await request.form()).get("back")  # parsed already: the form is cached
        if isinstance(value, str):
            return value
    referer = request.headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return None


async def _error_answer(request: Request, exc: GatewayError) -> Response:
    if wants_json(request):
        body = {"error": {"code": exc.code, "message": exc.message, "hint": exc.hint}}
        return JSONResponse(body, exc.status_code)
    if request.method == "POST":
        back = await _form_back(request)
        message = exc.message + (f" — {exc.hint}" if exc.hint else "")
        response = RedirectResponse(back_to(request, back), status_code=303)
        set_flash(request, response, "error", message)
        return response
    return render(request, "error.html", {"error": exc}, status_code=exc.status_code)


class ConsoleRoute(APIRoute):
    """Console routes: a missing session leads to the sign-in form, a domain error to a
    page or a flash, never to the API's JSON error."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return _sign_in_redirect(request)
            except GatewayError as exc:
                log.info(
                    "console action refused",
                    path=request.url.path,
                    status=exc.status_code,
                    error=exc.message,
                )
                return await _error_answer(request, exc)

        return console_handler
