"""Hostile input on the operator API: out-of-range ids, forged cursors, absurd dates, NUL
characters. Each is a 4xx that says what was wrong, never a 500 (and never a driver error)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.api.conftest import OPERATOR, VIEWER, Gateway, seed

HUGE = "99999999999999999999"  # over int64
INT64_MAX = 2**63 - 1


def cursor_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": value}).encode()).decode().rstrip("=")


def assert_refused(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error["message"]
    return error


READ_IDS = ["/events/{}", "/inbound-events/{}", "/deliveries/{}", "/erasures/{}"]
WRITE_IDS = [
    "/deliveries/{}/replay",
    "/approvals/{}/approve",
    "/approvals/{}/reject",
    "/approvals/{}/reopen",
]


@pytest.mark.parametrize("bad", [HUGE, str(INT64_MAX + 1), "0", "-1", "1e3", "1.5"])
async def test_path_ids_out_of_range_are_422(gw: Gateway, bad: str) -> None:
    for path in READ_IDS:
        response = await gw.client.get(f"/api/v1{path.format(bad)}", headers=VIEWER)
        error = assert_refused(response, 422)
        assert "path." in error["message"], error
    for path in WRITE_IDS:
        response = await gw.write("POST", path.format(bad))
        assert_refused(response, 422)


async def test_the_largest_id_is_simply_not_found(gw: Gateway) -> None:
    for path in READ_IDS:
        response = await gw.get(path.format(INT64_MAX))
        assert_refused(response, 404)
    assert_refused(await gw.write("POST", f"/deliveries/{INT64_MAX}/replay"), 404)


INT_LISTS = ["/events", "/inbound-events", "/deliveries", "/approvals", "/erasures", "/findings"]
BAD_CURSORS = [
    cursor_of(10**30),  # beyond int64: an OverflowError in the driver before
    cursor_of(-5),
    cursor_of(0),
    cursor_of(True),
    cursor_of(1.5),
    cursor_of("7"),
    cursor_of(None),
    base64.urlsafe_b64encode(b"[" * 1400 + b"]" * 1400).decode(),  # deeper than json parses
    base64.urlsafe_b64encode(b'{"k": 1e999}').decode(),
    base64.urlsafe_b64encode(b'["k"]').decode(),
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    "!!!not-base64!!!",
    "ü",
]


@pytest.mark.parametrize("path", INT_LISTS)
async def test_forged_cursors_are_400(gw: Gateway, path: str) -> None:
    for cursor in BAD_CURSORS:
        response = await gw.get(path, cursor=cursor)
        error = assert_refused(response, 400)
        assert "cursor" in error["message"], (cursor, error)


async def test_a_real_cursor_still_pages(gw: Gateway) -> None:
    for _ in range(3):
        await seed(gw.rt)
    assert len(await gw.pages("/deliveries", limit=1)) == 3


async def test_mapping_cursors_are_checked_too(gw: Gateway) -> None:
    for cursor in (cursor_of("x" * 300), cursor_of("a\x00b"), cursor_of(5), cursor_of(10**30)):
        assert_refused(await gw.get("/mappings/sku/erp", cursor=cursor), 400)
    # a key the list can hold is fine
    assert (await gw.ok("/mappings/sku/erp", cursor=cursor_of("SKU-A")))["items"]


async def test_an_overlong_cursor_is_refused(gw: Gateway) -> None:
    error = assert_refused(await gw.get("/deliveries", cursor="A" * 5000), 422)
    assert "cursor" in error["message"]


@pytest.mark.parametrize(
    "since",
    [
        "0001-01-01T00:00:00+14:00",  # cannot even be moved to UTC (OverflowError before)
        "9999-12-31T23:59:59-14:00",
        "1999-12-31T23:59:59Z",
        "2101-01-01T00:00:00Z",
        "0001-01-01",
    ],
)
async def test_dates_out_of_range_are_422(gw: Gateway, since: str) -> None:
    error = assert_refused(await gw.get("/events", since=since), 422)
    assert "since" in error["message"] and "2000" in error["message"]
    assert_refused(await gw.get("/events", until=since), 422)
    # findings take a plain datetime; the shared conversion refuses it the same way
    assert_refused(await gw.get("/findings", since=since), 422)


async def test_dates_with_an_offset_are_compared_in_utc(gw: Gateway) -> None:
    created = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    await seed(gw.rt, created_at=created)
    # 2026-01-01T00:30+02:00 is 2025-12-31T22:30Z: the event is after it
    assert len((await gw.ok("/events", since="2026-01-01T00:30:00+02:00"))["items"]) == 1
    assert len((await gw.ok("/events", until="2026-01-01T00:30:00+02:00"))["items"]) == 0
    # no offset means UTC
    assert len((await gw.ok("/events", since="2025-12-31T23:00:00"))["items"]) == 1
    assert len((await gw.ok("/events", since="2025-12-31T23:00:01"))["items"]) == 0


async def test_nul_characters_in_the_url_are_400(gw: Gateway) -> None:
    # Postgres refuses NUL in text: these were 500s there
    for path in ("/deliveries?destination=%00", "/events?entity_key=a%00b", "/connections/a%00"):
        response = await gw.client.get(f"/api/v1{path}", headers=VIEWER)
        error = assert_refused(response, 400)
        assert "NUL" in error["message"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/deliveries/replay", {"ids": [2**64]}),
        ("POST", "/deliveries/replay", {"ids": [0]}),
        ("POST", "/deliveries/replay", {"status": "dead", "destination": "erp\x00"}),
        ("POST", "/approvals/approve", {"ids": [2**64]}),
        ("POST", "/approvals/reject", {"entity_key": "\x00"}),
        ("POST", "/approvals/1/reject", {"note": "no\x00pe"}),
        ("PUT", "/mappings/sku/erp", {"entries": {"A\x00": "1"}}),
        ("DELETE", "/mappings/sku/erp", {"keys": ["\x00"]}),
    ],
)
async def test_bodies_out_of_range_are_422(
    gw: Gateway, method: str, path: str, body: dict[str, Any]
) -> None:
    assert_refused(await gw.write(method, path, json=body), 422)


async def test_every_answer_has_a_request_id(gw: Gateway) -> None:
    for response in (
        await gw.get("/deliveries"),
        await gw.get(f"/deliveries/{HUGE}"),
        await gw.client.get("/api/v1/deliveries"),  # no key
        await gw.client.get("/healthz"),
        await gw.client.get("/api/v1/deliveries?x=%00", headers=OPERATOR),
    ):
        assert len(response.headers["x-request-id"]) >= 16, response.headers
