"""When a maintenance window is open (``window_at``, ``next_window``, ``overlapping``) and how
the config file's ``maintenance:`` is checked: weekly windows read off the wall clock of
their time zone across DST changes and midnight, windows that touch are one, and every
mistake names its line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from app.config import ConfigError, parse_config
from app.configuration.maintenance import WEEKDAYS, MaintenanceWindow
from app.maintenance.windows import Window, next_window, overlapping, window_at
from tests.conftest import gateway_config_yaml


def window(**values: Any) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate(values)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


SUNDAY_BERLIN = window(every="sunday", **{"from": "02:00"}, to="04:00", timezone="Europe/Berlin")


def test_a_weekly_window_is_open_between_its_times_in_its_zone() -> None:
    # 2026-12-06 is a Sunday; Berlin is UTC+1 in winter: 02:00-04:00 is 01:00-03:00 UTC
    assert window_at([SUNDAY_BERLIN], utc(2026, 12, 6, 0, 59, 59)) is None
    assert window_at([SUNDAY_BERLIN], utc(2026, 12, 6, 1, 0)) == Window(
        utc(2026, 12, 6, 1, 0), utc(2026, 12, 6, 3, 0)
    )
    assert window_at([SUNDAY_BERLIN], utc(2026, 12, 6, 2, 59, 59)) is not None
    assert window_at([SUNDAY_BERLIN], utc(2026, 12, 6, 3, 0)) is None  # the end is open
    assert window_at([SUNDAY_BERLIN], utc(2026, 12, 7, 1, 30)) is None  # a Monday
    # summer: UTC+2
    assert window_at([SUNDAY_BERLIN], utc(2026, 7, 5, 0, 30)) == Window(
        utc(2026, 7, 5, 0, 0), utc(2026, 7, 5, 2, 0)
    )


def test_on_the_spring_forward_day_the_window_opens_at_the_jump() -> None:
    # 2026-03-29: at 02:00 CET the clocks jump to 03:00 CEST (01:00 UTC); 02:00-03:00 never
    # shows, so the window covers 03:00-04:00 CEST: one hour, from the jump
    spring = utc(2026, 3, 29, 1, 0)
    assert window_at([SUNDAY_BERLIN], spring - timedelta(seconds=1)) is None
    assert window_at([SUNDAY_BERLIN], spring) == Window(spring, utc(2026, 3, 29, 2, 0))
    assert window_at([SUNDAY_BERLIN], utc(2026, 3, 29, 2, 0)) is None
    # a start inside the skipped hour opens at the jump too (not half an hour late)
    half = window(every="sunday", **{"from": "02:30"}, to="04:00", timezone="Europe/Berlin")
    assert window_at([half], spring) == Window(spring, utc(2026, 3, 29, 2, 0))
    # a window entirely inside the skipped hour never opens that day, and the next is a week on
    skipped = window(every="sunday", **{"from": "02:10"}, to="02:40", timezone="Europe/Berlin")
    assert overlapping([skipped], utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 3, 0)) == []
    assert next_window([skipped], utc(2026, 3, 28, 12, 0)) == Window(
        utc(2026, 4, 5, 0, 10), utc(2026, 4, 5, 0, 40)
    )


def test_on_the_fall_back_day_the_window_lasts_three_hours() -> None:
    # 2026-10-25: 03:00 CEST goes back to 02:00 CET (01:00 UTC); the clock shows 02:00-03:00
    # twice: the window opens at the first 02:00 (00:00 UTC) and closes at 04:00 CET
    assert window_at([SUNDAY_BERLIN], utc(2026, 10, 24, 23, 59)) is None
    opened = window_at([SUNDAY_BERLIN], utc(2026, 10, 25, 0, 0))
    assert opened == Window(utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 3, 0))
    assert window_at([SUNDAY_BERLIN], utc(2026, 10, 25, 1, 30)) == opened  # the second 02:30
    assert window_at([SUNDAY_BERLIN], utc(2026, 10, 25, 3, 0)) is None


def test_a_window_whose_end_is_not_after_its_start_ends_the_next_day() -> None:
    saturday_night = window(every="sat", **{"from": "22:00"}, to="02:00", timezone="UTC")
    # 2026-12-05 is a Saturday: open from 22:00 through midnight until Sunday 02:00
    assert window_at([saturday_night], utc(2026, 12, 5, 21, 59)) is None
    assert window_at([saturday_night], utc(2026, 12, 6, 1, 0)) == Window(
        utc(2026, 12, 5, 22, 0), utc(2026, 12, 6, 2, 0)
    )
    assert window_at([saturday_night], utc(2026, 12, 7, 1, 0)) is None  # Sunday night: no
    whole_day = window(every="sunday", **{"from": "00:00"}, to="00:00", timezone="UTC")
    assert window_at([whole_day], utc(2026, 12, 6, 23, 59)) == Window(
        utc(2026, 12, 6, 0, 0), utc(2026, 12, 7, 0, 0)
    )


def test_windows_that_overlap_or_touch_are_one() -> None:
    first = window(**{"from": "2026-12-24T18:00:00+01:00"}, to="2026-12-25T08:00:00+01:00")
    touching = window(**{"from": "2026-12-25T08:00:00+01:00"}, to="2026-12-25T12:00:00+01:00")
    later = window(
        **{"from": "2026-12-25T13:00:00+01:00"}, to="2026-12-25T14:00:00+01:00", reason="x"
    )
    both = [later, touching, first]
    # a delivery waiting for the end of the first must not go out into the second
    assert window_at(both, utc(2026, 12, 24, 20, 0)) == Window(
        utc(2026, 12, 24, 17, 0), utc(2026, 12, 25, 11, 0)
    )
    assert next_window(both, utc(2026, 12, 24, 20, 0)) == Window(
        utc(2026, 12, 25, 12, 0), utc(2026, 12, 25, 13, 0), "x"
    )
    assert next_window(both, utc(2026, 12, 25, 13, 30)) is None
    assert overlapping(both, utc(2026, 12, 24, 0, 0), utc(2026, 12, 26, 0, 0)) == [
        Window(utc(2026, 12, 24, 17, 0), utc(2026, 12, 25, 11, 0)),
        Window(utc(2026, 12, 25, 12, 0), utc(2026, 12, 25, 13, 0), "x"),
    ]


def test_a_one_off_window_in_a_zone_without_offsets() -> None:
    christmas = window(
        **{"from": "2026-12-24T18:00"}, to="2026-12-26T08:00", timezone="Europe/Berlin"
    )
    assert window_at([christmas], utc(2026, 12, 24, 17, 0)) == Window(
        utc(2026, 12, 24, 17, 0), utc(2026, 12, 26, 7, 0)
    )
    assert next_window([christmas], utc(2026, 12, 1, 0, 0)) == Window(
        utc(2026, 12, 24, 17, 0), utc(2026, 12, 26, 7, 0)
    )


def test_every_day_and_a_list_of_days() -> None:
    nightly = window(every="day", **{"from": "01:00"}, to="01:30", timezone="UTC")
    assert nightly.every == list(WEEKDAYS)
    weekend = window(every=["Sun", "saturday"], **{"from": "01:00"}, to="01:30", timezone="UTC")
    assert weekend.every == ["saturday", "sunday"]
    assert next_window([weekend], utc(2026, 12, 1, 0, 0)) == Window(  # Tuesday → Saturday
        utc(2026, 12, 5, 1, 0), utc(2026, 12, 5, 1, 30)
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"from": "2026-12-24T18:00:00+01:00", "to": "2026-12-24T08:00:00+01:00"},
            "the window must end after it starts",
        ),
        ({"every": "sundy", "from": "02:00", "to": "04:00", "timezone": "UTC"}, "'sunday'?"),
        ({"every": "sunday", "from": "02:00", "to": "04:00"}, "needs the timezone"),
        (
            {"every": "sunday", "from": "02:00", "to": "04:00", "timezone": "Europe/Berln"},
            "did you mean 'Europe/Berlin'?",
        ),
        ({"from": "02:00", "to": "04:00"}, "for one every week add every: sunday"),
        ({"from": "2026-12-24T18:00", "to": "2026-12-25T08:00"}, "give the date-times an offset"),
        ({"from": "9999-12-31T23:00:00-14:00", "to": "9999-12-31T23:30:00-14:00"}, "range"),
        ({"every": "sunday", "from": "25:00", "to": "04:00", "timezone": "UTC"}, "neither"),
    ],
)
def test_a_bad_window_is_refused_with_what_to_write(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        window(**values)
    assert message in str(caught.value)


def test_the_config_file_names_the_line_of_a_bad_window() -> None:
    text = gateway_config_yaml().replace(
        '    options: {discount_item_id: "900"}\n',
        '    options: {discount_item_id: "900"}\n'
        "    maintenance:\n"
        '      - {every: sunday, from: "02:00", to: "04:00", timezone: Europe/Berlin}\n'
        "      - from: 2026-12-24T18:00:00+01:00\n"
        "        to: 2026-12-24T08:00:00+01:00\n"
        '      - {every: sunday, from: 22:00, to: "23:00", timezone: UTC}\n',
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "gateway.yaml")
    lines = text.splitlines()
    first, second = caught.value.problems
    number = int(first.split(":")[0].removeprefix("line "))
    assert "- from: 2026-12-24T18:00:00+01:00" in lines[number - 1]
    assert "connections[1].maintenance[1]: the window must end after it starts" in first
    assert "maintenance[2].from: write the time in quotes" in second


def test_the_config_file_takes_weekly_and_one_off_windows() -> None:
    text = gateway_config_yaml().replace(
        '    options: {discount_item_id: "900"}\n',
        '    options: {discount_item_id: "900"}\n'
        "    maintenance:\n"
        '      - {every: sunday, from: "02:00", to: "04:00", timezone: Europe/Berlin}\n'
        "      - from: 2026-12-24T18:00:00+01:00\n"
        "        to: 2026-12-26T08:00:00+01:00\n"
        "        reason: year-end closing\n",
    )
    erp = parse_config(text, "gateway.yaml").connection("erp")
    assert erp is not None
    assert [w.described() for w in erp.maintenance] == [
        "every sunday 02:00-04:00 Europe/Berlin",
        "2026-12-24T18:00:00+01:00 to 2026-12-26T08:00:00+01:00",
    ]
    assert window_at(erp.maintenance, utc(2026, 12, 25, 0, 0)) == Window(
        utc(2026, 12, 24, 17, 0), utc(2026, 12, 26, 7, 0), "year-end closing"
    )
