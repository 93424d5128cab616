"""Out-of-order updates: an older version of an order or customer never overwrites a newer.

Shopify does not promise order: an ``orders/updated`` sent before another can arrive after
it (a retry, a slow path). The newer version wins; the older is stored, marked superseded.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from kernel.canonical.customer import Customer
from kernel.canonical.events import make_event
from tests.integration.test_flow_pipeline import T0, deliveries, flow_rt, record
from tests.support.factories import make_order

__all__ = ["flow_rt"]  # the fixture, shared with the flow pipeline tests


def _order_version(quantity: str, minutes: int) -> object:
    order = make_order("8801", updated_at=T0 + timedelta(minutes=minutes))
    order.lines[0].quantity = Decimal(quantity)
    return make_event("order.updated", order, order.updated_at)


async def test_an_older_order_update_arriving_late_is_superseded(flow_rt) -> None:  # type: ignore[no-untyped-def]
    rt = await flow_rt()
    await record(rt, "shop", _order_version("5", minutes=10))  # v2 first
    await record(rt, "shop", _order_version("3", minutes=5))  # then the older v1
    v2, v1 = await deliveries(rt, destination="erp")
    assert v2.status == "pending"
    assert v1.status == "superseded" and v1.last_error_class == "superseded"
    assert "older than the version of" in (v1.last_error or "")


async def test_same_second_updates_both_go_in_arrival_order(flow_rt) -> None:  # type: ignore[no-untyped-def]
    rt = await flow_rt()
    await record(rt, "shop", _order_version("5", minutes=10))
    await record(rt, "shop", _order_version("6", minutes=10))  # cannot tell: keep both
    assert [d.status for d in await deliveries(rt, destination="erp")] == ["pending", "pending"]


async def test_a_cancel_is_never_superseded(flow_rt) -> None:  # type: ignore[no-untyped-def]
    rt = await flow_rt()
    await record(rt, "shop", _order_version("5", minutes=10))
    order = make_order("8801", updated_at=T0, status="cancelled", cancelled_at=T0)
    await record(rt, "shop", make_event("order.cancelled", order, T0))
    assert [d.status for d in await deliveries(rt, destination="erp")] == ["pending", "pending"]


async def test_an_older_customer_version_is_superseded(flow_rt) -> None:  # type: ignore[no-untyped-def]
    rt = await flow_rt()

    def version(name: str, minutes: int) -> object:
        when = T0 + timedelta(minutes=minutes)
        customer = Customer(
            source="shop",
            external_id="77",
            email="ada@example.com",
            first_name=name,
            updated_at=when,
        )
        return make_event("customer.upserted", customer, when)

    await record(rt, "shop", version("Ada", minutes=10))
    await record(rt, "shop", version("Adah", minutes=1))
    newer, older = await deliveries(rt, destination="erp", flow="customers")
    assert newer.status == "pending" and older.status == "superseded"


async def test_an_older_price_arriving_late_leaves_the_newer_held_cut_alone(flow_rt) -> None:  # type: ignore[no-untyped-def]
    # NetSuite's user-event posts run concurrently: the 19.99 of 09:00:01 can arrive after
    # the 90% cut of 09:00:02. It must not supersede the held cut nor go out itself.
    from tests.integration.test_flow_pipeline import price

    rt = await flow_rt()
    await record(rt, "erp", price("SKU-RED-M", "19.99", at=T0))
    first = (await deliveries(rt, flow="products"))[0]
    assert first.status == "pending"
    await record(rt, "erp", price("SKU-RED-M", "1.99", at=T0 + timedelta(seconds=2)))
    await record(rt, "erp", price("SKU-RED-M", "19.99", at=T0 + timedelta(seconds=1)))
    statuses = [d.status for d in await deliveries(rt, flow="products")]
    # the first stays on its way (a held cut replaces nothing until approved)
    assert statuses == ["pending", "held", "superseded"], statuses


# --- the webhook path: the dedupe read's versions answer the out-of-order check ---------


async def _record_as_webhook(rt: object, *events: object, statements: list[str]) -> None:
    """What ingest does: the dedupe read, then recording, in one transaction; the SQL sent
    is collected so a test can see which reads were asked."""
    import sqlalchemy as sa

    from app.db import transaction
    from app.flows.recorder import record_events
    from app.ingest.dedupe import fresh_events

    def seen(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement)

    engine = rt.engine.sync_engine  # type: ignore[attr-defined]
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        async with transaction(rt.sessions) as session:  # type: ignore[attr-defined]
            fresh = await fresh_events(session, list(events), webhook=True)
            await record_events(session, rt, "shop", fresh)  # type: ignore[arg-type]
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)


def _asked_newest_version(statements: list[str]) -> bool:
    return any("max(canonical_events.occurred_at) AS max_1" in s for s in statements)


async def test_a_late_older_webhook_version_is_superseded_without_asking_again(flow_rt) -> None:  # type: ignore[no-untyped-def]
    rt = await flow_rt()
    statements: list[str] = []
    await _record_as_webhook(rt, _order_version("5", minutes=10), statements=statements)
    await _record_as_webhook(rt, _order_version("3", minutes=5), statements=statements)
    v2, v1 = await deliveries(rt, destination="erp")
    assert v2.status == "pending"
    assert v1.status == "superseded" and "older than the version of" in (v1.last_error or "")
    assert not _asked_newest_version(statements)  # the dedupe read's versions answered


async def test_a_newer_webhook_version_still_goes_out(flow_rt) -> None:  # type: ignore[no-untyped-def]
    rt = await flow_rt()
    statements: list[str] = []
    await _record_as_webhook(rt, _order_version("3", minutes=5), statements=statements)
    await _record_as_webhook(rt, _order_version("5", minutes=10), statements=statements)
    assert [d.status for d in await deliveries(rt, destination="erp")] == ["pending", "pending"]


async def test_versions_of_one_batch_count_for_the_next_event_of_it(flow_rt) -> None:  # type: ignore[no-untyped-def]
    # one webhook carrying two versions, the newer first: the older is superseded by the
    # version recorded moments before in the same transaction, which no read had seen
    rt = await flow_rt()
    statements: list[str] = []
    await _record_as_webhook(
        rt, _order_version("5", minutes=10), _order_version("3", minutes=5), statements=statements
    )
    newer, older = await deliveries(rt, destination="erp")
    assert newer.status == "pending" and older.status == "superseded"


async def test_versions_read_in_one_transaction_are_not_trusted_in_the_next(flow_rt) -> None:  # type: ignore[no-untyped-def]
    # a session that outlives its transaction: what it read then may be stale now
    from app.flows.state import newer_version, remember_versions

    rt = await flow_rt()
    older = _order_version("3", minutes=5)
    async with rt.sessions() as session:
        async with session.begin():
            remember_versions(session, {older.entity_key: {}})  # type: ignore[attr-defined]
        await record(rt, "shop", _order_version("5", minutes=10))  # another transaction
        async with session.begin():
            assert await newer_version(session, older) is not None  # type: ignore[arg-type]
