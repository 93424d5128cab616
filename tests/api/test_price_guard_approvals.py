"""Held tier, group and customer prices through the operator API: the approval view names
the prices that tripped the guard, an approval makes every price it carried the baseline,
and neither a rejected tier cut nor an old tier price rides along with a bulk replay."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal
from typing import Any

from app.db import transaction
from app.flows.recorder import record_events
from app.models import utcnow
from kernel.canonical.events import make_event
from kernel.canonical.product import CustomerPrice, GroupPrice, Price, QuantityBreak
from tests.api.conftest import Gateway
from tests.api.test_operator_decisions import refusal, replay_dead, store_of
from tests.support.fake_connector import FakeConnector

D = Decimal
_seconds = itertools.count(1)


async def record_b2b(
    gw: Gateway,
    *,
    tier: str = "9.00",
    group: str = "8.00",
    customer: str = "7.50",
    sku: str = "SKU-1",
) -> int:
    """An ERP price with a 10+ tier, a wholesale group and one customer price, recorded as
    ingest records it (each newer than the last); returns its delivery to the shop."""
    price = Price(
        source="erp",
        sku=sku,
        currency="USD",
        base=D("10.00"),
        breaks=[QuantityBreak(min_quantity=D(10), price=D(tier))],
        group_prices=[GroupPrice(group="wholesale", price=D(group))],
        customer_prices=[CustomerPrice(customer_key="erp:customer:42", price=D(customer))],
        effective_at=utcnow(),
    )
    at = utcnow() - timedelta(hours=1) + timedelta(seconds=next(_seconds))
    async with transaction(gw.rt.sessions) as session:
        recorded = await record_events(
            session, gw.rt, "erp", [make_event("price.changed", price, at)]
        )
    (delivery_id,) = recorded.delivery_ids
    return delivery_id


def tiers(store: FakeConnector) -> list[str]:
    """The 10+ tier price of every price the store took, in order."""
    taken = [call.event.payload for call in store.calls if call.ok]
    return [str(p.breaks[0].price) for p in taken if isinstance(p, Price)]


async def held_item(gw: Gateway, delivery_id: int) -> dict[str, Any]:
    items = (await gw.ok("/approvals", event_type="price.changed"))["items"]
    (item,) = [i for i in items if i["id"] == delivery_id]
    return item  # type: ignore[no-any-return]


async def test_the_approval_view_names_each_price_that_tripped_the_guard(
    gw_flows: Gateway,
) -> None:
    await gw_flows.wait_status(await record_b2b(gw_flows), "delivered")
    held = await record_b2b(gw_flows, group="0.80", customer="0.75", tier="8.80")
    assert await gw_flows.status_of(held) == "held"

    item = await held_item(gw_flows, held)
    assert item["held_prices"] == [
        {"kind": "group", "key": "wholesale", "old": "8.00", "new": "0.80",
         "change_percent": "-90.0"},
        {"kind": "customer", "key": "erp:customer:42", "old": "7.50", "new": "0.75",
         "change_percent": "-90.0"},
    ]  # fmt: skip
    assert "group wholesale price changes from 8.00 to 0.80" in item["held_reason"]
    assert "customer erp:customer:42 price changes" in item["held_reason"]
    assert "break" not in item["held_reason"]  # -2.2%: within the guard

    approved = await gw_flows.write("POST", f"/approvals/{held}/approve")
    assert approved.status_code == 200, approved.text
    await gw_flows.wait_status(held, "delivered")
    # every price it carried is the new baseline, not only the base price
    again = await record_b2b(gw_flows, group="0.80", customer="0.75", tier="8.80")
    await gw_flows.wait_status(again, "delivered")
    back = await record_b2b(gw_flows, group="8.00", customer="0.75", tier="8.80")
    assert await gw_flows.status_of(back) == "held"  # +900% against the approved 0.80
    assert [p["kind"] for p in (await held_item(gw_flows, back))["held_prices"]] == ["group"]


async def test_a_rejected_tier_cut_is_never_sent_by_a_bulk_replay_of_dead_work(
    gw_flows: Gateway,
) -> None:
    store = store_of(gw_flows)
    await gw_flows.wait_status(await record_b2b(gw_flows), "delivered")
    cut = await record_b2b(gw_flows, tier="0.90")  # a 90% cut of the 10+ tier
    assert await gw_flows.status_of(cut) == "held"
    rejected = await gw_flows.write("POST", f"/approvals/{cut}/reject", json={"note": "typo"})
    assert rejected.json()["status"] == "rejected"
    # an outage kills other work; the operator's clean-up is to replay everything dead
    store.script.failing = refusal()
    other = await record_b2b(gw_flows, sku="SKU-2")
    await gw_flows.wait_status(other, "dead")
    store.script.failing = None

    body = await replay_dead(gw_flows)
    assert body["replayed"] == [other] and cut not in body["replayed"] + body["held"]
    await gw_flows.wait_status(other, "delivered")
    assert await gw_flows.status_of(cut) == "rejected"
    assert "0.90" not in tiers(store) and tiers(store) == ["9.00", "9.00"]


async def test_an_old_tier_price_replayed_passes_the_guard_again(gw_flows: Gateway) -> None:
    store = store_of(gw_flows)
    await gw_flows.wait_status(await record_b2b(gw_flows), "delivered")
    store.script.failing = refusal()
    old = await record_b2b(gw_flows, tier="8.50")  # within the guard, but the store refuses it
    await gw_flows.wait_status(old, "dead")
    store.script.failing = None
    raised = await record_b2b(gw_flows, tier="18.00")  # +100%: held, then approved
    await gw_flows.write("POST", f"/approvals/{raised}/approve")
    await gw_flows.wait_status(raised, "delivered")

    # 8.50 against today's approved 18.00 is a 53% cut: held instead of sent
    body = await replay_dead(gw_flows)
    assert body["replayed"] == [] and body["held"] == [old]
    assert "break (10+) price changes from 18.00 to 8.50" in body["items"][0]["reason"]
    (tripped,) = (await held_item(gw_flows, old))["held_prices"]
    assert tripped["kind"] == "break" and tripped["key"] == "10"
    assert (tripped["old"], tripped["new"]) == ("18.00", "8.50")
    assert tiers(store) == ["9.00", "18.00"]
