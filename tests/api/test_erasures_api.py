"""/api/v1/erasures: erase requests and their progress, readable by viewers, never their data."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from app.db import transaction
from app.erasure.job import run_erasures
from app.flows.recorder import record_events
from app.models import utcnow
from kernel.canonical.customer import ErasureRequest
from kernel.canonical.events import make_event
from tests.api.conftest import Gateway
from tests.conftest import wait_for


async def request_erasure(gw: Gateway, **who: Any) -> list[int]:
    now = utcnow()
    request = ErasureRequest(source="shop", requested_at=now, **who)
    async with transaction(gw.rt.sessions) as session:
        recorded = await record_events(
            session, gw.rt, "shop", [make_event("customer.erase_requested", request, now)]
        )
    return recorded.event_ids


async def test_newest_first_in_pages(gw: Gateway) -> None:
    for n in range(3):
        await request_erasure(gw, customer_external_id=str(100 + n))
    items = await gw.pages("/erasures", limit=2)
    assert [i["identifiers"]["customer_external_id"] for i in items] == ["102", "101", "100"]
    first = await gw.ok("/erasures", limit=2)
    assert len(first["items"]) == 2 and first["next_cursor"]
    assert all(i["status"] == "pending" for i in items)


async def test_one_request_shows_hashes_not_the_email(gw: Gateway) -> None:
    (event_id,) = await request_erasure(gw, email=" Jane.Doe@Example.com ", phone="+1 415 555 0199")
    (listed,) = (await gw.ok("/erasures"))["items"]
    one = await gw.ok(f"/erasures/{listed['id']}")
    assert one["event_id"] == event_id and one["source"] == "shop"
    expected = hashlib.sha256(b"jane.doe@example.com").hexdigest()
    assert one["identifiers"]["email_sha256"] == expected
    assert one["identifiers"]["phone_sha256"] == hashlib.sha256(b"14155550199").hexdigest()
    text = json.dumps(one).lower()
    assert "jane" not in text and "4155550199" not in text.replace("14155550199", "")
    assert one["entity_key"].startswith("shop:customer:erasure-")
    assert "ref_hashes" not in one and "cursor" not in one


async def test_status_counts_and_filters_after_the_job(gw: Gateway) -> None:
    await request_erasure(gw, customer_external_id="77")

    async def started() -> Any:
        await run_erasures(gw.rt)  # as the scheduled tick does (which may run it too)
        (item,) = (await gw.ok("/erasures"))["items"]
        return item if item["status"] != "pending" else None

    one = await wait_for(started, message="the erasure job to run")
    # the request waits for its delivery to the ERP before it is done
    assert one["status"] in ("awaiting_delivery", "done")
    assert one["started_at"] and one["scrubbed_at"]
    assert isinstance(one["counts"], dict)
    assert (await gw.ok("/erasures", status="pending"))["items"] == []
    assert (await gw.ok("/erasures", source="other"))["items"] == []


async def test_unknown_request_and_bad_parameters(gw: Gateway) -> None:
    assert (await gw.get("/erasures/12345")).status_code == 404
    assert (await gw.get("/erasures", status="finished")).status_code == 422
    assert (await gw.get("/erasures", cursor="not-a-cursor")).status_code == 400


async def test_viewers_may_read_nobody_else(gw: Gateway) -> None:
    assert (await gw.get("/erasures")).status_code == 200  # the viewer key
    assert (await gw.client.get("/api/v1/erasures")).status_code == 401
    bad = {"Authorization": "Bearer nope"}
    assert (await gw.client.get("/api/v1/erasures", headers=bad)).status_code == 401
