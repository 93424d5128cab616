"""The store simulator's lookups (SKU search, SKU, handle, inventory item, the levels of a few
items) answer from an index instead of reading the whole catalogue each time: after every
kind of change they must answer exactly what reading the whole catalogue answers."""

from __future__ import annotations

import re
from typing import Any

import httpx

from simulators.shopify.catalogue import Levels
from simulators.shopify.graphql_catalogue import bulk_create, bulk_update, product_set
from simulators.shopify.shop import DEFAULT_ACCESS_TOKEN
from simulators.shopify.simulator import create_app
from simulators.shopify.store import DEFAULT_LOCATION_ID, Store

SKU_TERMS = re.compile(r'sku:(?:"((?:[^"\\]|\\.)*)"|([^\s"]+))')
PROBES = ["", "A", "A-1", "A-2", "B", "B-1", "C", "C-9", "D", "GONE", "Mug", "X"]


def searched(store: Store, query: str) -> list[dict[str, Any]]:
    """The search as it was: every variant against every term."""
    terms = [
        (quoted.replace('\\"', '"').replace("\\\\", "\\") if quoted else bare)
        for quoted, bare in SKU_TERMS.findall(query)
    ]
    return [v for v in store.variants() if any((v.get("sku") or "").startswith(t) for t in terms)]


def assert_lookups_agree(store: Store) -> None:
    variants = store.variants()
    for probe in PROBES:
        query = f'sku:"{probe}"'
        assert [id(v) for v in store.search_variants(query)] == [
            id(v) for v in searched(store, query)
        ], probe
        first = next((v for v in variants if v.get("sku") == probe), None)
        assert store.variant_by_sku(probe) is first, probe
    two = 'sku:"A" OR sku:"C"'
    assert [id(v) for v in store.search_variants(two, 2)] == [id(v) for v in searched(store, two)][
        :2
    ]
    for product in store.products.values():
        holder = next(p for p in store.products.values() if p["handle"] == product["handle"])
        assert store.product_by_handle(product["handle"]) is holder
    for variant in variants:
        assert store.item_exists(variant["inventory_item_id"])
    assert not store.item_exists(1)


def gid(kind: str, ident: int) -> str:
    return f"gid://shopify/{kind}/{ident}"


def options(*names: str) -> dict[str, Any]:
    return {"productOptions": [{"name": "Size", "values": [{"name": n} for n in names]}]}


def size(name: str) -> list[dict[str, str]]:
    return [{"optionName": "Size", "name": name}]


def test_lookups_follow_every_change_to_skus_handles_and_variants() -> None:
    store = Store()
    assert_lookups_agree(store)
    a1 = store.seed({"sku": "A-1", "title": "Mug", "available": 3})
    store.seed({"sku": "A-2", "title": "Mug", "available": 3})  # handle mug-1
    b1 = store.seed({"sku": "B-1", "available": 1})
    assert_lookups_agree(store)
    # REST: a variant's SKU changes; a product's variants list replaces its variants
    store.update_variant(a1["variants"][0]["id"], {"sku": "C-1"})
    assert_lookups_agree(store)
    store.update_product(b1["id"], {"variants": [{"sku": "B-2"}, {"sku": "A-3"}]})
    assert_lookups_agree(store)
    # GraphQL: productSet creates, renames the handle, replaces the variants
    made = product_set(store, None, {"title": "Shirt", **options("S", "M"), "variants": []})
    shirt = int(made["product"]["legacyResourceId"])
    assert_lookups_agree(store)
    changed = product_set(
        store,
        {"id": gid("Product", shirt)},
        {
            "handle": "shirt-new",
            **options("S", "M"),
            "variants": [
                {"optionValues": size("S"), "sku": "D-S"},
                {"optionValues": size("M"), "inventoryItem": {"sku": "D-M"}},
            ],
        },
    )
    assert changed["userErrors"] == []
    assert_lookups_agree(store)
    assert store.product_by_handle("shirt-new") is store.products[shirt]
    renamed = product_set(store, {"id": gid("Product", shirt)}, {"handle": "shirt-newer"})
    assert renamed["userErrors"] == []
    assert_lookups_agree(store)
    assert store.product_by_handle("shirt-new") is None
    # productVariantsBulkCreate / BulkUpdate
    bulk = bulk_create(
        store, gid("Product", shirt), [{"optionValues": size("L"), "sku": "D-L"}], "DEFAULT"
    )
    assert bulk["userErrors"] == []
    assert_lookups_agree(store)
    variant = store.products[shirt]["variants"][0]
    updated = bulk_update(
        store, gid("Product", shirt), [{"id": gid("ProductVariant", variant["id"]), "sku": "X"}]
    )
    assert updated["userErrors"] == []
    assert_lookups_agree(store)
    assert store.variant_by_sku("X") is variant and store.variant_by_sku("D-S") is None


def test_many_seeded_products_are_found_as_reading_them_all_finds_them() -> None:
    store = Store()
    for n in range(300):
        store.seed({"sku": f"A-{n % 120}", "title": f"Item {n % 7}", "available": n})
        if n % 50 == 0:
            assert_lookups_agree(store)
    assert_lookups_agree(store)
    found = [v["sku"] for v in store.search_variants('sku:"A-11"')]
    assert found == [v["sku"] for v in searched(store, 'sku:"A-11"')]
    assert found[:3] == ["A-11", "A-110", "A-111"]  # in catalogue order, not by SKU
    assert store.product_by_handle("item-0-42") is not None  # the 43rd "Item 0"


def test_levels_know_each_items_locations() -> None:
    levels = Levels({(1, 10): 3, (1, 11): 0, (2, 10): 5})
    levels[(3, 12)] = 1
    levels.setdefault((2, 11), 0)
    del levels[(1, 10)]
    levels.pop((3, 12))
    assert levels.pop((9, 9), None) is None
    levels |= {(4, 10): 2}
    assert (
        sorted(levels.keys_of([1, 2, 3, 4, 5]))
        == sorted(levels)
        == [
            (1, 11),
            (2, 10),
            (2, 11),
            (4, 10),
        ]
    )
    levels.clear()
    assert levels.keys_of([1, 2]) == []


async def test_levels_of_a_few_items_are_those_of_the_whole_list() -> None:
    app = create_app()
    store: Store = app.state.simulator.store
    items = [
        store.seed({"sku": f"S-{n}", "available": {DEFAULT_LOCATION_ID: n, 7: n + 1}})["variants"][
            0
        ]["inventory_item_id"]
        for n in range(6)
    ]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://shop",
        headers={"X-Shopify-Access-Token": DEFAULT_ACCESS_TOKEN},
    ) as http:
        for params in (
            {"inventory_item_ids": f"{items[4]},{items[1]},{items[4]},1"},
            {"inventory_item_ids": str(items[2]), "location_ids": "7"},
            {"location_ids": str(DEFAULT_LOCATION_ID)},
        ):
            answer = await http.get("/admin/api/2026-01/inventory_levels.json", params=params)
            assert answer.status_code == 200, answer.text
            shown = [
                (r["inventory_item_id"], r["location_id"])
                for r in answer.json()["inventory_levels"]
            ]
            wanted_items = {int(i) for i in params.get("inventory_item_ids", "").split(",") if i}
            wanted_locations = {int(i) for i in params.get("location_ids", "").split(",") if i}
            assert shown == [
                (i, loc)
                for (i, loc) in sorted(store.inventory)
                if (not wanted_items or i in wanted_items)
                and (not wanted_locations or loc in wanted_locations)
            ]
            assert shown
