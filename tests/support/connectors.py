"""Build a real connector from a test's ConnectionConfig, as the runtime does: its options and
credentials validated by the connector's own models (a bad one raises ValidationError)."""

from __future__ import annotations

from typing import TypeVar

import httpx

from app.config import ConnectionConfig
from app.connections import settings_for
from kernel.contract import Connector

C = TypeVar("C", bound=Connector)


def connect(cls: type[C], conn: ConnectionConfig, http: httpx.AsyncClient) -> C:
    timeout = conn.delivery.request_timeout_seconds if conn.delivery else 30.0
    return cls(settings_for(conn, timeout), http)
