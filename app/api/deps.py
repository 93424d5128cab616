"""Request dependencies: the runtime, the one transaction per request, the API key role.

Roles: ``viewer`` reads with personal data masked, ``pii-reader`` reads with personal data,
``operator`` reads with personal data and acts. ``require_viewer`` lets every role read;
``PiiDep`` tells a read endpoint whether the caller may see personal data.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.actor import Actor
from app.db import transaction
from app.errors import Forbidden, Unauthorized
from app.runtime import Runtime
from app.settings import Role

# roles that see personal data (e-mails, phones, names, addresses) in what the API returns
PII_ROLES: frozenset[str] = frozenset({"operator", "pii-reader"})


# Dependencies are coroutines although none awaits: FastAPI runs a plain ``def`` dependency
# in its thread pool, a thread hand-off per request that cost more than the webhook's parsing.
async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def get_session(rt: Annotated[Runtime, Depends(get_runtime)]) -> AsyncIterator[AsyncSession]:
    """One transaction per request: commit when the endpoint returns, then run after-commit work.

    Function scope makes FastAPI finish this (commit) before the response is sent, so a 2xx
    always means the data is durable.
    """
    async with transaction(rt.sessions) as session:
        yield session


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="API key: GATEWAY_API_KEYS=key:role")


def _key_of(request: Request, creds: HTTPAuthorizationCredentials | None) -> tuple[str, Role]:
    keys: dict[str, Role] = request.app.state.api_keys
    if creds is None:
        raise Unauthorized(
            "missing API key",
            hint="send Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    for key, role in keys.items():
        if hmac.compare_digest(key.encode(), creds.credentials.encode()):
            return key, role
    raise Unauthorized(
        "unknown API key",
        hint="check GATEWAY_API_KEYS on the gateway",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _role_of(request: Request, creds: HTTPAuthorizationCredentials | None) -> Role:
    return _key_of(request, creds)[1]


async def require_viewer(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Role:
    return _role_of(request, creds)


def _an_operator(role: Role) -> Role:
    if role != "operator":
        raise Forbidden(
            "this action needs an operator key", hint="viewer and pii-reader keys can only read"
        )
    return role


async def require_operator(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Role:
    return _an_operator(_role_of(request, creds))


async def operator_actor(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Actor:
    """The operator acting (for the audit trail): the key's fingerprint and role, never the
    key itself; 401/403 like ``require_operator``."""
    key, role = _key_of(request, creds)
    return Actor.api_key(key, _an_operator(role))


async def may_see_pii(role: Annotated[Role, Depends(require_viewer)]) -> bool:
    """Whether the caller's key may see personal data (operator, pii-reader); viewers may not."""
    return role in PII_ROLES


ViewerDep = Depends(require_viewer)
OperatorDep = Depends(require_operator)
# an endpoint that changes something takes this instead, and records the action with it
OperatorActor = Annotated[Actor, Depends(operator_actor)]
# True for operator and pii-reader keys: the endpoint shows personal data unmasked
PiiDep = Annotated[bool, Depends(may_see_pii)]
