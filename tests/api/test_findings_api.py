"""Findings: newest first, keyset pages, filters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from app.db import transaction
from app.models import Finding, utcnow
from tests.api.conftest import PII_READER, Gateway


async def add_finding(gw: Gateway, kind: str, **values: Any) -> int:
    async with transaction(gw.rt.sessions) as session:
        row = Finding(
            kind=kind,
            message=values.pop("message", f"a {kind}"),
            created_at=values.pop("created_at", utcnow()),
            **values,
        )
        session.add(row)
        await session.flush()
        assert row.id is not None
        return row.id


async def test_pages_newest_first_with_every_field(gw_flows: Gateway) -> None:
    ids = [
        await add_finding(
            gw_flows,
            "tax_difference",
            connection_id="erp",
            entity_key=f"shop:order:{n}",
            delivery_id=n,
            data={"store_tax": "1.00", "erp_tax": "1.10"},
        )
        for n in range(5)
    ]
    items = await gw_flows.pages("/findings", limit=2)
    assert [i["id"] for i in items] == list(reversed(ids))
    newest = items[0]
    assert newest["kind"] == "tax_difference" and newest["connection_id"] == "erp"
    assert newest["entity_key"] == "shop:order:4" and newest["delivery_id"] == 4
    assert newest["data"] == {"store_tax": "1.00", "erp_tax": "1.10"}
    assert newest["message"] == "a tax_difference" and newest["created_at"]


async def test_filters(gw_flows: Gateway) -> None:
    now = utcnow()
    old = await add_finding(gw_flows, "stock_drift", created_at=now - timedelta(days=2))
    drift = await add_finding(gw_flows, "stock_drift", entity_key="erp:inventory:A")
    tax = await add_finding(gw_flows, "tax_difference", connection_id="erp")

    async def ids(**params: Any) -> list[int]:
        return [i["id"] for i in (await gw_flows.ok("/findings", **params))["items"]]

    assert await ids(kind="stock_drift") == [drift, old]
    assert await ids(entity_key="erp:inventory:A") == [drift]
    assert await ids(connection_id="erp") == [tax]
    since = (now - timedelta(hours=1)).isoformat()
    assert await ids(since=since) == [tax, drift]
    assert await ids(since=since, kind="stock_drift") == [drift]
    assert await ids(kind="nothing") == []


async def test_bad_parameters_are_400_or_422(gw_flows: Gateway) -> None:
    assert (await gw_flows.get("/findings", cursor="not-a-cursor")).status_code == 400
    assert (await gw_flows.get("/findings", since="yesterday")).status_code == 422
    assert (await gw_flows.get("/findings", limit=0)).status_code == 422
    assert (await gw_flows.client.get("/api/v1/findings")).status_code == 401


async def test_viewers_see_findings_with_personal_data_masked(gw_flows: Gateway) -> None:
    await add_finding(
        gw_flows,
        "duplicate_customer_linked",
        message="customer shop:customer:9 matches on email:ada.lovelace@example.com",
        data={"match": "email:ada.lovelace@example.com", "email": "ada.lovelace@example.com"},
    )
    seen = (await gw_flows.ok("/findings"))["items"][0]
    text = str(seen)
    assert "ada.lovelace@example.com" not in text and "@example.com" in text
    whole = await gw_flows.client.get("/api/v1/findings", headers=PII_READER)
    assert "ada.lovelace@example.com" in whole.text
