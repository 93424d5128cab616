"""A thin async JSON-RPC client for a Tryton server, over the gateway's shared httpx client.

Protocol (``trytond/protocols/dispatcher.py``, ``wrappers.py``, ``jsonrpc.py``, 8.0):

- every call is ``POST <base_url>/<database>/rpc/`` with ``{"id", "method", "params"}``;
  model methods are ``model.<model name>.<method>`` and their last parameter is the context;
- ``common.db.login`` with ``[login, {"password": …}, language]`` answers ``[user_id,
  session, …]``; later calls carry ``Authorization: Session base64(login:user_id:session)``.
  The session is shared by every call of the connection and renewed once when the server
  answers 401 (expired, or a method that needs a fresh login);
- the answer is ``{"id", "result"}`` or ``{"id", "error"}``: a Tryton exception as
  ``[name, args]`` (``UserError``: message, description, domain; ``UserWarning``: name,
  message, description; ``ConcurrencyException``: message), anything else as
  ``[str(exception), traceback]``.

Failures become the typed errors of ``kernel.errors`` (statuses and the transport by the
connector kit, ``connectors._kit.http``; JSON-RPC errors here):

- no answer, timeouts, 5xx, a locked or unreachable database, concurrent edits →
  TransientError (retry);
- 429, or 503 with ``Retry-After`` → RateLimitedError (wait, not an attempt);
- ``UserError``/``UserWarning`` → PermanentError with Tryton's own message;
- a refused login, or a 401/403 right after a fresh login → PermanentError that says to
  check the credentials; an unknown database → PermanentError naming it.

The password and the session never appear in a message.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from connectors._kit.http import StatusPolicy, error_for_status, send
from connectors.tryton import wire
from connectors.tryton.options import TrytonCredentials
from kernel.errors import PermanentError, TransientError

DEFAULT_RETRY_AFTER_SECONDS = 30.0
# 401/403 are for the caller: the login failed, or the session needs renewing
STATUS_POLICY = StatusPolicy(
    accept=frozenset({401, 403}), default_retry_after=DEFAULT_RETRY_AFTER_SECONDS
)
LANGUAGE = "en"
_MAX_MESSAGE = 500
# server-side failures that are about the moment, not the request
_TRANSIENT_MARKERS = (
    "database is locked",
    "could not serialize",
    "deadlock",
    "lock timeout",
    "statement timeout",
    "canceling statement",
    "connection",
    "operationalerror",
    "too many clients",
)
# context keys of the user preferences that are for the client's display, not the server
_DISPLAY_ONLY = frozenset({"locale", "language_direction", "groups"})

Domain = Sequence[Any]


class TrytonClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        database: str,
        credentials: TrytonCredentials,
        *,
        timeout_seconds: float | None = None,
        company_id: int | None = None,
    ) -> None:
        self.http = http
        self.database = database
        self.url = f"{base_url.rstrip('/')}/{quote(database, safe='')}/rpc/"
        self.credentials = credentials
        self.timeout_seconds = timeout_seconds
        self.company_id = company_id
        self._auth: str | None = None
        self._context: dict[str, Any] = {}
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._fields: dict[str, set[str]] = {}

    # --- model calls -------------------------------------------------------------------
    async def execute(
        self, model: str, method: str, *args: Any, context: Mapping[str, Any] | None = None
    ) -> Any:
        """``model.<model>.<method>(*args, context)`` with the user's context (+ ``context``)."""
        return await self.call(f"model.{model}.{method}", *args, context=context)

    async def call(self, rpc: str, *args: Any, context: Mapping[str, Any] | None = None) -> Any:
        """Any context-taking method (``model.…``, ``wizard.…``, ``report.…``) in the session."""

        def params() -> list[Any]:
            return [*args, {**self._context, **(context or {})}]

        auth = await self._session()
        response = await self._post(rpc, params(), auth)
        if response.status_code == 401:  # the session expired, or the method wants a fresh one
            auth = await self._session(stale=auth)
            response = await self._post(rpc, params(), auth)
        if response.status_code in (401, 403):
            raise PermanentError(
                f"Tryton refused {rpc} for user {self.credentials.username!r} with a fresh "
                f"session (HTTP {response.status_code}); check the credentials and the user's "
                "access rights in Tryton",
                detail={"status": response.status_code},
            )
        return self._result(rpc, response)

    async def search(
        self,
        model: str,
        domain: Domain,
        *,
        offset: int = 0,
        limit: int | None = None,
        order: Sequence[tuple[str, str]] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[int]:
        ids = await self.execute(
            model, "search", list(domain), offset, limit, _order(order), context=context
        )
        return [int(i) for i in ids or []]

    async def search_read(
        self,
        model: str,
        domain: Domain,
        fields: Sequence[str],
        *,
        offset: int = 0,
        limit: int | None = None,
        order: Sequence[tuple[str, str]] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        rows = await self.execute(
            model,
            "search_read",
            list(domain),
            offset,
            limit,
            _order(order),
            list(fields),
            context=context,
        )
        return [dict(r) for r in rows or []]

    async def read(
        self,
        model: str,
        ids: Sequence[int],
        fields: Sequence[str],
        *,
        context: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        if not ids:
            return []
        rows = await self.execute(model, "read", list(ids), list(fields), context=context)
        return [dict(r) for r in rows or []]

    async def create(self, model: str, values: Sequence[Mapping[str, Any]]) -> list[int]:
        ids = await self.execute(model, "create", [dict(v) for v in values])
        if not isinstance(ids, list) or len(ids) != len(values):
            # never unpack a short answer: only typed errors leave the connector
            raise PermanentError(
                f"Tryton answered create on {model} with {shown_answer(ids)} for "
                f"{len(values)} record(s); check the records there, then replay"
            )
        return [int(i) for i in ids]

    async def write(self, model: str, ids: Sequence[int], values: Mapping[str, Any]) -> None:
        if ids:
            await self.execute(model, "write", list(ids), dict(values))

    async def delete(self, model: str, ids: Sequence[int]) -> None:
        if ids:
            await self.execute(model, "delete", list(ids))

    async def button(self, model: str, method: str, ids: Sequence[int]) -> Any:
        """A workflow button (``quote``, ``confirm``, ``cancel``…) on records."""
        return await self.execute(model, method, list(ids))

    async def has_fields(self, model: str, names: Sequence[str]) -> set[str]:
        """Which of ``names`` the model has on this server (modules differ); cached."""
        if model not in self._fields:
            found = await self.execute(model, "fields_get", [])
            self._fields[model] = set(found or {})
        return {n for n in names if n in self._fields[model]}

    async def user_context(self) -> dict[str, Any]:
        await self._session()
        return dict(self._context)

    # --- session -------------------------------------------------------------------------
    async def _session(self, stale: str | None = None) -> str:
        async with self._lock:
            if self._auth is None or self._auth == stale:
                self._auth = await self._login()
                self._context = await self._preferences(self._auth)
            return self._auth

    async def _login(self) -> str:
        creds = self.credentials
        response = await self._post(
            "common.db.login",
            [creds.username, {"password": creds.password.get_secret_value()}, LANGUAGE],
            None,
        )
        if response.status_code in (401, 403):
            raise PermanentError(
                f"Tryton refused the login of user {creds.username!r} to database "
                f"{self.database!r}; check the credentials (username, password)",
                detail={"status": response.status_code},
            )
        result = self._result("common.db.login", response)
        if not isinstance(result, list) or len(result) < 2:
            raise PermanentError(
                f"Tryton answered common.db.login with {type(result).__name__}, not "
                "[user id, session]; is base_url a Tryton server?"
            )
        token = f"{creds.username}:{int(result[0])}:{result[1]}"
        return "Session " + base64.b64encode(token.encode("utf-8")).decode("ascii")

    async def _preferences(self, auth: str) -> dict[str, Any]:
        rpc = "model.res.user.get_preferences"
        response = await self._post(rpc, [True, {}], auth)
        if response.status_code in (401, 403):
            raise PermanentError(
                f"Tryton refused the session it just gave user {self.credentials.username!r} "
                f"(HTTP {response.status_code}); check the credentials"
            )
        prefs = self._result(rpc, response) or {}
        context = {k: v for k, v in dict(prefs).items() if "." not in k and k not in _DISPLAY_ONLY}
        if self.company_id is not None:
            context["company"] = self.company_id
        return context

    # --- transport ---------------------------------------------------------------------
    async def _post(self, method: str, params: list[Any], auth: str | None) -> httpx.Response:
        """One call; 401/403 are returned (the caller renews the session or says why)."""
        body = wire.dumps({"id": next(self._ids), "method": method, "params": params})
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = auth
        request = self.http.build_request(
            "POST",
            self.url,
            content=body,
            headers=headers,
            timeout=httpx.USE_CLIENT_DEFAULT
            if self.timeout_seconds is None
            else self.timeout_seconds,
        )
        response = await send(
            self.http,
            request,
            timeout=self.timeout_seconds,
            describe=f"Tryton at {self.url} ({method})",
            check_status=False,
            timeout_note="; a write is retried as a lookup first, never duplicated",
        )
        if response.status_code == 404:
            raise PermanentError(
                f"Tryton has no database {self.database!r} (HTTP 404 on {method}); check "
                "options.database and base_url"
            )
        error = error_for_status(response, describe=f"Tryton ({method})", policy=STATUS_POLICY)
        if error is not None:
            raise error
        return response

    def _result(self, method: str, response: httpx.Response) -> Any:
        try:
            answer = wire.loads(response.content)
        except ValueError:
            raise PermanentError(
                f"Tryton answered {method} with something that is not JSON (HTTP "
                f"{response.status_code}); is base_url the Tryton server?"
            ) from None
        if not isinstance(answer, dict):
            raise PermanentError(f"Tryton answered {method} with a bare {type(answer).__name__}")
        if "error" in answer and answer["error"] is not None:
            raise error_for(method, answer["error"])
        return answer.get("result")


def _order(order: Sequence[tuple[str, str]] | None) -> list[list[str]] | None:
    return [[name, direction] for name, direction in order] if order else None


def error_for(method: str, error: Any) -> Exception:
    """A JSON-RPC ``error`` payload as the typed error the delivery engine understands."""
    name, args = (
        (error[0], error[1]) if isinstance(error, list) and len(error) >= 2 else (error, "")
    )
    name = str(name)
    if name == "UserError":
        message, description = _parts(args, 0, 1)
        return PermanentError(
            f"Tryton refused {method}: {_joined(message, description)}",
            detail={"tryton_error": name},
        )
    if name == "UserWarning":
        message, description = _parts(args, 1, 2)
        return PermanentError(
            f"Tryton warns on {method} and needs a person to confirm: "
            f"{_joined(message, description)}",
            detail={"tryton_error": name},
        )
    if name == "ConcurrencyException":
        return TransientError(f"Tryton: the record changed meanwhile during {method}; retrying")
    if name == "LoginException":
        (what,) = _parts(args, 0)
        return PermanentError(
            f"Tryton asks for more than a password ({what}) to log in; check the credentials"
        )
    text = _clip(name)
    if any(marker in text.lower() for marker in _TRANSIENT_MARKERS):
        return TransientError(f"Tryton failed on {method}: {text}")
    return PermanentError(f"Tryton failed on {method}: {text}")


def _parts(args: Any, *indexes: int) -> tuple[str, ...]:
    values = list(args) if isinstance(args, list | tuple) else [args]
    return tuple(str(values[i]) if i < len(values) and values[i] else "" for i in indexes)


def _joined(message: str, description: str) -> str:
    text = message if not description else f"{message} ({description})"
    return _clip(text or "no message")


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


__all__ = ["TrytonClient", "error_for"]


def shown_answer(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"
