"""The JSON-RPC client against the real server: sessions, and errors turned into types."""

from __future__ import annotations

import base64
import datetime as dt
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connectors.tryton import wire
from connectors.tryton.client import TrytonClient, error_for
from connectors.tryton.connector import TrytonConnector
from connectors.tryton.options import TrytonCredentials
from kernel.errors import PermanentError, RateLimitedError, TransientError
from tests.support.connectors import connect
from tests.tryton.conftest import connection, context, event_for, make_order, unique
from tests.tryton.server import TrytonServer, free_port

pytestmark = [pytest.mark.tryton, pytest.mark.timeout(300)]


def client_for(
    tryton: TrytonServer, http: httpx.AsyncClient, *, password: str | None = None, **kw: Any
) -> TrytonClient:
    creds = TrytonCredentials(username=tryton.username, password=password or tryton.password)
    return TrytonClient(
        http, kw.pop("url", tryton.url), kw.pop("database", tryton.database), creds, **kw
    )


async def test_a_wrong_password_says_to_check_the_credentials(
    tryton: TrytonServer, http: httpx.AsyncClient
) -> None:
    connector = connect(TrytonConnector, connection(tryton, password="not-the-password"), http)
    with pytest.raises(PermanentError, match="check the credentials") as caught:
        await connector.deliver(event_for(make_order()), context())
    assert "not-the-password" not in str(caught.value)


async def test_an_unreachable_server_is_transient(
    tryton: TrytonServer, http: httpx.AsyncClient
) -> None:
    closed = connection(tryton)
    closed = closed.model_copy(update={"base_url": f"http://127.0.0.1:{free_port()}"})
    with pytest.raises(TransientError, match="cannot reach Tryton"):
        await connect(TrytonConnector, closed, http).deliver(event_for(make_order()), context())


async def test_an_unknown_database_is_named(tryton: TrytonServer, http: httpx.AsyncClient) -> None:
    client = client_for(tryton, http, database="no_such_db")
    with pytest.raises(PermanentError, match="no_such_db"):
        await client.search("party.party", [])


async def test_an_expired_session_is_renewed_once(
    tryton: TrytonServer, http: httpx.AsyncClient
) -> None:
    client = client_for(tryton, http)
    await client.search("party.party", [], limit=1)
    bogus = base64.b64encode(f"{tryton.username}:2:expired-session".encode()).decode()
    client._auth = f"Session {bogus}"  # as if the server had dropped it
    assert isinstance(await client.search("party.party", [], limit=1), list)
    assert client._auth != f"Session {bogus}"


async def test_a_tryton_user_error_is_permanent_with_trytons_message(
    tryton: TrytonServer, http: httpx.AsyncClient
) -> None:
    client = client_for(tryton, http)
    code = unique("dup-")
    await client.create("party.party", [{"name": "One", "code": code}])
    with pytest.raises(PermanentError, match="must be unique"):
        await client.create("party.party", [{"name": "Two", "code": code}])


async def test_decimals_and_dates_round_trip_exactly(
    tryton: TrytonServer, http: httpx.AsyncClient
) -> None:
    client = client_for(tryton, http)
    (currency,) = await client.search("currency.currency", [("code", "=", "EUR")])
    (rate,) = await client.create(
        "currency.currency.rate",
        [{"currency": currency, "date": dt.date(2031, 2, 3), "rate": Decimal("1.123456")}],
    )
    (row,) = await client.read("currency.currency.rate", [rate], ["rate", "date"])
    assert row["rate"] == Decimal("1.123456") and row["date"] == dt.date(2031, 2, 3)


def test_error_payloads_map_to_the_typed_errors() -> None:
    user = error_for("m", ["UserError", ["Wrong!", "because", None]])
    assert isinstance(user, PermanentError) and "Wrong! (because)" in str(user)
    warning = error_for("m", ["UserWarning", ["name", "Careful", ""]])
    assert isinstance(warning, PermanentError) and "Careful" in str(warning)
    assert isinstance(error_for("m", ["ConcurrencyException", "changed"]), TransientError)
    assert isinstance(error_for("m", ["database is locked", "Traceback…"]), TransientError)
    assert isinstance(error_for("m", ["KeyError: 'x'", "Traceback…"]), PermanentError)


def test_the_wire_format_is_trytons() -> None:
    body = wire.dumps(
        {
            "p": Decimal("19.990"),
            "q": wire.Number(Decimal("2.5")),
            "d": dt.date(2026, 7, 8),
            "t": dt.datetime(2026, 7, 8, 9, 10, 11, 12),
        }
    )
    assert body == (
        b'{"p":{"__class__":"Decimal","decimal":"19.990"},"q":2.5,'
        b'"d":{"__class__":"date","year":2026,"month":7,"day":8},'
        b'"t":{"__class__":"datetime","year":2026,"month":7,"day":8,"hour":9,"minute":10,'
        b'"second":11,"microsecond":12}}'
    )
    back = wire.loads(body)
    assert back == {
        "p": Decimal("19.990"),
        "q": Decimal("2.5"),
        "d": dt.date(2026, 7, 8),
        "t": dt.datetime(2026, 7, 8, 9, 10, 11, 12),
    }
    with pytest.raises(TypeError):
        wire.dumps({"price": 19.99})


def canned(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> TrytonClient:
    """A client whose server always answers ``status`` (for what a real one rarely does)."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers or {}, content=body)

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    creds = TrytonCredentials(username="gateway", password="secret")
    return TrytonClient(http, "http://tryton.test", "prod", creds)


async def test_too_many_requests_waits_for_retry_after() -> None:
    with pytest.raises(RateLimitedError) as caught:
        await canned(429, {"Retry-After": "17"}).search("party.party", [])
    assert caught.value.retry_after == 17
    with pytest.raises(RateLimitedError):
        await canned(503, {"Retry-After": "5"}).search("party.party", [])


async def test_server_errors_are_transient_and_odd_answers_permanent() -> None:
    with pytest.raises(TransientError, match="HTTP 502"):
        await canned(502).search("party.party", [])
    with pytest.raises(TransientError):
        await canned(503).search("party.party", [])
    with pytest.raises(PermanentError, match="not JSON"):
        await canned(200, body=b"<html>proxy login</html>").search("party.party", [])


def test_the_session_in_the_login_answer_is_never_stored() -> None:
    from connectors.tryton.connector import TrytonConnector

    exchange = {
        "request": {
            "body": '{"method": "common.db.login", "params": ["admin", {"password": "***"}]}'
        },
        "response": {"status": 200, "body": '{"id": 1, "result": [1, "8fe0a7c3b2d1"]}'},
    }
    redacted = TrytonConnector.redact_exchange(None, exchange)  # type: ignore[arg-type]
    assert "8fe0a7c3b2d1" not in str(redacted) and '"result": [1, "***"]' in str(redacted)
    other = {
        "request": {"body": '{"method": "model.sale.sale.search"}'},
        "response": {"body": "{}"},
    }
    assert TrytonConnector.redact_exchange(None, other) is other  # type: ignore[arg-type]
