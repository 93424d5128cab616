"""Orders into a real Tryton: one sale per order whatever the retries, amendments, cancels."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from connectors.tryton.client import TrytonClient
from connectors.tryton.connector import TrytonConnector
from connectors.tryton.sales import Sales
from kernel.canonical.order import Discount, Order, OrderCustomer
from kernel.errors import HoldError, NeedsMappingError, PermanentError
from kernel.types import DeliveryContext, MappingNeed
from tests.tryton.conftest import context, event_for, make_order, unique, usd

pytestmark = [pytest.mark.tryton, pytest.mark.timeout(300)]


async def sales_of(rpc: TrytonClient, order: Order) -> list[dict[str, Any]]:
    return await rpc.search_read(
        "sale.sale",
        [("reference", "=", f"{order.source}-{order.external_id}")],
        [
            "state",
            "party",
            "party.code",
            "invoice_address",
            "shipment_address",
            "total_amount",
            "currency.code",
            "description",
            "comment",
        ],
        order=[("id", "ASC")],
    )


async def lines_of(rpc: TrytonClient, sale_id: int) -> list[tuple[str, Decimal, Decimal, str]]:
    rows = await rpc.search_read(
        "sale.line",
        [("sale", "=", sale_id)],
        ["product.code", "quantity", "unit_price", "description"],
        order=[("sequence", "ASC"), ("id", "ASC")],
    )
    return [(r["product."]["code"], r["quantity"], r["unit_price"], r["description"]) for r in rows]


async def parties_with_code(rpc: TrytonClient, code: str) -> list[dict[str, Any]]:
    return await rpc.search_read(
        "party.party",
        [("code", "=", code)],
        ["name", "addresses", "contact_mechanisms"],
        context={"active_test": False},
    )


async def test_an_order_becomes_one_sale_with_its_party_lines_prices_and_shipping(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    order = make_order()
    result = await connector.deliver(event_for(order), context())

    (sale,) = await sales_of(rpc, order)
    assert sale["state"] == "processing"  # confirmed, and Tryton processed it at once
    assert sale["party."]["code"] == f"shop-{order.customer.external_id}"
    assert sale["currency."]["code"] == "USD"
    assert sale["description"] == f"shop order {order.number}"
    assert sale["comment"] == "leave at the door"
    assert await lines_of(rpc, sale["id"]) == [
        ("TSHIRT-RED-M", Decimal(3), Decimal("19.99"), "Item TSHIRT-RED-M"),
        ("MUG-BLUE", Decimal(2), Decimal("7.125"), "Item MUG-BLUE"),
        ("SHIPPING", Decimal(1), Decimal("4.90"), "Standard"),
    ]
    assert sale["total_amount"] == Decimal("79.12")  # exact: 59.97 + 14.25 + 4.90

    (invoice_to, ship_to) = await rpc.read(
        "party.address",
        [sale["invoice_address"], sale["shipment_address"]],
        ["street", "city", "postal_code", "party_name", "country.code", "party"],
    )
    assert invoice_to["street"] == "1 Billing Road"
    assert ship_to["street"] == "12 St James's Square"
    assert ship_to["country."]["code"] == "GB"
    assert ship_to["party_name"] == "Ada Lovelace"
    assert invoice_to["party"] == ship_to["party"] == sale["party"]
    contacts = await rpc.search_read(
        "party.contact_mechanism", [("party", "=", sale["party"])], ["type", "value"]
    )
    assert {(c["type"], c["value"]) for c in contacts} == {
        ("email", order.customer.email),
        ("phone", "+44 20 7946 0000"),
    }
    links = {(link.entity_type, link.our_key): link.remote_id for link in result.links}
    assert links == {
        ("order", order.entity_key): str(sale["id"]),
        ("customer", order.customer_key): str(sale["party"]),
    }


async def test_a_retried_order_is_still_one_sale_and_one_party(
    connector: TrytonConnector, make_connector: Any, rpc: TrytonClient
) -> None:
    order = make_order()
    first = await connector.deliver(event_for(order), context())
    again = await connector.deliver(event_for(order), context())
    # a worker that restarted knows nothing, and the links may be missing too
    fresh = await make_connector().deliver(event_for(order), DeliveryContext())

    (sale,) = await sales_of(rpc, order)
    assert len(await lines_of(rpc, sale["id"])) == 3
    (party,) = await parties_with_code(rpc, f"shop-{order.customer.external_id}")
    assert len(party["addresses"]) == 2  # billing and shipping, not one more per attempt
    assert len(party["contact_mechanisms"]) == 2
    assert first.links == again.links == fresh.links
    assert "already there" in again.summary


async def test_a_twin_made_by_a_racing_attempt_is_removed(
    connector: TrytonConnector, rpc: TrytonClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = make_order()
    await connector.deliver(
        event_for(order),
        context(),
    )
    (kept,) = await sales_of(rpc, order)

    async def blind(self: Sales, order: Order, ctx: DeliveryContext) -> None:
        return None  # as if the first attempt's sale were not visible yet

    monkeypatch.setattr(Sales, "find", blind)
    result = await connector.deliver(event_for(order), context())

    assert [s["id"] for s in await sales_of(rpc, order)] == [kept["id"]]
    assert result.links[0].remote_id == str(kept["id"])


async def test_an_update_while_quotation_replaces_the_lines(
    make_connector: Any, rpc: TrytonClient
) -> None:
    connector = make_connector(sale_state="quotation")
    order = make_order()
    await connector.deliver(event_for(order), context())
    changed = make_order(
        order.external_id,
        lines=[("TSHIRT-RED-M", "5", "18.50")],
        shipping=None,
        customer=order.customer,
    )
    result = await connector.deliver(event_for(changed, "order.updated"), context())

    (sale,) = await sales_of(rpc, order)
    assert sale["state"] == "quotation"
    assert await lines_of(rpc, sale["id"]) == [
        ("TSHIRT-RED-M", Decimal(5), Decimal("18.50"), "Item TSHIRT-RED-M")
    ]
    assert sale["total_amount"] == Decimal("92.50")
    assert "amended" in result.summary


async def test_an_update_after_confirmation_is_held_and_changes_nothing(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    order = make_order()
    await connector.deliver(event_for(order), context())
    changed = make_order(order.external_id, lines=[("TSHIRT-RED-M", "9", "1.00")])

    with pytest.raises(HoldError, match="is processing in Tryton"):
        await connector.deliver(
            event_for(changed, "order.updated"),
            context(amendment_details=["quantity of TSHIRT-RED-M 3 → 9"]),
        )
    (sale,) = await sales_of(rpc, order)
    assert len(await lines_of(rpc, sale["id"])) == 3


async def test_amendments_held_by_rule_until_approved(
    make_connector: Any, rpc: TrytonClient
) -> None:
    connector = make_connector(sale_state="quotation")
    order = make_order()
    await connector.deliver(event_for(order), context())
    changed = make_order(order.external_id, lines=[("MUG-BLUE", "1", "7.125")], shipping=None)
    update = event_for(changed, "order.updated")

    with pytest.raises(HoldError, match="held by rule"):
        await connector.deliver(update, context(amendments="hold"))
    await connector.deliver(update, context(amendments="hold", decision={"outcome": "approved"}))

    (sale,) = await sales_of(rpc, order)
    assert [line[0] for line in await lines_of(rpc, sale["id"])] == ["MUG-BLUE"]


async def test_an_update_of_an_order_tryton_never_saw_creates_it(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    order = make_order()
    await connector.deliver(event_for(order, "order.updated"), context())
    assert len(await sales_of(rpc, order)) == 1


async def test_cancel_while_quotation_cancels_and_twice_is_fine(
    make_connector: Any, rpc: TrytonClient
) -> None:
    connector = make_connector(sale_state="quotation")
    order = make_order()
    await connector.deliver(event_for(order), context())

    result = await connector.deliver(event_for(order, "order.cancelled"), context())
    again = await connector.deliver(event_for(order, "order.cancelled"), context())

    (sale,) = await sales_of(rpc, order)
    assert sale["state"] == "cancelled"
    assert "cancelled (was quotation)" in result.summary
    assert "already cancelled" in again.summary


async def test_cancel_of_a_confirmed_sale_goes_through_draft(
    make_connector: Any, rpc: TrytonClient
) -> None:
    connector = make_connector(sale_state="quotation")
    order = make_order()
    await connector.deliver(event_for(order), context())
    (sale,) = await sales_of(rpc, order)
    # a sale Tryton confirmed but has not processed yet (processing is delayed by config)
    await rpc.execute("sale.sale", "write", [sale["id"]], {"state": "confirmed"})

    await connector.deliver(event_for(order, "order.cancelled"), context())
    (sale,) = await sales_of(rpc, order)
    assert sale["state"] == "cancelled"


async def test_cancel_of_a_processing_sale_is_held(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    order = make_order()
    await connector.deliver(event_for(order), context())
    with pytest.raises(HoldError, match="processing in Tryton"):
        await connector.deliver(event_for(order, "order.cancelled"), context())
    (sale,) = await sales_of(rpc, order)
    assert sale["state"] == "processing"


async def test_cancel_of_an_unknown_order_is_a_success_with_nothing_to_do(
    connector: TrytonConnector,
) -> None:
    result = await connector.deliver(event_for(make_order(), "order.cancelled"), context())
    assert "nothing to cancel" in result.summary


async def test_an_unknown_sku_waits_for_a_mapping_and_writes_nothing(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    order = make_order(lines=[("TSHIRT-RED-M", "1", "19.99"), ("NOT-IN-TRYTON", "1", "1.00")])
    with pytest.raises(NeedsMappingError) as caught:
        await connector.deliver(event_for(order), context())
    assert caught.value.missing == [MappingNeed("sku", "NOT-IN-TRYTON")]
    assert await sales_of(rpc, order) == []
    assert await parties_with_code(rpc, f"shop-{order.customer.external_id}") == []


async def test_a_mapped_sku_sells_the_mapped_product(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    order = make_order(lines=[("STORE-ONLY-SKU", "2", "19.99")], shipping=None)
    ctx = DeliveryContext(mappings={"sku": {"STORE-ONLY-SKU": "TSHIRT-RED-M"}})
    await connector.deliver(event_for(order), ctx)
    (sale,) = await sales_of(rpc, order)
    assert [line[0] for line in await lines_of(rpc, sale["id"])] == ["TSHIRT-RED-M"]


def test_sku_mappings_are_required_only_when_configured(make_connector: Any) -> None:
    event = event_for(make_order())
    assert make_connector().required_mappings(event) == []
    strict = make_connector(require_sku_mappings=True)
    assert strict.required_mappings(event) == [
        MappingNeed("sku", "TSHIRT-RED-M"),
        MappingNeed("sku", "MUG-BLUE"),
    ]


async def test_a_discount_is_a_line_of_its_own(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    base = make_order(lines=[("TSHIRT-RED-M", "2", "19.99")], shipping=None)
    order = base.model_copy(
        update={
            "discounts": [Discount(code="WELCOME", amount=usd("5.00"))],
            "totals": base.totals.model_copy(
                update={"discounts": usd("5.00"), "total": usd("34.98")}
            ),
        }
    )
    await connector.deliver(event_for(order), context())
    (sale,) = await sales_of(rpc, order)
    assert await lines_of(rpc, sale["id"]) == [
        ("TSHIRT-RED-M", Decimal(2), Decimal("19.99"), "Item TSHIRT-RED-M"),
        ("DISCOUNT", Decimal(1), Decimal("-5.00"), "Discount WELCOME"),
    ]
    assert sale["total_amount"] == Decimal("34.98")


async def test_guests_are_one_party_per_email_without_the_email_in_the_code(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    email = f"{unique('guest')}@example.com"
    guest = OrderCustomer(email=email, first_name="Grace", last_name="Hopper", is_guest=True)
    first, second = make_order(customer=guest), make_order(customer=guest)
    await connector.deliver(event_for(first), context())
    await connector.deliver(event_for(second), context())

    (sale_one,) = await sales_of(rpc, first)
    (sale_two,) = await sales_of(rpc, second)
    assert sale_one["party"] == sale_two["party"]
    code = sale_one["party."]["code"]
    assert code.startswith("shop-guest-") and email not in code


async def test_a_missing_shipping_product_option_stops_before_any_write(
    make_connector: Any, rpc: TrytonClient
) -> None:
    connector = make_connector(shipping_product_code=None)
    order = make_order()
    with pytest.raises(PermanentError, match=r"options\.shipping_product_code"):
        await connector.deliver(event_for(order), context())
    assert await parties_with_code(rpc, f"shop-{order.customer.external_id}") == []


async def test_tax_computed_by_tryton_is_compared_with_the_store(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    order = make_order(lines=[("TAXED-10", "2", "20.00")], shipping=None)
    order = order.model_copy(
        update={"totals": order.totals.model_copy(update={"tax": usd("3.00")})}
    )
    result = await connector.deliver(
        event_for(order), context(tax_source="erp", tax_tolerance="0.01")
    )
    (sale,) = await sales_of(rpc, order)
    assert sale["total_amount"] == Decimal("44.00")  # Tryton's 10% on 40.00
    (finding,) = result.findings
    assert finding.kind == "tax_difference"
    assert Decimal(finding.data["erp_tax"]) == Decimal("4.00")
    assert finding.data["store_tax"] == "3.00"


async def test_the_store_tax_source_sends_no_tryton_taxes(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    order = make_order(lines=[("TAXED-10", "2", "20.00")], shipping=None)
    result = await connector.deliver(event_for(order), context(tax_source="store"))
    (sale,) = await sales_of(rpc, order)
    assert sale["total_amount"] == Decimal("40.00")
    assert result.findings == []


async def test_a_mapped_shipping_method_sets_the_carrier(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    (carrier,) = await rpc.search("carrier", [])
    order = make_order()
    ctx = DeliveryContext(mappings={"shipping_method": {"Standard": str(carrier)}})
    await connector.deliver(event_for(order), ctx)
    (sale,) = await rpc.search_read(
        "sale.sale",
        [("reference", "=", f"shop-{order.external_id}")],
        ["carrier", "state", "total_amount", "shipments"],
    )
    assert (sale["carrier"], sale["state"]) == (carrier, "processing")
    assert sale["total_amount"] == Decimal("79.12")  # no cost line added by Tryton
    (shipment,) = await rpc.read("stock.shipment.out", sale["shipments"], ["carrier"])
    assert shipment["carrier"] == carrier
