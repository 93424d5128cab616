"""OAuth 2 tokens against a tiny in-test token endpoint: fetched once, refreshed near expiry,
one refresh for concurrent callers (in a process and across processes), rotated refresh
tokens saved, refusals as the typed errors that say what to do."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from connectors._kit.oauth2 import MemoryTokenStore, OAuth2Settings, OAuth2Tokens
from kernel.contract import TokenStore
from kernel.errors import PermanentError, RateLimitedError, TransientError

TOKEN_URL = "https://auth.example.test/oauth2/token"
KEY = "erp:oauth2"
T0 = 1_800_000_000.0


class TokenEndpoint:
    """Issues ``at-1``, ``at-2``…; refresh tokens ``rt-0`` (given at authorization), then
    ``rt-1``, ``rt-2``… when it rotates (the spent one stops working)."""

    def __init__(self, *, expires_in: int = 3600, rotate: bool = False) -> None:
        self.expires_in = expires_in
        self.rotate = rotate
        self.forms: list[dict[str, str]] = []
        self.requests: list[httpx.Request] = []
        self.issued = 0
        self.refresh_tokens = {"rt-0"}
        self.answer: httpx.Response | None = None  # a canned refusal, when set
        self.delay = 0.0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        form = dict(parse_qsl(request.content.decode()))
        self.forms.append(form)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.answer is not None:
            return self.answer
        token: dict[str, Any] = {"token_type": "bearer", "expires_in": self.expires_in}
        if form.get("grant_type") == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                return httpx.Response(
                    400,
                    json={"error": "invalid_grant", "error_description": "token revoked"},
                )
            if self.rotate:
                self.refresh_tokens.discard(form["refresh_token"])
                rotated = f"rt-{len(self.forms)}"
                self.refresh_tokens.add(rotated)
                token["refresh_token"] = rotated
        self.issued += 1
        token["access_token"] = f"at-{self.issued}"
        return httpx.Response(200, json=token)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def endpoint() -> TokenEndpoint:
    return TokenEndpoint()


@pytest.fixture
async def http(endpoint: TokenEndpoint) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as client:
        yield client


@pytest.fixture
def clock() -> Clock:
    return Clock()


def client_credentials(**overrides: Any) -> OAuth2Settings:
    values: dict[str, Any] = {
        "token_url": TOKEN_URL,
        "client_id": "gateway",
        "client_secret": "s3cret",
        "scope": "orders.write",
    }
    return OAuth2Settings(**{**values, **overrides})


def refresh_grant(**overrides: Any) -> OAuth2Settings:
    return client_credentials(**{"grant": "refresh_token", "refresh_token": "rt-0", **overrides})


def tokens(
    http: httpx.AsyncClient,
    settings: OAuth2Settings,
    store: TokenStore,
    clock: Clock,
) -> OAuth2Tokens:
    return OAuth2Tokens(http, settings, store=store, key=KEY, clock=clock)


async def test_client_credentials_token_is_fetched_once_and_reused(
    http: httpx.AsyncClient, endpoint: TokenEndpoint, clock: Clock
) -> None:
    store = MemoryTokenStore()
    oauth = tokens(http, client_credentials(), store, clock)
    assert await oauth.access_token() == "at-1"
    assert await oauth.access_token() == "at-1"
    assert await oauth.headers() == {"Authorization": "Bearer at-1"}
    assert len(endpoint.requests) == 1
    request = endpoint.requests[0]
    assert endpoint.forms[0] == {"grant_type": "client_credentials", "scope": "orders.write"}
    basic = base64.b64encode(b"gateway:s3cret").decode()
    assert request.headers["authorization"] == f"Basic {basic}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    saved = await store.load(KEY)
    assert saved is not None and saved["access_token"] == "at-1"
    assert saved["expires_at"] == T0 + 3600


async def test_the_token_is_refreshed_shortly_before_it_expires(
    http: httpx.AsyncClient, endpoint: TokenEndpoint, clock: Clock
) -> None:
    oauth = tokens(http, client_credentials(), MemoryTokenStore(), clock)
    assert await oauth.access_token() == "at-1"
    clock.now = T0 + 3600 - 61  # a minute and a second left: still good
    assert await oauth.access_token() == "at-1"
    clock.now = T0 + 3600 - 59  # inside the leeway: a new one
    assert await oauth.access_token() == "at-2"
    assert len(endpoint.requests) == 2


async def test_a_short_lived_token_is_used_for_half_its_life(
    http: httpx.AsyncClient, endpoint: TokenEndpoint, clock: Clock
) -> None:
    endpoint.expires_in = 30  # shorter than the leeway: not refreshed on every call
    oauth = tokens(http, client_credentials(), MemoryTokenStore(), clock)
    assert await oauth.access_token() == "at-1"
    clock.now = T0 + 14
    assert await oauth.access_token() == "at-1"
    clock.now = T0 + 16
    assert await oauth.access_token() == "at-2"


async def test_concurrent_callers_make_one_request(
    http: httpx.AsyncClient, endpoint: TokenEndpoint, clock: Clock
) -> None:
    endpoint.delay = 0.05
    store = MemoryTokenStore()
    oauth = tokens(http, client_credentials(), store, clock)
    other = tokens(http, client_credentials(), store, clock)  # a second client of the key
    got = await asyncio.gather(
        oauth.access_token(), oauth.access_token(), other.access_token(), oauth.headers()
    )
    assert got == ["at-1", "at-1", "at-1", {"Authorization": "Bearer at-1"}]
    assert len(endpoint.requests) == 1


async def test_two_concurrent_refreshes_make_one_request(
    http: httpx.AsyncClient, endpoint: TokenEndpoint, clock: Clock
) -> None:
    endpoint.rotate = True
    oauth = tokens(http, refresh_grant(), MemoryTokenStore(), clock)
    assert await oauth.access_token() == "at-1"
    clock.now = T0 + 3600  # expired
    endpoint.delay = 0.05
    first, second = await asyncio.gather(oauth.access_token(), oauth.access_token())
    assert first == second == "at-2"
    assert len(endpoint.requests) == 2  # the first fetch and one refresh


async def test_a_token_another_process_saved_meanwhile_is_used(
    http: httpx.AsyncClient, endpoint: TokenEndpoint, clock: Clock
) -> None:
    store = MemoryTokenStore()
    oauth = tokens(http, refresh_grant(), store, clock)
    async with store.lock(KEY):  # another process is refreshing
        waiting = asyncio.create_task(oauth.access_token())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        await store.save(
            KEY,
            {"access_token": "at-other", "expires_at": T0 + 600, "refresh_token": "rt-other"},
        )
    assert await waiting == "at-other"
    assert endpoint.requests == []  # the rotating refresh token was not spent twice


async def test_a_rotated_refresh_token_is_saved_and_used_next(
    http: httpx.AsyncClient, endpoint: TokenEndpoint, clock: Clock
) -> None:
    endpoint.rotate = True
    store = MemoryTokenStore()
    oauth = tokens(http, refresh_grant(), store, clock)
    assert await oauth.access_token() == "at-1"
    assert endpoint.forms[0]["refresh_token"] == "rt-0"
    saved = await store.load(KEY)
    assert saved is not None and saved["refresh_token"] == "rt-1"
    # a restarted process (empty memory) refreshes with the rotated token, not the config's
    clock.now = T0 + 3600
    restarted = tokens(http, refresh_grant(), store, clock)
    assert await restarted.access_token() == "at-2"
    assert endpoint.forms[1]["refresh_token"] == "rt-1"
    saved = await store.load(KEY)
    assert saved is not None and saved["refresh_token"] == "rt-2"


async def test_a_refresh_token_that_is_not_rotated_is_kept(
    http: httpx.AsyncClient, endpoint: TokenEndpoint, clock: Clock
) -> None:
    store = MemoryTokenStore()
    oauth = tokens(http, refresh_grant(), store, clock)
    await oauth.access_token()
    saved = await store.load(KEY)
    assert saved is not None and saved["refresh_token"] == "rt-0"


async def test_invalid_grant_says_to_reauthorize(
    http: httpx.AsyncClient, endpoint: TokenEndpoint, clock: Clock
) -> None:
    endpoint.refresh_tokens.clear()  # revoked
    oauth = tokens(http, refresh_grant(), MemoryTokenStore(), clock)
    with pytest.raises(PermanentError, match="re-authorize the connection") as caught:
        await oauth.access_token()
    assert "invalid_grant: token revoked" in caught.value.message
    assert "s3cret" not in caught.value.message and "rt-0" not in caught.value.message


async def test_a_refresh_grant_without_a_refresh_token_says_to_authorize(
    http: httpx.AsyncClient, clock: Clock
) -> None:
    oauth = tokens(http, refresh_grant(refresh_token=None), MemoryTokenStore(), clock)
    with pytest.raises(PermanentError, match="authorize the connection"):
        await oauth.access_token()


@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        (
            httpx.Response(401, json={"error": "invalid_client"}),
            PermanentError,
            "check the connection's client_id, client_secret and scope",
        ),
        (httpx.Response(429, headers={"Retry-After": "9"}), RateLimitedError, "rate limit"),
        (httpx.Response(503, text="maintenance"), TransientError, "HTTP 503"),
        (
            httpx.Response(200, json={"token_type": "bearer"}),
            PermanentError,
            "without an access_token",
        ),
        (httpx.Response(200, text="<html>login</html>"), PermanentError, "without an access_token"),
    ],
)
async def test_refusals_and_odd_answers_are_typed_errors(
    http: httpx.AsyncClient,
    endpoint: TokenEndpoint,
    clock: Clock,
    answer: httpx.Response,
    error: type[Exception],
    message: str,
) -> None:
    endpoint.answer = answer
    oauth = tokens(http, client_credentials(), MemoryTokenStore(), clock)
    with pytest.raises(error, match=message):
        await oauth.access_token()


async def test_a_token_the_api_refused_is_replaced(
    http: httpx.AsyncClient, endpoint: TokenEndpoint, clock: Clock
) -> None:
    store = MemoryTokenStore()
    oauth = tokens(http, client_credentials(), store, clock)
    assert await oauth.access_token() == "at-1"
    oauth.invalidate("at-1")  # the API answered 401: revoked before its expiry
    assert await oauth.access_token() == "at-2"  # not the store's copy of at-1
    assert len(endpoint.requests) == 2


async def test_client_secret_post_sends_the_credentials_in_the_body(
    http: httpx.AsyncClient, endpoint: TokenEndpoint, clock: Clock
) -> None:
    settings = client_credentials(auth_method="client_secret_post", extra={"audience": "erp"})
    await tokens(http, settings, MemoryTokenStore(), clock).access_token()
    assert "authorization" not in endpoint.requests[0].headers
    assert endpoint.forms[0] == {
        "grant_type": "client_credentials",
        "scope": "orders.write",
        "audience": "erp",
        "client_id": "gateway",
        "client_secret": "s3cret",
    }


def test_the_memory_store_is_a_token_store() -> None:
    store: TokenStore = MemoryTokenStore()  # checked by mypy against the kernel's Protocol
    assert store is not None
