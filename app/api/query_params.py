"""Unknown query parameters on /api/v1 are a 422, not silently ignored.

``?stauts=dead`` used to list every delivery, and a bulk action built on such a list acts on
far more than its operator meant. One dependency of the /api/v1 routers compares what the
request sends with what the matched route declares (its own parameters and those of its
dependencies) and refuses the rest, naming the unknown ones and the ones the route takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from pydantic import BaseModel

from app.errors import Unprocessable

API_PREFIX = "/api/v1/"
_ALLOWED: dict[int, frozenset[str]] = {}  # by id(route): routes live as long as the app


def declared_query_params(dependant: Dependant) -> frozenset[str]:
    """The query parameter names a route reads, through all its dependencies."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        for field in current.query_params:
            model = field.field_info.annotation
            if isinstance(model, type) and issubclass(model, BaseModel):  # Query() model
                names.update(f.alias or name for name, f in model.model_fields.items())
            else:
                names.add(field.alias)
        pending.extend(current.dependencies)
    return frozenset(names)


def _matched(scope: Mapping[str, Any]) -> tuple[Any, Dependant, str] | None:
    """The matched route as included (its dependencies and whole path template) if FastAPI
    says, else the route itself."""
    fastapi_scope = scope.get("fastapi")
    context = (
        fastapi_scope.get("effective_route_context") if isinstance(fastapi_scope, Mapping) else None
    )
    for candidate in (context, scope.get("route")):
        dependant = getattr(candidate, "dependant", None)
        if isinstance(dependant, Dependant):
            return candidate, dependant, str(getattr(candidate, "path_format", ""))
    return None


async def reject_unknown_query_params(request: Request) -> None:
    """A dependency of the /api/v1 routers (never the webhook route: webhooks may carry
    anything, and resolving it cost ~10% of a webhook's CPU); acts on /api/v1 paths only."""
    matched = _matched(request.scope)
    if not request.scope.get("path", "").startswith(API_PREFIX) or matched is None:
        return
    route, dependant, path = matched
    allowed = _ALLOWED.get(id(route))
    if allowed is None:
        allowed = _ALLOWED[id(route)] = declared_query_params(dependant)
    unknown = sorted({name for name in request.query_params if name not in allowed})
    if unknown:
        takes = ", ".join(sorted(allowed)) if allowed else "no query parameters"
        raise Unprocessable(
            f"unknown query parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
            hint=f"{path} takes {takes}",
        )
