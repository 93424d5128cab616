"""HMAC signatures of webhooks: compute, compare in constant time, check the timestamp.

Every failure is a ``kernel.errors.SignatureError`` (a 401) whose message says which check
failed; hostile input (non-ASCII signatures, odd timestamps) is a bad signature, never a
crash: ``hmac.compare_digest`` raises TypeError for a ``str`` with non-ASCII characters,
so both sides are compared as bytes, and a timestamp must be ASCII digits (``'²'.isdigit()``
is True, ``int('٣')`` is 3).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Literal, TypeVar

from kernel.canonical.common import shown
from kernel.errors import SignatureError

Algorithm = Literal["sha256", "sha1"]
Encoding = Literal["hex", "base64"]
_DIGESTS = {"sha256": hashlib.sha256, "sha1": hashlib.sha1}
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")  # ASCII digits only, and no absurd lengths
K = TypeVar("K")
R = TypeVar("R")


def _key(secret: str | bytes) -> bytes:
    return secret if isinstance(secret, bytes) else secret.encode("utf-8")


def compute(
    secret: str | bytes,
    message: bytes,
    *,
    algorithm: Algorithm = "sha256",
    encoding: Encoding = "hex",
) -> str:
    """The HMAC of ``message`` keyed with ``secret`` (text is UTF-8), as hex or base64."""
    digest = hmac.new(_key(secret), message, _DIGESTS[algorithm]).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode("ascii")


def _bytes(value: str) -> bytes:
    # surrogatepass: a lone surrogate (from a mis-decoded header) is data, not an error
    return value.encode("utf-8", "surrogatepass")


def same(expected: str, given: str) -> bool:
    """Constant-time equality of two signatures; a non-ASCII ``given`` simply differs."""
    return hmac.compare_digest(_bytes(expected), _bytes(given))


def matches_any(expected: str, offered: Iterable[str]) -> bool:
    """Whether any of ``offered`` is ``expected``; every entry is compared (no early exit),
    so the timing says nothing about which one matched (secret rotation sends several)."""
    matched = False
    for entry in offered:
        matched |= same(expected, entry)
    return matched


def verify_hmac(
    secret: str | bytes,
    message: bytes,
    given: str | None,
    *,
    header: str,
    algorithm: Algorithm = "sha256",
    encoding: Encoding = "hex",
    prefix: str = "",
    signed: str = "the body",
) -> None:
    """Raise SignatureError unless ``given`` is ``prefix`` + the HMAC of ``message``.

    ``header`` names where the signature came from and ``signed`` what it covers, for the
    messages. The raw bytes are what the sender signed: re-serialised JSON would not match.
    """
    if not secret:
        raise SignatureError("no webhook secret is configured, so no signature can match")
    if given is None or not given.strip():
        raise SignatureError(f"missing {header} header")
    expected = prefix + compute(secret, message, algorithm=algorithm, encoding=encoding)
    if not same(expected, given.strip()):
        raise SignatureError(f"{header} does not match {signed}")


def verify_with_any(keys: Sequence[K], check: Callable[[K], R]) -> R:
    """``check`` with each key in turn: the current secret first, then one being rotated out
    (a connection's ``previous_webhook_secret``, accepted for verification only while it is
    configured). The first that passes wins; when none does, the current key's error."""
    first: SignatureError | None = None
    for key in keys:
        try:
            return check(key)
        except SignatureError as exc:
            first = first or exc
    raise first or SignatureError("no webhook secret is configured, so no signature can match")


def require(headers: dict[str, str | None], *, scheme: str) -> dict[str, str]:
    """The values of headers that must all be present (and non-empty); SignatureError names
    the missing ones, e.g. ``missing header(s): webhook-id (Standard Webhooks)``."""
    missing = [name for name, value in headers.items() if not value]
    if missing:
        raise SignatureError(f"missing header(s): {', '.join(missing)} ({scheme})")
    return {name: value for name, value in headers.items() if value}


def check_timestamp(
    raw: str | None,
    *,
    header: str,
    tolerance_seconds: float,
    now: float | None = None,
) -> int:
    """The unix seconds in ``raw`` if they lie within ``tolerance_seconds`` of ``now``.

    That window is what makes a captured request useless later (replay protection). The
    tolerance must be a finite number of seconds: NaN or infinity would accept a signature
    of any age, so they refuse every one instead.
    """
    if raw is None:
        raise SignatureError(f"missing {header} header")
    value = raw.strip()
    if not _UNIX_SECONDS.fullmatch(value):
        raise SignatureError(
            f"{header} must be unix seconds (an integer of ASCII digits), not {shown(raw)}"
        )
    timestamp = int(value)
    age = (time.time() if now is None else now) - timestamp
    if not (math.isfinite(tolerance_seconds) and tolerance_seconds >= 0):
        raise SignatureError(
            f"{header} is {int(abs(age))} s away from our clock, and the tolerance "
            f"{tolerance_seconds!r} is not a finite number of seconds: every signature is "
            "refused until the connection's option is fixed"
        )
    if abs(age) <= tolerance_seconds:
        return timestamp
    off = f"{header} is {int(abs(age))} s away from our clock (tolerance {tolerance_seconds:g} s)"
    if age > 0:
        raise SignatureError(
            f"{off}: {int(age)} s old, over the {tolerance_seconds:g} s tolerance; a replay, or "
            "the sender's clock is behind (sign with the current time)"
        )
    raise SignatureError(
        f"{off}: {int(-age)} s in the future, over the {tolerance_seconds:g} s tolerance; the "
        "sender's clock is ahead (check its NTP)"
    )
