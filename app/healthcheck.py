"""``erp-gateway healthcheck``: one line and an exit status for a container's healthcheck.

Without curl (the image has none): ``healthcheck`` asks the API's ``/readyz`` (the database
answers, webhooks are stored); ``healthcheck --worker`` reads the heartbeat this host's
worker writes every few seconds (``app.delivery.heartbeat``): healthy only while it is
recent and says ``consuming``, so a worker that hangs, lost Redis or was killed is unhealthy
within ``STALE_AFTER``.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from datetime import datetime

import httpx
import sqlalchemy as sa

from app.db import make_engine, make_sessionmaker
from app.delivery.heartbeat import STALE_AFTER
from app.models import WorkerHeartbeat, utcnow
from app.settings import Settings

TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Health:
    ok: bool
    line: str


def api_health(url: str, timeout: float = TIMEOUT_SECONDS) -> Health:
    """The API at ``url`` answers ``/readyz`` with 200."""
    target = url.rstrip("/") + "/readyz"
    try:
        answer = httpx.get(target, timeout=timeout)
    except httpx.HTTPError as exc:
        return Health(False, f"unhealthy: {target} did not answer ({type(exc).__name__})")
    try:
        status = str(answer.json().get("status", ""))
    except ValueError:
        status = ""
    said = f" ({status})" if status else ""
    if answer.status_code == 200:
        return Health(True, f"ok: {target} answered 200{said}")
    return Health(False, f"unhealthy: {target} answered {answer.status_code}{said}")


def judge_workers(host: str, rows: list[WorkerHeartbeat], now: datetime) -> Health:
    """This host's delivering processes, from their heartbeats: healthy when one of them
    reported ``consuming`` within ``STALE_AFTER``."""
    mine = sorted(
        (r for r in rows if r.worker_id.rpartition(":")[0] == host),
        key=lambda r: r.seen_at,
        reverse=True,
    )
    recent = [r for r in mine if now - r.seen_at <= STALE_AFTER]
    consuming = [r for r in recent if r.state == "consuming"]
    if consuming:
        worker = consuming[0]
        ago = (now - worker.seen_at).total_seconds()
        return Health(True, f"ok: worker {worker.worker_id} consuming (seen {ago:.0f} s ago)")
    if recent:
        worker = recent[0]
        return Health(
            False,
            f"unhealthy: worker {worker.worker_id} is {worker.state}"
            + (f": {worker.detail}" if worker.detail else ""),
        )
    stale = STALE_AFTER.total_seconds()
    if mine:
        ago = (now - mine[0].seen_at).total_seconds()
        return Health(
            False,
            f"unhealthy: worker {mine[0].worker_id} last seen {ago:.0f} s ago "
            f"(more than {stale:.0f} s: stopped, hung or cut off from the database)",
        )
    return Health(False, f"unhealthy: no worker on {host} reported in the last {stale:.0f} s")


async def _heartbeats(settings: Settings) -> list[WorkerHeartbeat]:
    engine = make_engine(settings.model_copy(update={"db_pool_size": 1}))
    try:
        async with make_sessionmaker(engine)() as session:
            return list((await session.execute(sa.select(WorkerHeartbeat))).scalars())
    finally:
        await engine.dispose()


def worker_health(settings: Settings, host: str | None = None) -> Health:
    """The worker of this host (its hostname, as in the heartbeat's worker id)."""
    host = host or socket.gethostname()
    try:
        rows = asyncio.run(asyncio.wait_for(_heartbeats(settings), TIMEOUT_SECONDS))
    except Exception as exc:
        cause = getattr(exc, "orig", None) or exc  # the driver's error, without the SQL
        said = " ".join(str(cause).split())[:200]
        return Health(
            False,
            f"unhealthy: cannot read the workers' heartbeats from the database "
            f"({type(cause).__name__}: {said})",
        )
    return judge_workers(host, rows, utcnow())
