"""Customer, erasure, refund and return webhooks become canonical events."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.shopify.webhooks import parse_webhook
from kernel.canonical.customer import Customer, ErasureRequest
from kernel.canonical.returns import Refund, Return
from kernel.errors import PayloadError
from tests.unit.shopify.conftest import SOURCE, headers_for

# The shared sample payloads; a checkout without them uses the same samples, inlined below.
PAYLOADS = Path("/work/shared/payloads")


def sample(name: str) -> bytes:
    path = PAYLOADS / name
    if path.exists():
        return path.read_bytes()
    return json.dumps(INLINE[name]).encode()


INLINE: dict[str, Any] = {
    "shopify_customers_create.json": {
        "id": 706405506930370000,
        "email": "bob@biller.com",
        "accepts_marketing": True,
        "updated_at": "2021-12-31T19:00:00-05:00",
        "first_name": "Bob",
        "last_name": "Biller",
        "tax_exempt": False,
        "tags": "",
        "addresses": [],
        "email_marketing_consent": None,
    },
    "shopify_customers_redact.json": {
        "shop_id": 954889,
        "shop_domain": "{shop}.myshopify.com",
        "customer": {"id": 191167, "email": "john@example.com", "phone": "555-625-1199"},
        "orders_to_redact": [299938, 280263, 220458],
    },
}

REFUND: dict[str, Any] = {
    "id": 509562969,
    "order_id": 450789469,
    "created_at": "2025-03-01T10:00:00-05:00",
    "note": "it broke during shipping",
    "restock": True,
    "refund_line_items": [
        {
            "id": 104689539,
            "quantity": 1,
            "line_item_id": 703073504,
            "location_id": 487838322,
            "restock_type": "return",
            "subtotal": 195.66,  # a JSON number, as Shopify sends it here
            "total_tax": 3.98,
            "subtotal_set": {"shop_money": {"amount": "195.66", "currency_code": "USD"}},
            "line_item": {"id": 703073504, "sku": "IPOD2008BLACK", "price": "199.00"},
        }
    ],
    "transactions": [
        {
            "kind": "refund",
            "status": "success",
            "amount": "41.94",
            "currency": "USD",
            "gateway": "bogus",
        },
        {
            "kind": "refund",
            "status": "failure",
            "amount": "10.00",
            "currency": "USD",
            "gateway": "bogus",
        },
    ],
    "order_adjustments": [{"kind": "shipping_refund", "amount": "-5.00"}],
}

RETURN: dict[str, Any] = {
    "id": 945000954,
    "name": "#1001-R1",
    "status": "requested",
    "order": {"id": 450789469, "name": "#1001"},
    "created_at": "2025-03-02T09:00:00Z",
    "return_line_items": [
        {
            "id": 1,
            "quantity": 2,
            "return_reason": "size_too_small",
            "return_reason_note": "runs small",
            "fulfillment_line_item": {"line_item": {"id": 703073504, "sku": "TSHIRT-RED-M"}},
        },
        {
            "id": 2,
            "quantity": 1,
            "return_reason": "other",
            "fulfillment_line_item": {"line_item": {"id": 703073505}},
        },
    ],
}


def events(topic: str, body: bytes, **headers: str) -> list[Any]:
    return parse_webhook(headers_for(body, topic, **headers), body, SOURCE).events


@pytest.mark.parametrize("topic", ["customers/create", "customers/update"])
def test_customer_sample_becomes_an_upsert(topic: str) -> None:
    (event,) = events(topic, sample("shopify_customers_create.json"))
    assert event.type == "customer.upserted" and event.flow == "customers"
    customer = event.payload_as(Customer)
    assert customer.external_id == "706405506930370000"  # every digit of the 64-bit id
    assert event.entity_key == "shop-eu:customer:706405506930370000"
    assert (customer.email, customer.first_name, customer.last_name) == (
        "bob@biller.com",
        "Bob",
        "Biller",
    )
    assert customer.accepts_marketing is True  # legacy flag, no consent object
    assert customer.addresses == [] and customer.default_billing is None


def test_customer_addresses_default_tags_and_consent() -> None:
    payload = json.loads(sample("shopify_customers_create.json"))
    payload.update(
        accepts_marketing=True,
        email_marketing_consent={"state": "unsubscribed", "opt_in_level": "single_opt_in"},
        tags="vip, group:wholesale",
        tax_exempt=False,
        tax_exemptions=["CA_STATUS_CARD_EXEMPTION"],
        addresses=[
            {
                "id": 1,
                "address1": "1 Old St",
                "city": "Paris",
                "country_code": "FR",
                "default": False,
            },
            {
                "id": 2,
                "address1": "2 New St",
                "city": "Lyon",
                "country_code": "FR",
                "company": "Acme",
                "default": True,
            },
        ],
    )
    (event,) = events("customers/update", json.dumps(payload).encode())
    customer = event.payload_as(Customer)
    assert customer.accepts_marketing is False  # consent wins over the legacy flag
    assert customer.group == "wholesale"
    assert customer.tax_exempt is True
    assert customer.tax_exemption_certificate == "CA_STATUS_CARD_EXEMPTION"
    assert [a.city for a in customer.addresses] == ["Paris", "Lyon"]
    assert customer.default_billing == customer.default_shipping == 1
    assert customer.company == "Acme"


def test_redact_sample_becomes_an_erase_request() -> None:
    body = sample("shopify_customers_redact.json")
    (event,) = events(
        "customers/redact", body, **{"X-Shopify-Triggered-At": "2025-03-01T10:00:00Z"}
    )
    assert event.type == "customer.erase_requested"
    erase = event.payload_as(ErasureRequest)
    assert (erase.customer_external_id, erase.email, erase.phone) == (
        "191167",
        "john@example.com",
        "555-625-1199",
    )
    assert erase.requested_at == datetime(2025, 3, 1, 10, tzinfo=UTC)
    assert event.entity_key == "shop-eu:customer:191167"


def test_redact_without_anyone_is_422() -> None:
    body = json.dumps({"shop_id": 1, "customer": {"id": None, "email": None}}).encode()
    with pytest.raises(PayloadError, match="names no customer"):
        events("customers/redact", body)


def test_refund_amount_lines_method_and_order_key() -> None:
    (event,) = events("refunds/create", json.dumps(REFUND).encode())
    assert event.type == "refund.created" and event.flow == "returns"
    refund = event.payload_as(Refund)
    assert refund.order_key == "shop-eu:order:450789469"
    assert refund.amount.amount == Decimal("41.94")  # the failed attempt does not count
    assert refund.amount.currency == "USD"
    assert refund.method == "bogus"
    (line,) = refund.lines
    assert (line.sku, line.quantity, line.amount.amount) == (
        "IPOD2008BLACK",
        Decimal(1),
        Decimal("195.66"),
    )
    assert refund.shipping is not None and refund.shipping.amount == Decimal("5.00")
    assert event.entity_key == "shop-eu:refund:509562969"


def test_refund_without_a_currency_is_422() -> None:
    payload = copy.deepcopy(REFUND)
    payload["transactions"] = []
    del payload["refund_line_items"][0]["subtotal_set"]
    with pytest.raises(PayloadError, match="no currency"):
        events("refunds/create", json.dumps(payload).encode())


def test_refund_missing_order_id_names_the_field() -> None:
    payload = {k: v for k, v in REFUND.items() if k != "order_id"}
    with pytest.raises(PayloadError, match="order_id: Field required"):
        events("refunds/create", json.dumps(payload).encode())


def test_return_request_lines_and_reasons() -> None:
    (event,) = events("returns/request", json.dumps(RETURN).encode())
    assert event.type == "return.requested"
    ret = event.payload_as(Return)
    assert ret.order_key == "shop-eu:order:450789469"
    assert (ret.rma_number, ret.order_number, ret.status) == ("#1001-R1", "#1001", "requested")
    first, second = ret.lines
    assert (first.sku, first.quantity, first.order_line_id) == ("TSHIRT-RED-M", 2, "703073504")
    assert first.reason == "size_too_small: runs small"
    assert (second.sku, second.order_line_id, second.reason) == ("", "703073505", "other")
    assert ret.requested_at == datetime(2025, 3, 2, 9, tzinfo=UTC)


def test_return_without_lines_is_422() -> None:
    payload = {k: v for k, v in RETURN.items() if k != "return_line_items"}
    with pytest.raises(PayloadError, match="return_line_items"):
        events("returns/request", json.dumps(payload).encode())


# --- hostile values -------------------------------------------------------------------------


def test_refund_with_a_strange_subtotal_set_is_422_not_a_crash() -> None:
    payload = copy.deepcopy(REFUND)
    payload["transactions"] = []
    payload["refund_line_items"][0]["subtotal_set"] = "USD"
    with pytest.raises(PayloadError, match="no currency"):
        events("refunds/create", json.dumps(payload).encode())


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            lambda r: r["refund_line_items"][0].update(quantity=-1000),
            "refund_line_items[0].quantity: must be between 0 and 1000000000",
        ),
        (
            lambda r: r["refund_line_items"][0].update(quantity=10**30),
            "refund_line_items[0].quantity: must be between 0 and 1000000000",
        ),
        (lambda r: r["transactions"][0].update(amount="-41.94"), "transactions[0].amount: must"),
        (lambda r: r["transactions"][0].update(amount="1e999999"), "transactions[0].amount: "),
        (lambda r: r.update(id="9" * 201), "id: String should have at most 200 characters"),
        (
            lambda r: r["order_adjustments"][0].update(amount="5.00"),
            "shipping: must not be negative",
        ),
        (
            lambda r: r["refund_line_items"][0]["line_item"].update(sku="\u0000"),
            "lines[0].sku: must not contain NUL",
        ),
    ],
)
def test_hostile_refunds_are_422_naming_the_field(change: Any, named: str) -> None:
    payload = copy.deepcopy(REFUND)
    change(payload)
    with pytest.raises(PayloadError) as caught:
        events("refunds/create", json.dumps(payload).encode())
    assert caught.value.status_code == 422
    assert named in str(caught.value)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            lambda r: r["return_line_items"][0].update(quantity=-2),
            "return_line_items[0].quantity: must be between 0 and 1000000000",
        ),
        (lambda r: r["order"].update(id=""), "order.id: must not be empty"),
        (lambda r: r.update(created_at="2025-03-02T09:00:00"), "created_at: must carry a time"),
    ],
)
def test_hostile_returns_are_422_naming_the_field(change: Any, named: str) -> None:
    payload = copy.deepcopy(RETURN)
    change(payload)
    with pytest.raises(PayloadError) as caught:
        events("returns/request", json.dumps(payload).encode())
    assert caught.value.status_code == 422
    assert named in str(caught.value)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda c: c.update(first_name="Bob\u0000"), "first_name: must not contain NUL"),
        (lambda c: c.update(email="b" * 300), "email: String should have at most 250"),
        (lambda c: c.update(id=" "), "id: must not be empty"),
        (
            lambda c: c.update(addresses=[{"city": "c" * 300, "default": True}]),
            "addresses[0].city: String should have at most 255",
        ),
    ],
)
def test_hostile_customers_are_422_naming_the_field(change: Any, named: str) -> None:
    payload = json.loads(sample("shopify_customers_create.json"))
    change(payload)
    with pytest.raises(PayloadError) as caught:
        events("customers/create", json.dumps(payload).encode())
    assert caught.value.status_code == 422
    assert named in str(caught.value)


def test_redact_naming_an_overlong_id_is_422() -> None:
    payload = json.loads(sample("shopify_customers_redact.json"))
    payload["customer"]["id"] = "1" * 250
    with pytest.raises(PayloadError, match=r"customer\.id: String should have at most 200"):
        events("customers/redact", json.dumps(payload).encode())


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "x"])
def test_a_triggered_at_no_delivery_can_have_is_ignored(when: str) -> None:
    body = sample("shopify_customers_redact.json")
    (event,) = events("customers/redact", body, **{"X-Shopify-Triggered-At": when})
    erase = event.payload_as(ErasureRequest)
    assert abs((erase.requested_at - datetime.now(UTC)).total_seconds()) < 60
