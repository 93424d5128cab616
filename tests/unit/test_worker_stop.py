"""A worker stopping on SIGTERM counts the deliveries it finished or handed back, apart from
its own cron jobs (sweeper, scheduler) that happened to run at that moment."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from app.delivery import worker as worker_module
from app.delivery.worker import ArqWorker


class RecordingLog:
    """The worker's logger, recording (structlog's capture misses a logger cached before)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.events.append({"event": event, **fields})


class FakePool:
    async def aclose(self) -> None:
        return None


def stopping_worker(grace: float) -> ArqWorker:
    runner = object.__new__(ArqWorker)  # no runtime: only the stop is exercised
    runner.settings = SimpleNamespace(worker_grace_seconds=grace)  # type: ignore[assignment]
    runner._orphans = set()
    return runner


async def stop(
    grace: float, tasks: dict[str, asyncio.Task[Any]], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    arq = SimpleNamespace(tasks=tasks, allow_pick_jobs=True, pool=FakePool())
    main = asyncio.create_task(asyncio.Event().wait())
    recorded = RecordingLog()
    monkeypatch.setattr(worker_module, "log", recorded)
    await stopping_worker(grace)._stop_gracefully(arq, main)  # type: ignore[arg-type]
    logs = recorded.events
    assert arq.allow_pick_jobs is False
    (starting,) = [e for e in logs if e["event"].startswith("worker stopping")]
    (stopped,) = [e for e in logs if e["event"] == "worker stopped"]
    return {"in_flight": starting["in_flight"], **stopped}


async def test_a_cron_job_running_at_the_stop_is_not_counted_as_a_delivery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tasks = {
        "delivery:1": asyncio.create_task(asyncio.sleep(0.05)),
        "cron:sweep": asyncio.create_task(asyncio.sleep(0.05)),
    }
    counts = await stop(5.0, tasks, monkeypatch)
    assert counts["in_flight"] == 1
    assert (counts["finished_in_flight"], counts["handed_back"]) == (1, 0)
    assert counts["scheduled_jobs_cut_short"] == 0


async def test_what_outlasts_the_grace_period_is_handed_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tasks = {
        "delivery:1": asyncio.create_task(asyncio.sleep(0.01)),
        "delivery:2": asyncio.create_task(asyncio.Event().wait()),
        "cron:scheduler": asyncio.create_task(asyncio.Event().wait()),
    }
    counts = await stop(0.2, tasks, monkeypatch)
    assert (counts["finished_in_flight"], counts["handed_back"]) == (1, 1)
    assert counts["scheduled_jobs_cut_short"] == 1
    assert all(task.done() for task in tasks.values())
