"""Detectors: small pure functions from facts read from the database to observations.

An observation says, for one (kind, connection, flow), whether the symptom is there now
(``bad``), gone (``ok``) or cannot be judged now (``unknown``: outside business hours, too
little history); ``app.incidents.engine`` turns observations into incidents. A symptom that
must last a while before it is an incident (a breaker open for 10 minutes) says so with
``hold``, and ``since`` when it is known to have begun earlier than the engine first saw it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from app.configuration.monitoring import DeadLetters, LearnedVolume, SilenceFloor, WebhookGap

State = Literal["bad", "ok", "unknown"]

FLOW_SILENT = "flow_silent"
WEBHOOKS_MISSING = "webhooks_missing"
BREAKER_OPEN = "breaker_open"
POLL_FAILING = "poll_failing"
POLL_EMPTY = "poll_empty"
DEAD_LETTERS = "dead_letters"
OLDEST_PENDING = "oldest_pending"
KINDS = (
    FLOW_SILENT,
    WEBHOOKS_MISSING,
    BREAKER_OPEN,
    POLL_FAILING,
    POLL_EMPTY,
    DEAD_LETTERS,
    OLDEST_PENDING,
)


@dataclass(frozen=True)
class Key:
    kind: str
    connection: str
    flow: str = ""  # the flow, or the poll stream for the poll kinds


@dataclass(frozen=True)
class Observation:
    key: Key
    state: State
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    hold: timedelta = timedelta(0)
    since: datetime | None = None


def _minutes(td: timedelta | float) -> str:
    value = td.total_seconds() / 60 if isinstance(td, timedelta) else td
    return f"{value:g} minute" + ("" if value == 1 else "s")


# --- silence ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A time range [start, end) counted in the database."""

    start: datetime
    end: datetime


def history_windows(now: datetime, config: LearnedVolume, tz: ZoneInfo) -> list[Window]:
    """The same window of the past ``weeks`` weeks, by the local clock (a week across a
    daylight-saving change is 167 or 169 hours)."""
    local_end = now.astimezone(tz)
    length = timedelta(minutes=config.window_minutes)
    windows = []
    for week in range(1, config.weeks + 1):
        end = (local_end - timedelta(weeks=week)).astimezone(now.tzinfo)
        windows.append(Window(end - length, end))
    return windows


@dataclass(frozen=True)
class Volume:
    """Events of one flow from one source: in the learned window ending now, in the same
    window of each past week (None where the gateway had no history yet), and in the floor's
    quiet window."""

    actual: int
    weekly: list[int | None]
    quiet: int | None = None  # in the floor's quiet window (None: no floor)


def expected(volume: Volume) -> float | None:
    """The median of the past weeks that have history; None without any."""
    counts = [n for n in volume.weekly if n is not None]
    return float(statistics.median(counts)) if counts else None


def learned_state(volume: Volume, config: LearnedVolume) -> tuple[State, str]:
    usual = expected(volume)
    if usual is None or usual < config.min_expected:
        return ("ok" if volume.actual > 0 else "unknown"), ""
    if volume.actual < usual * config.ratio:
        return "bad", (
            f"{volume.actual} in the last {_minutes(config.window_minutes)} where about "
            f"{usual:g} arrived at this hour of the week (median of the last "
            f"{len([n for n in volume.weekly if n is not None])} weeks)"
        )
    return "ok", ""


def within_hours(start: datetime, end: datetime, floor: SilenceFloor, tz: ZoneInfo) -> bool:
    """Whether [start, end) lies inside the floor's business hours, on one allowed day."""
    first, last = start.astimezone(tz), end.astimezone(tz)
    if first.date() != last.date() and not (
        last.time() == time(0) and last.date() - first.date() == timedelta(days=1)
    ):
        return False
    if first.weekday() not in floor.weekdays():
        return False
    opening, closing = SilenceFloor.parse_hours(floor.hours)
    if first.time() < opening:
        return False
    if closing is None:
        return True
    return last.date() == first.date() and last.time() <= closing


def floor_state(
    volume: Volume, floor: SilenceFloor, now: datetime, tz: ZoneInfo
) -> tuple[State, str]:
    if volume.quiet:
        return "ok", ""
    quiet = timedelta(minutes=floor.quiet_minutes)
    if not within_hours(now - quiet, now, floor, tz):
        return "unknown", ""
    return "bad", (
        f"none in the last {_minutes(quiet)} within business hours ({floor.hours} "
        f"{tz.key}, {', '.join(floor.days)})"
    )


def silence(
    key: Key,
    volume: Volume,
    learned: LearnedVolume | None,
    floor: SilenceFloor | None,
    now: datetime,
    tz: ZoneInfo,
    floor_tz: ZoneInfo | None = None,
) -> Observation:
    """A flow that stopped: bad when any rule says so, ok when none does and one is
    satisfied (an event arrived), unknown when no rule can judge now."""
    states: list[tuple[State, str]] = []
    if learned is not None and learned.enabled:
        states.append(learned_state(volume, learned))
    if floor is not None:
        states.append(floor_state(volume, floor, now, floor_tz or tz))
    why = [text for state, text in states if state == "bad"]
    details: dict[str, Any] = {
        "actual": volume.actual,
        "expected": expected(volume),
        "weekly": volume.weekly,
    }
    if volume.quiet is not None:
        details["quiet"] = volume.quiet
    if why:
        summary = (
            f"{key.flow} from {key.connection} stopped: " + "; ".join(why) + ". Check that the "
            "source still sends (its webhook subscriptions, its outage page) and that it "
            "reaches the gateway (/webhooks, the logs of rejected webhooks)"
        )
        return Observation(key, "bad", summary, details)
    state: State = "ok" if any(s == "ok" for s, _ in states) else "unknown"
    return Observation(key, state, details=details)


# --- webhooks the store stopped sending ---------------------------------------------------


def webhooks_missing(
    key: Key, polled: int, webhooks: int, config: WebhookGap, sent_webhooks_before: bool
) -> Observation | None:
    """The backfill poll found ``polled`` events no webhook brought in the window (a
    webhook that arrives first makes the poll's copy a duplicate, never counted)."""
    if not sent_webhooks_before:
        return None  # a connection that never sent webhooks for the flow only polls it
    details = {"polled": polled, "webhooks": webhooks, "window_minutes": config.window_minutes}
    if polled >= config.min_missed:
        return Observation(
            key,
            "bad",
            f"the backfill poll of {key.connection} found {polled} {key.flow} events in the "
            f"last {_minutes(config.window_minutes)} that no webhook brought ({webhooks} came "
            "by webhook): the store stopped sending them. Check the app's webhook "
            "subscriptions in the store (the gateway re-creates missing ones where it has the "
            "scope) and that /webhooks answers 2xx",
            details,
        )
    return Observation(key, "ok" if polled == 0 else "unknown", details=details)


# --- delivery and polling -----------------------------------------------------------------


def breaker_open(
    key: Key, state: str | None, changed_at: datetime | None, minutes: float
) -> Observation:
    if state not in ("open", "half-open"):
        return Observation(key, "ok")
    return Observation(
        key,
        "bad",
        f"the circuit breaker of {key.connection} has been open for over {_minutes(minutes)}: "
        "deliveries to it wait (no attempt used). Check that the system is up and the "
        "gateway's credentials still work (GET /api/v1/connections shows the last error)",
        {"breaker_state": state, "changed_at": changed_at.isoformat() if changed_at else None},
        hold=timedelta(minutes=minutes),
        since=changed_at,
    )


def poll_failing(key: Key, last_error: str | None, minutes: float) -> Observation:
    if last_error is None:
        return Observation(key, "ok")
    return Observation(
        key,
        "bad",
        f"polling {key.flow} of {key.connection} has failed for over {_minutes(minutes)}: "
        f"{last_error[:500]}; nothing after the stored cursor is read until it works",
        {"error": last_error[:2000]},
        hold=timedelta(minutes=minutes),
    )


def poll_empty(
    key: Key, last_events_at: datetime | None, failing: bool, minutes: float, now: datetime
) -> Observation:
    if failing:
        return Observation(key, "unknown")  # poll_failing says why
    hold = timedelta(minutes=minutes)
    if last_events_at is not None and now - last_events_at < hold:
        return Observation(key, "ok")
    since = f"since {last_events_at.isoformat()}" if last_events_at else "since it was watched"
    return Observation(
        key,
        "bad",
        f"polling {key.flow} of {key.connection} has read nothing new for over "
        f"{_minutes(minutes)} ({since}): check that the system still records changes and that "
        "the gateway's role can see them",
        {"last_events_at": last_events_at.isoformat() if last_events_at else None},
        hold=hold,
        since=last_events_at,
    )


def dead_letters(key: Key, new_dead: int, config: DeadLetters) -> Observation:
    details = {"new_dead": new_dead, "window_minutes": config.window_minutes}
    if new_dead >= config.min_new:
        return Observation(
            key,
            "bad",
            f"{new_dead} {key.flow} deliveries to {key.connection} died in the last "
            f"{_minutes(config.window_minutes)}: GET /api/v1/deliveries?status=dead&destination="
            f"{key.connection} shows why; fix the cause and replay them",
            details,
        )
    return Observation(key, "ok" if new_dead == 0 else "unknown", details=details)


def oldest_pending(
    key: Key, oldest: datetime | None, paused: bool, minutes: float, now: datetime
) -> Observation:
    if paused:
        return Observation(key, "unknown")  # an operator holds it on purpose
    threshold = timedelta(minutes=minutes)
    if oldest is None or now - oldest < threshold:
        return Observation(key, "ok")
    age = now - oldest
    return Observation(
        key,
        "bad",
        f"the oldest pending {key.flow} delivery to {key.connection} has waited "
        f"{_minutes(timedelta(minutes=round(age.total_seconds() / 60)))} (over "
        f"{_minutes(minutes)}): check the workers (/readyz?scope=delivery), the breaker and "
        "the destination's rate limits",
        {"oldest_created_at": oldest.isoformat(), "age_seconds": round(age.total_seconds())},
        since=oldest + threshold,
    )


def in_maintenance(obs: Observation, closed: set[str]) -> Observation:
    """A connection in a maintenance window is expected to be quiet, slow or unreachable:
    nothing is raised for it until the window ends (an incident already open stays open)."""
    if obs.state == "bad" and obs.key.connection in closed:
        return Observation(obs.key, "unknown", details={"in_maintenance": True})
    return obs
