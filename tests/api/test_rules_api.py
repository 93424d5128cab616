"""Rules: read what is in force, change a section at run time, go back to the config.

The `gw_flows` gateway starts with no rule overrides (`clean_db` empties them).
"""

from __future__ import annotations

from tests.api.conftest import VIEWER, Gateway


async def test_get_shows_every_section_and_no_overrides(gw_flows: Gateway) -> None:
    body = await gw_flows.ok("/rules")
    assert set(body["rules"]) == {
        "orders",
        "inventory",
        "pricing",
        "customers",
        "shipments",
        "returns",
    }
    assert body["rules"]["pricing"]["guard_percent"] == "20"
    assert body["overridden"] == [] and body["overrides"] == []
    section = await gw_flows.ok("/rules/pricing")
    assert section["section"] == "pricing" and section["overridden"] is False
    assert section["rules"] == body["rules"]["pricing"] and section["override"] is None


async def test_put_changes_what_get_returns_until_deleted(gw_flows: Gateway) -> None:
    response = await gw_flows.write(
        "PUT", "/rules/pricing", json={"guard_percent": "35", "send_cost": True}
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["rules"]["guard_percent"] == "35" and changed["rules"]["send_cost"] is True
    assert changed["overridden"] is True
    assert changed["override"]["fields"] == ["guard_percent", "send_cost"]
    assert changed["override"]["updated_by"] == "operator"

    # a second change keeps the first one's fields
    await gw_flows.write("PUT", "/rules/pricing", json={"enforce_map": False})
    body = await gw_flows.ok("/rules")
    pricing = body["rules"]["pricing"]
    assert pricing["guard_percent"] == "35" and pricing["enforce_map"] is False
    assert body["overridden"] == ["pricing"]
    assert body["overrides"][0]["fields"] == ["enforce_map", "guard_percent", "send_cost"]
    assert body["rules"]["orders"]["tax_source"] == "store"  # other sections untouched

    response = await gw_flows.write("DELETE", "/rules/pricing")
    assert response.status_code == 200, response.text
    assert response.json()["rules"]["guard_percent"] == "20"
    assert (await gw_flows.ok("/rules"))["overridden"] == []


async def test_bad_values_are_refused_with_the_field_named(gw_flows: Gateway) -> None:
    cases = [
        ({"guard_percent": "-1"}, "guard_percent"),
        ({"guard_percent": "lots"}, "guard_percent"),
        ({"no_such_rule": 1}, "no_such_rule"),
    ]
    for body, field in cases:
        response = await gw_flows.write("PUT", "/rules/pricing", json=body)
        assert response.status_code == 422, body
        assert field in response.json()["error"]["message"], response.text
    # valid alone, invalid with the rules in force: checked together, nothing stored
    response = await gw_flows.write(
        "PUT", "/rules/orders", json={"guest_strategy": "shared_account"}
    )
    assert response.status_code == 422, response.text
    assert "guest_account_id" in response.json()["error"]["message"]
    empty = await gw_flows.write("PUT", "/rules/orders", json={})
    assert empty.status_code == 422 and "at least one field" in empty.json()["error"]["message"]
    assert (await gw_flows.ok("/rules"))["overridden"] == []

    # with the account id the same change is fine, and a later partial change validates too
    response = await gw_flows.write(
        "PUT", "/rules/orders", json={"guest_strategy": "shared_account", "guest_account_id": "9"}
    )
    assert response.status_code == 200, response.text
    assert (
        await gw_flows.write("PUT", "/rules/orders", json={"guest_account_id": ""})
    ).status_code == 422
    assert (await gw_flows.ok("/rules/orders"))["rules"]["guest_account_id"] == "9"


async def test_unknown_section_is_404_and_viewers_cannot_write(gw_flows: Gateway) -> None:
    assert (await gw_flows.get("/rules/shipping")).status_code == 404
    for method in ("PUT", "DELETE"):
        response = await gw_flows.write(method, "/rules/shipping", json={"x": 1})
        assert response.status_code == 404, method
        error = response.json()["error"]
        assert "shipping" in error["message"] and "pricing" in error["hint"]
    for method in ("PUT", "DELETE"):
        response = await gw_flows.client.request(
            method, "/api/v1/rules/pricing", json={"send_cost": True}, headers=VIEWER
        )
        assert response.status_code == 403, method
    assert (await gw_flows.ok("/rules"))["overridden"] == []


async def test_openapi_shows_each_sections_schema(gw_flows: Gateway) -> None:
    spec = (await gw_flows.client.get("/openapi.json")).json()
    put = spec["paths"]["/api/v1/rules/pricing"]["put"]
    ref = put["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert "guard_percent" in schema["properties"] and not schema.get("required")
    assert "/api/v1/rules/orders" in spec["paths"]
