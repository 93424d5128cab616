"""Returns the documented way (RMAs transformed from the sales order, polled as their own
stream, credit memos tied to the order through the RMA, exchanges) and item fulfilments by
their real statuses (A picked, B packed, C shipped)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from app.flows.shipments.rules import ShipmentRules, should_notify
from connectors.netsuite.connector import NetSuiteConnector
from kernel.canonical.events import make_event
from kernel.canonical.returns import CreditMemo, Return, ReturnLine
from kernel.canonical.shipment import Shipment
from simulators.netsuite.simulator import NetSuiteSimulator
from tests.support.connectors import connect
from tests.unit.netsuite.conftest import (
    context,
    event_for,
    make_connection,
    realistic_order,
)


async def order_in_netsuite(sim: NetSuiteSimulator, connector: NetSuiteConnector) -> str:
    sim._find("inventoryItem", "1042").fields["itemId"] = "TSHIRT-RED-M"  # type: ignore[union-attr]
    sim._find("inventoryItem", "959").fields["itemId"] = "MUG-BLUE"  # type: ignore[union-attr]
    order = realistic_order()
    await connector.deliver(event_for(order), context())
    return str(sim.record_by_eid("salesOrder", "shop-eu-1001")["id"])  # type: ignore[index]


def store_return(external_id: str = "R1") -> Any:
    order = realistic_order()
    ret = Return(
        source="shop-eu",
        external_id=external_id,
        order_key=order.entity_key,
        order_number=order.number,
        lines=[ReturnLine(sku="TSHIRT-RED-M", quantity=Decimal(1), reason="too small")],
        requested_at=order.created_at,
    )
    return make_event("return.requested", ret, order.created_at)


async def test_an_rma_is_made_by_transforming_the_sales_order(
    sim: NetSuiteSimulator, sim_http: httpx.AsyncClient, sim_connector: NetSuiteConnector
) -> None:
    order_id = await order_in_netsuite(sim, sim_connector)
    result = await sim_connector.deliver(store_return(), context())
    (rma,) = sim.records("returnAuthorization")
    assert sim.stats_snapshot()["requests"]["POST salesOrder"] == 1  # …/!transform/…
    assert "PUT returnAuthorization" not in sim.stats_snapshot()["requests"]
    assert rma["createdFrom"] == {"id": order_id}  # what ties its credit memo to the order
    assert rma["entity"] == sim.record_by_eid("salesOrder", "shop-eu-1001")["entity"]  # type: ignore[index]
    assert rma["externalId"] == "shop-eu-R1"
    # only the returned line, not every line of the order
    assert [(ln["item"], ln["quantity"]) for ln in rma["item"]["items"]] == [({"id": "1042"}, 1)]
    assert [link.remote_id for link in result.links] == [rma["id"]]


async def test_a_retried_return_never_makes_a_second_rma(
    sim: NetSuiteSimulator, sim_http: httpx.AsyncClient
) -> None:
    connector = connect(NetSuiteConnector, make_connection(timeout=0.3), sim_http)
    await order_in_netsuite(sim, connector)
    sim.commit_then_timeout(1, delay_seconds=2.0, record="salesOrder")  # the transform
    try:
        await connector.deliver(store_return(), context())
    except Exception as exc:  # the answer was lost: the engine retries
        assert type(exc).__name__ == "TransientError"
    else:
        raise AssertionError("the lost answer should have been a TransientError")
    await connector.deliver(store_return(), context())  # the retry finds it by external id
    assert len(sim.records("returnAuthorization")) == 1


async def test_rma_status_changes_are_polled_as_their_own_stream(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    await order_in_netsuite(sim, sim_connector)
    await sim_connector.deliver(store_return(), context())
    rma_id = sim.records("returnAuthorization")[0]["id"]
    first = await sim_connector.poll("returns", None, 10)
    (requested,) = first.events
    ret = requested.payload_as(Return)
    assert requested.type == "return.updated"
    # the store's own return, by the external id the RMA carries
    assert (ret.entity_key, ret.status) == ("shop-eu:return:R1", "requested")
    assert ret.order_key == "shop-eu:order:1001"

    sim.returns.set_status(rma_id, "B")  # approved: Pending Receipt
    (approved,) = (await sim_connector.poll("returns", first.cursor, 10)).events
    assert approved.payload_as(Return).status == "authorized"
    sim.returns.receive(rma_id, {})  # an item receipt of the RMA: Pending Refund
    later = await sim_connector.poll("returns", first.cursor, 10)
    assert [e.payload_as(Return).status for e in later.events][-1] == "received"
    # the goods came back through a transaction: the inventory stream sees them
    stock = await sim_connector.poll("inventory", None, 100)
    assert any(e.payload.sku == "TSHIRT-RED-M" for e in stock.events)  # type: ignore[union-attr]


async def test_a_credit_memo_of_an_rma_is_tied_to_the_order_through_the_rma(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    await order_in_netsuite(sim, sim_connector)
    await sim_connector.deliver(store_return(), context())
    rma_id = sim.records("returnAuthorization")[0]["id"]
    sim.erp.credit_memo({"rma": rma_id, "lines": [{"item": "1042", "amount": "19.99"}]})
    (event,) = (await sim_connector.poll("credit_memos", None, 10)).events
    memo = event.payload_as(CreditMemo)
    assert (memo.order_key, memo.return_key) == ("shop-eu:order:1001", "shop-eu:return:R1")
    assert memo.amount.amount == Decimal("19.99") and memo.amount.currency == "USD"


async def test_an_exchange_is_neither_a_new_order_nor_a_refund(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    await order_in_netsuite(sim, sim_connector)
    await sim_connector.deliver(store_return(), context())
    rma_id = sim.records("returnAuthorization")[0]["id"]
    replacement = sim.returns.exchange(rma_id, {"lines": {"959": 1}})  # the other colour
    sim.erp.fulfil(replacement.id, {"packages": [{"tracking": "1ZSWAP"}]})
    sim.erp.credit_memo({"rma": rma_id, "lines": [{"item": "1042", "amount": "19.99"}]})

    # the replacement's fulfilment is not a shipment of some new web order
    assert (await sim_connector.poll("shipments", None, 10)).events == []
    # the credit memo pays for the replacement: not money back, so no refund in the store
    assert (await sim_connector.poll("credit_memos", None, 10)).events == []
    # the return itself says what replaced the goods
    (event,) = (await sim_connector.poll("returns", None, 10)).events
    assert f"replaced by sales order {replacement.id}" in (event.payload_as(Return).note or "")


async def test_the_store_hears_of_a_fulfilment_when_it_is_shipped(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    order_id = await order_in_netsuite(sim, sim_connector)
    fulfilment = sim.erp.fulfil(order_id, {"ship_status": "A", "packages": [{"tracking": "1Z"}]})
    first = await sim_connector.poll("shipments", None, 10)
    assert first.events == []  # picked: warehouse work
    sim.erp.set_ship_status(fulfilment.id, "B")
    packed = await sim_connector.poll("shipments", first.cursor, 10)
    assert packed.events == []  # packed: still not shipped (the default)
    sim.erp.set_ship_status(fulfilment.id, "C")
    (event,) = (await sim_connector.poll("shipments", packed.cursor, 10)).events
    shipment = event.payload_as(Shipment)
    assert (shipment.status, shipment.order_key) == ("shipped", "shop-eu:order:1001")
    assert shipment.shipped_at is not None
    assert should_notify(shipment, ShipmentRules())  # the customer is told now, not before


async def test_packed_fulfilments_go_out_when_configured(
    sim: NetSuiteSimulator, sim_http: httpx.AsyncClient
) -> None:
    connector = connect(NetSuiteConnector, make_connection(fulfillment_status="packed"), sim_http)
    order_id = await order_in_netsuite(sim, connector)
    sim.erp.fulfil(order_id, {"ship_status": "B"})
    (event,) = (await connector.poll("shipments", None, 10)).events
    shipment = event.payload_as(Shipment)
    assert shipment.status == "packed" and shipment.shipped_at is None
    assert not should_notify(shipment, ShipmentRules())  # told when it ships
