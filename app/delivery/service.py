"""The delivery engine: claim a delivery with a lease, call the connector, record the outcome.

``process_delivery`` is a plain async function; the arq task and the in-process worker are
thin wrappers around it. It never holds a database connection while the remote system is
being called, and it never lets one entity's deliveries to one destination overtake each
other (create before update before cancel).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import autocommit, transaction
from app.dbutil import rowcount, upsert
from app.delivery.breakers import Transition
from app.delivery.capture import capture_exchanges
from app.delivery.claim import Claimed, claim
from app.delivery.destination import record_breaker, record_connection_health, release_waiting
from app.delivery.finish import Recorded, record_finish
from app.delivery.outbox import (
    DELIVERIES,
    WAITING_FOR_DESTINATION,
    Outcome,
    enqueue_after_commit,
    waiting_behind,
)
from app.delivery.outcomes import (
    BREAKER_WAIT_SECONDS,
    classify,
    decide,
    error_message,
    health_signal,
)
from app.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    EntityLink,
    Finding,
    utcnow,
)
from app.observability import metrics
from app.runtime import Runtime
from kernel import types as kernel_types
from kernel.contract import Connector
from kernel.errors import ConnectorError, NeedsMappingError, PermanentError
from kernel.types import DeliveryResult, RemoteLink

log = structlog.get_logger("gateway.delivery")


async def process_delivery(rt: Runtime, delivery_id: int) -> Outcome:
    """Attempt one delivery once; returns what the queue should do next."""
    owner = f"{rt.worker_id}:{time.monotonic_ns()}"
    with structlog.contextvars.bound_contextvars(delivery_id=delivery_id):
        claimed = await claim(rt, delivery_id, owner)
        if isinstance(claimed, Outcome):
            return claimed
        delivery = claimed.delivery
        structlog.contextvars.bind_contextvars(
            destination=delivery.destination,
            entity_key=delivery.entity_key,
            canonical_event_id=delivery.canonical_event_id,
        )
        try:
            return await _process_claimed(rt, delivery, owner, claimed)
        except asyncio.CancelledError:
            # shutting down past the grace period: hand the delivery back at once instead of
            # leaving it to the lease (its write may have gone out: every write is idempotent)
            await asyncio.shield(release_lease(rt, delivery, owner))
            raise


async def _process_claimed(
    rt: Runtime, delivery: Delivery, owner: str, claimed: Claimed
) -> Outcome:
    if claimed.event is None:
        unreadable = PermanentError(
            f"the stored event does not pass validation any more ({claimed.unreadable}); "
            "fix the record at its source and send it again"
        )
        return await _finish(rt, delivery, owner, unreadable, _NO_CALL, claimed)
    if claimed.broken is not None:
        return await _finish(rt, delivery, owner, claimed.broken, _NO_CALL, claimed)
    if claimed.missing:
        return await _finish(
            rt, delivery, owner, NeedsMappingError(claimed.missing), _NO_CALL, claimed
        )
    connector = rt.connector(delivery.destination)
    if connector is None:
        unknown = PermanentError(
            f"destination connection {delivery.destination!r} is not in the config; "
            "add it back or replay the delivery to another route"
        )
        return await _finish(rt, delivery, owner, unknown, _NO_CALL, claimed)

    queued_at = time.monotonic()
    async with rt.concurrency_limit(delivery.destination):
        # A long wait for a slot could let the lease run out; renew it before calling.
        if time.monotonic() - queued_at > rt.settings.lease_seconds / 2 and not (
            await _renew_lease(rt, delivery, owner)
        ):
            log.warning("lease lost while waiting for a slot; another worker has it")
            return Outcome("skipped", "lease_lost")
        admission = await rt.breakers.admit(delivery.destination, utcnow())
        if not admission.go:
            return await _wait_for_destination(rt, delivery, owner, admission.retry_at)
        try:
            await rt.rate_limit(delivery.destination)
            return await _attempt(rt, delivery, owner, claimed, connector, admission.trial)
        finally:
            if admission.trial:
                await rt.breakers.release_trial(delivery.destination)  # no-op once reported


async def release_lease(rt: Runtime, delivery: Delivery, owner: str) -> None:
    """Give an in-flight delivery back: pending and due now, for any worker to take."""
    try:
        async with autocommit(rt.engine, rt.sessions) as session:
            await session.execute(
                _owned(delivery.id, owner).values(
                    status=DeliveryStatus.PENDING,
                    next_attempt_at=utcnow(),
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=utcnow(),
                )
            )
        log.info("delivery handed back on shutdown")
    except Exception:
        log.warning("could not hand the delivery back; its lease will expire", exc_info=True)


async def _renew_lease(rt: Runtime, delivery: Delivery, owner: str) -> bool:
    until = utcnow() + timedelta(seconds=rt.settings.lease_seconds)
    async with autocommit(rt.engine, rt.sessions) as session:
        result = await session.execute(_owned(delivery.id, owner).values(lease_expires_at=until))
        return rowcount(result) == 1


@dataclass(frozen=True)
class _Call:
    """What one connector call produced (or that no call was made)."""

    result: DeliveryResult | None = None
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0
    breaker: Transition | None = None


_NO_CALL = _Call()


async def _attempt(
    rt: Runtime,
    delivery: Delivery,
    owner: str,
    claimed: Claimed,
    connector: Connector,
    trial: bool,
) -> Outcome:
    started = time.perf_counter()
    result: DeliveryResult | None = None
    error: BaseException | None = None
    with capture_exchanges(
        sensitive_headers=connector.sensitive_headers, sensitive_fields=connector.sensitive_fields
    ) as exchanges:
        try:
            assert claimed.event is not None
            # a concurrency slot stays with this attempt between its calls (``keeping``)
            async with rt.limiter.keeping():
                result = await connector.deliver(claimed.event, claimed.context)
        except ConnectorError as exc:
            error = exc
        except Exception as exc:  # a connector bug must not lose the delivery
            log.exception("connector raised an unexpected error")
            error = exc
    duration = time.perf_counter() - started
    exchanges = [connector.redact_exchange(exchange) for exchange in exchanges]
    metrics.ATTEMPT_SECONDS.labels(delivery.destination).observe(duration)
    transition: Transition | None = None
    signal = health_signal(error)
    if signal is not None:
        transition = await rt.breakers.record(delivery.destination, utcnow(), signal, trial=trial)
        metrics.BREAKER_STATE.labels(delivery.destination).set(
            metrics.BREAKER_STATE_VALUES[transition.view.state]
        )
        if transition.changed:
            _log_breaker(delivery.destination, transition, error)
    call = _Call(result, exchanges, duration, transition)
    return await _finish(rt, delivery, owner, error, call, claimed)


def _log_breaker(destination: str, transition: Transition, error: BaseException | None) -> None:
    if transition.view.state == "closed":
        log.info("circuit breaker closed: destination answers again", breaker=destination)
        return
    reopens = transition.view.reopens_at
    log.warning(
        "circuit breaker open: destination failing; deliveries wait for it without using "
        "their retry window",
        breaker=destination,
        trial_at=reopens.isoformat() if reopens else None,
        error=str(error) if error else None,
    )


async def _wait_for_destination(
    rt: Runtime, delivery: Delivery, owner: str, retry_at: datetime | None
) -> Outcome:
    """The destination is known to be down: wait for it, without an attempt or a failure."""
    now = utcnow()
    metrics.DELIVERY_OUTCOMES.labels(delivery.destination, "breaker_open").inc()
    async with autocommit(rt.engine, rt.sessions) as session:  # one statement
        await session.execute(
            _owned(delivery.id, owner).values(
                status=DeliveryStatus.PENDING,
                next_attempt_at=now + timedelta(seconds=BREAKER_WAIT_SECONDS),
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
                last_error_class=WAITING_FOR_DESTINATION,
                last_error=f"{delivery.destination} is down (circuit breaker open); waiting "
                "for it to recover"
                + (f", next trial call at {retry_at.isoformat()}" if retry_at else ""),
            )
        )
    log.info("delivery waits: destination down (breaker open)")
    # nothing queued: the breaker's closing (or the sweeper's trial) wakes it
    return Outcome("skipped", DeliveryStatus.PENDING)


def _owned(delivery_id: int | None, owner: str) -> Any:
    """Update only if we still hold the lease (a slow attempt may have lost it)."""
    return sa.update(DELIVERIES).where(
        DELIVERIES.c.id == delivery_id,
        DELIVERIES.c.lease_owner == owner,
        DELIVERIES.c.status == DeliveryStatus.IN_FLIGHT,
    )


async def _finish(
    rt: Runtime,
    delivery: Delivery,
    owner: str,
    error: BaseException | None,
    call: _Call,
    claimed: Claimed,
) -> Outcome:
    now = utcnow()
    outcome_name, counts = classify(error)
    # every attempt gets the next number, across replays; backoff counts this run's only
    attempts = delivery.attempts + (1 if counts else 0)
    run_attempts = delivery.run_attempts + (1 if counts else 0)
    message = error_message(error)
    breaker = call.breaker.view if call.breaker is not None else None
    changes, outcome = decide(
        rt.config.policy_for(delivery.destination), delivery, error, breaker, run_attempts, now
    )
    values: dict[str, Any] = {
        "attempts": attempts,
        "run_attempts": run_attempts,
        "updated_at": now,
        "lease_owner": None,
        "lease_expires_at": None,
        **changes,
    }

    attempt: dict[str, Any] = {
        "number": attempts,
        "started_at": now - timedelta(seconds=call.duration),
        "duration_ms": round(call.duration * 1000, 3),
        "outcome": outcome_name,
        "error_class": None if error is None else type(error).__name__,
        "error_message": message,
        "exchanges": call.exchanges,
    }
    result = call.result
    links = list(result.links) if result is not None else []
    if isinstance(error, ConnectorError) and error.links:
        # half of a two-step write went through: the retry must not redo it
        links += error.links
    links = list({(link.entity_type, link.our_key): link for link in links}.values())
    # what waited behind it may go now (a dead one no longer holds its entity up)
    release = outcome.status in (DeliveryStatus.DELIVERED, DeliveryStatus.DEAD)

    findings = result.findings if result is not None else []
    health = rt.health_due(delivery.destination, ok=error is None)
    breaker_changed = call.breaker is not None and call.breaker.changed
    hook = outcome.status == DeliveryStatus.DELIVERED and claimed.event is not None
    # the common case is the one statement alone: it needs no transaction around it
    alone = not findings and not health and not breaker_changed
    if alone and hook:
        alone = not await _after_delivered_needs_session(rt, delivery, claimed, now)

    async with autocommit(rt.engine, rt.sessions) if alone else transaction(rt.sessions) as session:
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            recorded = await record_finish(
                session,
                delivery_id=int(delivery.id or 0),
                owner=owner,
                destination=delivery.destination,
                ordering_key=delivery.ordering_key,
                values=values,
                attempt=attempt,
                links=links,
                release=release,
                now=now,
            )
        else:
            recorded = await _record_step_by_step(
                session, delivery, owner, values, attempt, links, release
            )
        if not recorded.owned:
            log.warning("lease lost before the outcome was recorded; another worker owns it now")
            return Outcome("skipped", "lease_lost")
        if findings:
            await _record_findings(session, delivery, findings)
        if health:
            await record_connection_health(session, delivery.destination, error, message, now)
        if call.breaker is not None and call.breaker.changed:
            await record_breaker(session, delivery.destination, call.breaker.view, now)
            if call.breaker.view.state == "closed":
                await release_waiting(session, rt, delivery.destination)
        if hook and not alone:
            from app.flows import hooks

            assert claimed.event is not None
            await hooks.after_delivered(
                session,
                rt,
                delivery,
                claimed.event,
                claimed.context.directives,
                answered_at=now,
            )
        enqueue_after_commit(session, rt, recorded.waiting)

    metrics.DELIVERY_OUTCOMES.labels(delivery.destination, outcome_name).inc()
    if outcome.status == DeliveryStatus.DEAD:
        metrics.DELIVERY_OUTCOMES.labels(delivery.destination, "dead").inc()
    if outcome.status == DeliveryStatus.DELIVERED:
        metrics.END_TO_END_SECONDS.labels(delivery.flow, delivery.destination).observe(
            (now - delivery.accepted_at).total_seconds()
        )
    settled = error is None or outcome.kind == "retry" or outcome.status == DeliveryStatus.PENDING
    (log.info if settled else log.warning)(
        "delivery attempt finished",
        outcome=outcome_name,
        status=outcome.status,
        attempts=attempts,
        duration_ms=round(call.duration * 1000, 1),
        error=message,
        retry_at=outcome.retry_at.isoformat() if outcome.retry_at else None,
        summary=call.result.summary if call.result else None,
    )
    return outcome


async def _remember_links(
    session: AsyncSession, connection_id: str, links: list[RemoteLink]
) -> None:
    now = utcnow()
    await upsert(
        session,
        EntityLink,
        [
            {
                "connection_id": connection_id,
                "entity_type": link.entity_type,
                "our_key": link.our_key,
                "remote_id": link.remote_id,
                "updated_at": now,
            }
            for link in links
        ],
        key=["connection_id", "entity_type", "our_key"],
    )


async def _record_step_by_step(
    session: AsyncSession,
    delivery: Delivery,
    owner: str,
    values: dict[str, Any],
    attempt: dict[str, Any],
    links: list[RemoteLink],
    release: bool,
) -> Recorded:
    """What ``record_finish`` does in one statement, a statement at a time (SQLite)."""
    updated = await session.execute(_owned(delivery.id, owner).values(**values))
    if not rowcount(updated):
        return Recorded(owned=False, waiting=[])
    await session.execute(
        sa.insert(DeliveryAttempt.__table__).values(  # type: ignore[attr-defined]
            delivery_id=delivery.id, **attempt
        )
    )
    if links:
        await _remember_links(session, delivery.destination, links)
    waiting = await waiting_behind(session, delivery) if release else []
    return Recorded(owned=True, waiting=waiting)


async def _record_findings(
    session: AsyncSession, delivery: Delivery, findings: list[kernel_types.Finding]
) -> None:
    now = utcnow()
    await session.execute(
        sa.insert(Finding.__table__),  # type: ignore[attr-defined]
        [
            {
                "kind": f.kind,
                "connection_id": delivery.destination,
                "entity_key": delivery.entity_key,
                "delivery_id": delivery.id,
                "message": f.message,
                "data": f.data,
                "created_at": now,
            }
            for f in findings
        ],
    )
    for f in findings:
        metrics.FINDINGS.labels(f.kind).inc()
        log.warning("finding", kind=f.kind, message=f.message)


class _SessionWanted(BaseException):
    """The flows' after-delivery hook reached for its session (see ``_NoSession``)."""


class _NoSession:
    """Handed to the after-delivery hook in place of a session, to learn before the finish
    whether the hook has anything to write: it has not unless it uses its session, and any
    use of this one raises ``_SessionWanted`` (a BaseException, so no ``except Exception``
    in a hook swallows it). When it has, the finish runs in a transaction and the hook runs
    again, for real, after the delivery's own statement (so a hook must do nothing before it
    first uses its session, as every hook does: it reads and writes through it)."""

    def __getattr__(self, name: str) -> Any:
        raise _SessionWanted(name)


async def _after_delivered_needs_session(
    rt: Runtime, delivery: Delivery, claimed: Claimed, now: datetime
) -> bool:
    from app.flows import hooks

    assert claimed.event is not None
    try:
        await hooks.after_delivered(
            cast(AsyncSession, _NoSession()),
            rt,
            delivery,
            claimed.event,
            claimed.context.directives,
            answered_at=now,
        )
    except _SessionWanted:
        return True
    return False
