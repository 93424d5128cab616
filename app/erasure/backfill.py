"""The ``person_refs`` index for events recorded before it existed (step 0 of the job):
built once, in bounded batches; erasures wait until it is done so they miss nothing."""

from __future__ import annotations

import sqlalchemy as sa
import structlog

from app.db import transaction
from app.dbutil import upsert
from app.erasure.progress import (
    BACKFILL_BATCH,
    BACKFILL_BATCHES_PER_RUN,
    BACKFILL_OWNER,
    BACKFILL_STREAM,
    CURSORS,
    EVENTS,
)
from app.erasure.refs import PERSON_REFS, event_refs, ref_row
from app.flows.rules import effective_rules
from app.models import PollCursor
from app.runtime import Runtime

log = structlog.get_logger("gateway.erasure")


async def backfill_refs(rt: Runtime) -> bool:
    """Index events recorded before ``person_refs`` existed; True once nothing is left.

    The state is one ``poll_cursors`` row: ``<last id>/<highest id to index>``, then "done".
    Events that already have refs (recorded since) are skipped.
    """
    async with transaction(rt.sessions) as session:
        state = await session.scalar(
            sa.select(CURSORS.c.cursor).where(
                CURSORS.c.connection_id == BACKFILL_OWNER, CURSORS.c.stream == BACKFILL_STREAM
            )
        )
        if state == "done":
            return True
        if state is None:
            target = int(await session.scalar(sa.select(sa.func.max(EVENTS.c.id))) or 0)
            state = f"0/{target}"
        done_through, target = (int(part) for part in state.split("/", 1))
        rules = await effective_rules(session, rt.config.rules)
        default_country = rules.customers.default_country_code
        for _ in range(BACKFILL_BATCHES_PER_RUN):
            if done_through >= target:
                break
            rows = (
                await session.execute(
                    sa.select(
                        EVENTS.c.id,
                        EVENTS.c.source,
                        EVENTS.c.event_type,
                        EVENTS.c.entity_type,
                        EVENTS.c.payload,
                    )
                    .where(EVENTS.c.id > done_through, EVENTS.c.id <= target)
                    .order_by(EVENTS.c.id)
                    .limit(BACKFILL_BATCH)
                )
            ).all()
            if not rows:
                done_through = target
                break
            ids = [int(r.id) for r in rows]
            indexed = set(
                (
                    await session.execute(
                        sa.select(PERSON_REFS.c.canonical_event_id)
                        .where(PERSON_REFS.c.canonical_event_id.in_(ids))
                        .distinct()
                    )
                ).scalars()
            )
            values = [
                ref_row(r.source, ref, int(r.id))
                for r in rows
                if r.id not in indexed
                for ref in sorted(
                    event_refs(r.event_type, r.entity_type, r.payload, default_country)
                )
            ]
            if values:
                await session.execute(sa.insert(PERSON_REFS), values)
            done_through = ids[-1]
        finished = done_through >= target
        new_state = "done" if finished else f"{done_through}/{target}"
        await upsert(
            session,
            PollCursor,
            {
                "connection_id": BACKFILL_OWNER,
                "stream": BACKFILL_STREAM,
                "cursor": new_state,
                "last_count": 0,
            },
            key=["connection_id", "stream"],
            update=["cursor"],
        )
    if not finished:
        log.info("indexing earlier events for erasure", done_through=done_through, target=target)
    return finished
