"""Where connections keep their OAuth tokens: the ``oauth_tokens`` table, shared by every
process (the ``kernel.contract.TokenStore`` behind ``connectors._kit.oauth2.OAuth2Tokens``).

A token is what the token endpoint answered (access token, expiry, the refresh token,
rotated or not) as JSON, Fernet-encrypted when GATEWAY_TOKEN_KEY is set; without a key it
is stored as plain JSON and the first save logs a warning. A stored token this process cannot
read (the key changed or was removed, the row is damaged) counts as absent, with a warning:
the connection fetches a new token, or refreshes with the refresh token of its config.
Encrypted rows are Fernet tokens (base64, never ``{``); plain rows are JSON objects, so a key
set later still reads the plain rows, and each is encrypted when next saved.

``lock(key)`` serialises the refreshes of one token across processes. On PostgreSQL it is a
transaction-level advisory lock taken on a connection of its own and held until the block
ends; it dies with that connection, so a process killed mid-refresh (kill -9, OOM, a lost
host) releases it. On SQLite (one process owns the file) an asyncio lock per key and process
is enough.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
import structlog
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from app.db import transaction
from app.dbutil import upsert
from app.models import OAuthToken, utcnow
from app.settings import Settings
from kernel.errors import TransientError

KEY_MAX_LENGTH = 200  # oauth_tokens.key
# How long a process waits for another one's refresh before giving up with a TransientError
# (the delivery is retried later). A refresh is one token request, bounded by its timeout
# (30 s by default), so a wait this long means the holder is stuck.
LOCK_WAIT_SECONDS = 60.0
# A holder whose lock connection sits idle this long is cut off by the server, which frees
# the lock: a process that hangs without dying (SIGSTOP, a blocked event loop).
LOCK_HOLD_SECONDS = 300.0
_LOCK_NAMESPACE = b"erp-gateway oauth token\0"
_LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout expired

PLAIN_WARNING = (
    "OAuth tokens are stored unencrypted: set GATEWAY_TOKEN_KEY (a Fernet key) to encrypt "
    "them at rest"
)


# SQLite: one lock per token key and event loop, shared by every store of the process.
_PROCESS_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _process_lock(key: str) -> asyncio.Lock:
    locks = _PROCESS_LOCKS.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault(key, asyncio.Lock())


def _log() -> Any:
    # looked up on each (rare) warning, not cached at import: follows the current logging setup
    return structlog.get_logger("gateway.tokens")


def token_cipher(settings: Settings) -> Fernet | None:
    """The cipher of GATEWAY_TOKEN_KEY (Settings has checked it is a Fernet key), or None."""
    if settings.token_key is None:
        return None
    return Fernet(settings.token_key.get_secret_value())


def lock_id(key: str) -> int:
    """The advisory lock of token ``key``: a signed 64-bit number from SHA-256 of the key
    under a prefix of its own, so it does not meet other advisory locks by accident (the
    sweeper's is one fixed number; two token keys sharing a lock would only take turns)."""
    digest = hashlib.sha256(_LOCK_NAMESPACE + key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class DatabaseTokenStore:
    """OAuth tokens in the database, for every connection of a runtime (one per process)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cipher: Fernet | None,
        *,
        lock_wait_seconds: float = LOCK_WAIT_SECONDS,
        lock_hold_seconds: float = LOCK_HOLD_SECONDS,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._lock_wait_seconds = lock_wait_seconds
        self._lock_hold_seconds = lock_hold_seconds
        self._warned_plain = False
        bind = sessions.kw.get("bind")
        self._postgres = bind is not None and bind.dialect.name == "postgresql"

    # --- TokenStore ----------------------------------------------------------------------
    async def load(self, key: str) -> dict[str, Any] | None:
        async with transaction(self._sessions) as session:
            stored = await session.scalar(
                sa.select(col(OAuthToken.token)).where(col(OAuthToken.key) == key)
            )
        if stored is None:
            return None
        try:
            return self._decode(stored)
        except _Unreadable as exc:
            _log().warning(
                f"the stored OAuth token cannot be used: {exc}; treated as absent, so the "
                "connection fetches a new token or refreshes with the refresh token of its "
                "config (if that one was rotated away, re-authorize the connection)",
                key=key,
            )
            return None

    async def save(self, key: str, token: dict[str, Any]) -> None:
        if len(key) > KEY_MAX_LENGTH:
            raise ValueError(f"token key {key[:40]!r}… is longer than {KEY_MAX_LENGTH}")
        stored = json.dumps(token, separators=(",", ":"), sort_keys=True)
        if self._cipher is not None:
            stored = self._cipher.encrypt(stored.encode("utf-8")).decode("ascii")
        elif not self._warned_plain:
            self._warned_plain = True
            _log().warning(PLAIN_WARNING, key=key)
        async with transaction(self._sessions) as session:
            await upsert(
                session,
                OAuthToken,
                {"key": key, "token": stored, "updated_at": utcnow()},
                key=["key"],
            )

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        if not self._postgres:
            async with _process_lock(key):
                yield
            return
        async with self._sessions() as session:
            # This holds a database connection across a remote call (the token request),
            # which the delivery engine never does: a slow remote would drain the pool. Here
            # it is what makes the lock die with a killed process, and it is cheap: a refresh is
            # rare (once per token lifetime), one short request bounded by its timeout, and
            # at most one connection per token key and process waits or holds (the kit's
            # in-process lock queues the other callers without a connection).
            await self._take(session, key)
            try:
                yield
            finally:
                await self._release(session, key)

    # --- internals -----------------------------------------------------------------------
    async def _take(self, session: AsyncSession, key: str) -> None:
        await session.execute(
            sa.select(
                sa.func.set_config("lock_timeout", str(int(self._lock_wait_seconds * 1000)), True),
                sa.func.set_config(
                    "idle_in_transaction_session_timeout",
                    str(int(self._lock_hold_seconds * 1000)),
                    True,
                ),
            )
        )
        try:
            await session.execute(
                sa.select(
                    sa.func.pg_advisory_xact_lock(
                        sa.bindparam("lock_id", lock_id(key), type_=sa.BigInteger())
                    )
                )
            )
        except sa.exc.DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                raise
            await session.rollback()
            raise TransientError(
                f"another process has been refreshing the OAuth token {key!r} for over "
                f"{self._lock_wait_seconds:g} s; trying again later"
            ) from None

    async def _release(self, session: AsyncSession, key: str) -> None:
        """End the lock's transaction (nothing was written on it), which frees the lock. A
        connection the server already closed (LOCK_HOLD_SECONDS) has no lock left to free."""
        try:
            await session.rollback()
        except (sa.exc.DBAPIError, OSError) as exc:
            _log().warning(
                "the OAuth token lock's connection was lost before the refresh ended; the "
                "lock went with it",
                key=key,
                error=" ".join(str(exc).split())[:200],
            )

    def _decode(self, stored: str) -> dict[str, Any]:
        """The token of a stored row; _Unreadable says why there is none."""
        if stored.startswith("{"):
            text = stored  # plain JSON: saved without a key (encrypted when saved next)
        elif self._cipher is None:
            raise _Unreadable("it is encrypted and GATEWAY_TOKEN_KEY is not set")
        else:
            try:
                text = self._cipher.decrypt(stored.encode("ascii")).decode("utf-8")
            except (InvalidToken, UnicodeError):
                raise _Unreadable(
                    "it cannot be decrypted with GATEWAY_TOKEN_KEY (the key changed since it "
                    "was saved?)"
                ) from None
        try:
            token = json.loads(text)
        except ValueError:
            token = None
        if not isinstance(token, dict):
            raise _Unreadable("it is not a JSON object (damaged)")
        return token


class _Unreadable(Exception):
    """A stored token this process cannot use (the message says why)."""


__all__ = ["DatabaseTokenStore", "lock_id", "token_cipher"]
