"""Mapping entries: list by key, PUT releases parked deliveries, guarded DELETE."""

from __future__ import annotations

from tests.api.conftest import Gateway, seed


async def test_list_pages_by_our_key(gw: Gateway) -> None:
    entries = {f"SKU-{n:03d}": str(n) for n in range(7)}
    response = await gw.write("PUT", "/mappings/sku/erp", json={"entries": entries})
    assert response.status_code == 200, response.text
    assert response.json() == {"updated": 7, "released_deliveries": []}
    items = await gw.pages("/mappings/sku/erp", limit=3)
    keys = [i["our_key"] for i in items]
    assert keys == sorted([*entries, "SKU-RED-M", "SKU-BLUE-L"])  # the config seeds two
    by_key = {i["our_key"]: i for i in items}
    assert by_key["SKU-003"]["their_key"] == "3" and by_key["SKU-003"]["origin"] == "api"
    assert by_key["SKU-RED-M"] == {**by_key["SKU-RED-M"], "their_key": "1042", "origin": "config"}
    assert await gw.pages("/mappings/tax_code/erp", limit=3) == []


async def test_put_releases_parked_deliveries_whose_needs_are_met(gw: Gateway) -> None:
    ready = await seed(
        gw.rt,
        status="parked",
        attempts=1,
        skus=("SKU-RED-M", "SKU-NEW"),
        needs=[{"kind": "sku", "key": "SKU-NEW"}],
        parked_reason="no mapping for sku 'SKU-NEW'",
    )
    waiting = await seed(
        gw.rt,
        status="parked",
        skus=("SKU-NEW", "SKU-OTHER"),
        needs=[{"kind": "sku", "key": "SKU-NEW"}, {"kind": "sku", "key": "SKU-OTHER"}],
    )
    elsewhere = await seed(
        gw.rt, status="parked", destination="shop", needs=[{"kind": "sku", "key": "SKU-NEW"}]
    )
    response = await gw.write("PUT", "/mappings/sku/erp", json={"entries": {"SKU-NEW": "2077"}})
    assert response.status_code == 200, response.text
    assert response.json() == {"updated": 1, "released_deliveries": [ready.delivery]}
    await gw.wait_status(ready.delivery, "delivered")
    assert await gw.status_of(waiting.delivery) == "parked"
    assert await gw.status_of(elsewhere.delivery) == "parked"

    # the second one goes once its last missing mapping arrives
    response = await gw.write("PUT", "/mappings/sku/erp", json={"entries": {"SKU-OTHER": "1"}})
    assert response.json()["released_deliveries"] == [waiting.delivery]
    await gw.wait_status(waiting.delivery, "delivered")


async def test_put_overwrites_and_validates(gw: Gateway) -> None:
    response = await gw.write("PUT", "/mappings/sku/erp", json={"entries": {"SKU-RED-M": "7"}})
    assert response.json()["updated"] == 1
    (entry,) = [
        i for i in (await gw.ok("/mappings/sku/erp"))["items"] if i["our_key"] == "SKU-RED-M"
    ]
    assert entry["their_key"] == "7" and entry["origin"] == "api"
    for body in ({"entries": {"": "1"}}, {"entries": {"A": ""}}, {}, {"entries": ["A"]}):
        bad = await gw.write("PUT", "/mappings/sku/erp", json=body)
        assert bad.status_code == 422, body


async def test_unknown_connection_is_404_and_bad_kind_is_422(gw: Gateway) -> None:
    for method, kwargs in (
        ("GET", {}),
        ("PUT", {"json": {"entries": {"A": "1"}}}),
        ("DELETE", {"params": {"all": "true"}}),
    ):
        response = await gw.write(method, "/mappings/sku/nope", **kwargs)
        assert response.status_code == 404, method
        assert "nope" in response.json()["error"]["message"]
    for kind in ("SKU", "sku-1", "x" * 33):
        assert (await gw.get(f"/mappings/{kind}/erp")).status_code == 422, kind


async def test_delete_by_keys_and_all_needs_saying_so(gw: Gateway) -> None:
    entries = {"A": "1", "B": "2", "C": "3", "D": "4"}
    await gw.write("PUT", "/mappings/color/erp", json={"entries": entries})

    refused = await gw.write("DELETE", "/mappings/color/erp")
    assert refused.status_code == 422
    assert "all=true" in refused.json()["error"]["hint"]
    both = await gw.write("DELETE", "/mappings/color/erp", params={"keys": "A", "all": "true"})
    assert both.status_code == 422

    by_query = await gw.write("DELETE", "/mappings/color/erp", params={"keys": ["A", "Z"]})
    assert by_query.status_code == 200 and by_query.json() == {"deleted": 1}
    by_body = await gw.write("DELETE", "/mappings/color/erp", json={"keys": ["B"]})
    assert by_body.json() == {"deleted": 1}
    remaining = [i["our_key"] for i in (await gw.ok("/mappings/color/erp"))["items"]]
    assert remaining == ["C", "D"]

    everything = await gw.write("DELETE", "/mappings/color/erp", params={"all": "true"})
    assert everything.json() == {"deleted": 2}
    assert (await gw.ok("/mappings/color/erp"))["items"] == []
    # other kinds are untouched
    assert len((await gw.ok("/mappings/sku/erp"))["items"]) == 2
