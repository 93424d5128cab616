"""The detectors are pure: each decision is checked here on facts, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.config import ConfigError, parse_config
from app.configuration.monitoring import (
    DeadLetters,
    LearnedVolume,
    SilenceFloor,
    WebhookGap,
    zone_of,
)
from app.incidents import detectors as d

BERLIN = zone_of("Europe/Berlin")
UTC_ZONE = zone_of("UTC")
KEY = d.Key(d.FLOW_SILENT, "shop", "orders")
LEARNED = LearnedVolume()  # 60 min window, 4 weeks, judged from 10 expected, silent below 10 %
FLOOR = SilenceFloor(
    flow="orders", quiet_minutes=30, hours="08:00-22:00", days=["mon", "tue", "wed", "thu", "fri"]
)


def berlin(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).astimezone(UTC)


def test_history_is_the_same_local_hour_of_the_week_across_a_clock_change() -> None:
    # Sunday 2026-03-29 02:00 Berlin: clocks went forward; a week before was still winter time
    now = berlin("2026-04-01T10:00")
    windows = d.history_windows(now, LearnedVolume(weeks=2, window_minutes=60), BERLIN)
    assert [w.end.astimezone(BERLIN).hour for w in windows] == [10, 10]
    assert now - windows[0].end == timedelta(hours=167)  # 7 days minus the lost hour
    assert windows[0].end - windows[0].start == timedelta(minutes=60)


def test_learned_volume_fires_far_below_the_median_of_past_weeks() -> None:
    usual = [12, 12, 0, 13]  # one week the shop was closed: the median ignores it
    assert d.expected(d.Volume(0, list(usual))) == 12
    assert d.learned_state(d.Volume(0, list(usual)), LEARNED)[0] == "bad"
    assert d.learned_state(d.Volume(1, list(usual)), LEARNED)[0] == "bad"  # 1 < 1.2
    assert d.learned_state(d.Volume(2, list(usual)), LEARNED)[0] == "ok"


def test_learned_volume_does_not_judge_quiet_hours_or_missing_history() -> None:
    assert d.learned_state(d.Volume(0, [3, 2, 4, 3]), LEARNED)[0] == "unknown"  # < 10 expected
    assert d.learned_state(d.Volume(1, [3, 2, 4, 3]), LEARNED)[0] == "ok"
    assert d.learned_state(d.Volume(0, [None, None, None, None]), LEARNED)[0] == "unknown"
    # a gateway two weeks old judges from the weeks it has
    assert d.learned_state(d.Volume(0, [20, 20, None, None]), LEARNED)[0] == "bad"


@pytest.mark.parametrize(
    ("local_now", "state"),
    [
        ("2026-12-02T08:29", "unknown"),  # the window began before opening
        ("2026-12-02T08:30", "bad"),  # 08:00-08:30 without an order
        ("2026-12-02T22:00", "bad"),  # the window ends at closing
        ("2026-12-02T22:01", "unknown"),  # past closing
        ("2026-12-05T12:00", "unknown"),  # Saturday is not a business day here
    ],
)
def test_floor_judges_only_whole_quiet_windows_within_business_hours(
    local_now: str, state: str
) -> None:
    volume = d.Volume(0, [], quiet=0)
    assert d.floor_state(volume, FLOOR, berlin(local_now), BERLIN)[0] == state


def test_floor_is_satisfied_by_one_event_at_any_hour() -> None:
    night = berlin("2026-12-02T23:30")
    assert d.floor_state(d.Volume(1, [], quiet=1), FLOOR, night, BERLIN)[0] == "ok"


def test_floor_until_midnight() -> None:
    floor = SilenceFloor(flow="orders", quiet_minutes=30, hours="00:00-24:00")
    midnight = datetime(2026, 12, 3, tzinfo=UTC)
    assert d.within_hours(midnight - timedelta(minutes=30), midnight, floor, UTC_ZONE)
    assert not d.within_hours(
        midnight - timedelta(minutes=20), midnight + timedelta(minutes=10), floor, UTC_ZONE
    )


def test_silence_fires_when_any_rule_does_and_clears_when_none_does() -> None:
    now = berlin("2026-12-02T12:00")
    silent = d.silence(KEY, d.Volume(0, [12] * 4, quiet=0), LEARNED, FLOOR, now, BERLIN)
    assert silent.state == "bad"
    assert "none in the last 30 minutes" in silent.summary
    assert "about 12 arrived" in silent.summary
    # one order after 30 quiet minutes satisfies the floor, but 1 of 12 is still far below
    trickle = d.silence(KEY, d.Volume(1, [12] * 4, quiet=1), LEARNED, FLOOR, now, BERLIN)
    assert trickle.state == "bad"
    back = d.silence(KEY, d.Volume(5, [12] * 4, quiet=2), LEARNED, FLOOR, now, BERLIN)
    assert back.state == "ok"
    night = berlin("2026-12-02T23:30")
    unknown = d.silence(KEY, d.Volume(0, [1] * 4, quiet=0), LEARNED, FLOOR, night, BERLIN)
    assert unknown.state == "unknown"  # an open incident stays open until orders come


def test_webhooks_missing_needs_a_history_of_webhooks_and_has_hysteresis() -> None:
    key = d.Key(d.WEBHOOKS_MISSING, "shop", "orders")
    gap = WebhookGap(min_missed=3)
    assert d.webhooks_missing(key, 5, 0, gap, sent_webhooks_before=False) is None
    fired = d.webhooks_missing(key, 3, 2, gap, sent_webhooks_before=True)
    assert fired is not None and fired.state == "bad"
    between = d.webhooks_missing(key, 1, 4, gap, sent_webhooks_before=True)
    assert between is not None and between.state == "unknown"
    healed = d.webhooks_missing(key, 0, 4, gap, sent_webhooks_before=True)
    assert healed is not None and healed.state == "ok"


def test_delivery_and_poll_detectors() -> None:
    now = datetime(2026, 12, 2, 12, tzinfo=UTC)
    opened = d.breaker_open(d.Key(d.BREAKER_OPEN, "erp"), "open", now, 10)
    assert opened.state == "bad" and opened.hold == timedelta(minutes=10)
    assert opened.since == now
    assert d.breaker_open(d.Key(d.BREAKER_OPEN, "erp"), "closed", now, 10).state == "ok"
    failing = d.poll_failing(d.Key(d.POLL_FAILING, "erp", "inventory"), "PermanentError: x", 15)
    assert failing.state == "bad" and failing.hold == timedelta(minutes=15)
    key = d.Key(d.POLL_EMPTY, "erp", "inventory")
    assert d.poll_empty(key, now - timedelta(minutes=5), False, 60, now).state == "ok"
    empty = d.poll_empty(key, now - timedelta(minutes=61), False, 60, now)
    assert empty.state == "bad" and empty.since == now - timedelta(minutes=61)
    assert d.poll_empty(key, None, True, 60, now).state == "unknown"
    dead = d.Key(d.DEAD_LETTERS, "erp", "orders")
    assert d.dead_letters(dead, 2, DeadLetters()).state == "bad"
    assert d.dead_letters(dead, 0, DeadLetters()).state == "ok"
    old = d.Key(d.OLDEST_PENDING, "erp", "orders")
    stuck = d.oldest_pending(old, now - timedelta(minutes=25), False, 20, now)
    assert stuck.state == "bad" and stuck.since == now - timedelta(minutes=5)
    assert d.oldest_pending(old, now - timedelta(minutes=5), False, 20, now).state == "ok"
    assert d.oldest_pending(old, now - timedelta(hours=5), True, 20, now).state == "unknown"


CONFIG = """
connections:
  - id: shop
    type: shopify
    base_url: https://shop.myshopify.com
    credentials: {webhook_secret: s, access_token: t}
  - id: erp
    type: netsuite
    base_url: https://1.suitetalk.api.netsuite.com
    credentials: {account_id: "1", consumer_key: a, consumer_secret: b, token_id: c,
                  token_secret: d}
    options: {discount_item_id: "900"}
routes:
  - {flow: orders, from: shop, to: erp}
monitoring:
"""


def problems(monitoring: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG + monitoring, "gateway.yaml")
    return caught.value.problems


def test_monitoring_defaults_detect_and_send_nothing() -> None:
    config = parse_config(CONFIG.replace("monitoring:\n", ""), "gateway.yaml")
    assert config.monitoring.enabled
    assert config.monitoring.breaker_open_minutes == 10
    assert config.monitoring.notifications.sinks == []


def test_monitoring_config_errors_name_the_line_and_never_repeat_a_sink_secret() -> None:
    found = problems(
        """  timezone: Europe/Berln
  floors:
    - {flow: customers, quiet_minutes: 30}
    - {flow: orders, connection: erp, quiet_minutes: 30, hours: "22:00-06:00"}
  notifications:
    sinks:
      - {type: webhook, name: ops, url: "ftp://hooks.example/T0/SECRET-TOKEN"}
"""
    )
    text = "\n".join(found)
    assert "line 16: monitoring.timezone: Value error, unknown time zone 'Europe/Berln'" in text
    assert "line 19: monitoring.floors[1].hours" in text
    assert "must end after they start" in text
    assert "line 22: monitoring.notifications.sinks[0].webhook.url" in text
    assert "SECRET-TOKEN" not in text
    found = problems(
        """  floors:
    - {flow: customers, quiet_minutes: 30}
    - {flow: orders, connection: erp, quiet_minutes: 30}
"""
    )
    assert found == [
        "line 17: monitoring.floors[0].flow: no route takes customers from anywhere",
        "line 18: monitoring.floors[1].connection: no route takes orders from 'erp'; its "
        "sources: shop",
    ]
