"""The API's /metrics tells the whole story from the database, whatever process acted.

Every gauge of ``metrics.DATABASE_GAUGES`` is read at the scrape: a worker's stale copy of a
state (a poll it saw fail, since fixed by another worker) never reaches the operator.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlmodel import col

from app.db import transaction
from app.models import Delivery, Finding, WorkerHeartbeat, utcnow
from app.observability import metrics
from app.observability.snapshot import refresh_database_gauges
from app.runtime import Runtime
from app.scheduling import jobs
from kernel.errors import PermanentError
from tests.api.conftest import seed
from tests.integration.test_erp_truth_jobs import ErpSaying
from tests.integration.test_scheduled_jobs import job_rt

__all__ = ["job_rt"]

Start = Callable[..., Awaitable[Runtime]]


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_a_failing_poll_is_what_the_database_says_not_what_a_process_saw(
    job_rt: Start,
) -> None:
    erp = ErpSaying({})
    rt = await job_rt(erp=erp)
    erp.poll_error = PermanentError("Invalid search query (INVALID_PARAMETER)")
    await jobs.poll_stream(rt, "erp", "inventory")
    metrics.POLL_FAILING.labels("erp", "inventory").set(0)  # the API process never polled
    await refresh_database_gauges(rt)
    assert gauge("gateway_poll_failing", connection="erp", stream="inventory") == 1

    erp.poll_error = None  # another worker's run succeeds ...
    await jobs.poll_stream(rt, "erp", "inventory")
    metrics.POLL_FAILING.labels("erp", "inventory").set(1)  # ... the failing one's copy is stale
    await refresh_database_gauges(rt)
    assert gauge("gateway_poll_failing", connection="erp", stream="inventory") == 0


async def test_queue_depth_and_the_oldest_deliverys_age_by_destination_and_status(
    job_rt: Start,
) -> None:
    rt = await job_rt()
    old = await seed(rt, status="pending")
    await seed(rt, status="pending")
    await seed(rt, status="dead")
    async with transaction(rt.sessions) as session:
        await session.execute(
            sa.update(Delivery)
            .where(col(Delivery.id) == old.delivery)
            .values(created_at=utcnow() - timedelta(hours=1))
        )
    await refresh_database_gauges(rt)
    assert gauge("gateway_queue_depth", destination="erp", status="pending") == 2
    age = gauge("gateway_queue_oldest_age_seconds", destination="erp", status="pending")
    assert age is not None and 3600 <= age < 3660
    assert gauge("gateway_queue_depth", destination="erp", status="dead") == 1
    dead_age = gauge("gateway_queue_oldest_age_seconds", destination="erp", status="dead")
    assert dead_age is not None and 0 <= dead_age < 60
    assert gauge("gateway_queue_oldest_age_seconds", destination="erp", status="parked") == 0
    assert gauge("gateway_queue_oldest_age_seconds", destination="shop", status="pending") == 0

    async with transaction(rt.sessions) as session:  # the operator replays the old one
        await session.execute(
            sa.update(Delivery)
            .where(col(Delivery.id) == old.delivery)
            .values(status="delivered", delivered_at=utcnow())
        )
    await refresh_database_gauges(rt)
    assert gauge("gateway_queue_depth", destination="erp", status="pending") == 1
    age = gauge("gateway_queue_oldest_age_seconds", destination="erp", status="pending")
    assert age is not None and age < 60


async def test_findings_of_the_last_day_and_live_workers_from_any_process(job_rt: Start) -> None:
    rt = await job_rt()
    now = utcnow()

    def finding(kind: str, at: Any) -> Finding:
        return Finding(kind=kind, message=f"a {kind}", created_at=at)

    def worker(name: str, state: str, seen: Any) -> WorkerHeartbeat:
        return WorkerHeartbeat(
            worker_id=name, kind="arq", started_at=seen, seen_at=seen, state=state
        )

    async with transaction(rt.sessions) as session:
        session.add_all(
            [
                finding("tax_difference", now),
                finding("tax_difference", now - timedelta(hours=23)),
                finding("tax_difference", now - timedelta(hours=25)),
                finding("snapshot_test_old_kind", now - timedelta(days=3)),
                worker("w1", "consuming", now),
                worker("w2", "queue_unreachable", now),
                worker("gone", "consuming", now - timedelta(minutes=5)),  # killed -9
            ]
        )
    await refresh_database_gauges(rt)
    assert gauge("gateway_findings_last_24h", kind="tax_difference") == 2
    assert gauge("gateway_findings_last_24h", kind="snapshot_test_old_kind") is None
    assert gauge("gateway_workers", state="consuming") == 1
    assert gauge("gateway_workers", state="queue_unreachable") == 1
    assert gauge("gateway_workers", state="stopping") == 0

    async with transaction(rt.sessions) as session:  # the last consuming worker dies
        await session.execute(
            sa.delete(WorkerHeartbeat).where(col(WorkerHeartbeat.worker_id) == "w1")
        )
        await session.execute(sa.delete(Finding))
    await refresh_database_gauges(rt)
    assert gauge("gateway_workers", state="consuming") == 0  # 0, not a vanished series
    assert gauge("gateway_findings_last_24h", kind="tax_difference") == 0
