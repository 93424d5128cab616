"""When a connection's maintenance windows are open: pure functions over the windows and a
moment, no I/O.

A weekly window is read off the wall clock of its time zone: it opens the first instant the
clock shows ``from`` (or later) and closes the first instant after that it shows ``to``. So
on the spring-forward day a 02:00-04:00 window in Europe/Berlin opens at the jump (03:00
CEST) and lasts one hour; on the autumn day it opens at the first 02:00 (CEST) and lasts
three. A window whose ``to`` is not after ``from`` ends on the next day.

Windows that overlap or touch are one window: a delivery that waits for the end of one must
not go out into the next.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.configuration.maintenance import MaintenanceWindow, zone

# How far ahead the next window and the end of a chain of windows are looked for: a weekly
# window repeats within a week; a chain longer than this (windows every day, back to back)
# is reported as ending here and checked again then.
HORIZON = timedelta(days=400)
_WEEK = timedelta(days=8)
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Window:
    """One opening of a maintenance window (or several that overlap), in UTC."""

    start: datetime
    end: datetime
    reason: str | None = None


def window_at(windows: Sequence[MaintenanceWindow], now: datetime) -> Window | None:
    """The window open at ``now`` (start <= now < end), with the windows that overlap or
    touch it merged in, or None."""
    open_now = [w for w in _occurrences(windows, now, now + _SECOND) if w.start <= now < w.end]
    if not open_now:
        return None
    start = min(w.start for w in open_now)
    end = max(w.end for w in open_now)
    reason = next((w.reason for w in open_now if w.reason), None)
    while end - now < HORIZON:
        # a window open at the very instant this one ends carries it on
        following = [w for w in _occurrences(windows, end, end + _SECOND) if w.start <= end]
        later = max((w.end for w in following), default=end)
        if later <= end:
            break
        end = later
    return Window(start, min(end, now + HORIZON), reason)


def next_window(windows: Sequence[MaintenanceWindow], now: datetime) -> Window | None:
    """The first window that opens after ``now`` (after the one open now, if any)."""
    current = window_at(windows, now)
    after = current.end if current is not None else now
    starts = [s for w in windows if (s := _first_start_after(w, after)) is not None]
    if not starts:
        return None
    return window_at(windows, min(starts))


def overlapping(
    windows: Sequence[MaintenanceWindow], start: datetime, end: datetime
) -> list[Window]:
    """Every window open at some moment of [start, end), merged, in order: e.g. the time a
    check for a silent connection must not count."""
    merged: list[Window] = []
    for w in sorted(_occurrences(windows, start, end), key=lambda w: w.start):
        if merged and w.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Window(last.start, max(last.end, w.end), last.reason or w.reason)
        else:
            merged.append(w)
    return merged


# --- one window's openings -------------------------------------------------------------------


def _occurrences(
    windows: Iterable[MaintenanceWindow], start: datetime, end: datetime
) -> list[Window]:
    """The openings of each window that overlap [start, end), unmerged."""
    found: list[Window] = []
    for spec in windows:
        for opening in _openings(spec, start, end):
            if opening.start < end and opening.end > start:
                found.append(opening)
    return found


def _openings(spec: MaintenanceWindow, start: datetime, end: datetime) -> list[Window]:
    if spec.every is None:
        return [
            Window(spec.starts_at().astimezone(UTC), spec.ends_at().astimezone(UTC), spec.reason)
        ]
    assert spec.timezone is not None and isinstance(spec.from_, time) and isinstance(spec.to, time)
    tz = zone(spec.timezone)
    weekdays = spec.weekdays
    # an opening that crosses midnight began the day before; one that lasts 24 h, too
    first = start.astimezone(tz).date() - timedelta(days=2)
    last = end.astimezone(tz).date()
    openings = []
    day = first
    while day <= last:
        if day.weekday() in weekdays:
            opens = _instant(day, spec.from_, tz)
            closing_day = day if spec.to > spec.from_ else day + timedelta(days=1)
            closes = _instant(closing_day, spec.to, tz)
            if closes > opens:  # a window inside a skipped hour never opens
                openings.append(Window(opens, closes, spec.reason))
        day += timedelta(days=1)
    return openings


def _first_start_after(spec: MaintenanceWindow, after: datetime) -> datetime | None:
    if spec.every is None:
        opens = spec.starts_at().astimezone(UTC)
        return opens if opens > after else None
    starts = [w.start for w in _openings(spec, after, after + _WEEK) if w.start > after]
    return min(starts, default=None)


def _instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The first instant (UTC) the clock in ``tz`` shows ``at`` on ``day``, or later.

    A time the clock shows twice (autumn) is its first showing; a time it skips (spring)
    is the jump itself, the first instant showing a later time.
    """
    wall = datetime.combine(day, at)
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # skipped: fold=1 reads it with the offset after the jump (an instant before it),
    # fold=0 with the offset before (an instant after it); the jump lies between
    before = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    after = first
    while after - before > _SECOND:
        middle = before + timedelta(seconds=(after - before).total_seconds() // 2)
        if middle.astimezone(tz).replace(tzinfo=None) >= wall:
            after = middle
        else:
            before = middle
    return after
