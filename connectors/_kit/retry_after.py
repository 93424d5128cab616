"""``Retry-After`` (RFC 9110 §10.2.3): how long a remote asks us to wait, in seconds.

The value is either delay-seconds (``120``; a fraction such as ``1.5`` is tolerated) or an
HTTP date (``Sun, 06 Nov 1994 08:49:37 GMT``, and the obsolete RFC 850 and asctime forms),
which counts from now and is 0 once past. Absent or unreadable → ``default``; anything
longer than ``cap`` → ``cap``, so a remote (or a typo in a date) cannot park a delivery for
years.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from connectors._kit.headers import header

DEFAULT_SECONDS = 5.0
CAP_SECONDS = 3600.0
_DELAY = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,6})?")  # ASCII only: no '1e9', 'inf', 'nan'


def retry_after_seconds(
    value: str | None,
    *,
    default: float = DEFAULT_SECONDS,
    cap: float = CAP_SECONDS,
    now: datetime | None = None,
) -> float:
    """Seconds to wait for the header ``value``; ``default`` when absent or unreadable."""
    seconds = _parse(value, now)
    if seconds is None:
        seconds = default
    return min(max(0.0, seconds), cap)


def _parse(value: str | None, now: datetime | None) -> float | None:
    if not value:
        return None
    text = value.strip()
    if _DELAY.fullmatch(text):
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT ("-0000" parses as naive)
        when = when.replace(tzinfo=UTC)
    return (when - (now or datetime.now(UTC))).total_seconds()


def retry_after(
    headers: Mapping[str, str] | httpx.Headers | httpx.Response,
    *,
    default: float = DEFAULT_SECONDS,
    cap: float = CAP_SECONDS,
    now: datetime | None = None,
) -> float:
    """``retry_after_seconds`` of the ``Retry-After`` header of a response (or headers)."""
    if isinstance(headers, httpx.Response):
        headers = headers.headers
    return retry_after_seconds(header(headers, "Retry-After"), default=default, cap=cap, now=now)
