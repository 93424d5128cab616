"""The console's sign-in, session cookie, CSRF and roles, and that no page shows a secret.

Each test is where a promise breaks: a POST without the session's token must change nothing,
a viewer's POST must change nothing, a removed key must lose its session, and no page or
cookie may carry an API key or a connection credential.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from app.audit.actor import key_fingerprint
from app.models import AuditEntry, Delivery
from tests.api.conftest import Gateway, seed
from tests.conftest import NS_CREDS, NS_WEBHOOK_SECRET, SHOP_SECRET
from tests.console.conftest import browser, csrf_of, sign_in

SECRETS = [
    "viewer-key",
    "operator-key",
    "pii-key",
    SHOP_SECRET,
    "shpat_test",
    NS_WEBHOOK_SECRET,
    *(v for k, v in NS_CREDS.items() if k != "account_id"),
]


async def _status(gw: Gateway, delivery_id: int) -> str:
    return await gw.status_of(delivery_id)


async def test_pages_lead_to_the_sign_in_form_without_a_session(gw: Gateway) -> None:
    answer = await gw.client.get("/console/deliveries?status=dead")
    assert answer.status_code == 303
    assert (
        answer.headers["location"] == "/console/login?next=%2Fconsole%2Fdeliveries%3Fstatus%3Ddead"
    )
    async with browser(gw) as client:
        client.cookies.set("gw_console", "eyJyb2xlIjoib3BlcmF0b3IifQ", path="/console")
        assert (await client.get("/console/")).status_code == 303  # not signed by us


async def test_sign_in_sets_a_strict_http_only_cookie_without_the_key(gw: Gateway) -> None:
    async with browser(gw) as client:
        form = await client.get("/console/login")
        answer = await client.post(
            "/console/login", data={"key": "operator-key", "csrf": csrf_of(form.text)}
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/console/"
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
        assert "Secure" not in cookie  # plain http here; https gets Secure
        value = client.cookies["gw_console"]
        payload = value.split(".")[0]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert data["role"] == "operator" and data["fp"] == key_fingerprint("operator-key")
        assert "operator-key" not in value and "operator-key" not in json.dumps(data)


async def test_an_unknown_key_or_a_stale_form_does_not_sign_in(gw: Gateway) -> None:
    async with browser(gw) as client:
        form = await client.get("/console/login")
        wrong = await client.post(
            "/console/login", data={"key": "guessed-key", "csrf": csrf_of(form.text)}
        )
        assert wrong.status_code == 401 and "Unknown API key" in wrong.text
        assert "guessed-key" not in wrong.text
        stale = await client.post("/console/login", data={"key": "operator-key", "csrf": "x"})
        assert stale.status_code == 403
        assert (await client.get("/console/")).status_code == 303  # still signed out


async def test_a_post_without_the_session_token_changes_nothing(gw: Gateway) -> None:
    dead = await seed(gw.rt, status="dead")
    async with browser(gw) as client:
        token = await sign_in(client, "operator-key")
        url = f"/console/deliveries/{dead.delivery}/replay"
        for data in ({}, {"csrf": "not-the-token"}):
            refused = await client.post(url, data=data, headers={"accept": "application/json"})
            assert refused.status_code == 403, refused.text
            assert "security token" in refused.json()["error"]["message"]
        assert await _status(gw, dead.delivery) == "dead"
        # another session's token is not this session's
        async with browser(gw) as other:
            theirs = await sign_in(other, "operator-key")
        assert theirs != token
        refused = await client.post(url, data={"csrf": theirs})
        assert refused.status_code == 303  # back with the error as a flash
        assert await _status(gw, dead.delivery) == "dead"
        page = await client.get(refused.headers["location"])
        assert "security token" in page.text
        done = await client.post(
            url, data={"csrf": token, "back": "/console/deliveries?status=dead"}
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/console/deliveries?status=dead"
        assert await gw.wait_status(dead.delivery, "delivered") == "delivered"


async def test_a_viewer_sees_no_action_and_gets_403_when_it_posts(gw: Gateway) -> None:
    dead = await seed(gw.rt, status="dead")
    held = await seed(gw.rt, status="held", held_reason="price cut of 90%")
    async with browser(gw) as client:
        token = await sign_in(client, "viewer-key")
        for status in ("dead", "held"):
            page = await client.get(f"/console/deliveries?status={status}")
            assert page.status_code == 200
            assert "Replay" not in page.text and "Approve" not in page.text
            assert 'name="ids"' not in page.text
        jobs = await client.get("/console/jobs")
        assert "Run now" not in jobs.text and "Pause" not in jobs.text
        posts: list[tuple[str, dict[str, Any]]] = [
            (f"/console/deliveries/{dead.delivery}/replay", {}),
            ("/console/deliveries/replay", {"ids": [str(dead.delivery)]}),
            (f"/console/approvals/{held.delivery}/approve", {}),
            ("/console/approvals/approve", {"ids": [str(held.delivery)]}),
            ("/console/mappings/sku/erp", {"our_key": "SKU-X", "their_key": "1"}),
            ("/console/jobs/prices/run", {}),
            ("/console/connections/erp/pause", {}),
        ]
        for url, data in posts:
            answer = await client.post(
                url, data={**data, "csrf": token}, headers={"accept": "application/json"}
            )
            assert answer.status_code == 403, (url, answer.text)
    assert await _status(gw, dead.delivery) == "dead"
    assert await _status(gw, held.delivery) == "held"


async def test_a_removed_key_loses_its_session(gw: Gateway) -> None:
    async with browser(gw) as client:
        await sign_in(client, "operator-key")
        keys = gw.app.state.api_keys
        gw.app.state.api_keys = {k: r for k, r in keys.items() if k != "operator-key"}
        try:
            assert (await client.get("/console/")).status_code == 303
        finally:
            gw.app.state.api_keys = keys


async def test_replaying_from_the_console_is_audited_under_the_keys_fingerprint(
    gw: Gateway,
) -> None:
    dead = await seed(gw.rt, status="dead")
    async with browser(gw) as client:
        token = await sign_in(client, "operator-key")
        answer = await client.post(
            "/console/deliveries/replay",
            data={"ids": [str(dead.delivery)], "csrf": token},
            headers={"accept": "application/json"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["message"].startswith("1 of 1 queued again")
    assert await gw.wait_status(dead.delivery, "delivered") == "delivered"
    async with gw.rt.sessions() as session:
        rows = (await session.execute(sa.select(AuditEntry))).scalars().all()
    assert [(r.actor, r.role, r.action) for r in rows] == [
        (f"key:{key_fingerprint('operator-key')}", "operator", "delivery.replay")
    ]


async def test_no_page_shows_a_key_or_a_connection_secret(gw: Gateway) -> None:
    dead = await seed(gw.rt, status="dead", last_error="refused")
    parked = await seed(
        gw.rt, status="parked", needs=[{"kind": "sku", "key": "SKU-NEW"}], skus=("SKU-NEW",)
    )
    await seed(gw.rt, status="held", held_reason="price cut")
    pages = [
        "/console/",
        "/console/deliveries?status=dead",
        "/console/deliveries?status=parked",
        "/console/deliveries?status=held",
        f"/console/deliveries/{dead.delivery}",
        f"/console/trace?key={parked.entity_key}",
        "/console/search?q=SKU",
        "/console/mappings",
        "/console/mappings/sku/erp",
        "/console/mappings/sku/erp/export",
        "/console/findings",
        "/console/jobs",
    ]
    for key in ("viewer-key", "operator-key"):
        async with browser(gw) as client:
            await sign_in(client, key)
            for path in pages:
                answer = await client.get(path)
                assert answer.status_code == 200, (path, answer.text)
                leaked = [s for s in SECRETS if s in answer.text]
                assert not leaked, (key, path, leaked)
                assert not [s for s in SECRETS if s in str(client.cookies.jar)]
    login = await gw.client.get("/console/login")
    assert not [s for s in SECRETS if s in login.text]


async def test_pages_forbid_framing_and_foreign_scripts(gw: Gateway) -> None:
    async with browser(gw) as client:
        await sign_in(client, "viewer-key")
        page = await client.get("/console/")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["cache-control"] == "no-store"


async def test_an_unknown_delivery_is_a_page_not_json(gw: Gateway) -> None:
    async with browser(gw) as client:
        await sign_in(client, "viewer-key")
        page = await client.get("/console/deliveries/999999")
    assert page.status_code == 404 and "no delivery 999999" in page.text
    assert page.headers["content-type"].startswith("text/html")


async def test_nothing_seeded_shows_no_delivery(gw: Gateway) -> None:
    async with gw.rt.sessions() as session:
        assert (await session.execute(sa.select(col(Delivery.id)))).first() is None


async def test_bad_input_is_a_4xx_never_a_500(gw: Gateway) -> None:
    held = await seed(gw.rt, status="held", held_reason="price cut")
    async with browser(gw) as client:
        token = await sign_in(client, "operator-key")
        posts: list[tuple[str, dict[str, Any]]] = [
            (f"/console/approvals/{held.delivery}/approve", {"note": "x\x00y"}),
            ("/console/mappings/sku/erp", {"our_key": "A\x00B", "their_key": "1"}),
            ("/console/deliveries/replay", {"ids": ["abc"]}),
            ("/console/deliveries/replay", {"ids": [str(2**64)]}),
            (f"/console/deliveries/{2**64}/replay", {}),
            ("/console/maintenance", {"connection": "erp", "from": "02:00", "to": "x"}),
        ]
        for url, data in posts:
            answer = await client.post(
                url, data={**data, "csrf": token}, headers={"accept": "application/json"}
            )
            assert 400 <= answer.status_code < 500, (url, answer.text)
        for path in (f"/console/deliveries/{2**64}", "/console/deliveries?cursor=zzz"):
            assert 400 <= (await client.get(path)).status_code < 500, path
    assert await gw.status_of(held.delivery) == "held"
