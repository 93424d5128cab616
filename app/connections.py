"""Configured connections → connector instances: the options and credentials a connector
declares are validated with its own models and handed over as ``ConnectionSettings``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from connectors.registry import connector_types
from kernel.contract import ConcurrencyLimiter, ConnectionSettings, Connector, TokenStore

if TYPE_CHECKING:  # app.config builds connectors (check-config) through this module
    from app.config import ConnectionConfig


def settings_for(
    conn: ConnectionConfig,
    timeout_seconds: float = 30.0,
    *,
    tokens: TokenStore | None = None,
    limiter: ConcurrencyLimiter | None = None,
) -> ConnectionSettings:
    """Validate ``conn``'s options and credentials (ValidationError if they do not fit).
    ``tokens``: where its OAuth tokens live (the runtime's database store; None without a
    database, as in check-config); ``limiter``: the runtime's concurrency slots (shared
    through Redis by every worker process)."""
    cls = connector_types()[conn.type]
    secrets = {key: value.get_secret_value() for key, value in conn.credentials.items()}
    return ConnectionSettings(
        id=conn.id,
        type=conn.type,
        base_url=conn.base_url,
        options=cls.Options.model_validate(conn.options),
        credentials=cls.Credentials.model_validate(secrets),
        timeout_seconds=timeout_seconds,
        tokens=tokens,
        limiter=limiter,
    )


def build_connector(
    conn: ConnectionConfig,
    http: httpx.AsyncClient,
    timeout_seconds: float = 30.0,
    *,
    tokens: TokenStore | None = None,
    limiter: ConcurrencyLimiter | None = None,
) -> Connector:
    settings = settings_for(conn, timeout_seconds, tokens=tokens, limiter=limiter)
    return connector_types()[conn.type](settings, http)
