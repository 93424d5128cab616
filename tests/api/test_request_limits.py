"""What the request-limits middleware refuses before a route sees the body (in process; the
memory and timing side is in tests/e2e/test_hostile_http_e2e.py)."""

from __future__ import annotations

from tests.api.conftest import OPERATOR, Gateway


async def test_a_nul_character_in_an_api_body_is_a_422_not_a_database_error(gw: Gateway) -> None:
    body = b'{"note": "a\\u0000b", "dry_run": true, "status": "dead"}'
    response = await gw.client.post(
        "/api/v1/deliveries/replay",
        content=body,
        headers={**OPERATOR, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert "NUL" in response.json()["error"]["message"]
    escaped = b'{"status": "dead", "dry_run": true, "note": "a\\\\u0000b"}'  # text, not NUL
    response = await gw.client.post(
        "/api/v1/deliveries/replay",
        content=escaped,
        headers={**OPERATOR, "Content-Type": "application/json"},
    )
    assert response.status_code != 500 and "NUL" not in response.text


async def test_no_key_no_body_read(gw: Gateway) -> None:
    response = await gw.client.post("/api/v1/deliveries/replay", content=b"x" * 2_000_000)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_an_unknown_key_is_refused_whatever_its_characters(gw: Gateway) -> None:
    response = await gw.client.get(
        "/api/v1/deliveries", headers={"Authorization": "Bearer cl\xe9-key".encode("latin-1")}
    )
    assert response.status_code == 401
