"""The simulator speaks NetSuite's subset faithfully enough to catch connector mistakes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.netsuite import wire
from connectors.netsuite.auth import TbaCredentials, sign_request
from simulators.netsuite.simulator import NetSuiteSimulator, create_app
from tests.support.processes import free_port, process_group, wait_http
from tests.unit.netsuite.conftest import CREDS

HOST = "http://sim.test"
RECORDS = f"{HOST}/services/rest/record/v1"


class Signed:
    """A tiny signed client for poking the simulator the way NetSuite clients do."""

    def __init__(self, http: httpx.AsyncClient, creds: TbaCredentials) -> None:
        self.http = http
        self.creds = creds

    async def __call__(
        self, method: str, url: str, body: Any = None, *, nonce: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": sign_request(method, url, self.creds, nonce=nonce)}
        content = wire.dumps(body) if body is not None else None
        return await self.http.request(method, url, headers=headers, content=content)


@pytest.fixture
async def call(sim_http: httpx.AsyncClient, tba: TbaCredentials) -> AsyncIterator[Signed]:
    yield Signed(sim_http, tba)


def errors(response: httpx.Response) -> list[dict[str, str]]:
    return wire.error_details(response.json())


async def new_customer(call: Signed, eid: str) -> str:
    response = await call("PUT", f"{RECORDS}/customer/eid:{eid}", {"lastName": eid})
    assert response.status_code == 204
    return response.headers["location"].rsplit("/", 1)[1]


async def test_unsigned_request_gets_netsuites_login_failure(sim_http: httpx.AsyncClient) -> None:
    response = await sim_http.get(f"{RECORDS}/customer")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'OAuth realm="1234567", error="token_rejected", error_description="Invalid login attempt."'
    )
    assert errors(response)[0]["o:errorCode"] == "INVALID_LOGIN"
    assert response.json()["title"] == "Unauthorized"


async def test_replayed_nonce_and_wrong_realm_are_refused(
    call: Signed, tba: TbaCredentials
) -> None:
    url = f"{RECORDS}/customer"
    assert (await call("GET", url, nonce="same-nonce-1")).status_code == 200
    # same nonce within the same second: NetSuite treats it as a replay
    header = sign_request("GET", url, tba, nonce="nonce-xyz", timestamp=None)
    first = await call.http.get(url, headers={"Authorization": header})
    again = await call.http.get(url, headers={"Authorization": header})
    assert (first.status_code, again.status_code) == (200, 401)

    other = TbaCredentials(
        "7654321", tba.consumer_key, tba.consumer_secret, tba.token_id, tba.token_secret
    )
    assert (await Signed(call.http, other)("GET", url)).status_code == 401


async def test_post_creates_with_location_and_get_reads_by_id_and_eid(call: Signed) -> None:
    response = await call("POST", f"{RECORDS}/customer", {"externalId": "c-1", "lastName": "Doe"})
    assert response.status_code == 204
    location = response.headers["location"]
    assert location.startswith(f"{RECORDS}/customer/")

    by_id = (await call("GET", location)).json()
    by_eid = (await call("GET", f"{RECORDS}/customer/eid:c-1")).json()
    assert by_id == by_eid
    assert by_id["lastName"] == "Doe" and by_id["id"] == location.rsplit("/", 1)[1]
    assert by_id["links"] == [{"rel": "self", "href": location}]

    duplicate = await call("POST", f"{RECORDS}/customer", {"externalId": "c-1"})
    assert duplicate.status_code == 400


async def test_put_by_eid_upserts_and_keeps_the_internal_id(
    call: Signed, sim: NetSuiteSimulator
) -> None:
    first = await new_customer(call, "c-7")
    response = await call("PUT", f"{RECORDS}/customer/eid:c-7", {"email": "x@example.com"})
    assert response.status_code == 204
    assert response.headers["location"].endswith(f"/customer/{first}")
    (record,) = sim.records("customer")
    assert (record["id"], record["lastName"], record["email"]) == (first, "c-7", "x@example.com")
    assert sim.stats_snapshot()["creates"] == {"customer": 1}


async def test_sales_order_validation_speaks_netsuite(call: Signed) -> None:
    url = f"{RECORDS}/salesOrder/eid:so-1"
    missing_entity = await call("PUT", url, {"item": {"items": [{"item": {"id": "1042"}}]}})
    assert missing_entity.status_code == 400
    assert errors(missing_entity) == [
        {
            "detail": "Please enter a value for [entity]",
            "o:errorCode": "FIELD_PARAM_REQD",
            "o:errorPath": "entity",
        }
    ]
    customer = await new_customer(call, "c-1")
    no_lines = await call("PUT", url, {"entity": {"id": customer}})
    assert errors(no_lines)[0]["o:errorCode"] == "USER_ERROR"
    unknown = await call(
        "PUT", url, {"entity": {"id": customer}, "item": {"items": [{"item": {"id": "1"}}]}}
    )
    assert errors(unknown)[0]["o:errorCode"] == "INVALID_KEY_OR_REF"
    bad_eid = await call("PUT", f"{RECORDS}/salesOrder/eid:so.1", {"entity": {"id": customer}})
    assert bad_eid.status_code == 400


async def test_sublist_lines_append_on_update_unless_replaced(
    call: Signed, sim: NetSuiteSimulator
) -> None:
    customer = await new_customer(call, "c-1")
    url = f"{RECORDS}/salesOrder/eid:so-1"
    body = {
        "entity": {"id": customer},
        "item": {"items": [{"item": {"id": "1042"}, "quantity": 1}]},
    }
    await call("PUT", url, body)
    await call("PUT", url, body)  # NetSuite appends non-matching lines on update
    assert len(sim.record_by_eid("salesOrder", "so-1")["item"]["items"]) == 2  # type: ignore[index]

    await call("PUT", f"{url}?replace=item", body)
    lines = sim.record_by_eid("salesOrder", "so-1")["item"]["items"]  # type: ignore[index]
    assert len(lines) == 1

    patch = await call(
        "PATCH", url, {"item": {"items": [{"line": lines[0]["line"], "isClosed": True}]}}
    )
    assert patch.status_code == 204
    record = (await call("GET", f"{url}?expandSubResources=true")).json()
    assert record["item"]["items"][0]["isClosed"] is True
    assert record["status"]["refName"] == "Closed"
    linked = (await call("GET", url)).json()
    assert "items" not in linked["item"] and linked["item"]["links"][0]["href"].endswith("/item")


async def test_a_rejected_update_changes_nothing(call: Signed, sim: NetSuiteSimulator) -> None:
    customer = await new_customer(call, "c-1")
    url = f"{RECORDS}/salesOrder/eid:so-1"
    await call(
        "PUT",
        url,
        {"entity": {"id": customer}, "memo": "v1", "item": {"items": [{"item": {"id": "959"}}]}},
    )
    bad = await call("PATCH", url, {"memo": "v2", "item": {"items": [{"item": {"id": "404404"}}]}})
    assert bad.status_code == 400
    record = sim.record_by_eid("salesOrder", "so-1")
    assert record is not None and record["memo"] == "v1" and len(record["item"]["items"]) == 1


async def test_missing_record_is_404_nonexistent_id(call: Signed) -> None:
    response = await call("GET", f"{RECORDS}/salesOrder/eid:nope")
    assert response.status_code == 404
    assert errors(response)[0]["o:errorCode"] == "NONEXISTENT_ID"


async def test_collection_pages_with_next_links(call: Signed) -> None:
    ids = {await new_customer(call, f"c-{i}") for i in range(5)}
    seen: list[str] = []
    url: str | None = f"{RECORDS}/customer?limit=2"
    pages = 0
    while url:
        page = (await call("GET", url)).json()
        pages += 1
        seen += [item["id"] for item in page["items"]]
        assert page["totalResults"] == 5
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        assert page["hasMore"] == (url is not None)
    assert pages == 3 and set(seen) == ids and len(seen) == 5
    bad = await call("GET", f"{RECORDS}/customer?limit=5000")
    assert errors(bad)[0]["o:errorCode"] == "INVALID_PARAMETER"


async def test_concurrency_limit_answers_429_envelope(sim: NetSuiteSimulator, call: Signed) -> None:
    sim.in_flight = sim.concurrency_limit  # as if five requests were running
    response = await call("GET", f"{RECORDS}/customer")
    assert response.status_code == 429
    assert errors(response)[0] == {
        "detail": "Concurrent request limit exceeded. Request blocked.",
        "o:errorCode": "CONCURRENCY_LIMIT_EXCEEDED",
    }


async def test_faults_can_be_driven_over_http(sim_http: httpx.AsyncClient, call: Signed) -> None:
    url = f"{RECORDS}/customer"
    set_faults = await sim_http.post(f"{HOST}/_sim/faults", json={"outage": {"count": 2}})
    assert set_faults.json()["outage"]["count"] == 2
    assert [(await call("GET", url)).status_code for _ in range(3)] == [503, 503, 200]

    await sim_http.post(f"{HOST}/_sim/faults", json={"rate_limit": {"count": 1, "retry_after": 4}})
    limited = await call("GET", url)
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "4")

    await sim_http.post(f"{HOST}/_sim/faults", json={"outage": {"until_cleared": True}})
    assert (await call("GET", url)).status_code == 503
    await sim_http.delete(f"{HOST}/_sim/faults")
    assert (await call("GET", url)).status_code == 200

    bad = await sim_http.post(f"{HOST}/_sim/faults", json={"latency_seconds": "slow"})
    assert bad.status_code == 400


async def test_seed_records_stats_reset_over_http(
    sim_http: httpx.AsyncClient, call: Signed
) -> None:
    seeded = await sim_http.post(
        f"{HOST}/_sim/seed",
        json={
            "items": ["3001"],
            "customers": [{"id": "20716", "externalId": "legacy-1", "lastName": "Old"}],
        },
    )
    assert seeded.status_code == 200
    body = {
        "entity": {"id": "20716"},
        "item": {"items": [{"item": {"id": "3001"}, "rate": Decimal("1.10")}]},
    }
    assert (await call("PUT", f"{RECORDS}/salesOrder/eid:so-9", body)).status_code == 204

    listed = (await sim_http.get(f"{HOST}/_sim/records/salesOrder")).json()
    assert listed["count"] == 1
    assert listed["items"][0]["externalId"] == "so-9"
    assert '"rate":1.10' in (await sim_http.get(f"{HOST}/_sim/records/salesOrder")).text

    stats = (await sim_http.get(f"{HOST}/_sim/stats")).json()
    assert stats["requests"] == {"PUT salesOrder": 1}
    assert stats["creates"] == {"salesOrder": 1}

    await sim_http.post(f"{HOST}/_sim/reset")
    assert (await sim_http.get(f"{HOST}/_sim/records/salesOrder")).json()["count"] == 0
    items = (await sim_http.get(f"{HOST}/_sim/records/inventoryItem")).json()
    assert [i["id"] for i in items["items"]] == ["959", "1042"]  # constructor seed survives

    config = await sim_http.post(f"{HOST}/_sim/config", json={"concurrency_limit": 12})
    assert config.json() == {"concurrency_limit": 12}


async def test_record_api_works_under_a_path_prefix(tba: TbaCredentials) -> None:
    app = create_app(CREDS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        signed = Signed(http, tba)
        url = "http://127.0.0.1:9/ns/services/rest/record/v1/customer/eid:c-1"
        assert (await signed("PUT", url, {"lastName": "Doe"})).status_code == 204
        assert (await http.get("http://127.0.0.1:9/ns/_sim/stats")).json()["creates"] == {
            "customer": 1
        }
    assert isinstance(app.state.simulator, NetSuiteSimulator)


def test_runs_as_its_own_process(tmp_path: Path) -> None:
    port = free_port()
    env = {f"NS_{k.upper()}": v for k, v in CREDS.items()}
    with process_group(tmp_path) as group:
        proc = group.python(
            "netsuite-sim",
            ["-m", "simulators.netsuite.simulator", "--port", str(port), "--items", "1042"],
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/_sim/stats", proc)
        url = f"{base}/services/rest/record/v1/inventoryItem/1042"
        creds = TbaCredentials.from_mapping(CREDS)
        response = httpx.get(url, headers={"Authorization": sign_request("GET", url, creds)})
        assert response.status_code == 200 and response.json()["id"] == "1042"
        assert httpx.get(url).status_code == 401


def test_refuses_to_start_without_credentials(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NS_")}
    done = subprocess.run(
        [sys.executable, "-m", "simulators.netsuite.simulator", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode == 2
    assert "consumer_secret" in done.stderr
