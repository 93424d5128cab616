"""API keys: viewers read, operators write, everyone else is turned away."""

from __future__ import annotations

import pytest

from tests.api.conftest import OPERATOR, VIEWER, Gateway

READS = [
    "/events",
    "/inbound-events",
    "/deliveries",
    "/approvals",
    "/connections",
    "/connections/erp",
    "/mappings/sku/erp",
]
WRITES = [
    ("POST", "/deliveries/1/replay", None),
    ("POST", "/deliveries/replay", {"status": "dead"}),
    ("POST", "/connections/erp/pause", None),
    ("POST", "/connections/erp/resume", None),
    ("PUT", "/mappings/sku/erp", {"entries": {"A": "1"}}),
    ("DELETE", "/mappings/sku/erp?all=true", None),
]


async def test_missing_key_is_401(gw: Gateway) -> None:
    response = await gw.client.get("/api/v1/deliveries")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "missing API key"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_unknown_key_is_401(gw: Gateway) -> None:
    response = await gw.client.get(
        "/api/v1/deliveries", headers={"Authorization": "Bearer not-a-key"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "unknown API key"


@pytest.mark.parametrize("path", READS)
async def test_viewer_and_operator_can_read(gw: Gateway, path: str) -> None:
    for headers in (VIEWER, OPERATOR):
        response = await gw.client.get(f"/api/v1{path}", headers=headers)
        assert response.status_code == 200, response.text


async def test_viewer_cannot_write(gw: Gateway) -> None:
    for method, path, body in WRITES:
        response = await gw.client.request(method, f"/api/v1{path}", json=body, headers=VIEWER)
        assert response.status_code == 403, f"{method} {path}: {response.text}"
        assert response.json()["error"]["code"] == "forbidden"


async def test_writes_without_a_key_are_401(gw: Gateway) -> None:
    for method, path, body in WRITES:
        response = await gw.client.request(method, f"/api/v1{path}", json=body)
        assert response.status_code == 401, f"{method} {path}: {response.text}"
    # nothing was paused or deleted on the way
    assert (await gw.ok("/connections/erp"))["paused"] is False
    assert len((await gw.ok("/mappings/sku/erp"))["items"]) == 2
