"""/api/v1/connections/{id}/maintenance-windows: operators add and delete windows, viewers
read them; the connection list and /metrics show the window open now and the next one;
a window that cannot be right is refused before anything is stored."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from app.maintenance.service import current_and_next
from app.models import AuditEntry, MaintenanceWindowRow, utcnow
from tests.api.conftest import VIEWER, Gateway

PATH = "/connections/erp/maintenance-windows"


def iso(minutes: float) -> str:
    return (utcnow() + timedelta(minutes=minutes)).isoformat()


async def stored(gw: Gateway) -> int:
    async with gw.rt.sessions() as session:
        return int(
            await session.scalar(sa.select(sa.func.count()).select_from(MaintenanceWindowRow)) or 0
        )


async def test_a_window_that_ends_before_it_starts_is_refused_with_why(gw: Gateway) -> None:
    response = await gw.write("POST", PATH, json={"from": iso(60), "to": iso(30)})
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert "the window must end after it starts" in message
    for body, expected in (
        ({"from": iso(-60), "to": iso(-30)}, "already ended"),
        ({"every": "sunday", "from": "02:00", "to": "04:00"}, "needs the timezone"),
        (
            {"every": "sonday", "from": "02:00", "to": "04:00", "timezone": "Europe/Berlin"},
            "did you mean 'sunday'?",
        ),
        ({"from": "soon", "to": iso(30)}, "is neither a time of day"),
        ({"from": iso(0), "to": iso(30), "until": "x"}, "until"),
    ):
        refused = await gw.write("POST", PATH, json=body)
        assert refused.status_code == 422, refused.text
        assert expected in refused.json()["error"]["message"], refused.text
    assert await stored(gw) == 0  # nothing stored by a refusal


async def test_operators_add_and_delete_viewers_read(gw: Gateway) -> None:
    weekly = {"every": "sunday", "from": "02:00", "to": "04:00", "timezone": "Europe/Berlin"}
    assert (await gw.client.post(f"/api/v1{PATH}", json=weekly, headers=VIEWER)).status_code == 403
    assert (
        await gw.write("POST", "/connections/nowhere/maintenance-windows", json=weekly)
    ).status_code == 404

    added = await gw.write("POST", PATH, json={**weekly, "reason": "NetSuite weekly upgrade"})
    assert added.status_code == 201, added.text
    body = added.json()
    assert body["source"] == "api" and body["described"] == "every sunday 02:00-04:00 Europe/Berlin"
    assert body["window"]["every"] == ["sunday"] and body["created_by"].startswith("key:")

    now_open = await gw.write("POST", PATH, json={"from": iso(-1), "to": iso(30)})
    assert now_open.status_code == 201, now_open.text

    listed = await gw.ok(PATH)
    assert [w["id"] for w in listed["items"]] == [body["id"], now_open.json()["id"]]
    assert listed["in_maintenance"] is True
    assert listed["current"]["ends_at"] == now_open.json()["window"]["to"].replace("+00:00", "Z")
    assert listed["next"] is not None  # next Sunday's

    connections = {c["id"]: c for c in (await gw.ok("/connections"))["items"]}
    assert connections["erp"]["maintenance"]["in_maintenance"] is True
    assert connections["erp"]["maintenance"]["current"] == listed["current"]
    assert connections["shop"]["maintenance"] == {
        "in_maintenance": False,
        "current": None,
        "next": None,
    }
    one = await gw.ok("/connections/erp")
    assert one["maintenance"] == connections["erp"]["maintenance"]

    window_id = now_open.json()["id"]
    gone = await gw.write("DELETE", f"{PATH}/{window_id}")
    assert gone.status_code == 200, gone.text
    assert gone.json()["in_maintenance"] is False
    again = await gw.write("DELETE", f"{PATH}/{window_id}")
    assert again.status_code == 404 and "GET /api/v1/connections/erp" in again.text
    # another connection's window cannot be deleted through this one
    assert (
        await gw.write("DELETE", f"/connections/shop/maintenance-windows/{body['id']}")
    ).status_code == 404

    async with gw.rt.sessions() as session:
        actions = (
            await session.execute(
                sa.select(AuditEntry.action, AuditEntry.target).order_by(AuditEntry.id)
            )
        ).all()
    assert [tuple(a) for a in actions] == [
        ("maintenance.add", "connection:erp"),
        ("maintenance.add", "connection:erp"),
        ("maintenance.delete", "connection:erp"),
    ]


async def test_the_console_asks_for_the_window_now_and_the_next(gw: Gateway) -> None:
    await gw.write("POST", PATH, json={"from": iso(10), "to": iso(20), "reason": "patch"})
    async with gw.rt.sessions() as session:
        current, upcoming = await current_and_next(session, gw.rt, "erp")
    assert current is None
    assert upcoming is not None and upcoming.reason == "patch"
    assert upcoming.start > utcnow() + timedelta(minutes=9)


async def test_metrics_show_which_connection_is_in_maintenance(gw: Gateway) -> None:
    def gauge(text: str, connection: str) -> str:
        prefix = f'gateway_connection_in_maintenance{{connection="{connection}"}} '
        (line,) = [line for line in text.splitlines() if line.startswith(prefix)]
        return line.removeprefix(prefix)

    text = (await gw.client.get("/metrics")).text
    assert gauge(text, "erp") == "0.0" and gauge(text, "shop") == "0.0"
    added: Any = await gw.write("POST", PATH, json={"from": iso(-1), "to": iso(30)})
    assert added.status_code == 201
    text = (await gw.client.get("/metrics")).text
    assert gauge(text, "erp") == "1.0" and gauge(text, "shop") == "0.0"
