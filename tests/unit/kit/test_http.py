"""Status → typed error, and ``send``: the transport failures and statuses every connector
meets, mapped one way."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from connectors._kit.http import StatusPolicy, error_for_status, remote_message, send
from kernel.errors import PermanentError, RateLimitedError, TransientError

URL = "https://erp.example.test/api/orders"


def response(status: int, **kwargs: Any) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("POST", URL), **kwargs)


def error(status: int, policy: StatusPolicy | None = None, **kwargs: Any) -> Exception | None:
    return error_for_status(
        response(status, **kwargs), describe="ERP (POST orders)", policy=policy or StatusPolicy()
    )


@pytest.mark.parametrize("status", [200, 201, 204])
def test_success_is_no_error(status: int) -> None:
    assert error(status) is None


def test_429_waits_for_retry_after_with_a_default() -> None:
    limited = error(429, headers={"Retry-After": "12"})
    assert isinstance(limited, RateLimitedError) and limited.retry_after == 12
    assert "rate limit" in limited.message
    default = error(429, StatusPolicy(default_retry_after=2.5))
    assert isinstance(default, RateLimitedError) and default.retry_after == 2.5
    capped = error(429, StatusPolicy(max_retry_after=60), headers={"Retry-After": "86400"})
    assert isinstance(capped, RateLimitedError) and capped.retry_after == 60


def test_503_with_retry_after_is_a_rate_limit_and_without_transient() -> None:
    assert isinstance(error(503, headers={"Retry-After": "5"}), RateLimitedError)
    assert isinstance(error(503), TransientError)
    outage = error(503, StatusPolicy(rate_limit_503=False), headers={"Retry-After": "5"})
    assert isinstance(outage, TransientError)


@pytest.mark.parametrize("status", [408, 425, 500, 502, 504])
def test_timeouts_and_server_errors_are_transient(status: int) -> None:
    failed = error(status, text="boom")
    assert isinstance(failed, TransientError)
    assert f"HTTP {status}: boom" in failed.message


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_permanent_and_say_what_to_check(status: int) -> None:
    refused = error(
        status, StatusPolicy(credentials_hint="the api_key"), json={"message": "bad key"}
    )
    assert isinstance(refused, PermanentError)
    assert "check the credentials: the api_key" in refused.message
    assert f"HTTP {status}: bad key" in refused.message


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"json": {"error": "unknown order #1001"}}, "unknown order #1001"),
        ({"json": {"message": "Invalid SKU"}}, "Invalid SKU"),
        (
            {"json": {"errors": {"price": ["is not a number", "is too big"]}}},
            "price is not a number; is too big",
        ),
        ({"json": {"error": {"message": "nested"}}}, "nested"),
        ({"json": ["first", "second"]}, "first; second"),
        (
            {"json": {"error": "invalid_grant", "error_description": "expired"}},
            "invalid_grant: expired",
        ),
        ({"text": "<html>\n  Bad   Request\n</html>"}, "<html> Bad Request </html>"),
        ({"content": b""}, "Unprocessable Entity"),
    ],
)
def test_other_4xx_quote_the_remote(body: dict[str, Any], said: str) -> None:
    rejected = error(422, **body)
    assert isinstance(rejected, PermanentError)
    assert rejected.message.endswith(f"HTTP 422: {said}")
    assert rejected.detail["status"] == 422


def test_the_remote_message_is_trimmed() -> None:
    text = remote_message(response(400, text="x" * 2000))
    assert len(text) == 500 and text.endswith("…")
    deep = b"[" * 100_000 + b"]" * 100_000  # deeper than json can parse: the text then
    assert remote_message(response(400, content=deep)).startswith("[[[")


def test_accepted_statuses_are_no_error() -> None:
    assert error(409, StatusPolicy(accept=frozenset({409}))) is None
    assert isinstance(error(409), PermanentError)


def test_a_redirect_is_permanent_and_points_at_the_url() -> None:
    moved = error(301, headers={"Location": "https://elsewhere.test/"})
    assert isinstance(moved, PermanentError)
    assert "elsewhere.test" in moved.message and "base_url" in moved.message


# --- send ---------------------------------------------------------------------------------


def client(handler: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_send_returns_the_read_response() -> None:
    async with client(lambda request: httpx.Response(200, json={"id": 7})) as http:
        answer = await send(http, http.build_request("GET", URL), timeout=5, describe="ERP")
    assert answer.json() == {"id": 7}


async def test_send_raises_the_status_error() -> None:
    async with client(lambda request: httpx.Response(502, text="bad gateway")) as http:
        with pytest.raises(TransientError, match="ERP failed with HTTP 502: bad gateway"):
            await send(http, http.build_request("GET", URL), timeout=5, describe="ERP")
        unchecked = await send(
            http, http.build_request("GET", URL), timeout=5, describe="ERP", check_status=False
        )
    assert unchecked.status_code == 502


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (httpx.ReadTimeout("slow"), "ERP timed out, no answer in time; safe to retry"),
        (httpx.ConnectTimeout("slow"), "ERP timed out"),
        (httpx.ConnectError("refused"), "cannot reach ERP: ConnectError: refused"),
        (httpx.RemoteProtocolError("gone"), "cannot reach ERP: RemoteProtocolError"),
    ],
)
async def test_transport_failures_are_transient(exc: Exception, message: str) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    async with client(fail) as http:
        with pytest.raises(TransientError, match=message):
            await send(
                http,
                http.build_request("GET", URL),
                timeout=5,
                describe="ERP",
                timeout_note="; safe to retry",
            )


async def test_the_timeout_bounds_the_whole_call() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    async with client(hang) as http:
        with pytest.raises(TransientError, match="in time"):
            await send(http, http.build_request("GET", URL), timeout=0.05, describe="ERP")
