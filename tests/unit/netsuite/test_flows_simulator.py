"""The new outbound actions, order rules and the simulator's stock and webhooks, end to end
through httpx.ASGITransport."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connectors.netsuite import inbound
from connectors.netsuite.connector import NetSuiteConnector
from kernel.canonical.common import Address
from kernel.canonical.customer import Customer, ErasureRequest
from kernel.canonical.events import make_event
from kernel.canonical.inventory import InventoryLevel
from kernel.canonical.order import TaxLine
from kernel.canonical.returns import Return, ReturnLine
from kernel.canonical.shipment import Shipment
from kernel.errors import HoldError, NeedsMappingError
from kernel.types import DeliveryContext, MappingNeed, RemoteLink
from simulators.netsuite.simulator import NetSuiteSimulator
from tests.support.connectors import connect
from tests.unit.netsuite.conftest import (
    SKU_MAP,
    context,
    event_for,
    make_connection,
    realistic_order,
    usd,
)

WHEN = datetime(2026, 11, 5, 10, 0, tzinfo=UTC)


def ctx(**directives: Any) -> DeliveryContext:
    c = context()
    c.directives.update(directives)
    return c


def order_record(sim: NetSuiteSimulator) -> dict[str, Any]:
    record = sim.record_by_eid("salesOrder", "shop-eu-1001")
    assert record is not None
    return record


def stock(sim: NetSuiteSimulator, item: str, location: str = "1") -> tuple[Decimal, Decimal]:
    row = sim.erp.row(item, location)
    return row.on_hand, row.committed


# --- customers -----------------------------------------------------------------------------


async def test_customer_upsert_replaces_the_address_book(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    home = Address(first_name="Ada", last_name="Lovelace", line1="1 Road", country_code="GB")
    customer = Customer(
        source="shop-eu",
        external_id="77",
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        addresses=[home, home.model_copy(update={"line1": "2 Road"})],
        default_billing=1,
        updated_at=WHEN,
    )
    event = make_event("customer.upserted", customer, WHEN)
    first = await sim_connector.deliver(event, DeliveryContext())
    customer.addresses = [home]
    second = await sim_connector.deliver(event.model_copy(update={"payload": customer}), ctx())
    record = sim.record_by_eid("customer", "shop-eu-77")
    assert record is not None
    assert (
        first.links == second.links == [RemoteLink("customer", "shop-eu:customer:77", record["id"])]
    )
    assert [a["addressBookAddress"]["addr1"] for a in record["addressBook"]["items"]] == ["1 Road"]
    assert (record["firstName"], record["isPerson"]) == ("Ada", True)


async def test_duplicate_customer_updates_the_linked_record_instead_of_creating(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    first = Customer(source="shop-eu", external_id="1", email="jane@example.com", updated_at=WHEN)
    result = await sim_connector.deliver(make_event("customer.upserted", first, WHEN), ctx())
    remote = result.links[0].remote_id
    twin = Customer(
        source="shop-eu",
        external_id="2",
        email="jane@example.com",
        phone="+4930123",
        updated_at=WHEN,
    )
    linked = await sim_connector.deliver(
        make_event("customer.upserted", twin, WHEN), ctx(link_to=remote, fields=["email", "phone"])
    )
    assert linked.links == [RemoteLink("customer", "shop-eu:customer:2", remote)]
    assert sim.record_by_eid("customer", "shop-eu-2") is None  # no second customer
    assert len(sim.records("customer")) == 1
    assert sim.records("customer")[0]["phone"] == "+4930123"


async def test_store_writes_only_the_fields_it_owns(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    customer = Customer(
        source="shop-eu",
        external_id="5",
        email="a@example.com",
        first_name="A",
        last_name="B",
        tax_exemption_certificate="RESALE-1",
        updated_at=WHEN,
    )
    await sim_connector.deliver(
        make_event("customer.upserted", customer, WHEN),
        ctx(fields=["email", "first_name", "last_name"]),
    )
    record = sim.record_by_eid("customer", "shop-eu-5")
    assert record is not None and record["email"] == "a@example.com"
    assert "resaleNumber" not in record  # the ERP owns tax exemption


async def test_erasure_anonymizes_and_a_stranger_is_a_success(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    await sim_connector.deliver(event_for(realistic_order()), context())
    request = ErasureRequest(
        source="shop-eu", customer_external_id="77", email="ada@example.com", requested_at=WHEN
    )
    result = await sim_connector.deliver(
        make_event("customer.erase_requested", request, WHEN), DeliveryContext()
    )
    record = sim.record_by_eid("customer", "shop-eu-77")
    assert record is not None
    assert (record["firstName"], record["lastName"], record["email"]) == ("Erased", "Erased", "")
    assert record["isInactive"] is True and record["addressBook"]["items"] == []
    assert "anonymized" in result.summary

    stranger = ErasureRequest(source="shop-eu", customer_external_id="999", requested_at=WHEN)
    none = await sim_connector.deliver(
        make_event("customer.erase_requested", stranger, WHEN), DeliveryContext()
    )
    assert "nothing to erase" in none.summary


# --- returns -------------------------------------------------------------------------------


def a_return(**changes: Any) -> Return:
    values: dict[str, Any] = {
        "source": "shop-eu",
        "external_id": "R1",
        "order_key": "shop-eu:order:1001",
        "order_number": "#1001",
        "lines": [ReturnLine(sku="MUG-BLUE", quantity=Decimal(1), reason="arrived broken")],
        "requested_at": WHEN,
    }
    values.update(changes)
    return Return(**values)


async def test_return_request_becomes_rma_from_the_sales_order(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    placed = await sim_connector.deliver(event_for(realistic_order()), context())
    order = order_record(sim)
    event = make_event("return.requested", a_return(), WHEN)
    assert sim_connector.required_mappings(event) == [MappingNeed("sku", "MUG-BLUE")]

    result = await sim_connector.deliver(event, context())
    rma = sim.record_by_eid("returnAuthorization", "shop-eu-R1")
    assert rma is not None
    assert result.links == [RemoteLink("return", "shop-eu:return:R1", rma["id"])]
    assert rma["createdFrom"] == {"id": order["id"]}
    assert rma["entity"] == order["entity"]  # the order's customer
    assert {"customer", "order"} == {link.entity_type for link in placed.links}
    assert rma["item"]["items"][0]["custcol_gw_return_reason"] == "arrived broken"
    assert "arrived broken" in rma["memo"]
    assert rma["tranId"] in result.summary  # the RMA number


async def test_return_for_an_order_not_yet_in_netsuite_waits(
    sim_connector: NetSuiteConnector,
) -> None:
    from kernel.errors import TransientError

    with pytest.raises(TransientError, match="not in NetSuite yet"):
        await sim_connector.deliver(make_event("return.requested", a_return(), WHEN), context())
    with pytest.raises(NeedsMappingError):
        bad = a_return(lines=[ReturnLine(sku="NOPE", quantity=Decimal(1))])
        await sim_connector.deliver(make_event("return.requested", bad, WHEN), context())


# --- orders: amendments, guests, tax, optional mappings ------------------------------------


async def test_amendment_applies_while_pending_fulfilment_and_holds_once_shipped(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    await sim_connector.deliver(event_for(realistic_order()), context())
    sim._find("salesOrder", "eid:shop-eu-1001").fields["orderStatus"] = "B"  # type: ignore[union-attr]
    changed = realistic_order(note="ring twice")
    await sim_connector.deliver(event_for(changed, "order.updated"), context())
    assert order_record(sim)["memo"].endswith("ring twice")

    sim.erp.fulfil(order_record(sim)["id"], {"lines": {"1042": 1}})
    assert order_record(sim)["status"]["refName"] == "Partially Fulfilled"
    late = realistic_order(note="too late")
    with pytest.raises(HoldError) as held:
        await sim_connector.deliver(event_for(late, "order.updated"), context())
    tran_id = order_record(sim)["tranId"]
    assert str(held.value) == (
        f"salesOrder {tran_id} is Partially Fulfilled in NetSuite; "
        "an amendment cannot be applied automatically"
    )
    assert order_record(sim)["memo"].endswith("ring twice")  # nothing written


async def test_amendments_directive_hold_holds_any_update_of_an_existing_order(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    # an update for an order NetSuite never saw is simply created
    await sim_connector.deliver(
        event_for(realistic_order(), "order.updated"), ctx(amendments="hold")
    )
    with pytest.raises(HoldError, match="held by rule"):
        await sim_connector.deliver(
            event_for(realistic_order(), "order.updated"), ctx(amendments="hold")
        )


async def test_guest_order_is_booked_on_the_shared_account(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    sim.seed(customers=[{"id": "555", "lastName": "Web Guest"}])
    result = await sim_connector.deliver(event_for(realistic_order()), ctx(guest_customer_id="555"))
    assert order_record(sim)["entity"] == {"id": "555"}
    assert sim.record_by_eid("customer", "shop-eu-77") is None  # no customer upserted
    assert [link.entity_type for link in result.links] == ["order"]


async def test_tax_source_erp_reports_the_difference(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    sim.erp.tax_rate = Decimal("0.10")  # NetSuite computes 10 % of 74.22 = 7.42
    order = realistic_order()
    order.totals.tax = usd("7.00")
    order.lines[0].tax_lines = [TaxLine(title="VAT 20", amount=usd("1"))]
    c = ctx(tax_source="erp")
    c.mappings["tax_code"] = {"VAT 20": "77"}
    result = await sim_connector.deliver(event_for(order), c)
    (finding,) = result.findings
    assert finding.kind == "tax_difference"
    assert finding.data["erp_tax"] == "7.42" and finding.data["difference"] == "0.42"
    assert all("taxCode" not in ln for ln in order_record(sim)["item"]["items"])

    # within tolerance: no finding
    c.directives["tax_tolerance"] = "0.50"
    assert (await sim_connector.deliver(event_for(order), c)).findings == []

    # store (default) on a SuiteTax account: no line taxCode (REST takes none there), and
    # NetSuite's own tax is still compared with the store's (tests/unit/netsuite/test_orders_tax.py)
    c.directives["tax_source"] = "store"
    assert (await sim_connector.deliver(event_for(order), c)).findings == []
    assert all("taxCode" not in ln for ln in order_record(sim)["item"]["items"])


async def test_optional_mappings_are_required_only_when_configured(
    sim: NetSuiteSimulator, sim_http: httpx.AsyncClient
) -> None:
    strict = connect(
        NetSuiteConnector,
        make_connection(require_mappings=["payment_method", "location"]),
        sim_http,
    )
    event = event_for(realistic_order())
    needs = strict.required_mappings(event)
    assert MappingNeed("payment_method", "shopify_payments") in needs
    assert MappingNeed("location", "shop-eu") in needs
    with pytest.raises(NeedsMappingError, match="payment_method"):
        await strict.deliver(event, context())
    c = context()
    c.mappings.update(payment_method={"shopify_payments": "8"}, location={"shop-eu": "2"})
    await strict.deliver(event, c)
    assert order_record(sim)["paymentMethod"] == {"id": "8"}
    assert order_record(sim)["location"] == {"id": "2"}
    with pytest.raises(ValueError, match=r"require_mappings\.0\s+Input should be 'payment_method'"):
        connect(NetSuiteConnector, make_connection(require_mappings=["colour"]), sim_http)


# --- the simulator: stock commitments and webhooks -----------------------------------------


async def test_sales_order_commits_stock_and_closing_releases_it(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    sim.erp.set_stock("1042", "1", {"on_hand": 10})
    await sim_connector.deliver(event_for(realistic_order()), context())
    assert stock(sim, "1042") == (10, 3)  # 3 T-shirts committed: 7 available
    assert stock(sim, "959") == (0, 2)

    sim.erp.fulfil(order_record(sim)["id"], {"lines": {"1042": 2}})
    assert stock(sim, "1042") == (8, 1)

    await sim_connector.deliver(event_for(realistic_order(), "order.cancelled"), context())
    assert stock(sim, "1042") == (8, 0) and stock(sim, "959") == (0, 0)


async def test_simulator_posts_signed_webhooks_the_connector_accepts(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    received: list[httpx.Request] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(202)

    secret = "whsec-sim"
    sim.webhooks.http = httpx.AsyncClient(transport=httpx.MockTransport(gateway))
    sim._set_config({"webhook_url": "http://gw.test/webhooks/erp", "webhook_secret": secret})
    sim._find("inventoryItem", "1042").fields["itemId"] = "TSHIRT-RED-M"  # type: ignore[union-attr]
    await sim_connector.deliver(event_for(realistic_order()), context())
    sim.erp.fulfil(order_record(sim)["id"], {"packages": [{"tracking": "1Z1"}]})
    await sim.webhooks.drain()

    config = make_connection()
    config.credentials["webhook_secret"] = type(config.credentials["token_id"])(secret)
    receiver = connect(NetSuiteConnector, config, sim_connector.http)
    events = []
    for request in received:
        receiver.verify_signature(request.headers, request.content)
        events += receiver.parse_webhook(request.headers, request.content).events
    assert sim.stats_snapshot()["webhooks"] == {
        "sent": len(received),
        "failed": 0,
        "last_error": None,
    }

    levels = [e.payload_as(InventoryLevel) for e in events if e.type == "inventory.level_changed"]
    committed = [(lv.sku, lv.allocated) for lv in levels if lv.sku == "TSHIRT-RED-M"]
    assert ("TSHIRT-RED-M", Decimal(3)) in committed  # the order's commitment was posted
    (shipment,) = [e.payload_as(Shipment) for e in events if e.type == "shipment.created"]
    assert shipment.order_key == "shop-eu:order:1001"
    assert shipment.packages[0].tracking_number == "1Z1"
    assert {"customer.upserted"} <= {e.type for e in events}

    # a secret mismatch would be refused: the signature really covers the body
    with pytest.raises(Exception, match="does not match"):
        inbound.verify(received[0].headers, received[0].content + b" ", secret)


async def test_webhook_failures_are_counted(sim: NetSuiteSimulator) -> None:
    sim.webhooks.http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(401, text="bad signature"))
    )
    sim._set_config({"webhook_url": "http://gw.test/webhooks/erp", "webhook_secret": "s"})
    sim.erp.set_stock("1042", "1", {"on_hand": 1})
    await sim.webhooks.drain()
    stats = sim.stats_snapshot()["webhooks"]
    assert (stats["sent"], stats["failed"]) == (0, 1)
    assert stats["last_error"].startswith("HTTP 401")


async def test_control_endpoints_over_http(
    sim: NetSuiteSimulator, sim_http: httpx.AsyncClient
) -> None:
    base = "http://sim.test/_sim"
    r = await sim_http.post(f"{base}/stock", json={"item": "1042", "location": "2", "on_hand": 5})
    assert r.status_code == 200 and r.json()["available"] == 5
    r = await sim_http.post(f"{base}/price", json={"item": "1042", "basePrice": "9.99"})
    assert r.status_code == 200 and r.json()["basePrice"] == "9.99"
    r = await sim_http.post(f"{base}/fulfil", json={"order": "404"})
    assert r.status_code == 400 and "no salesOrder" in r.json()["error"]
    r = await sim_http.post(f"{base}/config", json={"tax_rate": "0.2"})
    assert r.json()["tax_rate"] == "0.2"
    assert SKU_MAP  # fixture data used above stays the same


async def test_an_approved_amendment_is_applied_even_when_held_by_rule(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    order = realistic_order()
    await sim_connector.deliver(event_for(order, "order.created"), ctx())
    update = event_for(order, "order.updated")
    with pytest.raises(HoldError):
        await sim_connector.deliver(update, ctx(amendments="hold"))
    approved = ctx(amendments="hold", decision={"outcome": "approved", "by": "operator"})
    result = await sim_connector.deliver(update, approved)
    assert result.links
