"""Attempt capture redacts by declaration: the destination connector's sensitive headers and
fields plus the generic secrets, in headers, JSON and form bodies and query strings."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from app.delivery.capture import MASK, capture_exchanges, make_http_client
from connectors._kit.oauth2 import MemoryTokenStore, OAuth2Settings, OAuth2Tokens
from connectors.shopify.connector import ShopifyConnector
from connectors.tryton.client import TrytonClient
from connectors.tryton.connector import TrytonConnector
from connectors.tryton.options import TrytonCredentials

TOKEN_URL = "https://auth.example.test/oauth2/token"
API = "https://erp.example.test/api"

Handler = Callable[[httpx.Request], httpx.Response]


def echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"ok": True})


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[[Handler], httpx.AsyncClient]]:
    made: list[httpx.AsyncClient] = []

    def make(handler: Handler) -> httpx.AsyncClient:
        made.append(make_http_client(transport=httpx.MockTransport(handler)))
        return made[-1]

    yield make
    for client in made:
        await client.aclose()


def token_endpoint(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "access_token": "at-SECRET",
            "refresh_token": "rt-ROTATED",
            "token_type": "bearer",
            "expires_in": 3600,
            "scope": "orders.write",
        },
    )


async def test_an_oauth_token_exchange_is_stored_without_its_secrets(
    client_for: Callable[[Handler], httpx.AsyncClient],
) -> None:
    http = client_for(token_endpoint)
    settings = OAuth2Settings(
        token_url=TOKEN_URL,
        client_id="gateway",
        client_secret="CLIENT-SECRET",
        grant="refresh_token",
        refresh_token="rt-FIRST",
        scope="orders.write",
        auth_method="client_secret_post",
    )
    oauth = OAuth2Tokens(http, settings, store=MemoryTokenStore(), key="erp:oauth2")
    with capture_exchanges() as exchanges:
        assert await oauth.access_token() == "at-SECRET"
    [exchange] = exchanges
    sent = dict(parse_qsl(exchange["request"]["body"]))
    assert sent == {
        "grant_type": "refresh_token",
        "refresh_token": MASK,
        "scope": "orders.write",
        "client_id": "gateway",
        "client_secret": MASK,
    }
    answer = json.loads(exchange["response"]["body"])
    assert answer == {
        "access_token": MASK,
        "refresh_token": MASK,
        "token_type": "bearer",
        "expires_in": 3600,
        "scope": "orders.write",
    }
    stored = json.dumps(exchanges)
    for secret in ("CLIENT-SECRET", "rt-FIRST", "at-SECRET", "rt-ROTATED"):
        assert secret not in stored


async def test_client_credentials_in_basic_auth_are_redacted(
    client_for: Callable[[Handler], httpx.AsyncClient],
) -> None:
    http = client_for(token_endpoint)
    settings = OAuth2Settings(token_url=TOKEN_URL, client_id="gateway", client_secret="S")
    oauth = OAuth2Tokens(http, settings, store=MemoryTokenStore(), key="k")
    with capture_exchanges() as exchanges:
        await oauth.access_token()
    assert exchanges[0]["request"]["headers"]["authorization"] == MASK


async def test_a_connectors_declared_headers_are_redacted(
    client_for: Callable[[Handler], httpx.AsyncClient],
) -> None:
    http = client_for(echo)
    headers = {"X-Shopify-Access-Token": "shpat_SECRET", "X-Tenant-Pass": "PASS", "X-Sku": "A"}
    with capture_exchanges(sensitive_headers=ShopifyConnector.sensitive_headers) as exchanges:
        await http.get(API, headers=headers)
    shown = exchanges[0]["request"]["headers"]
    assert shown["x-shopify-access-token"] == MASK
    assert shown["x-tenant-pass"] == "PASS"  # no generic rule hides it…
    assert shown["x-sku"] == "A"
    with capture_exchanges(sensitive_headers={"X-Tenant-Pass"}) as exchanges:
        await http.get(API, headers=headers)
    assert exchanges[0]["request"]["headers"]["x-tenant-pass"] == MASK  # …its declaration does


async def test_generic_secret_headers_in_requests_and_responses(
    client_for: Callable[[Handler], httpx.AsyncClient],
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"Set-Cookie": "sid=SECRET", "X-Request-Id": "r-1", "X-Api-Key": "K"}
        )

    http = client_for(answer)
    headers = {
        "Authorization": "Bearer SECRET",
        "X-Gateway-Signature": "sha256=abc",
        "X-Custom-Hmac": "abc",
        "Idempotency-Key": "delivery-42",
        "Content-Type": "application/json",
    }
    with capture_exchanges() as exchanges:
        await http.post(API, headers=headers, content=b"{}")
    request, response = exchanges[0]["request"]["headers"], exchanges[0]["response"]["headers"]
    assert request["authorization"] == request["x-gateway-signature"] == MASK
    assert request["x-custom-hmac"] == MASK
    assert request["idempotency-key"] == "delivery-42"  # no secret: it proves a retry's identity
    assert request["content-type"] == "application/json"
    assert response["set-cookie"] == response["x-api-key"] == MASK
    assert response["x-request-id"] == "r-1"


async def test_trytons_login_and_session_are_redacted(
    client_for: Callable[[Handler], httpx.AsyncClient],
) -> None:
    def tryton(request: httpx.Request) -> httpx.Response:
        method = json.loads(request.content)["method"]
        if method == "common.db.login":
            return httpx.Response(200, json={"id": 1, "result": [1, "SESSION"]})
        return httpx.Response(200, json={"id": 2, "result": {"language": "en"}})

    http = client_for(tryton)
    creds = TrytonCredentials(username="gateway", password="TRYTON-PASSWORD")
    client = TrytonClient(http, "http://tryton.test", "prod", creds)
    with capture_exchanges(
        sensitive_headers=TrytonConnector.sensitive_headers,
        sensitive_fields=TrytonConnector.sensitive_fields,
    ) as exchanges:
        await client.user_context()
    login, preferences = exchanges
    body = json.loads(login["request"]["body"])
    assert body["method"] == "common.db.login"
    assert body["params"] == ["gateway", {"password": MASK}, "en"]
    assert preferences["request"]["headers"]["authorization"] == MASK
    assert "TRYTON-PASSWORD" not in json.dumps(exchanges)


async def test_fields_at_any_depth_and_in_every_spelling(
    client_for: Callable[[Handler], httpx.AsyncClient],
) -> None:
    depth = 200  # 400 levels of objects and arrays
    nested: Any = {"password": "DEEP"}
    for _ in range(depth):
        nested = {"level": [nested]}
    document = {
        "order": {"amount": "AMOUNT", "quantity": 2, "note": "ünïcode", "pin": "1234"},
        "clientSecret": "A",
        "api-key": "B",
        "webhook_secret": "C",
        "nextToken": "D",
        "entity_key": "shop:order:1",
        "key": "idempotency-1",
        "nested": nested,
        "token": None,
    }
    content = json.dumps(document, ensure_ascii=False).replace('"AMOUNT"', "19.90").encode()
    http = client_for(echo)
    with capture_exchanges(sensitive_fields={"pin"}) as exchanges:
        await http.post(API, content=content, headers={"Content-Type": "application/json"})
    shown = exchanges[0]["request"]["body"]
    assert '"amount": 19.90' in shown  # numbers keep their digits (money is never float)
    assert '"ünïcode"' in shown
    for secret in ("DEEP", '"A"', '"B"', '"C"', '"D"', "1234"):
        assert secret not in shown


async def test_small_redacted_documents_round_trip(
    client_for: Callable[[Handler], httpx.AsyncClient],
) -> None:
    http = client_for(echo)
    document = {"order": {"amount": 19.90, "ok": True, "none": None}, "password": "X", "list": []}
    with capture_exchanges() as exchanges:
        await http.post(API, json=document)
    assert json.loads(exchanges[0]["request"]["body"]) == {**document, "password": MASK}


async def test_query_strings_and_user_info(
    client_for: Callable[[Handler], httpx.AsyncClient],
) -> None:
    http = client_for(echo)
    with capture_exchanges(sensitive_fields={"pin"}) as exchanges:
        await http.get(
            "https://user:PW@erp.example.test/api",
            params={"sku": "A", "api_key": "K", "access_token": "T", "pin": "1", "sig": "s"},
        )
    url = httpx.URL(exchanges[0]["request"]["url"])
    assert dict(url.params) == {
        "sku": "A",
        "api_key": MASK,
        "access_token": MASK,
        "pin": MASK,
        "sig": "s",
    }
    assert url.password == MASK and url.username == "user"


async def test_a_body_too_large_to_parse_has_its_shown_part_redacted(
    client_for: Callable[[Handler], httpx.AsyncClient],
) -> None:
    content = b'{"password": "SECRET", "filler": "' + b"x" * (2 << 20) + b'"}'
    http = client_for(echo)
    with capture_exchanges() as exchanges:
        await http.post(API, content=content, headers={"Content-Type": "application/json"})
    shown = exchanges[0]["request"]["body"]
    assert "SECRET" not in shown and f'"password": "{MASK}"' in shown
    assert shown.endswith("…(truncated)") and len(shown) < 4100


async def test_a_secret_cut_at_the_end_of_the_shown_part_is_redacted(
    client_for: Callable[[Handler], httpx.AsyncClient],
) -> None:
    head = b'{"filler": "' + b"x" * 3970 + b'", '
    content = head + b'"token": "' + b"S" * 100 + b'"' + b" " * (2 << 20) + b"}"
    http = client_for(echo)
    with capture_exchanges() as exchanges:
        await http.post(API, content=content, headers={"Content-Type": "application/json"})
    assert "SS" not in exchanges[0]["request"]["body"]


async def test_text_bodies_and_other_bodies_pass_unchanged(
    client_for: Callable[[Handler], httpx.AsyncClient],
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad gateway</html>")

    http = client_for(answer)
    with capture_exchanges() as exchanges:
        await http.post(API, json={"sku": "A", "quantity": "3"})
    assert json.loads(exchanges[0]["request"]["body"]) == {"sku": "A", "quantity": "3"}
    assert exchanges[0]["response"] == {
        "status": 502,
        "headers": exchanges[0]["response"]["headers"],
        "body": "<html>Bad gateway</html>",
    }


async def test_nothing_is_recorded_outside_an_attempt(
    client_for: Callable[[Handler], httpx.AsyncClient],
) -> None:
    http = client_for(echo)
    await http.get(API)  # no capture running: the hooks do nothing
    with capture_exchanges() as exchanges:
        pass
    assert exchanges == []
