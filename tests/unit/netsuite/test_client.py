"""The client: every NetSuite answer becomes the typed error that steers the retry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connectors._kit.retry_after import retry_after_seconds
from connectors.netsuite import wire
from connectors.netsuite.auth import TbaCredentials, verify_authorization
from connectors.netsuite.client import NetSuiteClient, by_eid
from kernel.errors import PermanentError, RateLimitedError, TransientError
from tests.unit.netsuite.conftest import BASE_URL, CREDS, RECORDS

ORDER = by_eid("salesOrder", "shop-1001")
ORDER_URL = f"{RECORDS}/salesOrder/eid:shop-1001?replace=item"


def envelope(status: int, code: str, detail: str, path: str | None = None) -> dict[str, Any]:
    return wire.error_body(status, code, detail, path=path)


@pytest.fixture
async def client(tba: TbaCredentials) -> AsyncIterator[NetSuiteClient]:
    async with httpx.AsyncClient() as http:
        yield NetSuiteClient(http, BASE_URL, tba)


async def upsert_order(client: NetSuiteClient) -> None:
    await client.upsert(ORDER, {"entity": {"id": "1"}}, replace=("item",))


async def test_upsert_is_a_signed_put_by_external_id(
    client: NetSuiteClient, tba: TbaCredentials, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="PUT", url=ORDER_URL, status_code=204)
    await client.upsert(ORDER, {"rate": Decimal("19.90")}, replace=("item",))

    request = httpx_mock.get_request()
    assert request is not None
    assert request.content == b'{"rate":19.90}'  # Decimal written digit for digit
    assert request.headers["content-type"] == "application/json"

    def lookup(ck: str, tk: str) -> tuple[str, str] | None:
        return (
            (tba.consumer_secret, tba.token_secret)
            if (ck, tk) == (tba.consumer_key, tba.token_id)
            else None
        )

    verified = verify_authorization(
        "PUT", str(request.url), request.headers["authorization"], lookup
    )
    assert verified.realm == "1234567"


@pytest.mark.parametrize(
    ("status", "body", "headers", "retry_after"),
    [
        (
            429,
            envelope(429, "CONCURRENCY_LIMIT_EXCEEDED", "Concurrent request limit exceeded."),
            {"Retry-After": "7"},
            7.0,
        ),
        (
            429,
            envelope(429, "CONCURRENCY_LIMIT_EXCEEDED", "Concurrent request limit exceeded."),
            {},
            5.0,
        ),
        (400, envelope(400, "SSS_REQUEST_LIMIT_EXCEEDED", "Request limit exceeded."), {}, 5.0),
        (
            400,
            envelope(400, "CONCURRENCY_LIMIT_EXCEEDED", "Request blocked."),
            {"Retry-After": "2"},
            2.0,
        ),
    ],
)
async def test_throttling_waits_instead_of_failing(
    client: NetSuiteClient,
    httpx_mock: HTTPXMock,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str],
    retry_after: float,
) -> None:
    httpx_mock.add_response(
        method="PUT", url=ORDER_URL, status_code=status, json=body, headers=headers
    )
    with pytest.raises(RateLimitedError) as caught:
        await upsert_order(client)
    assert caught.value.retry_after == retry_after
    assert "throttling" in caught.value.message


def test_retry_after_as_http_date() -> None:
    now = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("Sun, 01 Nov 2026 12:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("soon", now=now) == 5.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_retried(
    client: NetSuiteClient, httpx_mock: HTTPXMock, status: int
) -> None:
    httpx_mock.add_response(
        method="PUT", url=ORDER_URL, status_code=status, text="<html>down</html>"
    )
    with pytest.raises(TransientError, match=f"HTTP {status}"):
        await upsert_order(client)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
)
async def test_timeouts_and_connection_failures_are_retried(
    client: NetSuiteClient, httpx_mock: HTTPXMock, exc: Exception
) -> None:
    httpx_mock.add_exception(exc, method="PUT", url=ORDER_URL)
    with pytest.raises(TransientError, match="salesOrder eid:shop-1001"):
        await upsert_order(client)


async def test_a_timeout_says_the_retry_is_safe(
    client: NetSuiteClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("read timed out"), method="PUT", url=ORDER_URL)
    with pytest.raises(TransientError, match="cannot duplicate"):
        await upsert_order(client)


async def test_validation_error_quotes_netsuite_for_the_operator(
    client: NetSuiteClient, httpx_mock: HTTPXMock
) -> None:
    body = envelope(400, "FIELD_PARAM_REQD", "Please enter a value for [entity]", path="entity")
    httpx_mock.add_response(method="PUT", url=ORDER_URL, status_code=400, json=body)
    with pytest.raises(PermanentError) as caught:
        await upsert_order(client)
    assert caught.value.message == (
        "NetSuite rejected salesOrder eid:shop-1001: "
        "Please enter a value for [entity] (FIELD_PARAM_REQD at entity)"
    )
    assert caught.value.detail["status"] == 400


@pytest.mark.parametrize(
    ("status", "code", "detail"),
    [
        (
            401,
            "INVALID_LOGIN",
            "Invalid login attempt. For more details, see the Login Audit Trail.",
        ),
        (
            403,
            "INSUFFICIENT_PERMISSION",
            "Permission Violation: You need a higher level of the 'Sales Order' permission.",
        ),
    ],
)
async def test_refused_login_is_permanent_and_leaks_no_secret(
    client: NetSuiteClient, httpx_mock: HTTPXMock, status: int, code: str, detail: str
) -> None:
    httpx_mock.add_response(
        method="PUT",
        url=ORDER_URL,
        status_code=status,
        json=envelope(status, code, detail),
        headers={"www-authenticate": 'OAuth realm="1234567", error="token_rejected"'},
    )
    with pytest.raises(PermanentError) as caught:
        await upsert_order(client)
    message = caught.value.message
    assert "login" in message and code in message and detail in message
    for secret in (CREDS["consumer_secret"], CREDS["token_secret"], "oauth_signature"):
        assert secret not in message
        assert secret not in repr(caught.value.detail)


async def test_other_4xx_without_envelope_points_at_the_config(
    client: NetSuiteClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        method="PUT", url=ORDER_URL, status_code=404, text="<html>Not Found</html>"
    )
    with pytest.raises(PermanentError, match="base_url"):
        await upsert_order(client)


async def test_get_of_a_missing_record_is_none(
    client: NetSuiteClient, httpx_mock: HTTPXMock
) -> None:
    body = envelope(404, "NONEXISTENT_ID", "The record instance does not exist.")
    httpx_mock.add_response(
        method="GET", url=f"{RECORDS}/salesOrder/eid:shop-1001", status_code=404, json=body
    )
    assert await client.get(ORDER) is None


async def test_get_returns_the_record_with_exact_numbers(
    client: NetSuiteClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        method="GET",
        url=f"{RECORDS}/salesOrder/eid:shop-1001?expandSubResources=true",
        content=b'{"id":"9001","item":{"items":[{"line":1,"rate":19.90}]}}',
    )
    record = await client.get(ORDER, expand_sub_resources=True)
    assert record is not None
    assert record["item"]["items"][0]["rate"] == Decimal("19.90")


async def test_create_returns_the_id_from_location(
    client: NetSuiteClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        method="POST",
        url=f"{RECORDS}/customer",
        status_code=204,
        headers={"Location": f"{RECORDS}/customer/647"},
    )
    assert await client.create("customer", {"companyName": "My Company"}) == "647"


def test_floats_are_refused_rather_than_rounded() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        wire.dumps({"rate": 19.99})
    assert wire.dumps({"q": Decimal("1E+2"), "r": Decimal("0.10")}) == b'{"q":100,"r":0.10}'
