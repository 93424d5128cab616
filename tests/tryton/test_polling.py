"""Polling a real Tryton: stock moves, done shipments, credit notes and parties become events;
cursors resume after a restart and lose nothing that shares a timestamp."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from connectors.tryton.client import TrytonClient
from connectors.tryton.connector import TrytonConnector
from connectors.tryton.wire import Number
from kernel.canonical.customer import Customer
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.inventory import InventoryLevel
from kernel.canonical.returns import CreditMemo
from kernel.canonical.shipment import Shipment
from tests.tryton.conftest import context, event_for, make_order, unique
from tests.tryton.server import CARRIER
from tests.tryton.test_customers import customer, upserted

pytestmark = [pytest.mark.tryton, pytest.mark.timeout(300)]


async def drain(connector: TrytonConnector, stream: str, cursor: str | None = None) -> str | None:
    """Read the stream to its end; the cursor after everything there is now."""
    while True:
        page = await connector.poll(stream, cursor, 500)
        cursor = page.cursor
        if not page.has_more:
            return cursor


async def poll_all(
    connector: TrytonConnector, stream: str, cursor: str | None, limit: int = 500
) -> tuple[list[CanonicalEvent], str | None]:
    events: list[CanonicalEvent] = []
    while True:
        page = await connector.poll(stream, cursor, limit)
        events += page.events
        cursor = page.cursor
        if not page.has_more:
            return events, cursor


async def receive_stock(rpc: TrytonClient, sku: str, quantity: str) -> None:
    """Goods arrive from a supplier into the warehouse's storage: a move, created and done."""
    (product,) = await rpc.search_read("product.product", [("code", "=", sku)], ["default_uom"])
    (supplier,) = await rpc.search("stock.location", [("code", "=", "SUP")])
    (warehouse,) = await rpc.search_read(
        "stock.location", [("code", "=", "WH")], ["storage_location"]
    )
    (company,) = await rpc.search("company.company", [])
    (usd,) = await rpc.search("currency.currency", [("code", "=", "USD")])
    (move,) = await rpc.create(
        "stock.move",
        [
            {
                "product": product["id"],
                "unit": product["default_uom"],
                "quantity": Number(Decimal(quantity)),
                "from_location": supplier,
                "to_location": warehouse["storage_location"],
                "company": company,
                "unit_price": Decimal("1.00"),
                "currency": usd,
                "effective_date": date.today(),
            }
        ],
    )
    await rpc.execute("stock.move", "do", [move])


def levels(events: list[CanonicalEvent]) -> dict[str, InventoryLevel]:
    out = {}
    for event in events:
        assert event.type == "inventory.level_changed"
        level = event.payload_as(InventoryLevel)
        out[f"{level.sku}@{level.location}"] = level
    return out


async def sale_for(connector: TrytonConnector, rpc: TrytonClient, order: Any) -> dict[str, Any]:
    await connector.deliver(event_for(order), context())
    (sale,) = await rpc.search_read(
        "sale.sale",
        [("reference", "=", f"{order.source}-{order.external_id}")],
        ["shipments", "invoices", "state", "total_amount"],
    )
    return sale


# --- inventory ---------------------------------------------------------------------------


async def test_a_stock_move_done_in_tryton_reports_the_new_quantity(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    before = await connector.fetch_availability(["INV-A"])
    cursor = await drain(connector, "inventory")
    await receive_stock(rpc, "INV-A", "7")

    events, _ = await poll_all(connector, "inventory", cursor)
    found = levels(events)
    assert set(found) == {"INV-A@WH"}  # only what moved
    assert found["INV-A@WH"].on_hand == before[("INV-A", "WH")] + 7
    assert found["INV-A@WH"].allocated == 0
    assert found["INV-A@WH"].source == "erp"


async def test_goods_assigned_to_a_shipment_are_allocated(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    order = make_order(lines=[("INV-B", "3", "6.00")], shipping=None)
    before = await connector.fetch_availability(["INV-B"])
    sale = await sale_for(connector, rpc, order)
    cursor = await drain(connector, "inventory")
    await rpc.execute("stock.shipment.out", "assign_try", sale["shipments"])

    events, _ = await poll_all(connector, "inventory", cursor)
    level = levels(events)["INV-B@WH"]
    on_hand = before[("INV-B", "WH")]
    assert (level.on_hand, level.allocated) == (on_hand, Decimal(3))
    assert await connector.fetch_availability(["INV-B"]) == {("INV-B", "WH"): on_hand - 3}


# --- shipments ---------------------------------------------------------------------------


async def ship(rpc: TrytonClient, shipment: int, **values: Any) -> None:
    (carrier,) = await rpc.search("carrier", [])
    await rpc.write("stock.shipment.out", [shipment], {"carrier": carrier, **values})
    for step in ("assign_try", "pick", "pack", "do"):
        await rpc.execute("stock.shipment.out", step, [shipment])


async def test_a_done_shipment_becomes_shipment_created_with_lines_and_tracking(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    order = make_order(lines=[("SHIP-A", "2", "12.50"), ("SHIP-B", "1", "3.25")])
    sale = await sale_for(connector, rpc, order)
    cursor = await drain(connector, "shipments")
    (shipment,) = sale["shipments"]
    await ship(rpc, shipment, shipping_reference="1Z999AA10123456784")

    events, _ = await poll_all(connector, "shipments", cursor)
    (event,) = events
    assert event.type == "shipment.created"
    payload = event.payload_as(Shipment)
    assert payload.order_key == order.entity_key
    assert payload.external_id == str(shipment)
    (package,) = payload.packages
    assert package.tracking_number == "1Z999AA10123456784"
    assert package.carrier == CARRIER
    assert {(line.sku, line.quantity) for line in package.lines} == {
        ("SHIP-A", Decimal(2)),
        ("SHIP-B", Decimal(1)),
    }


async def test_each_tryton_package_is_a_package_with_its_own_tracking(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    order = make_order(lines=[("SHIP-A", "1", "12.50"), ("SHIP-B", "4", "3.25")])
    sale = await sale_for(connector, rpc, order)
    cursor = await drain(connector, "shipments")
    (shipment,) = sale["shipments"]
    (carrier,) = await rpc.search("carrier", [])
    await rpc.write("stock.shipment.out", [shipment], {"carrier": carrier})
    for step in ("assign_try", "pick"):
        await rpc.execute("stock.shipment.out", step, [shipment])
    moves = await rpc.search_read(
        "stock.move",
        [("shipment", "=", f"stock.shipment.out,{shipment}"), ("to_location.code", "=", "CUS")],
        ["product.code"],
    )
    box = (await rpc.search("stock.package.type", [("name", "=", "Box")])) or (
        await rpc.create("stock.package.type", [{"name": "Box"}])
    )
    (company,) = await rpc.search("company.company", [])
    for number, move in enumerate(moves, start=1):
        await rpc.create(
            "stock.package",
            [
                {
                    "company": company,
                    "type": box[0],
                    "shipment": f"stock.shipment.out,{shipment}",
                    "moves": [["add", [move["id"]]]],
                    "shipping_reference": f"PKG-{shipment}-{number}",
                }
            ],
        )
    for step in ("pack", "do"):
        await rpc.execute("stock.shipment.out", step, [shipment])

    events, _ = await poll_all(connector, "shipments", cursor)
    (event,) = events
    packages = {
        p.tracking_number: {(ln.sku, ln.quantity) for ln in p.lines}
        for p in event.payload_as(Shipment).packages
    }
    by_sku = {m["product."]["code"]: n for n, m in enumerate(moves, start=1)}
    assert packages == {
        f"PKG-{shipment}-{by_sku['SHIP-A']}": {("SHIP-A", Decimal(1))},
        f"PKG-{shipment}-{by_sku['SHIP-B']}": {("SHIP-B", Decimal(4))},
    }


# --- credit notes ------------------------------------------------------------------------


async def test_a_posted_credit_note_becomes_credit_memo_created(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    order = make_order()  # 79.12 with shipping
    sale = await sale_for(connector, rpc, order)
    (invoice,) = sale["invoices"]
    await rpc.execute("account.invoice", "post", [invoice])
    cursor = await drain(connector, "credit_notes")

    # the Credit wizard, as a person would run it on the invoice
    session, _, _ = await rpc.call("wizard.account.invoice.credit.create")
    where = {"active_id": invoice, "active_ids": [invoice], "active_model": "account.invoice"}
    answer = await rpc.call(
        "wizard.account.invoice.credit.execute",
        session,
        {"start": {"with_refund": False, "invoice_date": None}},
        "credit",
        context=where,
    )
    ((_, opened),) = answer["actions"]  # the wizard opens the credit note it made
    (credit,) = opened["res_id"]
    await rpc.execute("account.invoice", "post", [credit])

    events, _ = await poll_all(connector, "credit_notes", cursor)
    (event,) = events  # the posted invoice itself is not a credit note
    memo = event.payload_as(CreditMemo)
    assert event.type == "credit_memo.created"
    assert memo.order_key == order.entity_key
    assert memo.external_id == str(credit)
    assert (memo.amount.amount, memo.amount.currency) == (Decimal("79.12"), "USD")
    assert {(ln.sku, ln.quantity, ln.amount.amount) for ln in memo.lines} == {
        ("TSHIRT-RED-M", Decimal(3), Decimal("59.97")),
        ("MUG-BLUE", Decimal(2), Decimal("14.25")),
        ("SHIPPING", Decimal(1), Decimal("4.90")),
    }


# --- customers and cursors ---------------------------------------------------------------


async def test_a_party_becomes_customer_upserted(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    cursor = await drain(connector, "customers")
    email = f"{unique('grace')}@example.com"
    (party,) = await rpc.create(
        "party.party",
        [
            {
                "name": "Grace Hopper",
                "contact_mechanisms": [["create", [{"type": "email", "value": email}]]],
                "addresses": [
                    ["create", [{"street": "1 Navy Yard\nBuilding 2", "city": "Arlington"}]]
                ],
            }
        ],
    )
    events, _ = await poll_all(connector, "customers", cursor)
    (event,) = events
    customer = event.payload_as(Customer)
    assert (customer.external_id, customer.email) == (str(party), email)
    assert (customer.first_name, customer.last_name) == ("Grace", "Hopper")
    (where,) = customer.addresses
    assert (where.line1, where.line2, where.city) == ("1 Navy Yard", "Building 2", "Arlington")


async def test_a_cursor_resumes_after_a_restart_without_losing_shared_timestamps(
    connector: TrytonConnector, make_connector: Any, rpc: TrytonClient
) -> None:
    cursor = await drain(connector, "customers")
    # one Tryton transaction: both parties carry the very same timestamp
    first, second = await rpc.create("party.party", [{"name": "Twin One"}, {"name": "Twin Two"}])

    page = await connector.poll("customers", cursor, 1)
    assert [e.payload_as(Customer).external_id for e in page.events] == [str(first)]
    assert page.has_more

    restarted = make_connector()  # a new process with the stored cursor
    page = await restarted.poll("customers", page.cursor, 1)
    assert [e.payload_as(Customer).external_id for e in page.events] == [str(second)]

    last = await restarted.poll("customers", page.cursor, 1)
    assert (last.events, last.has_more) == ([], False)

    # a change in the same second, a separate transaction, after the cursor moved past it
    (third,) = await rpc.create("party.party", [{"name": "Right Behind"}])
    page = await restarted.poll("customers", last.cursor, 10)
    assert [e.payload_as(Customer).external_id for e in page.events] == [str(third)]


async def test_the_overlap_reads_the_last_changes_again_unchanged(
    make_connector: Any, rpc: TrytonClient
) -> None:
    connector = make_connector(poll_overlap_seconds=60)
    cursor = await drain(connector, "customers")
    await rpc.create("party.party", [{"name": "Late Committer"}])

    first, cursor = await poll_all(connector, "customers", cursor)
    again, _ = await poll_all(connector, "customers", cursor)
    # the window is read again; the core drops what it has recorded with the same content
    assert [e.payload_json() for e in first][-1] in [e.payload_json() for e in again]


async def test_a_foreign_cursor_is_refused(connector: TrytonConnector) -> None:
    from kernel.errors import PermanentError

    with pytest.raises(PermanentError, match="reset the stream"):
        await connector.poll("customers", "not-a-cursor", 10)


async def test_a_customer_category_marks_and_selects_the_gateways_parties(
    make_connector: Any, rpc: TrytonClient
) -> None:
    connector = make_connector(customer_category="Web shop")
    cursor = await drain(connector, "customers")
    await rpc.create("party.party", [{"name": "Walk-in Customer"}])
    cid = unique("c")
    result = await connector.deliver(upserted(customer(cid)), context())

    events, _ = await poll_all(connector, "customers", cursor)
    assert [e.payload_as(Customer).external_id for e in events] == [result.links[0].remote_id]
