"""Customers into a real Tryton: one party per customer, updated in place, erased on request."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.tryton.client import TrytonClient
from connectors.tryton.connector import TrytonConnector
from kernel.canonical.customer import Customer, ErasureRequest
from kernel.canonical.events import CanonicalEvent, make_event
from kernel.types import DeliveryContext
from tests.tryton.conftest import address, context, event_for, make_order, unique

pytestmark = [pytest.mark.tryton, pytest.mark.timeout(300)]
NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def customer(external_id: str, **overrides: Any) -> Customer:
    values: dict[str, Any] = {
        "source": "shop",
        "external_id": external_id,
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+44 20 7946 0000",
        "addresses": [address()],
        "updated_at": NOW,
    }
    values.update(overrides)
    return Customer(**values)


def upserted(value: Customer) -> CanonicalEvent:
    return make_event("customer.upserted", value, value.updated_at)


async def party(rpc: TrytonClient, code: str) -> dict[str, Any]:
    (row,) = await rpc.search_read(
        "party.party",
        [("code", "=", code)],
        ["name", "active"],
        context={"active_test": False},
    )
    row["contacts"] = {
        (c["type"], c["value"])
        for c in await rpc.search_read(
            "party.contact_mechanism",
            [("party", "=", row["id"])],
            ["type", "value"],
            context={"active_test": False},
        )
    }
    row["streets"] = [
        a["street"]
        for a in await rpc.search_read(
            "party.address", [("party", "=", row["id"])], ["street"], order=[("id", "ASC")]
        )
    ]
    return row


async def test_an_upsert_creates_the_party_then_updates_the_same_one(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    cid = unique("c")
    created = await connector.deliver(upserted(customer(cid)), context())
    changed = customer(
        cid,
        email="ada.king@example.com",
        last_name="King",
        phone="+44 20 7946 1111",
        addresses=[address(), address(line1="1 New Street", postal_code="W1A 1AA")],
    )
    updated = await connector.deliver(upserted(changed), context())

    row = await party(rpc, f"shop-{cid}")
    assert row["name"] == "Ada King"
    assert row["contacts"] == {("email", "ada.king@example.com"), ("phone", "+44 20 7946 1111")}
    assert row["streets"] == ["12 St James's Square", "1 New Street"]
    assert created.links == updated.links
    assert created.links[0].remote_id == str(row["id"])
    assert "created" in created.summary and "updated" in updated.summary


async def test_only_the_fields_the_gateway_may_write_are_written(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    cid = unique("c")
    await connector.deliver(upserted(customer(cid)), context())
    changed = customer(cid, email="new@example.com", last_name="Byron", phone="+1 555 0100")
    await connector.deliver(upserted(changed), context(fields=["email"]))

    row = await party(rpc, f"shop-{cid}")
    assert row["name"] == "Ada Lovelace"  # the ERP owns the name here
    assert ("email", "new@example.com") in row["contacts"]
    assert ("phone", "+44 20 7946 0000") in row["contacts"]


async def test_a_customer_and_its_orders_share_one_party(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    cid = unique("c")
    first = await connector.deliver(upserted(customer(cid)), context())
    order = make_order(customer_id=cid)
    result = await connector.deliver(event_for(order), context())
    by_kind = {link.entity_type: link.remote_id for link in result.links}
    assert by_kind["customer"] == first.links[0].remote_id


async def test_a_duplicate_is_linked_not_created(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    cid = unique("c")
    existing = await connector.deliver(upserted(customer(cid)), context())
    other = unique("c")
    result = await connector.deliver(
        upserted(customer(other, email="ada@example.com")),
        context(link_to=existing.links[0].remote_id),
    )
    assert result.links[0].remote_id == existing.links[0].remote_id
    assert await rpc.search("party.party", [("code", "=", f"shop-{other}")]) == []


async def test_an_erase_request_anonymizes_and_deactivates_the_party(
    connector: TrytonConnector, rpc: TrytonClient
) -> None:
    cid = unique("c")
    await connector.deliver(upserted(customer(cid)), context())
    request = ErasureRequest(source="shop", customer_external_id=cid, requested_at=NOW)
    result = await connector.deliver(
        make_event("customer.erase_requested", request, NOW), DeliveryContext()
    )

    row = await party(rpc, f"shop-{cid}")
    assert row["name"] == "Erased" and not row["active"]
    assert row["contacts"] == set()
    assert row["streets"] == [None]
    assert "anonymized" in result.summary
