"""What the console's pages find and show: the search box (the operator API's search: order
number, e-mail, SKU, entity key), the health page's volumes, personal data masked for
viewers, and where actions lead."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from app.db import transaction
from app.erasure.refs import note_event
from app.models import CanonicalEventRow, utcnow
from kernel.canonical.events import CanonicalEvent
from tests.api.conftest import Gateway, seed
from tests.console.conftest import browser, sign_in


async def _index_people(gw: Gateway, event_id: int) -> None:
    """What the recorder does for every event: index whom it is about (hashed)."""
    async with transaction(gw.rt.sessions) as session:
        row = await session.get(CanonicalEventRow, event_id)
        assert row is not None
        event = CanonicalEvent.model_validate(
            {
                "type": row.event_type,
                "entity_key": row.entity_key,
                "occurred_at": row.occurred_at,
                "payload": row.payload,
            }
        )
        await note_event(session, event_id, row.source, event, None)


def _trace(key: str) -> str:
    return f"/console/trace?key={quote(key, safe='')}"


async def test_an_order_number_leads_to_its_trace(gw: Gateway) -> None:
    order = await seed(gw.rt, external_id="6000000000000000001", order_values={"number": "#1001"})
    await seed(gw.rt, external_id="6000000000000000002", order_values={"number": "#1002"})
    async with browser(gw) as client:
        await sign_in(client, "viewer-key")
        for q in ("#1001", "1001", " #1001 "):
            answer = await client.get("/console/search", params={"q": q})
            assert answer.status_code == 303, (q, answer.text)
            assert answer.headers["location"] == _trace(order.entity_key)
        page = await client.get(_trace(order.entity_key))
        assert "order.created" in page.text and "delivered" in page.text
        missing = await client.get("/console/search", params={"q": "#9999"})
        assert missing.status_code == 200 and "Nothing found" in missing.text


async def test_the_same_number_in_two_places_lists_both(gw: Gateway) -> None:
    first = await seed(gw.rt, external_id="7001", order_values={"number": "#1001"})
    second = await seed(gw.rt, external_id="7002", order_values={"number": "1001"})
    async with browser(gw) as client:
        await sign_in(client, "viewer-key")
        answer = await client.get("/console/search", params={"q": "#1001"})
    assert answer.status_code == 200
    assert first.entity_key in answer.text and second.entity_key in answer.text


async def test_an_email_finds_the_orders_for_pii_roles_only(gw: Gateway) -> None:
    order = await seed(gw.rt, external_id="8001")  # the factory's customer: ada@example.com
    await _index_people(gw, order.event_id)
    async with browser(gw) as client:
        await sign_in(client, "operator-key")
        answer = await client.get("/console/search", params={"q": "ADA@example.com "})
        assert answer.status_code == 303
        assert answer.headers["location"] == _trace(order.entity_key)
    async with browser(gw) as client:
        await sign_in(client, "viewer-key")
        refused = await client.get("/console/search", params={"q": "ada@example.com"})
        assert refused.status_code == 200
        assert "needs an operator or pii-reader key" in refused.text
        assert order.entity_key not in refused.text


async def test_a_sku_and_an_entity_key_lead_to_what_they_name(gw: Gateway) -> None:
    order = await seed(gw.rt, external_id="8101", skus=("SKU-ONLY-HERE",))
    async with browser(gw) as client:
        await sign_in(client, "viewer-key")
        for q in ("SKU-ONLY-HERE", order.entity_key):
            answer = await client.get("/console/search", params={"q": q})
            assert answer.status_code == 303, (q, answer.text)
            assert answer.headers["location"] == _trace(order.entity_key)


async def test_a_viewer_sees_a_guests_email_masked_in_the_trace(gw: Gateway) -> None:
    guest = await seed(
        gw.rt, external_id="8201", status="dead", last_error="no customer grace@example.com"
    )
    async with browser(gw) as client:
        await sign_in(client, "viewer-key")
        page = await client.get(_trace(guest.entity_key))
        detail = await client.get(f"/console/deliveries/{guest.delivery}")
    assert "grace@example.com" not in page.text and "g***@example.com" in page.text
    assert "grace@example.com" not in detail.text
    async with browser(gw) as client:
        await sign_in(client, "operator-key")
        page = await client.get(_trace(guest.entity_key))
    assert "grace@example.com" in page.text


async def test_health_counts_events_against_the_same_hour_last_week(gw: Gateway) -> None:
    now = utcnow()
    await seed(gw.rt, status="pending", created_at=now - timedelta(minutes=5))
    for _ in range(3):
        await seed(gw.rt, status=None, created_at=now - timedelta(days=7, minutes=30))
    await seed(gw.rt, status="dead")
    async with browser(gw) as client:
        await sign_in(client, "viewer-key")
        page = await client.get("/console/")
    shop_row = page.text.split('data-connection="shop"')[1].split("</tr>")[0]
    assert "2 <small>vs 3 a week ago</small>" in shop_row  # the dead one came in just now
    erp_row = page.text.split('data-connection="erp"')[1].split("</tr>")[0]
    assert "1 pending" in erp_row and " s ago" in erp_row, erp_row  # the oldest pending


async def test_actions_return_only_to_console_pages_and_https_sets_secure(gw: Gateway) -> None:
    dead = await seed(gw.rt, status="dead")
    async with browser(gw) as client:
        token = await sign_in(client, "operator-key")
        for back in ("https://evil.example/", "//evil.example/x", "/api/v1/deliveries"):
            answer = await client.post(
                f"/console/deliveries/{dead.delivery}/replay", data={"csrf": token, "back": back}
            )
            assert answer.headers["location"] == "/console/", back
            await gw.wait_status(dead.delivery, "delivered")
    async with browser(gw) as client:
        client.base_url = "https://gateway"  # type: ignore[assignment]
        form = await client.get("/console/login")
        assert "Secure" in form.headers["set-cookie"]


async def test_an_operator_adds_and_deletes_a_maintenance_window(gw: Gateway) -> None:
    async with browser(gw) as client:
        token = await sign_in(client, "operator-key")
        wrong = await client.post(
            "/console/maintenance",
            data={"csrf": token, "connection": "erp", "from": "04:00", "to": "02:00"},
        )
        assert wrong.status_code == 303
        page = await client.get("/console/jobs")
        assert "flash-error" in page.text and "timezone" in page.text  # weekly needs a zone
        added = await client.post(
            "/console/maintenance",
            data={
                "csrf": token,
                "connection": "erp",
                "every": ["sunday"],
                "from": "02:00",
                "to": "04:00",
                "timezone": "Europe/Berlin",
                "reason": "ERP upgrade",
                "back": "/console/jobs",
            },
        )
        assert added.status_code == 303 and added.headers["location"] == "/console/jobs"
        page = await client.get("/console/jobs")
        row = page.text.split('<tr data-connection="erp"><td>erp</td>')[-1].split("</tr>")[0]
        assert "every sunday" in row and "(api)" in row and "ERP upgrade" in row
        window_id = row.split("/console/maintenance/erp/")[1].split("/")[0]
        deleted = await client.post(
            f"/console/maintenance/erp/{window_id}/delete", data={"csrf": token}
        )
        assert deleted.status_code == 303
        page = await client.get("/console/jobs")
        assert "every sunday" not in page.text


async def test_health_shows_a_connection_in_maintenance(gw: Gateway) -> None:
    now = utcnow()
    window = {
        "from": (now - timedelta(minutes=5)).isoformat(),
        "to": (now + timedelta(hours=1)).isoformat(),
    }
    added = await gw.write("POST", "/connections/erp/maintenance-windows", json=window)
    assert added.status_code == 201, added.text
    async with browser(gw) as client:
        await sign_in(client, "viewer-key")
        page = await client.get("/console/")
    erp_row = page.text.split('data-connection="erp"')[1].split("</tr>")[0]
    assert "maintenance</span>" in erp_row and "until" in erp_row
