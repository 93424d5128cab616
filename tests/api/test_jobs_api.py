"""Scheduled jobs in the operator API: their state, and running one now."""

from __future__ import annotations

from tests.api.conftest import VIEWER, Gateway


async def test_jobs_are_listed_and_one_can_be_run_now(gw_flows: Gateway) -> None:
    names = {job["name"] for job in (await gw_flows.ok("/jobs"))["items"]}
    assert {"prices", "reconcile"} <= names
    run = await gw_flows.write("POST", "/jobs/prices/run")
    assert run.status_code == 200, run.text
    assert run.json() == {"name": "prices", "result": 0}
    after = {job["name"]: job for job in (await gw_flows.ok("/jobs"))["items"]}
    assert after["prices"]["last_error"] is None


async def test_unknown_job_is_404_listing_the_jobs(gw_flows: Gateway) -> None:
    answer = await gw_flows.write("POST", "/jobs/nightly-magic/run")
    assert answer.status_code == 404
    assert "reconcile" in answer.json()["error"]["hint"]


async def test_running_a_job_needs_an_operator(gw_flows: Gateway) -> None:
    answer = await gw_flows.client.post("/api/v1/jobs/prices/run", headers=VIEWER)
    assert answer.status_code == 403
