"""The connector against the simulator in process: nothing doubled, errors typed."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connectors.netsuite.connector import NetSuiteConnector
from kernel.errors import PermanentError, RateLimitedError, TransientError
from kernel.types import RemoteLink
from simulators.netsuite.simulator import NetSuiteSimulator
from tests.support.connectors import connect
from tests.unit.netsuite.conftest import CREDS, context, event_for, make_connection, realistic_order


def sales_orders(sim: NetSuiteSimulator) -> list[dict[str, Any]]:
    return sim.records("salesOrder")


async def test_replaying_a_delivery_keeps_exactly_one_sales_order(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    event = event_for(realistic_order())

    first = await sim_connector.deliver(event, context())
    second = await sim_connector.deliver(event, context())

    orders = sales_orders(sim)
    assert len(orders) == 1
    assert first.links == second.links
    assert RemoteLink("order", "shop-eu:order:1001", orders[0]["id"]) in first.links
    assert len(orders[0]["item"]["items"]) == 2  # lines replaced, not appended again
    assert len(sim.records("customer")) == 1
    assert sim.stats_snapshot()["creates"] == {"customer": 1, "salesOrder": 1}


async def test_amounts_are_stored_exactly(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    order = realistic_order()
    order.lines[1].unit_price.amount = Decimal("1234567890123.4567")
    await sim_connector.deliver(event_for(order), context())
    lines = sales_orders(sim)[0]["item"]["items"]
    assert [line["rate"] for line in lines] == [Decimal("19.99"), Decimal("1234567890123.4567")]
    assert [line["item"]["id"] for line in lines] == ["1042", "959"]


async def test_an_update_changes_the_same_order(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    created = await sim_connector.deliver(event_for(realistic_order()), context())
    changed = realistic_order(note="ring twice")
    changed.lines[0].quantity = Decimal("5")
    updated = await sim_connector.deliver(event_for(changed, "order.updated"), context())

    (order,) = sales_orders(sim)
    assert updated.links == created.links
    assert [line["quantity"] for line in order["item"]["items"]] == [5, 2]
    assert order["memo"].endswith("note: ring twice")


async def test_commit_then_timeout_is_retried_without_a_second_order(
    sim: NetSuiteSimulator, sim_http: httpx.AsyncClient
) -> None:
    connector = connect(NetSuiteConnector, make_connection(timeout=0.2), sim_http)
    sim.commit_then_timeout(count=1, delay_seconds=30, record="salesOrder")
    event = event_for(realistic_order())

    with pytest.raises(TransientError, match="in time"):
        await connector.deliver(event, context())
    assert len(sales_orders(sim)) == 1  # NetSuite kept the write we never heard about

    result = await connector.deliver(event, context())
    (order,) = sales_orders(sim)
    assert RemoteLink("order", event.entity_key, order["id"]) in result.links
    assert sim.stats_snapshot()["creates"]["salesOrder"] == 1
    assert sim.in_flight == 0


async def test_bad_credentials_are_permanent_and_say_login(
    sim: NetSuiteSimulator, sim_http: httpx.AsyncClient
) -> None:
    config = make_connection()
    config.credentials["token_secret"] = SecretStr("wrong")
    connector = connect(NetSuiteConnector, config, sim_http)

    with pytest.raises(PermanentError) as caught:
        await connector.deliver(event_for(realistic_order()), context())

    assert "login" in caught.value.message.lower()
    assert "INVALID_LOGIN" in caught.value.message
    assert "wrong" not in caught.value.message and CREDS["token_secret"] not in caught.value.message
    assert sim.records("customer") == []


async def test_throttled_delivery_waits_for_retry_after(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    sim.rate_limit(count=1, retry_after=3)
    with pytest.raises(RateLimitedError) as caught:
        await sim_connector.deliver(event_for(realistic_order()), context())
    assert caught.value.retry_after == 3
    # the next attempt goes through
    await sim_connector.deliver(event_for(realistic_order()), context())
    assert len(sales_orders(sim)) == 1


async def test_account_concurrency_limit_is_a_rate_limit(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    sim.concurrency_limit = 1
    sim.set_latency(0.05)
    results = await asyncio.gather(
        sim_connector.deliver(event_for(realistic_order()), context()),
        sim_connector.deliver(event_for(realistic_order(external_id="1002")), context()),
        return_exceptions=True,
    )
    limited = [r for r in results if isinstance(r, RateLimitedError)]
    assert len(limited) == 1
    assert "CONCURRENCY_LIMIT_EXCEEDED" in limited[0].message
    assert limited[0].retry_after > 0


async def test_outage_is_transient(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    sim.outage()
    with pytest.raises(TransientError, match="HTTP 503"):
        await sim_connector.deliver(event_for(realistic_order()), context())
    sim.clear_faults()
    await sim_connector.deliver(event_for(realistic_order()), context())
    assert len(sales_orders(sim)) == 1


async def test_mapping_to_an_unknown_item_is_rejected_with_netsuites_words(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    mapping = {"TSHIRT-RED-M": "1042", "MUG-BLUE": "7777"}
    with pytest.raises(PermanentError) as caught:
        await sim_connector.deliver(event_for(realistic_order()), context(mapping))
    assert caught.value.message == (
        "NetSuite rejected salesOrder eid:shop-eu-1001: Invalid item reference key 7777. "
        "(INVALID_KEY_OR_REF at item.items[1].item)"
    )
    assert sales_orders(sim) == []


async def test_cancel_closes_every_line_once(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    order = realistic_order()
    await sim_connector.deliver(event_for(order), context())

    cancelled = await sim_connector.deliver(event_for(order, "order.cancelled"), context())
    again = await sim_connector.deliver(event_for(order, "order.cancelled"), context())

    (record,) = sales_orders(sim)
    assert all(line["isClosed"] for line in record["item"]["items"])
    assert record["status"]["refName"] == "Closed"
    assert cancelled.links == [RemoteLink("order", order.entity_key, record["id"])]
    assert "closed 2 line(s)" in cancelled.summary
    assert "already closed" in again.summary
    assert sim.stats_snapshot()["requests"]["PATCH salesOrder"] == 1


async def test_cancel_of_an_order_netsuite_never_saw_is_a_no_op(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    result = await sim_connector.deliver(
        event_for(realistic_order(), "order.cancelled"), context({})
    )
    assert result.links == []
    assert "nothing to cancel" in result.summary
    assert sim.stats_snapshot()["creates"] == {}
