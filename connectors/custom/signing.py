"""Standard Webhooks signing (https://www.standardwebhooks.com), both directions.

A message is signed with HMAC-SHA256 over ``"{webhook-id}.{webhook-timestamp}.{raw body}"``;
the key is the base64 part of a ``whsec_<base64>`` secret. ``webhook-signature`` carries one
or more space-separated ``v1,<base64 signature>`` entries (several while a secret rotates);
one match is enough. ``webhook-timestamp`` (unix seconds) must lie within a tolerance of
our clock, which is what makes a captured request useless later (replay protection).

The shop's inbound webhooks, the gateway's pushes to the shop and the simulator all use
this module, so both sides agree byte for byte. The HMAC, the constant-time comparison and
the timestamp check are the connector kit's (``connectors._kit.signatures``), as for every
connector. The ``standardwebhooks`` library does not fit: its tolerance is a fixed five
minutes against the system clock (ours is an option, 1 to 3600 s, and tests set the clock),
it accepts timestamps ``float()`` reads ("1e9", "1800000000.5", non-ASCII digits), it raises
ValueError or binascii.Error instead of a signature error on an entry without a comma or
with bad base64 and UnicodeDecodeError on a body that is not UTF-8, and its messages do not
say which check failed.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections.abc import Mapping

from connectors._kit import signatures
from connectors._kit.headers import header
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
    return f"{SIGNATURE_VERSION},{signatures.compute(key, signed, encoding='base64')}"


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
    found = signatures.require(
        {
            ID_HEADER: header(headers, ID_HEADER),
            TIMESTAMP_HEADER: header(headers, TIMESTAMP_HEADER),
            SIGNATURE_HEADER: header(headers, SIGNATURE_HEADER),
        },
        scheme="Standard Webhooks",
    )
    msg_id = found[ID_HEADER]
    timestamp = signatures.check_timestamp(
        found[TIMESTAMP_HEADER],
        header=TIMESTAMP_HEADER,
        tolerance_seconds=tolerance_seconds,
        now=now,
    )
    expected = signature(secret, msg_id, timestamp, body)
    offered = [e for e in found[SIGNATURE_HEADER].split() if e.startswith(f"{SIGNATURE_VERSION},")]
    if not offered:
        raise SignatureError(f"{SIGNATURE_HEADER} holds no '{SIGNATURE_VERSION},<base64>' entry")
    # every entry is compared (constant time, as bytes: a non-ASCII one simply differs)
    if not signatures.matches_any(expected, offered):
        raise SignatureError(
            "signature does not match: sign '{webhook-id}.{webhook-timestamp}.{raw body}' "
            "with the base64-decoded part of the whsec_ secret, and send the body unchanged"
        )
    return msg_id
