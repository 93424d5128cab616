"""A connection's maintenance windows as the config file (``maintenance:``) and the API
write them: once (``from``/``to`` are date-times) or every week (``every`` names the days,
``from``/``to`` are times of day in ``timezone``).

Only the shape and its checks live here; when a window is open is ``app.maintenance.windows``.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from functools import cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from app.configuration.problems import suggest

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
_DAY_NAMES = {name: i for i, name in enumerate(WEEKDAYS)} | {
    name[:3]: i for i, name in enumerate(WEEKDAYS)
}
EVERY_DAY = "day"
EARLIEST_YEAR, LATEST_YEAR = 2000, 2100
_TIME_OF_DAY = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")


def _problem(message: str) -> PydanticCustomError:
    # a custom error's message is shown as it is (no "Value error, " in front)
    return PydanticCustomError("maintenance_window", message)


def _days(value: Any) -> list[str]:
    names = value if isinstance(value, list) else [value]
    if not names:
        raise _problem("name at least one day, e.g. every: sunday")
    days: set[int] = set()
    for name in names:
        word = str(name).strip().lower()
        if word in (EVERY_DAY, "daily"):
            days.update(range(7))
        elif word in _DAY_NAMES:
            days.add(_DAY_NAMES[word])
        else:
            raise _problem(
                f"{str(name)!r} is not a day of the week: write monday … sunday (or mon … "
                f"sun), a list of them, or day for every day{suggest(word, [*WEEKDAYS, EVERY_DAY])}"
            )
    return [WEEKDAYS[d] for d in sorted(days)]


def _moment(value: Any) -> datetime | time:
    """A time of day (``"02:00"``) or a date-time (``2026-12-24T18:00:00+01:00``)."""
    if isinstance(value, datetime | time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 22:00 as the number 1320 (base 60)
        raise _problem(
            f'write the time in quotes, e.g. "22:00": unquoted, YAML reads it as the number {value}'
        )
    if isinstance(value, str):
        text = value.strip()
        match = _TIME_OF_DAY.match(text)
        if match:
            return time(int(match[1]), int(match[2]), int(match[3] or 0))
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    raise _problem(
        f'{str(value)!r} is neither a time of day ("02:00", for a window every week) nor a '
        'date and time ("2026-12-24T18:00:00+01:00", for a window that happens once)'
    )


@cache
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


class MaintenanceWindow(BaseModel):
    """One maintenance window: deliveries to the connection wait (no attempt used) and its
    polls are skipped while it is open; what waited goes out when it ends."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    every: list[Weekday] | None = Field(
        default=None,
        description="days of the week it repeats on (monday … sunday, or day for every "
        "day); unset: it happens once",
        json_schema_extra={"examples": [["sunday"]]},
    )
    from_: datetime | time = Field(
        alias="from",
        description='when it opens: a time of day in timezone ("02:00") for a weekly '
        'window, a date-time ("2026-12-24T18:00:00+01:00") for a window that happens once',
    )
    to: datetime | time = Field(
        description="when it closes; a weekly window whose to is not after from ends the "
        "next day (22:00 to 02:00), one with to equal to from lasts 24 hours"
    )
    timezone: str | None = Field(
        default=None,
        max_length=64,
        description="IANA time zone of the times (e.g. Europe/Berlin); needed for a weekly "
        "window, and for a one-off window whose date-times carry no offset",
    )
    reason: str | None = Field(
        default=None, max_length=200, pattern=r"^[^\x00-\x1f]*$", description="shown to operators"
    )

    @field_validator("every", mode="before")
    @classmethod
    def _every(cls, value: Any) -> Any:
        return None if value is None else _days(value)

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _moments(cls, value: Any) -> Any:
        return _moment(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            zone(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: e.g. "America"
            raise _problem(
                f"unknown time zone {value!r}: give an IANA name such as Europe/Berlin or "
                f"UTC{suggest(value, available_timezones())}"
            ) from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MaintenanceWindow:
        start, end = self.from_, self.to
        if self.every is not None:
            if isinstance(start, datetime) or isinstance(end, datetime):
                raise _problem(
                    'a weekly window (every: …) runs between times of day: write from: "02:00", '
                    'to: "04:00" and the timezone, or drop every: for a window that happens once'
                )
            if self.timezone is None:
                raise _problem(
                    "a weekly window needs the timezone its times are in, e.g. "
                    "timezone: Europe/Berlin"
                )
            return self
        if not isinstance(start, datetime) or not isinstance(end, datetime):
            raise _problem(
                "a window that happens once runs between two date-times (from: "
                '"2026-12-24T18:00:00+01:00"); for one every week add every: sunday'
            )
        for moment in (start, end):
            if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
                raise _problem(
                    f"{moment.isoformat()} is out of range: give a date between "
                    f"{EARLIEST_YEAR} and {LATEST_YEAR}"
                )
        if (start.tzinfo is None or end.tzinfo is None) and self.timezone is None:
            raise _problem(
                "give the date-times an offset (2026-12-24T18:00:00+01:00) or the "
                "window a timezone (timezone: Europe/Berlin)"
            )
        if self.starts_at() >= self.ends_at():
            raise _problem(
                f"the window must end after it starts: to ({end.isoformat()}) is not after "
                f"from ({start.isoformat()})"
            )
        return self

    @property
    def weekdays(self) -> frozenset[int]:
        """The days a weekly window opens on, as ``date.weekday()`` numbers (Monday 0)."""
        return frozenset(WEEKDAYS.index(day) for day in self.every or ())

    def starts_at(self) -> datetime:
        """A one-off window's start, aware (its offset, else its timezone)."""
        assert isinstance(self.from_, datetime)
        return self._aware(self.from_)

    def ends_at(self) -> datetime:
        assert isinstance(self.to, datetime)
        return self._aware(self.to)

    def _aware(self, moment: datetime) -> datetime:
        if moment.tzinfo is not None:
            return moment
        assert self.timezone is not None
        return moment.replace(tzinfo=zone(self.timezone))

    @field_serializer("from_", "to")
    def _moment_text(self, value: datetime | time) -> str:
        if isinstance(value, datetime):
            return value.isoformat()
        return value.strftime("%H:%M:%S" if value.second else "%H:%M")

    def described(self) -> str:
        """One line for logs and messages: 'every sunday 02:00-04:00 Europe/Berlin'."""
        text = self.model_dump(mode="json", by_alias=True)
        if self.every is not None:
            days = "day" if len(self.every) == 7 else ", ".join(text["every"])
            return f"every {days} {text['from']}-{text['to']} {self.timezone}"
        return f"{text['from']} to {text['to']}" + (f" {self.timezone}" if self.timezone else "")
