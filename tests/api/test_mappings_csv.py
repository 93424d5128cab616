"""Mapping CSV export and import: round trip, release of parked deliveries, refused files."""

from __future__ import annotations

import csv
import io

import httpx

from tests.api.conftest import OPERATOR, VIEWER, Gateway, seed

CSV = {"Content-Type": "text/csv"}


async def export(gw: Gateway, kind: str, connection_id: str) -> httpx.Response:
    response = await gw.get(f"/mappings/{kind}/{connection_id}/export")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return response


async def import_csv(
    gw: Gateway, kind: str, connection_id: str, body: str | bytes, **params: str
) -> httpx.Response:
    return await gw.client.post(
        f"/api/v1/mappings/{kind}/{connection_id}/import",
        content=body.encode() if isinstance(body, str) else body,
        headers={**OPERATOR, **CSV},
        params=params,
    )


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


async def test_round_trip_into_another_connection(gw: Gateway) -> None:
    tricky = {
        "PLAIN": "1",
        "WITH,COMMA": "2",
        'WITH "QUOTES"': "3",
        "MULTI\nLINE": "4",
        "ÜMLAUT-ß": "5",
    }
    many = {f"SKU-{n:05d}": str(n) for n in range(12_000)}  # more than PUT takes at once
    loaded = await import_csv(
        gw, "sku", "erp", "our_key,their_key\n" + "".join(f"{k},{v}\n" for k, v in many.items())
    )
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["updated"] == len(many)
    response = await gw.write("PUT", "/mappings/sku/erp", json={"entries": tricky})
    assert response.status_code == 200, response.text

    exported = await export(gw, "sku", "erp")  # more than one export chunk
    rows = rows_of(exported.text)
    assert rows[0] == ["our_key", "their_key"]
    expected = {**tricky, **many, "SKU-RED-M": "1042", "SKU-BLUE-L": "959"}  # + config seeds
    assert len(rows) == len(expected) + 1
    assert dict((r[0], r[1]) for r in rows[1:]) == expected
    # ordered by our key, as the list pages it (the database's collation decides)
    listed = await gw.pages("/mappings/sku/erp", limit=500)
    assert [r[0] for r in rows[1:]] == [i["our_key"] for i in listed]

    response = await import_csv(gw, "sku", "shop", exported.content)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "updated": len(expected),
        "deleted": 0,
        "released_deliveries": [],
    }
    again = await export(gw, "sku", "shop")
    assert again.text == exported.text


async def test_import_releases_a_parked_delivery(gw: Gateway) -> None:
    parked = await seed(
        gw.rt,
        status="parked",
        attempts=1,
        skus=("SKU-RED-M", "SKU-NEW"),
        needs=[{"kind": "sku", "key": "SKU-NEW"}],
        parked_reason="no mapping for sku 'SKU-NEW'",
    )
    response = await import_csv(gw, "sku", "erp", "our_key,their_key\nSKU-NEW,2077\n")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "updated": 1,
        "deleted": 0,
        "released_deliveries": [parked.delivery],
    }
    await gw.wait_status(parked.delivery, "delivered")


async def test_spreadsheet_quirks_are_accepted(gw: Gateway) -> None:
    body = (
        "\ufeffTheir_Key , our_key,notes\r\n"
        "\r\n"
        '"10,5","A,1",first\r\n'
        '"x ""y""",B,\r\n'
        "   \r\n"
        "7,C,same value twice is fine\r\n"
        "7,C,\r\n"
    ).encode()
    response = await import_csv(gw, "location", "erp", body)
    assert response.status_code == 200, response.text
    assert response.json()["updated"] == 3
    items = (await gw.ok("/mappings/location/erp"))["items"]
    assert {i["our_key"]: i["their_key"] for i in items} == {
        "A,1": "10,5",
        "B": 'x "y"',
        "C": "7",
    }


async def test_bad_files_name_the_line_and_store_nothing(gw: Gateway) -> None:
    cases: list[tuple[bytes, list[str]]] = [
        (b"our_key,value\nA,1\n", ["line 1", "their_key"]),
        (b"\n\nsku,their\nA,1\n", ["line 3", "our_key or their_key"]),
        (b"our_key,their_key\nA,1\n,2\nB,\n", ["line 3: empty our_key", "line 4: empty their_key"]),
        (b"our_key,their_key\nA,1\nB\n", ["line 3: missing their_key"]),
        (
            b"our_key,their_key\nA,1\nB,2\nA,3\n",
            ["line 4", "'A'", "different their_key", "line 2"],
        ),
        (b"our_key,their_key\nA,1\nB,\xff\xfe\n", ["line 3", "not UTF-8"]),
        (b"", ["empty"]),
        (b"our_key,their_key\n" + b"A," + b"9" * 300 + b"\n", ["line 2", "longer than 256"]),
    ]
    for body, fragments in cases:
        response = await import_csv(gw, "location", "erp", body)
        assert response.status_code == 422, body
        error = response.json()["error"]
        assert "nothing was stored" in error["message"]
        for fragment in fragments:
            assert fragment in error["message"], (body, error["message"])
    assert (await gw.ok("/mappings/location/erp"))["items"] == []


async def test_replace_deletes_what_the_file_does_not_have(gw: Gateway) -> None:
    await gw.write(
        "PUT", "/mappings/location/erp", json={"entries": {"A": "1", "B": "2", "C": "3"}}
    )
    await gw.write("PUT", "/mappings/shipping_method/erp", json={"entries": {"A": "S"}})
    response = await import_csv(
        gw, "location", "erp", "our_key,their_key\nB,20\nD,4\n", replace="true"
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"updated": 2, "deleted": 2, "released_deliveries": []}
    items = (await gw.ok("/mappings/location/erp"))["items"]
    assert {i["our_key"]: i["their_key"] for i in items} == {"B": "20", "D": "4"}
    assert (
        len((await gw.ok("/mappings/shipping_method/erp"))["items"]) == 1
    )  # other kinds untouched

    # a file without entries never empties a table by accident
    response = await import_csv(gw, "location", "erp", "our_key,their_key\n", replace="true")
    assert response.status_code == 422
    assert "all=true" in response.json()["error"]["hint"]
    assert len((await gw.ok("/mappings/location/erp"))["items"]) == 2
    # without replace, a header-only file is a no-op
    response = await import_csv(gw, "location", "erp", "our_key,their_key\n")
    assert response.json() == {"updated": 0, "deleted": 0, "released_deliveries": []}


async def test_auth_and_unknown_connection(gw: Gateway) -> None:
    viewer = await gw.client.post(
        "/api/v1/mappings/sku/erp/import",
        content=b"our_key,their_key\nA,1\n",
        headers={**VIEWER, **CSV},
    )
    assert viewer.status_code == 403
    assert (await gw.client.get("/api/v1/mappings/sku/erp/export")).status_code == 401
    exported = await gw.client.get("/api/v1/mappings/sku/erp/export", headers=VIEWER)
    assert exported.status_code == 200
    for response in (
        await gw.get("/mappings/sku/nope/export"),
        await import_csv(gw, "sku", "nope", "our_key,their_key\nA,1\n"),
    ):
        assert response.status_code == 404
        assert "nope" in response.json()["error"]["message"]
    assert (await gw.get("/mappings/SKU/erp/export")).status_code == 422
