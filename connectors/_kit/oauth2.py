"""OAuth 2 access tokens for connectors: the client-credentials and refresh-token grants.

authlib encodes the token requests (RFC 6749 §4.4 and §6: grant parameters, scope, client
authentication by HTTP Basic, ``client_secret_post`` or none); the requests go out through
the connection's shared httpx client with ``http.send``, so they are captured with the
delivery attempt (redacted: ``client_secret``, ``refresh_token``, ``access_token``) and fail
as typed errors. authlib's own httpx client is a separate ``AsyncClient``; it would bypass
the shared pool and the capture, so only its protocol pieces are used.

Tokens are cached in memory until shortly before they expire (``leeway_seconds``, at most
half the token's lifetime). A refresh is serialised twice: an ``asyncio.Lock`` per token key
within the process (concurrent callers wait for one request), and the ``TokenStore``'s lock
across processes; under both, the store is read again first, so a token another process
just fetched is reused instead of spending a rotating refresh token a second time. Every new
token is saved to the store, with the refresh token it came with (rotated) or the one it was
fetched with.

Errors: a refused refresh token (``invalid_grant``) is a PermanentError saying to
re-authorize the connection; refused client credentials (``invalid_client``,
``unauthorized_client``) one saying to check them; 429, 5xx, timeouts are the usual
RateLimited/TransientError (``http``).
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_token_request

from connectors._kit.http import error_for_status, remote_message, send
from kernel.contract import TokenStore
from kernel.errors import PermanentError

Grant = Literal["client_credentials", "refresh_token"]
AuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]
DEFAULT_LEEWAY_SECONDS = 60.0
DEFAULT_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class OAuth2Settings:
    """One OAuth 2 client as a connector configures it (from its credentials and options)."""

    token_url: str
    client_id: str
    client_secret: str | None = None
    grant: Grant = "client_credentials"
    scope: str | None = None
    # grant "refresh_token": the refresh token the authorization gave (from the config); a
    # rotated one in the store takes its place
    refresh_token: str | None = None
    auth_method: AuthMethod = "client_secret_basic"
    # further token request parameters some servers want (audience, resource…)
    extra: Mapping[str, str] = field(default_factory=dict)
    leeway_seconds: float = DEFAULT_LEEWAY_SECONDS


class MemoryTokenStore:
    """A ``TokenStore`` in this process's memory: tests and the embedded (one-process) mode."""

    def __init__(self) -> None:
        self._tokens: dict[str, dict[str, Any]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def load(self, key: str) -> dict[str, Any] | None:
        token = self._tokens.get(key)
        return dict(token) if token is not None else None

    async def save(self, key: str, token: dict[str, Any]) -> None:
        self._tokens[key] = dict(token)

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        async with self._locks.setdefault(key, asyncio.Lock()):
            yield


# One lock per token key and event loop: every client of a key in this process shares it.
_PROCESS_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _process_lock(key: str) -> asyncio.Lock:
    locks = _PROCESS_LOCKS.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault(key, asyncio.Lock())


def _seconds(value: Any) -> float | None:
    """A lifetime or instant in seconds as JSON gives it (number or digits), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isascii():
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


class OAuth2Tokens:
    """The access token of one OAuth 2 client, fetched and refreshed when needed.

    ``key`` names the token in the store (one per connection and client, e.g.
    ``"<connection id>:oauth2"``). ``clock`` is replaceable in tests.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: OAuth2Settings,
        *,
        store: TokenStore,
        key: str,
        timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
        service: str = "the OAuth token endpoint",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.http = http
        self.settings = settings
        self.store = store
        self.key = key
        self.timeout = timeout
        self.service = service
        self.clock = clock
        self._token: dict[str, Any] | None = None
        self._rejected: str | None = None

    # --- what connectors call ------------------------------------------------------------
    async def access_token(self) -> str:
        """A current access token: the cached one, the store's, or a fresh one."""
        if self._usable(self._token):
            assert self._token is not None
            return str(self._token["access_token"])
        async with _process_lock(self.key):
            if self._usable(self._token):  # another caller refreshed while we waited
                assert self._token is not None
                return str(self._token["access_token"])
            async with self.store.lock(self.key):
                stored = await self.store.load(self.key)
                if not self._usable(stored):
                    stored = await self._fetch(stored)
                    await self.store.save(self.key, stored)
                assert stored is not None
                self._token = stored
                return str(stored["access_token"])

    async def headers(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <access token>"}`` for an API call."""
        access = await self.access_token()
        kind = str((self._token or {}).get("token_type") or "Bearer")
        return {"Authorization": f"{'Bearer' if kind.lower() == 'bearer' else kind} {access}"}

    def invalidate(self, access_token: str) -> None:
        """The API refused ``access_token`` (a 401): the next call fetches a new one, even
        if the token has not expired yet (revoked, or the server's clock differs)."""
        self._rejected = access_token
        if self._token is not None and self._token.get("access_token") == access_token:
            self._token = None

    # --- internals -----------------------------------------------------------------------
    def _usable(self, token: Mapping[str, Any] | None) -> bool:
        if not token or not isinstance(token.get("access_token"), str):
            return False
        if token["access_token"] == self._rejected:
            return False
        expires_at = _seconds(token.get("expires_at"))
        if expires_at is None:
            return True  # no expiry given: used until the API refuses it
        lifetime = _seconds(token.get("expires_in"))
        leeway = self.settings.leeway_seconds
        if lifetime is not None:
            leeway = min(leeway, lifetime / 2)  # a short-lived token is still used a while
        return self.clock() < expires_at - leeway

    def _describe(self) -> str:
        return f"{self.service} ({self.settings.grant} grant at {self.settings.token_url})"

    async def _fetch(self, stored: Mapping[str, Any] | None) -> dict[str, Any]:
        settings = self.settings
        params: dict[str, Any] = dict(settings.extra)
        if settings.scope:
            params["scope"] = settings.scope
        refresh_token: str | None = None
        if settings.grant == "refresh_token":
            refresh_token = (stored or {}).get("refresh_token") or settings.refresh_token
            if not refresh_token:
                raise PermanentError(
                    f"{self._describe()}: no refresh token; authorize the connection and put "
                    "the refresh token it gives in the connection's credentials"
                )
            params["refresh_token"] = refresh_token
        body = prepare_token_request(settings.grant, **params)
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        auth = ClientAuth(settings.client_id, settings.client_secret, settings.auth_method)
        url, headers, body = auth.prepare("POST", settings.token_url, headers, body)
        request = self.http.build_request(
            "POST",
            url,
            headers=headers,
            content=body.encode("utf-8"),
            timeout=self.timeout if self.timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )
        started = self.clock()
        response = await send(
            self.http, request, timeout=self.timeout, describe=self._describe(), check_status=False
        )
        if not response.is_success:
            raise self._refusal(response)
        return self._token_of(response, started, refresh_token)

    def _refusal(self, response: httpx.Response) -> Exception:
        describe = self._describe()
        try:
            answer = response.json()
        except ValueError:
            answer = None
        code = answer.get("error") if isinstance(answer, dict) else None
        said = remote_message(response)
        if response.status_code in (400, 401) and code == "invalid_grant":
            return PermanentError(
                f"{describe} refused the refresh token (HTTP {response.status_code}: {said}); "
                "re-authorize the connection and put the new refresh token in its credentials",
                detail={"status": response.status_code, "error": code},
            )
        if response.status_code in (400, 401) and code in (
            "invalid_client",
            "unauthorized_client",
            "invalid_scope",
        ):
            return PermanentError(
                f"{describe} refused the client (HTTP {response.status_code}: {said}); check "
                "the connection's client_id, client_secret and scope",
                detail={"status": response.status_code, "error": code},
            )
        error = error_for_status(response, describe=describe)
        return error if error is not None else PermanentError(f"{describe}: HTTP {said}")

    def _token_of(
        self, response: httpx.Response, started: float, refresh_token: str | None
    ) -> dict[str, Any]:
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
            raise PermanentError(
                f"{self._describe()} answered without an access_token; is token_url right?"
            )
        token = dict(answer)
        lifetime = _seconds(token.get("expires_in"))
        if lifetime is not None:
            token["expires_at"] = started + lifetime  # counted from the request: safe side
        if not token.get("refresh_token") and refresh_token:
            token["refresh_token"] = refresh_token  # not rotated: the old one stays valid
        return token


__all__ = ["MemoryTokenStore", "OAuth2Settings", "OAuth2Tokens"]
