"""Bounded request parameters shared by the operator API.

Everything a client sends ends up in a SQL statement or in date arithmetic, so it is bounded
where it is parsed: ids to the database's 64-bit integers, dates to a sane range (as UTC),
strings without NUL characters (Postgres refuses them in text). Out of bounds is a 422 that
names the parameter, never a 500 from the driver.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import AfterValidator, Field

INT64_MAX = 2**63 - 1
EARLIEST_YEAR = 2000
LATEST_YEAR = 2100


def id_path(description: str) -> Any:
    """A path id: a positive 64-bit integer (the ids the database hands out)."""
    return Path(ge=1, le=INT64_MAX, description=description)


# ids inside JSON bodies (bulk replay, bulk decisions)
BodyId = Annotated[int, Field(ge=1, le=INT64_MAX)]


def utc_in_range(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (no offset means UTC), within the sane range."""
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not EARLIEST_YEAR <= utc.year <= LATEST_YEAR:
        raise ValueError(
            f"must be a date between {EARLIEST_YEAR}-01-01 and {LATEST_YEAR}-12-31 (UTC)"
        )
    return utc


# A query datetime: ISO-8601, any offset (none means UTC); arrives as aware UTC.
UtcDateTime = Annotated[datetime, AfterValidator(utc_in_range)]


def no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# Free text the API stores or compares in SQL
SafeStr = Annotated[str, AfterValidator(no_nul)]
