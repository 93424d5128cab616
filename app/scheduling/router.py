"""/api/v1/jobs: the scheduled jobs, their state, and running one now.

Running a job from the API is for operators who cannot wait for the schedule (a
reconciliation after fixing stock by hand, a poll after an ERP outage); the job runs in the
API process, exactly as the scheduler would run it.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.api.deps import OperatorActor, PiiDep, RuntimeDep, SessionDep
from app.api.pii import mask_response
from app.audit.service import record_action
from app.db import transaction
from app.errors import NotFound
from app.incidents.job import run_incidents
from app.models import PollCursor
from app.ops.pagination import Page
from app.retention.job import run_retention
from app.runtime import Runtime
from app.scheduling import jobs

router = APIRouter(prefix="/jobs", tags=["jobs"])


class JobOut(BaseModel):
    name: str = Field(
        description="reconcile, prices, retention, incidents, or poll:<connection>:<stream>"
    )
    last_run_at: datetime | None
    cursor: str | None = Field(
        default=None,
        description="pollers: where polling resumes; retention: JSON of the current or last "
        "run per kind (rows purged, up_to_id, done; kept: forever when its days are 0)",
    )
    last_count: int = Field(
        default=0, description="what the last run did (events, prices, SKUs, rows purged)"
    )
    last_error: str | None = None


class JobRunOut(BaseModel):
    name: str
    result: int = Field(
        description="events recorded (poll), prices sent, SKUs corrected, rows purged "
        "(retention), incidents raised or resolved and messages sent (incidents)"
    )


def job_names(rt: Runtime) -> list[str]:
    names = ["prices", "reconcile", "retention", "incidents"]
    for conn in rt.config.connections:
        if conn.poll is not None:
            names += [f"poll:{conn.id}:{stream}" for stream in conn.poll.streams]
    return names


@router.get(
    "",
    summary="Scheduled jobs and their last run",
    description="Every job fits one page (`next_cursor` is null). Viewer keys get e-mail "
    "addresses in `last_error` masked.",
)
async def list_jobs(session: SessionDep, rt: RuntimeDep, pii: PiiDep) -> Page[JobOut]:
    rows = {
        (r.connection_id, r.stream): r
        for r in (await session.execute(sa.select(PollCursor))).scalars()
    }
    out = []
    for name in job_names(rt):
        owner, stream = _owner_stream(name)
        row = rows.get((owner, stream))
        out.append(
            JobOut(
                name=name,
                last_run_at=row.polled_at if row else None,
                cursor=row.cursor if row else None,
                last_count=row.last_count if row else 0,
                last_error=row.last_error if row else None,
            )
        )
    return Page(items=out if pii else [mask_response(job) for job in out], next_cursor=None)


@router.post(
    "/{name}/run",
    summary="Run a scheduled job now",
    description="Runs it in the API process as the scheduler would, and answers once it has "
    "run: events recorded (poll), prices sent, SKUs corrected, rows purged (retention). "
    "Recorded in the audit trail.",
    responses={404: {"description": "no such job"}, 403: {"description": "needs an operator key"}},
)
async def run_job(name: str, rt: RuntimeDep, actor: OperatorActor) -> JobRunOut:
    if name not in job_names(rt):
        raise NotFound(f"no job {name!r}", hint=f"jobs: {', '.join(job_names(rt))}")
    if name == "prices":
        result = await jobs.apply_price_schedule(rt)
    elif name == "reconcile":
        result = await jobs.reconcile_inventory(rt)
    elif name == "retention":
        result = await run_retention(rt)
    elif name == "incidents":
        result = await run_incidents(rt)
    else:
        _, connection_id, stream = name.split(":", 2)
        result = await jobs.poll_stream(rt, connection_id, stream)
    # the job commits its own work as it goes; its audit row follows once it has run
    async with transaction(rt.sessions) as session:
        await record_action(session, actor, "job.run", f"job:{name}", {"result": result})
    return JobRunOut(name=name, result=result)


def _owner_stream(name: str) -> tuple[str, str]:
    if name.startswith("poll:"):
        _, connection_id, stream = name.split(":", 2)
        return connection_id, stream
    return jobs.GATEWAY, name
