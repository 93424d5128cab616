"""One version of an entity, one event, whichever way it arrived.

The same order can reach the gateway twice: by webhook and by a backfill poll (which
overlaps its window on purpose), or by the poll first and then by a late Shopify retry of a
webhook the gateway missed while it was down. Raw deliveries are deduplicated by their keys
(``inbound_events``); this module deduplicates what they *say*, against the canonical events
already recorded (and the earlier events of the same batch):

- an ``order.created`` of an order already recorded is an ``order.updated``: an order is
  created once, a repeated creation is a version of it (an older one is then skipped by the
  planner as stale);
- an event that carries its entity's whole state (the ``VERSIONED`` families: an order's
  creation and updates, customers, products, prices) is dropped when the newest recorded
  event of its family says the same, time stamps aside;
- an ``order.cancelled`` is recorded once per order (a cancellation happens once; what
  changes after it arrives as updates);
- any other event is dropped when the newest recorded event of the same type says the same
  (what polls always did: they re-read the edge of their window).

Webhooks apply the rules only to the types the Shopify backfill also produces
(``WEBHOOK_CHECKED``); other webhook events (stock levels whose time stamp matters, erase
requests...) are recorded as they come, as before.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.flows.state import VERSIONED, Versions, remember_versions
from app.models import CanonicalEventRow
from kernel.canonical.events import CanonicalEvent

CREATED, UPDATED, CANCELLED = "order.created", "order.updated", "order.cancelled"
# recorded once per entity, whatever they say
ONCE = frozenset({CANCELLED})
WEBHOOK_CHECKED = frozenset({CREATED, UPDATED, CANCELLED, "customer.upserted", "refund.created"})
_TIME_FIELDS = frozenset({"as_of", "updated_at", "effective_at", "occurred_at"})


def content(payload: dict[str, Any]) -> dict[str, Any]:
    """What an event says, time stamps aside."""
    return {k: v for k, v in payload.items() if k not in _TIME_FIELDS}


def _family(event_type: str) -> tuple[str, ...]:
    return VERSIONED.get(event_type, (event_type,))


async def fresh_events(
    session: AsyncSession, events: list[CanonicalEvent], *, webhook: bool = False
) -> list[CanonicalEvent]:
    """``events`` without those that change nothing (``order.created`` of a known order
    relabelled ``order.updated``); ``webhook`` limits the rules to ``WEBHOOK_CHECKED``."""
    keys = keys_to_check(events, webhook=webhook)
    if not keys:
        return list(events)
    return choose_fresh(events, await _newest(session, keys), webhook=webhook)


def keys_to_check(events: list[CanonicalEvent], *, webhook: bool = False) -> set[str]:
    """The entities whose recorded events ``choose_fresh`` needs to know."""
    return {e.entity_key for e in events if not webhook or e.type in WEBHOOK_CHECKED}


def choose_fresh(
    events: list[CanonicalEvent], known: Known, *, webhook: bool = False
) -> list[CanonicalEvent]:
    """``fresh_events`` once the newest recorded events (``known_events``) are read."""
    # events of this batch rank after everything recorded (ids only grow)
    rank = max((r for r, _ in known.values()), default=0)
    fresh: list[CanonicalEvent] = []
    for event in events:
        if webhook and event.type not in WEBHOOK_CHECKED:
            fresh.append(event)
            continue
        if event.type == CREATED and _seen(known, event.entity_key, _family(CREATED)):
            event = event.model_copy(update={"type": UPDATED})
        said = content(event.payload_json())
        if event.type in ONCE:
            if (event.entity_key, event.type) in known:
                continue
        elif _newest_said(known, event.entity_key, _family(event.type)) == said:
            continue
        rank += 1
        known[(event.entity_key, event.type)] = (rank, said)
        fresh.append(event)
    return fresh


Known = dict[tuple[str, str], tuple[int, dict[str, Any]]]


_EVENTS = CanonicalEventRow.__table__.c  # type: ignore[attr-defined]
# Built once with an expanding parameter: every webhook runs it, and building the
# statement cost more CPU than Postgres spends answering it. Each (entity, type)'s newest
# event, with the latest occurred_at of its type (the planner's out-of-order check).
_GROUPS = (
    sa.select(
        sa.func.max(_EVENTS.id).label("id"),
        sa.func.max(_EVENTS.occurred_at).label("newest_at"),
    )
    .where(_EVENTS.entity_key.in_(sa.bindparam("keys", expanding=True)))
    .group_by(_EVENTS.entity_key, _EVENTS.event_type)
    .subquery()
)
_NEWEST = sa.select(
    _EVENTS.id, _EVENTS.entity_key, _EVENTS.event_type, _EVENTS.payload, _GROUPS.c.newest_at
).join(_GROUPS, _GROUPS.c.id == _EVENTS.id)


async def _newest(session: AsyncSession, keys: set[str]) -> Known:
    """(entity key, event type) → (rank, content) of the newest recorded event.

    What it read of the versions is kept for the planner's out-of-order check, which then
    asks nothing more in this transaction (``remember_versions``)."""
    rows = (await session.execute(_NEWEST, {"keys": sorted(keys)})).all()
    return known_events(session, keys, [tuple(row) for row in rows])


Newest = tuple[int, str, str, dict[str, Any], Any]  # id, entity key, type, payload, newest_at


def known_events(session: AsyncSession, keys: set[str], rows: list[Newest]) -> Known:
    """What ``_NEWEST`` found for ``keys``: each (entity, type)'s newest event (rank,
    content); the versions are remembered for the planner (``remember_versions``)."""
    versions: Versions = {key: {} for key in keys}
    for _, key, kind, _, newest_at in rows:
        versions[key][kind] = newest_at
    remember_versions(session, versions)
    return {(key, kind): (int(rank), content(payload)) for rank, key, kind, payload, _ in rows}


def _seen(known: Known, key: str, family: tuple[str, ...]) -> bool:
    return any((key, kind) in known for kind in family)


def _newest_said(known: Known, key: str, family: tuple[str, ...]) -> dict[str, Any] | None:
    found = [known[(key, kind)] for kind in family if (key, kind) in known]
    return max(found, key=lambda pair: pair[0])[1] if found else None
