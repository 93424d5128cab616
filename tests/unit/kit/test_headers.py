"""The kit's header lookup and checks."""

from __future__ import annotations

import httpx
import pytest

from connectors._kit.headers import check_value, checked_header, header
from kernel.errors import PayloadError


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Shopify-Topic": "orders/create"},
        {"x-shopify-topic": "orders/create"},
        {"X-SHOPIFY-TOPIC": "orders/create"},
        httpx.Headers({"X-Shopify-Topic": "orders/create"}),
    ],
)
def test_lookup_ignores_case_in_plain_mappings_and_httpx_headers(headers: object) -> None:
    assert header(headers, "X-Shopify-Topic") == "orders/create"  # type: ignore[arg-type]
    assert header(headers, "x-shopify-topic") == "orders/create"  # type: ignore[arg-type]
    assert header(headers, "X-Other") is None  # type: ignore[arg-type]


def test_checked_value_passes_printable_ascii_within_the_limit() -> None:
    assert check_value("X-Id", "abc-123", limit=7) == "abc-123"
    assert checked_header({"x-id": "abc"}, "X-Id", limit=10) == "abc"
    assert checked_header({}, "X-Id", limit=10) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a" * 11, "X-Id header is 11 characters long, over the 10 allowed"),
        ("créé", "X-Id header must be printable ASCII"),
        ("a\nb", "X-Id header must be printable ASCII"),
        ("a\x00", "X-Id header must be printable ASCII"),
    ],
)
def test_bad_values_are_a_400_naming_the_header(value: str, message: str) -> None:
    with pytest.raises(PayloadError, match=message) as caught:
        checked_header({"X-ID": value}, "X-Id", limit=10)
    assert caught.value.status_code == 400
