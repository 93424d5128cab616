"""Standard Webhooks signing (https://www.standardwebhooks.com), both directions.

A message is signed with HMAC-SHA256 over ``"{webhook-id}.{webhook-timestamp}.{raw body}"``;
the key is the base64 part of a ``whsec_<base64>`` secret. ``webhook-signature`` carries one
or more space-separated ``v1,<base64 signature>`` entries (several while a secret rotates);
one match is enough. ``webhook-timestamp`` (unix seconds) must lie within a tolerance of
our clock, which is what makes a captured request useless later (replay protection).

The shop's inbound webhooks, the gateway's pushes to the shop and the simulator all use
this module, so both sides agree byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping

from kernel.errors import SignatureError

SECRET_PREFIX = "whsec_"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def secret_key(secret: str) -> bytes:
    """The HMAC key of ``whsec_<base64>`` (the prefix is optional, as the spec's libraries allow).

    ValueError says what is wrong; the secret itself is never echoed.
    """
    encoded = secret.strip()
    if encoded.startswith(SECRET_PREFIX):
        encoded = encoded[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "the signing secret is not 'whsec_' followed by base64 "
            "(generate one with connectors.custom.signing.generate_secret())"
        ) from None
    if not key:
        raise ValueError("the signing secret is empty")
    return key


def generate_secret(size: int = 32) -> str:
    """A fresh random ``whsec_`` secret (``size`` bytes of key)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(size)).decode("ascii")


def signature(secret: str | bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` entry for this message; ``secret`` as text or an already-decoded key."""
    key = secret if isinstance(secret, bytes) else secret_key(secret)
    signed = f"{msg_id}.{timestamp}.".encode("utf-8", "surrogatepass") + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def sign_headers(
    secret: str | bytes, msg_id: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """The three ``webhook-*`` headers for ``body``; ``timestamp`` defaults to now."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: signature(secret, msg_id, ts, body),
    }


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The header ``name`` whatever its case (plain dicts are case-sensitive, HTTP is not)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def verify(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> str:
    """Check the ``webhook-*`` headers of ``body``; the webhook id when they hold.

    SignatureError says which check failed: a missing header, a timestamp that is not unix
    seconds or lies outside the tolerance, or no matching ``v1`` signature.
    """
    msg_id = header(headers, ID_HEADER)
    raw_ts = header(headers, TIMESTAMP_HEADER)
    raw_sigs = header(headers, SIGNATURE_HEADER)
    missing = [
        name
        for name, value in (
            (ID_HEADER, msg_id),
            (TIMESTAMP_HEADER, raw_ts),
            (SIGNATURE_HEADER, raw_sigs),
        )
        if not value
    ]
    if missing or msg_id is None or raw_ts is None or raw_sigs is None:
        raise SignatureError(f"missing header(s): {', '.join(missing)} (Standard Webhooks)")
    timestamp = _timestamp(raw_ts)
    _check_freshness(timestamp, time.time() if now is None else now, tolerance_seconds)
    expected = signature(secret, msg_id, timestamp, body).encode("ascii")
    offered = [entry for entry in raw_sigs.split() if entry.startswith(f"{SIGNATURE_VERSION},")]
    if not offered:
        raise SignatureError(f"{SIGNATURE_HEADER} holds no '{SIGNATURE_VERSION},<base64>' entry")
    # Compare every entry (no early exit) so the timing says nothing about which one matched.
    # Bytes, not str: compare_digest raises TypeError for a str with non-ASCII characters,
    # and a non-ASCII entry simply does not match.
    matched = False
    for entry in offered:
        matched |= hmac.compare_digest(entry.encode("utf-8", "surrogatepass"), expected)
    if not matched:
        raise SignatureError(
            "signature does not match: sign '{webhook-id}.{webhook-timestamp}.{raw body}' "
            "with the base64-decoded part of the whsec_ secret, and send the body unchanged"
        )
    return msg_id


_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")  # ASCII digits only ('²'.isdigit() is True)


def _timestamp(raw: str) -> int:
    value = raw.strip()
    if not _UNIX_SECONDS.fullmatch(value):
        shown = ascii(raw) if len(raw) <= 40 else ascii(raw[:40]) + "…"
        raise SignatureError(
            f"{TIMESTAMP_HEADER} must be unix seconds (an integer of ASCII digits), got {shown}"
        )
    return int(value)


def _check_freshness(timestamp: int, now: float, tolerance: float) -> None:
    age = now - timestamp
    if age > tolerance:
        raise SignatureError(
            f"{TIMESTAMP_HEADER} is {int(age)} s old, over the {int(tolerance)} s tolerance "
            "(a replay, or the sender's clock is behind: sign with the current time)"
        )
    if -age > tolerance:
        raise SignatureError(
            f"{TIMESTAMP_HEADER} is {int(-age)} s in the future, over the {int(tolerance)} s "
            "tolerance (the sender's clock is ahead: check its NTP)"
        )
