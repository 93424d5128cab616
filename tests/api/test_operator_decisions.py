"""Operator decisions are final unless re-decided, whatever clean-up follows them.

The natural clean-up after an outage is a bulk replay of everything dead. A price cut an
operator rejected must not ride along, and an old price replayed must pass the guard again.
"""

from __future__ import annotations

from typing import Any

from kernel.errors import PermanentError
from tests.api.conftest import Gateway
from tests.api.test_approvals import record_price
from tests.support.fake_connector import FakeConnector


def refusal() -> PermanentError:
    return PermanentError("422 Unprocessable: the store refused the write")


def store_of(gw: Gateway) -> FakeConnector:
    """The shop: takes prices, or refuses every call while ``script.failing`` is set."""
    assert gw.shop is not None
    return gw.shop


def prices(store: FakeConnector) -> list[str]:
    """The prices the store took, in order."""
    return [str(call.ctx.directives["effective_price"]) for call in store.calls if call.ok]


async def replay_dead(gw: Gateway, **extra: Any) -> dict[str, Any]:
    response = await gw.write(
        "POST", "/deliveries/replay", json={"status": "dead", "dry_run": False, **extra}
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_bulk_replay_of_dead_after_an_outage_never_sends_a_rejected_price(
    gw_flows: Gateway,
) -> None:
    store = store_of(gw_flows)
    first = await record_price(gw_flows, "19.99")
    await gw_flows.wait_status(first, "delivered")
    cut = await record_price(gw_flows, "1.99")  # a 90% cut: held
    assert await gw_flows.status_of(cut) == "held"
    rejected = await gw_flows.write("POST", f"/approvals/{cut}/reject", json={"note": "typo"})
    assert rejected.json()["status"] == "rejected"
    # an outage kills other work; the operator's clean-up is to replay everything dead
    store.script.failing = refusal()
    other = await record_price(gw_flows, "21.00", sku="SKU-2")
    await gw_flows.wait_status(other, "dead")
    store.script.failing = None

    dry = await gw_flows.write("POST", "/deliveries/replay", json={"status": "dead"})
    assert [i["id"] for i in dry.json()["items"]] == [other]  # exactly what it will send
    body = await replay_dead(gw_flows)
    assert body["replayed"] == [other] and cut not in body["replayed"] + body["held"]
    await gw_flows.wait_status(other, "delivered")
    assert await gw_flows.status_of(cut) == "rejected"
    assert "1.99" not in prices(store) and prices(store) == ["19.99", "21.00"]


async def test_a_replayed_price_passes_the_guard_again(gw_flows: Gateway) -> None:
    store = store_of(gw_flows)
    await gw_flows.wait_status(await record_price(gw_flows, "10.00"), "delivered")
    store.script.failing = refusal()
    old = await record_price(gw_flows, "9.00")  # within the guard, but the store refuses it
    await gw_flows.wait_status(old, "dead")
    store.script.failing = None
    raised = await record_price(gw_flows, "20.00")  # +100%: held, then approved
    await gw_flows.write("POST", f"/approvals/{raised}/approve")
    await gw_flows.wait_status(raised, "delivered")

    # 9.00 against today's 20.00 is a 55% cut: the replay holds it instead of sending it
    body = await replay_dead(gw_flows)
    assert body["replayed"] == [] and body["held"] == [old]
    (item,) = body["items"]
    assert item["becomes"] == "held" and "more than the 20% guard" in item["reason"]
    assert await gw_flows.status_of(old) == "held"
    assert prices(store) == ["10.00", "20.00"]
    one = await gw_flows.write("POST", f"/deliveries/{old}/replay")
    assert one.status_code == 409 and "held for a decision" in one.json()["error"]["message"]


async def test_a_rejected_delivery_is_reopened_only_as_held(gw_flows: Gateway) -> None:
    store = store_of(gw_flows)
    await gw_flows.wait_status(await record_price(gw_flows, "50.00"), "delivered")
    cut = await record_price(gw_flows, "5.00")
    await gw_flows.write("POST", f"/approvals/{cut}/reject")

    by_id = await gw_flows.write("POST", f"/deliveries/{cut}/replay")
    assert by_id.status_code == 200 and by_id.json()["status"] == "held"
    await gw_flows.write("POST", f"/approvals/{cut}/reject")
    bulk = await gw_flows.write(
        "POST", "/deliveries/replay", json={"status": "rejected", "dry_run": False}
    )
    assert bulk.json()["held"] == [cut] and bulk.json()["replayed"] == []
    await gw_flows.write("POST", f"/approvals/{cut}/reject")
    reopened = await gw_flows.write("POST", f"/approvals/{cut}/reopen", json={"note": "check"})
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["status"] == "held" and reopened.json()["decision"] == "reopened"
    assert prices(store) == ["50.00"]  # nothing went out before a new decision
    await gw_flows.write("POST", f"/approvals/{cut}/approve")
    await gw_flows.wait_status(cut, "delivered")
    assert prices(store) == ["50.00", "5.00"]
    not_rejected = await gw_flows.write("POST", f"/approvals/{cut}/reopen")
    assert not_rejected.status_code == 409
