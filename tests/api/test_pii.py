"""Personal data by role, and signatures for nobody.

Viewers get e-mails, phones, names, street lines, postal codes, IPs and companies masked in
deliveries, attempts' exchanges, events' payloads, inbound bodies and the trace; operators
and pii-reader keys see them. Stored signature headers (replay material) are never shown.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from app.api import pii
from kernel.canonical.common import Address
from kernel.canonical.order import OrderCustomer
from tests.api.conftest import OPERATOR, PII_READER, VIEWER, Gateway, add_attempt, add_link, seed

EMAIL = "jane.roe@example.com"
PHONE = "+49 170 1234567"
IP = "203.0.113.77"

SIGNED_HEADERS = {
    "content-type": "application/json",
    "x-shopify-topic": "orders/create",
    "x-shopify-hmac-sha256": "c2lnbmF0dXJlLXRoYXQtY2FuLWJlLXJlcGxheWVk",
    "x-gateway-signature": "t=1,v1=abcdef",
    "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
    "x-wc-webhook-signature": "woo-signature",
    "x-custom-hmac": "deadbeef",
    "x-forwarded-for": IP,
}
SIGNATURE_NAMES = {k for k in SIGNED_HEADERS if "signature" in k or "hmac" in k}

SHOPIFY_BODY = {
    "id": 820982911946154508,
    "name": "#9001",
    "order_number": 9001,
    "email": EMAIL,
    "phone": PHONE,
    "browser_ip": IP,
    "note": "Leave it with Mr. Smith next door",
    "total_price": "398.00",
    "customer": {
        "id": 115310627314723954,
        "email": EMAIL,
        "first_name": "Jane",
        "last_name": "Roe",
    },
    "billing_address": {
        "first_name": "Jane",
        "last_name": "Roe",
        "name": "Jane Roe",
        "address1": "123 Amoebobacterieae St",
        "address2": "Apt 4",
        "city": "Ottawa",
        "zip": "K2P 0V6",
        "phone": PHONE,
        "company": "Roe Consulting",
        "country_code": "CA",
        "latitude": 45.41634,
    },
    "line_items": [
        {"id": 466157049, "sku": "SKU-RED-M", "name": "Red shirt - M", "price": "199.00"}
    ],
    "client_details": {"browser_ip": IP, "user_agent": "Mozilla/5.0"},
}
PERSONAL = [EMAIL, "1234567", IP, "Jane", "Roe", "Amoebobacterieae", "Ottawa", "K2P 0V6"]
PERSONAL += ["Roe Consulting", "Mr. Smith", "Apt 4"]


def assert_no_personal_data(text: str) -> None:
    for value in PERSONAL:
        assert value not in text, f"{value!r} is shown to a viewer"


def assert_no_signatures(headers: dict[str, Any]) -> None:
    assert not {k.lower() for k in headers} & SIGNATURE_NAMES, headers
    assert not [k for k in headers if "signature" in k.lower() or "hmac" in k.lower()]


async def seed_personal(gw: Gateway, **values: Any) -> Any:
    address = Address(
        first_name="Jane",
        last_name="Roe",
        company="Roe Consulting",
        line1="123 Amoebobacterieae St",
        line2="Apt 4",
        city="Ottawa",
        postal_code="K2P 0V6",
        country_code="CA",
        phone=PHONE,
    )
    return await seed(
        gw.rt,
        customer=OrderCustomer(
            external_id="77", email=EMAIL, first_name="Jane", last_name="Roe", phone=PHONE
        ),
        order_values={"billing_address": address, "shipping_address": address},
        inbound_body=json.dumps(SHOPIFY_BODY).encode(),
        inbound_headers=SIGNED_HEADERS,
        **values,
    )


async def read(gw: Gateway, path: str, headers: dict[str, str]) -> Any:
    response = await gw.client.get(f"/api/v1{path}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_inbound_event_for_a_viewer(gw: Gateway) -> None:
    s = await seed_personal(gw)
    detail = await read(gw, f"/inbound-events/{s.inbound_id}", VIEWER)

    assert_no_signatures(detail["headers"])
    assert detail["headers"]["x-shopify-topic"] == "orders/create"
    assert detail["headers"]["x-forwarded-for"] == "***"
    assert_no_personal_data(json.dumps(detail))
    body = json.loads(detail["body"])
    assert body["email"] == "j***@example.com"
    assert body["phone"] == "***67"
    assert (
        body["customer"]["first_name"] == "***" and body["customer"]["email"] == "j***@example.com"
    )
    address = body["billing_address"]
    assert address["name"] == address["address1"] == address["zip"] == address["company"] == "***"
    assert address["country_code"] == "CA"
    assert body["client_details"] == "***"
    # what a support person needs stays
    assert body["id"] == 820982911946154508 and body["name"] == "#9001"
    assert body["order_number"] == 9001 and body["total_price"] == "398.00"
    assert body["line_items"] == SHOPIFY_BODY["line_items"]  # a product's name is no person's
    assert detail["body_bytes"] == len(json.dumps(SHOPIFY_BODY).encode())


@pytest.mark.parametrize("headers", [OPERATOR, PII_READER], ids=["operator", "pii-reader"])
async def test_inbound_event_for_pii_roles(gw: Gateway, headers: dict[str, str]) -> None:
    s = await seed_personal(gw)
    detail = await read(gw, f"/inbound-events/{s.inbound_id}", headers)
    assert_no_signatures(detail["headers"])  # not even for them
    assert detail["headers"]["x-forwarded-for"] == IP
    assert json.loads(detail["body"]) == SHOPIFY_BODY  # exactly as received


async def test_event_payload_and_its_inbound_event_for_a_viewer(gw: Gateway) -> None:
    s = await seed_personal(gw)
    event = await read(gw, f"/events/{s.event_id}", VIEWER)
    assert_no_personal_data(json.dumps(event))
    payload = event["payload"]
    assert payload["customer"]["email"] == "j***@example.com"
    assert payload["customer"]["phone"] == "***67"
    assert payload["customer"]["external_id"] == "77"
    assert payload["billing_address"]["line1"] == "***"
    assert payload["billing_address"]["country_code"] == "CA"
    assert payload["lines"][0]["sku"] == "SKU-RED-M"
    assert payload["totals"]["total"]["amount"] == "19.99"
    assert payload["number"] == s.entity_key.replace("shop:order:", "#")
    assert_no_signatures(event["inbound_event"]["headers"])

    for headers in (OPERATOR, PII_READER):
        full = await read(gw, f"/events/{s.event_id}", headers)
        assert full["payload"]["customer"]["email"] == EMAIL
        assert full["payload"]["billing_address"]["line1"] == "123 Amoebobacterieae St"
        assert_no_signatures(full["inbound_event"]["headers"])


def exchange_with_personal_data() -> dict[str, Any]:
    request_body = json.dumps(
        {
            "externalId": "shop-9001",
            "email": EMAIL,
            "entity": {"id": "1042"},
            "billAddress": {"addressee": "Jane Roe", "addr1": "123 Amoebobacterieae St"},
            "item": {"items": [{"item": {"id": "1042"}, "quantity": 1, "rate": 199.0}]},
        }
    )
    cut = json.dumps({"id": "C-1", "email": EMAIL, "phone": PHONE, "firstName": "Jane"})[:-5]
    return {
        "request": {
            "method": "POST",
            "url": f"https://ns.example/customer?q=email%20IS%20{EMAIL}",
            "headers": {
                "authorization": "***",
                "x-gateway-signature": "t=1,v1=abc",
                "content-type": "application/json",
            },
            "body": request_body,
        },
        "response": {
            "status": 400,
            "headers": {"webhook-signature": "v1,xyz", "x-request-id": "r-1"},
            "body": cut + "…(truncated)",
        },
    }


async def test_delivery_attempts_for_a_viewer(gw: Gateway) -> None:
    s = await seed_personal(gw, status="dead", last_error=f"customer {EMAIL} is inactive")
    await add_attempt(
        gw.rt,
        s.delivery,
        1,
        "permanent",
        error_message=f"HTTP 400: duplicate e-mail {EMAIL}",
        exchanges=[exchange_with_personal_data()],
    )
    await add_attempt(
        gw.rt,
        s.delivery,
        2,
        "transient",
        exchanges=[
            {
                "request": {"method": "POST", "url": "https://x", "body": f"email={EMAIL}&a=1"},
                "response": {"status": 502, "body": "<html>Bad gateway</html>"},
            }
        ],
    )
    detail = await read(gw, f"/deliveries/{s.delivery}", VIEWER)
    assert_no_personal_data(json.dumps(detail))
    assert detail["last_error"] == "customer j***@example.com is inactive"
    first, second = detail["attempts"]
    assert first["error_message"] == "HTTP 400: duplicate e-mail j***@example.com"
    (exchange,) = first["exchanges"]
    request, response = exchange["request"], exchange["response"]
    assert_no_signatures(request["headers"])
    assert_no_signatures(response["headers"])
    assert request["headers"]["authorization"] == "***"
    assert "j***@example.com" in request["url"]
    sent = json.loads(request["body"])
    assert sent["externalId"] == "shop-9001" and sent["item"]["items"][0]["rate"] == 199.0
    assert sent["billAddress"] == {"addressee": "***", "addr1": "***"}
    # a body cut at the log's limit is no longer JSON: masked field by field
    assert '"email": "j***@example.com"' in response["body"]
    assert '"phone": "***67"' in response["body"]
    assert '"id": "C-1"' in response["body"]
    # not JSON at all: nothing tells what is personal, so it is not shown
    assert second["exchanges"][0]["request"]["body"] == pii.NOT_JSON_NOTICE
    assert second["exchanges"][0]["response"]["body"] == pii.NOT_JSON_NOTICE

    for headers in (OPERATOR, PII_READER):
        full = await read(gw, f"/deliveries/{s.delivery}", headers)
        (exchange,) = full["attempts"][0]["exchanges"]
        assert json.loads(exchange["request"]["body"])["email"] == EMAIL
        assert_no_signatures(exchange["request"]["headers"])
        assert_no_signatures(exchange["response"]["headers"])
        assert full["last_error"] == f"customer {EMAIL} is inactive"


async def test_lists_and_trace_mask_e_mails_in_keys_for_a_viewer(gw: Gateway) -> None:
    guest = OrderCustomer(email=EMAIL, first_name="Jane", last_name="Roe", is_guest=True)
    s = await seed(gw.rt, status="held", customer=guest, held_reason=f"amended by {EMAIL}")
    await add_link(gw.rt, "erp", "customer", f"shop:customer:guest:{EMAIL}", "CUST-9")

    for path in ("/deliveries", "/events", "/inbound-events", "/approvals"):
        page = await read(gw, path, VIEWER)
        assert EMAIL not in json.dumps(page), path
    approvals = await read(gw, "/approvals", VIEWER)
    assert approvals["items"][0]["held_reason"] == "amended by j***@example.com"

    trace = await read(gw, f"/trace?entity_key={s.entity_key}", VIEWER)
    assert EMAIL not in json.dumps(trace)
    (link,) = trace["remote_ids"]
    assert link["our_key"] == "shop:customer:guest:j***@example.com"
    assert link["remote_id"] == "CUST-9"

    full = await read(gw, f"/trace?entity_key={s.entity_key}", PII_READER)
    assert full["remote_ids"][0]["our_key"] == f"shop:customer:guest:{EMAIL}"


async def test_bodies_that_are_not_json_are_not_shown_to_a_viewer(gw: Gateway) -> None:
    form = f"email={EMAIL}&phone=1234567".encode()
    latin1 = "Straße 5, Müller".encode("latin-1")  # not UTF-8: stored, shown as base64
    deep = b"[" * 5000 + b"]" * 5000  # deeper than any parser goes
    for body in (form, latin1, deep):
        s = await seed(gw.rt, inbound_body=body)
        detail = await read(gw, f"/inbound-events/{s.inbound_id}", VIEWER)
        assert detail["body"] == pii.NOT_JSON_NOTICE
        assert detail["body_encoding"] == "utf-8"
        raw = await read(gw, f"/inbound-events/{s.inbound_id}", PII_READER)
        shown = raw["body"].encode() if raw["body_encoding"] == "utf-8" else None
        assert (shown or base64.b64decode(raw["body"])) == body


async def test_pii_readers_read_but_do_not_act(gw: Gateway) -> None:
    s = await seed(gw.rt, status="dead")
    for path in ("/deliveries", "/connections", "/mappings/sku/erp", "/jobs", "/rules"):
        assert (await gw.client.get(f"/api/v1{path}", headers=PII_READER)).status_code == 200
    response = await gw.client.post(f"/api/v1/deliveries/{s.delivery}/replay", headers=PII_READER)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


# --- the masking itself -------------------------------------------------------------------


def test_e_mails_anywhere() -> None:
    text = f"to {EMAIL}, cc a@b.co and x%40y.example.org; not an@, nor @handle"
    assert pii.mask_emails(text) == (
        "to j***@example.com, cc a***@b.co and x***%40y.example.org; not an@, nor @handle"
    )
    assert pii.mask_emails(pii.mask_emails(text)) == pii.mask_emails(text)


def test_phones_keep_their_last_two_digits() -> None:
    assert pii.mask_value("phone", PHONE) == "***67"
    assert pii.mask_value("phone", 4917012345678) == "***78"
    assert pii.mask_value("phone", "123") == "***"
    assert pii.mask_value("phone", "") == "" and pii.mask_value("phone", None) is None


def test_names_only_where_they_are_a_persons() -> None:
    doc: dict[str, Any] = {
        "name": "#1001",
        "line_items": [{"name": "Blue hoodie", "sku": "H-1"}],
        "shipping_lines": [{"name": "Express", "price": "5.00"}],
        "shipping_address": {"name": "Jane Roe", "zip": "10115"},
        "addresses": [{"name": "Jane Roe"}],
        "customer": {"name": "Jane Roe", "id": 5},
        "contact": {"full_name": "Jane Roe", "phone_number": "0301234567"},
        "recipient": {"Name": "Jane Roe"},
        "other": {"first_name": "Jane", "name": "Jane Roe"},
        "company": {"name": "Roe GmbH", "vat": "DE123"},
    }
    masked = pii.mask_document(doc)
    assert masked["name"] == "#1001"
    assert masked["line_items"][0] == {"name": "Blue hoodie", "sku": "H-1"}
    assert masked["shipping_lines"][0]["name"] == "Express"
    assert masked["shipping_address"] == {"name": "***", "zip": "***"}
    assert masked["addresses"] == [{"name": "***"}]
    assert masked["customer"] == {"name": "***", "id": 5}
    assert masked["contact"] == {"full_name": "***", "phone_number": "***67"}
    assert masked["recipient"] == {"Name": "***"}
    assert masked["other"] == {"first_name": "***", "name": "***"}
    assert masked["company"] == {"name": "***", "vat": "DE123"}
    assert doc["customer"]["name"] == "Jane Roe"  # the input is left alone


def test_deep_documents_are_walked_without_recursion() -> None:
    doc: Any = {"email": EMAIL}
    for _ in range(20_000):
        doc = {"next": doc}
    masked = pii.mask_document(doc)
    for _ in range(20_000):
        masked = masked["next"]
    assert masked == {"email": "j***@example.com"}


def test_signature_headers() -> None:
    headers = {
        "X-Shopify-Hmac-Sha256": "a",
        "X-Gateway-Signature": "b",
        "Webhook-Signature": "c",
        "Stripe-Signature": "d",
        "Webhook-Id": "msg_1",
        "Webhook-Timestamp": "1700000000",
    }
    assert pii.without_signatures(headers) == {
        "Webhook-Id": "msg_1",
        "Webhook-Timestamp": "1700000000",
    }
