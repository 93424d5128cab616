"""``Retry-After`` in seconds or as an HTTP date, with a default and a cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from connectors._kit.retry_after import CAP_SECONDS, retry_after, retry_after_seconds

NOW = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"), [("7", 7.0), (" 120 ", 120.0), ("1.5", 1.5), ("0", 0.0)]
)
def test_delay_seconds(value: str, expected: float) -> None:
    assert retry_after_seconds(value, now=NOW) == expected


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 01 Nov 2026 12:00:30 GMT",  # IMF-fixdate
        "Sunday, 01-Nov-26 12:00:30 GMT",  # obsolete RFC 850
        "Sun Nov  1 12:00:30 2026",  # obsolete asctime
    ],
)
def test_http_dates_in_every_form_count_from_now(value: str) -> None:
    assert retry_after_seconds(value, now=NOW) == 30.0


def test_a_past_date_is_no_wait() -> None:
    past = format_datetime(NOW - timedelta(hours=1), usegmt=True)
    assert retry_after_seconds(past, now=NOW) == 0.0


@pytest.mark.parametrize(
    "value", [None, "", "soon", "-5", "1e3", "inf", "nan", "\u0667", "Sun, 99 Nov 2026 99:99 GMT"]
)
def test_absent_or_unreadable_is_the_default(value: str | None) -> None:
    assert retry_after_seconds(value, now=NOW) == 5.0
    assert retry_after_seconds(value, default=1.0, now=NOW) == 1.0


def test_long_waits_are_capped() -> None:
    assert retry_after_seconds("999999", now=NOW) == CAP_SECONDS
    assert retry_after_seconds("999999", cap=60, now=NOW) == 60
    assert retry_after_seconds("Fri, 01 Nov 2126 12:00:00 GMT", cap=60, now=NOW) == 60


def test_read_from_a_response_or_any_headers() -> None:
    assert retry_after(httpx.Response(429, headers={"Retry-After": "3"})) == 3.0
    assert retry_after({"RETRY-AFTER": "4"}) == 4.0
    assert retry_after({}, default=2.0) == 2.0
