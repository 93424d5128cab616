"""The audit trail: every operator action that changes something leaves exactly one row
naming the key (by fingerprint, never the key) and its role; a refused action leaves none."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import sqlalchemy as sa

from app.db import transaction
from app.models import AuditEntry, InboundEvent, utcnow
from tests.api.conftest import OPERATOR, VIEWER, Gateway, seed
from tests.conftest import FIXTURES, SHOP_SECRET
from tests.support.shopify import signed

OPERATOR_KEY = "operator-key"
FINGERPRINT = "key:" + hashlib.sha256(OPERATOR_KEY.encode()).hexdigest()[:8]


async def _entries(gw: Gateway) -> list[AuditEntry]:
    async with gw.rt.sessions() as session:
        return list(
            (await session.execute(sa.select(AuditEntry).order_by(AuditEntry.id))).scalars()
        )


async def _one_new(
    gw: Gateway, act: Callable[[], Awaitable[httpx.Response]], status: int = 200
) -> AuditEntry:
    before = len(await _entries(gw))
    response = await act()
    assert response.status_code == status, response.text
    after = await _entries(gw)
    assert len(after) == before + 1, [(e.action, e.target) for e in after[before:]]
    entry = after[-1]
    assert (entry.actor, entry.role) == (FINGERPRINT, "operator")
    return entry


async def _quarantined(gw: Gateway, key: str) -> int:
    async with transaction(gw.rt.sessions) as session:
        row = InboundEvent(
            connection_id="shop",
            topic="orders/create",
            dedupe_key=key,
            received_at=utcnow(),
            headers={"x-shopify-topic": "orders/create"},
            body=b'{"id": "still not an order"}',
            status="quarantined",
            note="parser error",
        )
        session.add(row)
        await session.flush()
        assert row.id is not None
        return row.id


async def test_each_operator_action_leaves_one_row_with_its_actor(gw: Gateway) -> None:
    dead = (await seed(gw.rt, status="dead")).delivery
    held = [(await seed(gw.rt, status="held", held_reason="amendment")).delivery for _ in range(4)]
    w = gw.write
    actions: list[tuple[str, str, Callable[[], Awaitable[httpx.Response]]]] = [
        ("delivery.replay", f"delivery:{dead}", lambda: w("POST", f"/deliveries/{dead}/replay")),
        (
            "delivery.replay",
            "deliveries",
            lambda: w("POST", "/deliveries/replay", json={"status": "dead", "dry_run": False}),
        ),
        (
            "approval.approve",
            f"delivery:{held[0]}",
            lambda: w("POST", f"/approvals/{held[0]}/approve"),
        ),
        (
            "approval.reject",
            f"delivery:{held[1]}",
            lambda: w("POST", f"/approvals/{held[1]}/reject", json={"note": "wrong price"}),
        ),
        (
            "approval.reopen",
            f"delivery:{held[1]}",
            lambda: w("POST", f"/approvals/{held[1]}/reopen"),
        ),
        (
            "approval.approve",
            "deliveries",
            lambda: w("POST", "/approvals/approve", json={"ids": [held[2]]}),
        ),
        (
            "approval.reject",
            "deliveries",
            lambda: w("POST", "/approvals/reject", json={"ids": [held[3]]}),
        ),
        (
            "mapping.put",
            "mapping:sku/erp",
            lambda: w("PUT", "/mappings/sku/erp", json={"entries": {"SKU-X": "77"}}),
        ),
        (
            "mapping.delete",
            "mapping:sku/erp",
            lambda: w("DELETE", "/mappings/sku/erp", params={"keys": ["SKU-X"]}),
        ),
        (
            "mapping.import",
            "mapping:sku/erp",
            lambda: gw.client.post(
                "/api/v1/mappings/sku/erp/import",
                content=b"our_key,their_key\nSKU-Y,78\n",
                headers={**OPERATOR, "Content-Type": "text/csv"},
            ),
        ),
        (
            "rules.change",
            "rules:orders",
            lambda: w("PUT", "/rules/orders", json={"amendments": "hold"}),
        ),
        ("rules.reset", "rules:orders", lambda: w("DELETE", "/rules/orders")),
        ("connection.pause", "connection:erp", lambda: w("POST", "/connections/erp/pause")),
        ("connection.resume", "connection:erp", lambda: w("POST", "/connections/erp/resume")),
        ("job.run", "job:prices", lambda: w("POST", "/jobs/prices/run")),
    ]
    for action, target, act in actions:
        entry = await _one_new(gw, act)
        assert (entry.action, entry.target) == (action, target)
    rejected = next(e for e in await _entries(gw) if e.action == "approval.reject")
    assert rejected.details == {"note": "wrong price"}

    one = await _quarantined(gw, "q-1")
    entry = await _one_new(gw, lambda: w("POST", f"/quarantine/{one}/replay"))
    assert (entry.action, entry.target) == ("quarantine.replay", f"inbound_event:{one}")
    # a bulk replay commits (and audits) each webhook on its own
    bulk = [await _quarantined(gw, f"q-{n}") for n in (2, 3)]
    before = len(await _entries(gw))
    assert (await w("POST", "/quarantine/replay", json={})).status_code == 200
    targets = [e.target for e in (await _entries(gw))[before:]]
    assert sorted(targets) == sorted(f"inbound_event:{i}" for i in [one, *bulk])


async def test_a_refused_action_leaves_no_row(gw: Gateway) -> None:
    pending = (await seed(gw.rt, status="pending")).delivery
    delivered = (await seed(gw.rt, status="delivered")).delivery
    refused = [
        (404, gw.write("POST", "/deliveries/999999/replay")),
        (409, gw.write("POST", f"/deliveries/{pending}/replay")),
        (409, gw.write("POST", f"/approvals/{delivered}/approve")),
        (404, gw.write("POST", "/connections/nowhere/pause")),
        (404, gw.write("PUT", "/mappings/sku/nowhere", json={"entries": {"A": "1"}})),
        (422, gw.write("PUT", "/rules/orders", json={"amendments": "sometimes"})),
        (404, gw.write("DELETE", "/rules/nonsense")),
        (404, gw.write("POST", "/quarantine/999999/replay")),
        (404, gw.write("POST", "/jobs/nightly-magic/run")),
        (403, gw.client.post("/api/v1/connections/erp/pause", headers=VIEWER)),
        (200, gw.write("POST", "/deliveries/replay", json={"status": "dead"})),  # a dry run
    ]
    for status, call in refused:
        response = await call
        assert response.status_code == status, response.text
    assert await _entries(gw) == []


async def test_an_erase_request_is_audited_under_its_connection(gw: Gateway) -> None:
    payload = json.loads((FIXTURES / "shopify_customers_redact.json").read_text())
    body = json.dumps(payload).encode()
    headers = signed(body, SHOP_SECRET, topic="customers/redact")
    response = await gw.client.post("/webhooks/shop", content=body, headers=headers)
    assert response.status_code == 202, response.text
    (entry,) = await _entries(gw)
    assert (entry.actor, entry.role, entry.action) == (
        "connection:shop",
        "webhook",
        "erasure.request",
    )
    assert entry.target == f"event:{response.json()['event_ids'][0]}"
    assert "john@example.com" not in json.dumps(entry.details)


async def test_the_key_is_never_stored_or_shown_and_the_list_filters(gw: Gateway) -> None:
    await gw.write("POST", "/connections/erp/pause")
    await gw.write("POST", "/connections/erp/resume")
    async with gw.rt.sessions() as session:
        rows = (await session.execute(sa.text("SELECT * FROM audit_log"))).all()
    assert OPERATOR_KEY not in repr(rows)

    page = await gw.ok("/audit")
    assert [e["action"] for e in page["items"]] == ["connection.resume", "connection.pause"]
    assert OPERATOR_KEY not in json.dumps(page)
    assert page["items"][0]["actor"] == FINGERPRINT
    paused = await gw.ok("/audit", action="connection.pause")
    assert [e["action"] for e in paused["items"]] == ["connection.pause"]
    later: dict[str, Any] = await gw.ok("/audit", since="2100-01-01T00:00:00Z")
    assert later["items"] == []
    first = await gw.ok("/audit", limit=1)
    rest = await gw.ok("/audit", limit=1, cursor=first["next_cursor"])
    assert rest["items"][0]["action"] == "connection.pause" and rest["next_cursor"] is None
