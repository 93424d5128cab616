"""Only deliveries signed with the connection's secret over the exact raw body get in."""

from __future__ import annotations

import base64

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.inbound import sign, verify_hmac
from kernel.errors import SignatureError
from tests.support.connectors import connect
from tests.unit.shopify.conftest import SECRET, fixture_bytes, headers_for, make_connection


def test_shopify_signature_over_the_raw_body_verifies() -> None:
    body = fixture_bytes()
    verify_hmac(body, sign(body, SECRET), SECRET)


def test_signature_is_base64_of_a_sha256_hmac() -> None:
    # Shopify's header is base64 (not hex like its OAuth query HMAC): 32 bytes decoded.
    assert len(base64.b64decode(sign(b"{}", SECRET), validate=True)) == 32


def test_known_vector() -> None:
    # HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), base64
    body = b"The quick brown fox jumps over the lazy dog"
    assert sign(body, "key") == "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg="


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_signature_is_rejected(header: str | None) -> None:
    with pytest.raises(SignatureError, match="missing X-Shopify-Hmac-Sha256"):
        verify_hmac(fixture_bytes(), header, SECRET)


def test_signature_made_with_another_secret_is_rejected() -> None:
    body = fixture_bytes()
    with pytest.raises(SignatureError, match="does not match"):
        verify_hmac(body, sign(body, "someone-elses-secret"), SECRET)


def test_garbage_signature_is_rejected_not_crashed() -> None:
    with pytest.raises(SignatureError):
        verify_hmac(b"{}", "not base64 at all ✗", SECRET)


def test_tampered_body_is_rejected() -> None:
    body = fixture_bytes()
    signature = sign(body, SECRET)
    tampered = body.replace(b'"price": "89.99"', b'"price": "0.99"', 1)
    assert tampered != body
    with pytest.raises(SignatureError):
        verify_hmac(tampered, signature, SECRET)


def test_reserialised_json_does_not_verify() -> None:
    # Why verification must use the raw bytes: same data, other bytes, other signature.
    body = b'{"id": 1, "total_price": "10.00"}'
    with pytest.raises(SignatureError):
        verify_hmac(b'{"id":1,"total_price":"10.00"}', sign(body, SECRET), SECRET)


def test_empty_secret_never_verifies() -> None:
    body = b"{}"
    with pytest.raises(SignatureError, match="no webhook secret"):
        verify_hmac(body, sign(body, ""), "")


def test_surrounding_whitespace_in_the_header_is_tolerated() -> None:
    body = fixture_bytes()
    verify_hmac(body, f" {sign(body, SECRET)} ", SECRET)


@given(body=st.binary(max_size=2048), secret=st.text(min_size=1, max_size=64))
def test_any_body_signed_with_the_secret_verifies(body: bytes, secret: str) -> None:
    verify_hmac(body, sign(body, secret), secret)


@given(
    body=st.binary(min_size=1, max_size=2048),
    data=st.data(),
)
def test_any_single_byte_change_fails(body: bytes, data: st.DataObject) -> None:
    signature = sign(body, SECRET)
    index = data.draw(st.integers(min_value=0, max_value=len(body) - 1), label="index")
    delta = data.draw(st.integers(min_value=1, max_value=255), label="delta")
    changed = bytearray(body)
    changed[index] = (changed[index] + delta) % 256
    with pytest.raises(SignatureError):
        verify_hmac(bytes(changed), signature, SECRET)


# --- through the connector ---------------------------------------------------------------


def test_connector_reads_the_header_case_insensitively(connector: ShopifyConnector) -> None:
    body = fixture_bytes()
    signed = {"x-shopify-hmac-sha256": sign(body, SECRET)}  # HTTP/2 lowercases names
    connector.verify_signature(signed, body)
    connector.verify_signature({"X-SHOPIFY-HMAC-SHA256": sign(body, SECRET)}, body)


def test_connector_uses_the_connection_webhook_secret(connector: ShopifyConnector) -> None:
    body = fixture_bytes()
    with pytest.raises(SignatureError):
        connector.verify_signature(headers_for(body, secret="other"), body)
    with pytest.raises(SignatureError, match="missing"):
        connector.verify_signature({"X-Shopify-Topic": "orders/create"}, body)


@pytest.mark.parametrize("secret", [None, ""])
async def test_connection_without_webhook_secret_fails_at_start(secret: str | None) -> None:
    config = make_connection(webhook_secret=secret)
    async with httpx.AsyncClient() as http:
        with pytest.raises(
            ValueError, match=r"webhook_secret\s+(Field required|Value should have)"
        ):
            connect(ShopifyConnector, config, http)


@pytest.mark.parametrize("header", ["é" * 44, "\u00ff\u00fe", "sïgnature=="])
def test_non_ascii_signature_is_a_bad_signature_not_a_crash(header: str) -> None:
    with pytest.raises(SignatureError, match="does not match"):
        verify_hmac(fixture_bytes(), header, SECRET)
