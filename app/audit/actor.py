"""Who acted: an API key (by fingerprint and role) or a connection (an erase request)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def key_fingerprint(key: str) -> str:
    """The first 8 hex digits of the key's SHA-256: enough to tell keys apart, never the key
    (``printf %s "$KEY" | sha256sum | cut -c1-8`` gives an operator theirs)."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Actor:
    name: str  # key:<fingerprint> | connection:<id>
    role: str  # the key's role (operator), or webhook for a connection

    @classmethod
    def api_key(cls, key: str, role: str) -> Actor:
        return cls(f"key:{key_fingerprint(key)}", role)

    @classmethod
    def connection(cls, connection_id: str) -> Actor:
        return cls(f"connection:{connection_id}", "webhook")
