"""The erasure job: carries pending erase requests forward, a batch per transaction.

Runs from the scheduled-job tick (``app.scheduling.jobs.run_due_jobs``: the arq worker's
cron and the in-process worker's loop), never in the webhook request. One run:

0. ``backfill_refs``: events recorded before ``person_refs`` existed get their refs (once,
   in bounded batches; erasures wait until it is done so they miss nothing).
1. *pending → scrubbing*: the request becomes ref hashes (``refs.request_refs``); the index
   gives the person's events at the requesting connection, and the refs of those events
   expand the set **once** (the customer id an order names, its e-mail, its order key, so
   returns, refunds and the customer record come along). With
   ``rules.customers.erase_linked_erp_records`` the ERP-side customers linked to the
   person's customer keys (``entity_links``, ``customer_matches``) and the ERP's records
   about their orders join. The hash set is stored on the request; no plain values are.
2. *scrubbing*: the person's identifying strings are read from their records
   (``scrub.Person``), then events are scrubbed in id order, ``BATCH`` per transaction,
   with a cursor so a restart resumes: each canonical payload, its raw webhook (body,
   headers; partially if the webhook also carried other people), its deliveries
   (payload, directives, errors, keys) and their attempt logs, the findings about it.
   A delivery being sent right now (live lease) makes the job wait for the next tick.
   Then the person's ``customer_matches`` rows go, guest keys in ``entity_links`` are
   tokenized, connection errors are cleaned and the person's ``person_refs`` are deleted.
3. *awaiting_delivery*: the request itself keeps its identifiers until every delivery of
   it went out (delivered, superseded or rejected; a dead one may still be replayed).
4. *done*: the request's own rows are scrubbed — its payload keeps the customer id, and
   in place of an e-mail only ``erasure-<hash>@erased.invalid`` — and a ``customer_erased``
   finding reports the counts per kind (rows changed per table, values replaced).

Nothing here is recursive and every query goes through an index (``person_refs`` by hash,
rows by id / foreign key), so the cost follows the person's data, not the database's size.

This module carries requests from step to step; the steps are ``backfill`` (0), ``person``
(1), ``scrubbing`` (2) and ``finish`` (3, 4); ``progress`` holds the statuses, batch sizes,
lease and counts they share.
"""

from __future__ import annotations

import sqlalchemy as sa
import structlog

from app.erasure.backfill import backfill_refs
from app.erasure.finish import finish
from app.erasure.person import resolve
from app.erasure.progress import (
    AWAITING,
    DONE,
    EVENTS,
    MAX_BATCHES_PER_RUN,
    OPEN_STATUSES,
    PENDING,
    SCRUBBING,
    Job,
    lease,
    set_fields,
)
from app.erasure.refs import ERASURES
from app.erasure.scrubbing import scrub_all
from app.flows.rules import effective_rules
from app.runtime import Runtime
from kernel.canonical.customer import ErasureRequest

log = structlog.get_logger("gateway.erasure")


async def run_erasures(rt: Runtime, *, max_batches: int = MAX_BATCHES_PER_RUN) -> int:
    """Carry every open erase request forward; returns how many finished in this run."""
    if not await backfill_refs(rt):
        return 0
    async with rt.sessions() as session:
        ids = list(
            (
                await session.execute(
                    sa.select(ERASURES.c.id)
                    .where(ERASURES.c.status.in_(OPEN_STATUSES))
                    .order_by(ERASURES.c.id)
                    .limit(100)
                )
            ).scalars()
        )
    finished = 0
    budget = max_batches
    for erasure_id in ids:
        if budget <= 0:
            break
        if not await lease(rt, erasure_id):
            continue
        try:
            budget, done = await _advance(rt, int(erasure_id), budget)
        except Exception:
            log.exception("erasure run failed; it resumes on the next tick", erasure_id=erasure_id)
            await set_fields(rt, erasure_id, note="the last run failed; retried on the next tick")
            done = False
        finally:
            await set_fields(rt, erasure_id, leased_until=None)
        finished += int(done)
    return finished


async def _advance(rt: Runtime, erasure_id: int, budget: int) -> tuple[int, bool]:
    async with rt.sessions() as session:
        record = (
            await session.execute(sa.select(ERASURES).where(ERASURES.c.id == erasure_id))
        ).one()
        payload = await session.scalar(
            sa.select(EVENTS.c.payload).where(EVENTS.c.id == record.canonical_event_id)
        )
        rules = await effective_rules(session, rt.config.rules)
    job = Job(
        id=erasure_id,
        event_id=int(record.canonical_event_id),
        source=record.source,
        entity_key=record.entity_key,
        request=ErasureRequest.model_validate(payload),
        rules=rules,
        erp_connections=_erp_side(rt, record.source),
        hashes=list(record.ref_hashes or []),
    )
    status = record.status
    if status == PENDING:
        await resolve(rt, job)
        status = SCRUBBING
    if status == SCRUBBING:
        budget, finished = await scrub_all(rt, job, int(record.cursor), budget)
        if not finished:
            return budget, False
        status = AWAITING
    if status == AWAITING:
        return budget, await finish(rt, job)
    return budget, status == DONE


def _erp_side(rt: Runtime, source: str) -> list[str]:
    """Connections whose records of the person count as ERP-side copies: those declaring
    the ERP side, and those the requesting connection sends its data to (its routes)."""
    erp = {c for c, side in rt.sides.items() if side == "erp"}
    erp |= {r.to for r in rt.config.routes if r.from_ == source and r.to != source}
    return sorted(erp)
