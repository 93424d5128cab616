"""The benchmark report's verdicts on issue 12's targets: computed from the run's own
figures, never claimed. Fakes stand in for a run (no servers)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bench.drain import Drain, ratio
from bench.report import best_e2e_rate, sink_calls, spread_section, targets_section


def _rate_run(rate: float, p99_seconds: float, *, accepted: int, delivered: int) -> Any:
    return SimpleNamespace(
        rate=rate,
        wrk=SimpleNamespace(failed=0, count=lambda *_: accepted),
        deliveries=SimpleNamespace(total=accepted, delivered=delivered),
        latencies=[p99_seconds] * 100,
    )


def test_the_best_end_to_end_rate_is_the_highest_that_held_its_p99_and_lost_nothing() -> None:
    runs = [
        _rate_run(25, 0.04, accepted=500, delivered=500),
        _rate_run(100, 12.0, accepted=2000, delivered=2000),  # too slow
        _rate_run(50, 0.3, accepted=1000, delivered=999),  # one not delivered
    ]
    assert best_e2e_rate(runs) == 25
    assert best_e2e_rate([_rate_run(100, 12.0, accepted=10, delivered=10)]) is None


def _round(floor: float, gateway: float, hot: float) -> Any:
    def wrk(rate: float) -> Any:
        return SimpleNamespace(rate=rate, seconds=1.0, count=lambda *_: rate)

    measured = {
        name: SimpleNamespace(wrk=wrk(r))
        for name, r in {"floor": floor, "gateway": gateway, "hot": hot}.items()
    }
    return SimpleNamespace(**measured, void=lambda _m: False)


def test_targets_say_missed_where_the_run_falls_short() -> None:
    trips = SimpleNamespace(
        per_webhook=SimpleNamespace(postgres=7.0), per_delivery=SimpleNamespace(postgres=2.0)
    )
    run = SimpleNamespace(
        rounds=[_round(1000, 600, 100)],
        rates=[_rate_run(25, 0.04, accepted=500, delivered=500)],
        trips=trips,
        drain=(4800, 60.0),
        drains=[
            Drain(1, 4800, 60.0, 58.0),
            Drain(2, 6000, 60.0, 58.0),
            Drain(1, 4800, 60.0, 58.0),
            Drain(2, 6000, 60.0, 58.0),
        ],
        sqlite=[SimpleNamespace(ratio=0.02)],
        scaling=[
            SimpleNamespace(processes=1, accepted_per_second=200.0),
            SimpleNamespace(processes=2, accepted_per_second=260.0),
        ],
    )
    section = targets_section(run)  # type: ignore[arg-type]
    lines = {line.split(" | ")[0].strip("| "): line for line in section.splitlines()}
    assert (
        "0.60x" in lines["ingest, distinct orders"]
        and "| met |" in lines["ingest, distinct orders"]
    )
    assert "**missed**" in lines["ingest, one hot order"]  # 0.10x
    assert "**missed**" in lines["end to end, p99 ≤ 1 s, nothing lost"]  # 25/s
    assert "**missed**" in lines["Postgres round trips per webhook"]
    assert "| met |" in lines["Postgres round trips per delivery"]
    assert "1.30x" in lines["serve --workers 2 faster than 1"]
    assert "1.25x" in lines["two workers drain a backlog faster than one"]
    assert "**missed**" in lines["ingest on the embedded default (SQLite)"]


def test_sink_calls_are_per_delivered_order_most_first() -> None:
    shown = sink_calls({"PUT salesOrder": 100, "GET salesOrder": 100, "PUT customer": 50}, 100)
    assert shown == "2.50 in all (PUT salesOrder 1.00, GET salesOrder 1.00, PUT customer 0.50)"
    assert sink_calls({}, 0) == "not counted"


def test_two_workers_are_compared_with_the_one_worker_rounds_beside_them() -> None:
    # the sink slows as the run goes on: each two-worker round is set against its neighbours
    drains = [
        Drain(1, 1000, 10.0, 9.0),  # 100/s
        Drain(2, 1000, 12.5, 12.0),  # 80/s: against (100 + 50) / 2 = 75/s
        Drain(1, 1000, 20.0, 19.0),  # 50/s
        Drain(2, 1000, 25.0, 24.0),  # 40/s: against 50/s
    ]
    assert round(ratio(drains, steady=False) or 0, 4) == round((80 / 75 + 40 / 50) / 2, 4)
    # first to last delivery (start-up left out): 1000/12 against (1000/9 + 1000/19) / 2, ...
    steady = ((1000 / 12) / ((1000 / 9 + 1000 / 19) / 2) + (1000 / 24) / (1000 / 19)) / 2
    assert round(ratio(drains) or 0, 4) == round(steady, 4)
    assert ratio([Drain(1, 1000, 10.0, 9.0)]) is None


def test_round_trips_are_judged_as_shown() -> None:
    # the idle subtraction is good to a few hundredths: 1.0007 is one round trip, 1.06 is not
    def verdicts(webhook: float, delivery: float) -> dict[str, str]:
        trips = SimpleNamespace(
            per_webhook=SimpleNamespace(postgres=webhook),
            per_delivery=SimpleNamespace(postgres=delivery),
        )
        run = SimpleNamespace(
            rounds=[_round(1000, 600, 100)],
            rates=[],
            trips=trips,
            drains=[],
            sqlite=[],
            scaling=[],
        )
        section = targets_section(run)  # type: ignore[arg-type]
        return {line.split(" | ")[0].strip("| "): line for line in section.splitlines()}

    met = verdicts(1.0007, 2.04)
    assert "| met |" in met["Postgres round trips per webhook"]
    assert "| met |" in met["Postgres round trips per delivery"]
    missed = verdicts(1.06, 2.2)
    assert "**missed**" in missed["Postgres round trips per webhook"]
    assert "**missed**" in missed["Postgres round trips per delivery"]


def test_runs_in_a_row_show_each_target_in_each_run() -> None:
    def run(gateway: float) -> Any:
        trips = SimpleNamespace(
            per_webhook=SimpleNamespace(postgres=1.0), per_delivery=SimpleNamespace(postgres=2.0)
        )
        return SimpleNamespace(
            rounds=[_round(1000, gateway, 400)],
            rates=[],
            trips=trips,
            drains=[],
            sqlite=[],
            scaling=[],
        )

    assert spread_section([run(600)]) == ""  # one run: nothing to spread
    section = spread_section([run(600), run(450), run(520)])
    lines = {line.split(" | ")[0].strip("| "): line for line in section.splitlines()}
    ingest = lines["ingest, distinct orders"]
    assert "| 0.60x | 0.45x | 0.52x | 2 of 3 |" in ingest  # the second run missed it
    assert lines["ingest, one hot order"].endswith("| 3 of 3 |")
