"""The config's ``monitoring:`` section: when a quiet or stuck flow becomes an incident, and
where incidents are announced.

Detection is on by default (with the thresholds below); notifications are off until a sink
is configured. What each detector reads and decides is ``app.incidents``; these are only
its thresholds. A threshold of ``null`` turns that detector off.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from app.configuration.problems import Problem

Flow = Literal["orders", "inventory", "products", "customers", "shipments", "returns"]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
_SINK_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin or UTC"
        ) from None


class LearnedVolume(BaseModel):
    """A flow is silent when it brought far fewer events than it did at the same hour of
    the week in the last weeks (the gateway's own history)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    weeks: int = Field(default=4, ge=1, le=12, description="weeks of history compared")
    window_minutes: float = Field(
        default=60.0, ge=5, le=24 * 60, description="the window counted, ending now"
    )
    min_expected: float = Field(
        default=10.0,
        gt=0,
        description="judge only where at least this many events were expected in the window "
        "(the median of the same window in the past weeks)",
    )
    ratio: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="silent when fewer than expected * ratio arrived",
    )


class SilenceFloor(BaseModel):
    """A rule of thumb the history cannot give yet: "no order for 30 minutes between 08:00
    and 22:00 is an incident"."""

    model_config = ConfigDict(extra="forbid")

    flow: Flow
    connection: str | None = Field(
        default=None, description="the source connection; unset: every source of the flow"
    )
    quiet_minutes: float = Field(gt=0, le=7 * 24 * 60)
    hours: str = Field(
        default="00:00-24:00",
        description='local business hours, "HH:MM-HH:MM" (the whole quiet window must fall '
        "inside them on one day)",
    )
    days: list[str] = Field(default_factory=lambda: list(DAYS), min_length=1)
    timezone: str | None = Field(default=None, description="default: monitoring.timezone")

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        cls.parse_hours(value)
        return value

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> Any:
        names = value if isinstance(value, list) else [value]
        out = []
        for name in names:
            word = str(name).strip().lower()
            if word in _FULL_DAYS:
                word = DAYS[_FULL_DAYS.index(word)]
            if word not in DAYS:
                raise ValueError(f"{name!r} is not a day: write mon, tue, … sun")
            out.append(word)
        return out

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone_of(value)
        return value

    @staticmethod
    def parse_hours(value: str) -> tuple[time, time | None]:
        """(opening, closing); closing None means midnight at the end of the day."""
        match = _HOURS.match(value.strip())
        if not match:
            raise ValueError(f'{value!r}: write business hours as "08:00-22:00"')
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
            raise ValueError(f"{value!r}: not a time of day (00:00 to 24:00)")
        opening = time(h1, m1)
        closing = None if h2 == 24 else time(h2, m2)
        if closing is not None and closing <= opening:
            raise ValueError(
                f"{value!r}: the hours must end after they start on the same day "
                "(write two rules for hours past midnight)"
            )
        return opening, closing

    def weekdays(self) -> set[int]:
        return {DAYS.index(day) for day in self.days}


class WebhookGap(BaseModel):
    """Webhooks the store stopped sending: its backfill poll finds what they should have
    brought (only where the connection polls the flow and has sent its webhooks before)."""

    model_config = ConfigDict(extra="forbid")

    window_minutes: float = Field(default=60.0, ge=5, le=24 * 60)
    min_missed: int = Field(
        default=3, ge=1, description="events the poll found and no webhook brought, in the window"
    )


class DeadLetters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window_minutes: float = Field(default=15.0, ge=1, le=7 * 24 * 60)
    min_new: int = Field(default=1, ge=1, description="deliveries dead in the window")


class PollEmpty(BaseModel):
    """A poll that has read nothing new for too long (opt-in: for many streams quiet is
    normal, e.g. a backfill poll)."""

    model_config = ConfigDict(extra="forbid")

    connection: str
    stream: str
    minutes: float = Field(gt=0)


class WebhookSink(BaseModel):
    """POSTs one JSON message per incident change; Slack and Teams show its ``text``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["webhook"]
    name: str = Field(pattern=_SINK_NAME)
    url: SecretStr = Field(description="a secret: Slack's URL is the credential")
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _http(cls, value: SecretStr) -> SecretStr:
        if not re.match(r"^https?://[^\s/]+", value.get_secret_value()):
            raise ValueError("must be an http:// or https:// URL")  # the URL is not repeated
        return value


class SmtpSink(BaseModel):
    """One e-mail per incident change, over SMTP (STARTTLS by default)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["smtp"]
    name: str = Field(pattern=_SINK_NAME)
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="starttls (port 587), tls (implicit, port 465), none"
    )
    username: SecretStr | None = None
    password: SecretStr | None = None
    sender: str = Field(min_length=3, description="the From address")
    to: list[str] = Field(min_length=1)
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _login_pair(self) -> SmtpSink:
        if (self.username is None) != (self.password is None):
            raise ValueError("set both username and password, or neither")
        return self


Sink = Annotated[WebhookSink | SmtpSink, Field(discriminator="type")]


class Notifications(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sinks: list[Sink] = Field(default_factory=list, description="none: nothing is sent")
    gateway_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="the gateway's address as operators reach it, for links in messages",
    )
    retry_base_seconds: float = Field(default=30.0, gt=0)
    retry_max_seconds: float = Field(default=900.0, gt=0)
    give_up_hours: float = Field(
        default=24.0, gt=0, description="a message not sent by then is marked failed"
    )

    @field_validator("sinks")
    @classmethod
    def _unique_names(cls, sinks: list[WebhookSink | SmtpSink]) -> list[WebhookSink | SmtpSink]:
        names = [s.name for s in sinks]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"sink names must be unique: {', '.join(twice)} used twice")
        return sinks


class MonitoringConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="evaluate the detectors")
    interval_seconds: float = Field(default=60.0, ge=1, description="time between evaluations")
    timezone: str = Field(default="UTC", description="for the learned hours of the week")
    learned: LearnedVolume = Field(default_factory=LearnedVolume)
    floors: list[SilenceFloor] = Field(default_factory=list)
    webhook_gap: WebhookGap | None = Field(default_factory=WebhookGap)
    breaker_open_minutes: float | None = Field(default=10.0, gt=0)
    poll_failing_minutes: float | None = Field(default=15.0, gt=0)
    poll_empty: list[PollEmpty] = Field(default_factory=list)
    dead_letters: DeadLetters | None = Field(default_factory=DeadLetters)
    oldest_pending_minutes: float | None = Field(default=20.0, gt=0)
    notifications: Notifications = Field(default_factory=Notifications)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone_of(value)
        return value


def monitoring_problems(
    monitoring: MonitoringConfig,
    sources: dict[str, set[str]],
    polls: dict[str, set[str]],
) -> list[Problem]:
    """What names a connection, flow or stream the config does not have. ``sources``: flow →
    the connections routes take it from; ``polls``: connection → its poll streams."""
    problems: list[Problem] = []
    for i, floor in enumerate(monitoring.floors):
        froms = sources.get(floor.flow, set())
        if not froms:
            problems.append(
                (("monitoring", "floors", i, "flow"), f"no route takes {floor.flow} from anywhere")
            )
        elif floor.connection is not None and floor.connection not in froms:
            problems.append(
                (
                    ("monitoring", "floors", i, "connection"),
                    f"no route takes {floor.flow} from {floor.connection!r}; "
                    f"its sources: {', '.join(sorted(froms))}",
                )
            )
    for i, watch in enumerate(monitoring.poll_empty):
        streams = polls.get(watch.connection)
        if streams is None:
            problems.append(
                (
                    ("monitoring", "poll_empty", i, "connection"),
                    f"connection {watch.connection!r} does not poll (no poll: section)",
                )
            )
        elif watch.stream not in streams:
            problems.append(
                (
                    ("monitoring", "poll_empty", i, "stream"),
                    f"{watch.connection!r} does not poll {watch.stream!r}; it polls: "
                    + ", ".join(sorted(streams)),
                )
            )
    return problems
