"""Stock as NetSuite moves it: through transactions, never by saving the item. The inventory
stream follows those transactions; every query runs on a standard account."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from connectors.netsuite.connector import NetSuiteConnector
from connectors.netsuite.options import NetSuiteOptions
from connectors.netsuite.suiteql import STREAMS
from kernel.canonical.inventory import InventoryLevel
from kernel.errors import PermanentError
from simulators.netsuite.simulator import NetSuiteSimulator
from tests.support.connectors import connect
from tests.unit.netsuite.conftest import context, event_for, make_connection, realistic_order


def levels(events: list) -> dict[tuple[str, str], InventoryLevel]:  # type: ignore[type-arg]
    out = {}
    for event in events:
        level = event.payload_as(InventoryLevel)
        out[(level.sku, level.location)] = level
    return out


async def order_in_netsuite(sim: NetSuiteSimulator, connector: NetSuiteConnector) -> str:
    sim._find("inventoryItem", "1042").fields["itemId"] = "TSHIRT-RED-M"  # type: ignore[union-attr]
    sim._find("inventoryItem", "959").fields["itemId"] = "MUG-BLUE"  # type: ignore[union-attr]
    await connector.deliver(event_for(realistic_order()), context())
    return str(sim.record_by_eid("salesOrder", "shop-eu-1001")["id"])  # type: ignore[index]


async def test_a_fulfilment_moves_stock_and_the_inventory_stream_sees_it(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    sim.erp.set_stock("1042", "1", {"on_hand": 10})
    order_id = await order_in_netsuite(sim, sim_connector)
    caught_up = await sim_connector.poll("inventory", None, 100)
    assert levels(caught_up.events)[("TSHIRT-RED-M", "1")].allocated == 3  # the order commits
    item_saved = sim._find("inventoryItem", "1042").modified  # type: ignore[union-attr]

    sim.erp.fulfil(order_id, {"lines": {"1042": 2}})  # an ItemShip, the item is not saved
    assert sim._find("inventoryItem", "1042").modified == item_saved  # type: ignore[union-attr]
    page = await sim_connector.poll("inventory", caught_up.cursor, 100)
    level = levels(page.events)[("TSHIRT-RED-M", "1")]
    assert (level.on_hand, level.allocated) == (Decimal(8), Decimal(1))


async def test_receipts_adjustments_and_orders_entered_in_netsuite_reach_the_stream(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    first = await sim_connector.poll("inventory", None, 100)
    sim.erp.set_stock("959", "2", {"on_hand": 4})  # a count at another location (InvAdjst)
    sim.erp.set_stock("959", "2", {"on_order": 12})  # a purchase order (PurchOrd)
    page = await sim_connector.poll("inventory", first.cursor, 100)
    level = levels(page.events)[("959", "2")]
    assert (level.on_hand, [i.quantity for i in level.incoming]) == (Decimal(4), [Decimal(12)])


async def test_every_stream_runs_on_a_standard_account(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    # no custom field configured, none on the account: nothing custom is ever queried
    await order_in_netsuite(sim, sim_connector)
    sim.erp.fulfil(str(sim.record_by_eid("salesOrder", "shop-eu-1001")["id"]), {})  # type: ignore[index]
    for stream in sorted(STREAMS):
        await sim_connector.poll(stream, None, 50)  # raises on NetSuite's 400


async def test_a_configured_field_the_account_lacks_is_an_error_that_says_so(
    sim: NetSuiteSimulator, sim_http: httpx.AsyncClient
) -> None:
    connector = connect(
        NetSuiteConnector,
        make_connection(custom_fields={"reserved": "custrecord_gw_qty_reserved"}),
        sim_http,
    )
    sim.erp.set_stock("1042", "1", {"on_hand": 10})  # the options name it; the account lacks it
    with pytest.raises(PermanentError) as err:
        await connector.poll("inventory", None, 10)
    # NetSuite's own words reach the operator (and the poll job reports them): never "nothing"
    sim_error = str(err.value)
    assert "Field 'custrecord_gw_qty_reserved' for record 'aggregateitemlocation'" in sim_error


async def test_custom_quantity_fields_are_read_when_configured(
    sim: NetSuiteSimulator, sim_http: httpx.AsyncClient
) -> None:
    sim.erp.custom_columns = {"aggregateitemlocation": ["custrecord_gw_qty_reserved"]}
    connector = connect(
        NetSuiteConnector,
        make_connection(custom_fields={"reserved": "custrecord_gw_qty_reserved"}),
        sim_http,
    )
    sim.erp.set_stock("1042", "1", {"on_hand": 10, "reserved": 2})
    page = await connector.poll("inventory", None, 10)
    assert levels(page.events)[("1042", "1")].reserved == 2


async def test_fetch_levels_reads_netsuite_now(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    sim.erp.set_stock("1042", "1", {"on_hand": 10})
    sim.erp.set_stock("1042", "2", {"on_hand": 3})
    found = await sim_connector.fetch_levels(["1042", "no-such-sku", "it's quoted"])
    assert sorted((lv.location, lv.on_hand) for lv in found) == [("1", 10), ("2", 3)]
    assert {lv.sku for lv in found} == {"1042"}


def test_stock_transaction_types_are_checked() -> None:
    assert "ItemShip" in NetSuiteOptions().stock_transaction_types
    assert "CustCred" in NetSuiteOptions().stock_transaction_types  # not CustMemo
    with pytest.raises(ValueError, match="not a SuiteQL transaction type"):
        NetSuiteOptions(stock_transaction_types=("ItemShip', 'x",))
