"""Mapping entries: list by key, PUT releases parked deliveries, guarded DELETE."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col

from app.models import Mapping
from kernel.mappings import MAPPING_KINDS
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


async def test_an_unknown_mapping_kind_is_422_naming_the_known_ones_and_stores_nothing(
    gw: Gateway,
) -> None:
    """A typo (``skus``, ``colour``) used to read an empty table and store entries that no
    delivery ever looks up."""
    for method, path, kwargs in (
        ("GET", "/mappings/skus/erp", {}),
        ("PUT", "/mappings/colour/erp", {"json": {"entries": {"A": "1"}}}),
        ("DELETE", "/mappings/colour/erp", {"params": {"all": "true"}}),
        ("GET", "/mappings/colour/erp/export", {}),
        ("POST", "/mappings/colour/erp/import", {"content": b"our_key,their_key\nA,1\n"}),
    ):
        response = await gw.write(method, path, **kwargs)
        assert response.status_code == 422, (method, path, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_request"
        assert "kind" in error["message"] and "'sku'" in error["message"], error
        assert "'tax_code'" in error["message"], error
    async with gw.rt.sessions() as session:
        kinds = set((await session.execute(sa.select(col(Mapping.kind)).distinct())).scalars())
    assert kinds <= set(MAPPING_KINDS)


async def test_delete_by_keys_and_all_needs_saying_so(gw: Gateway) -> None:
    entries = {"A": "1", "B": "2", "C": "3", "D": "4"}
    await gw.write("PUT", "/mappings/location/erp", json={"entries": entries})

    refused = await gw.write("DELETE", "/mappings/location/erp")
    assert refused.status_code == 422
    assert "all=true" in refused.json()["error"]["hint"]
    both = await gw.write("DELETE", "/mappings/location/erp", params={"keys": "A", "all": "true"})
    assert both.status_code == 422

    by_query = await gw.write("DELETE", "/mappings/location/erp", params={"keys": ["A", "Z"]})
    assert by_query.status_code == 200 and by_query.json() == {"deleted": 1}
    by_body = await gw.write("DELETE", "/mappings/location/erp", json={"keys": ["B"]})
    assert by_body.json() == {"deleted": 1}
    remaining = [i["our_key"] for i in (await gw.ok("/mappings/location/erp"))["items"]]
    assert remaining == ["C", "D"]

    everything = await gw.write("DELETE", "/mappings/location/erp", params={"all": "true"})
    assert everything.json() == {"deleted": 2}
    assert (await gw.ok("/mappings/location/erp"))["items"] == []
    # other kinds are untouched
    assert len((await gw.ok("/mappings/sku/erp"))["items"]) == 2
