"""Ingest against replayed, forged and malformed webhooks that carry a valid signature."""

from __future__ import annotations

import json

import sqlalchemy as sa

from app.ingest.router import WebhookAccepted
from app.models import InboundEvent
from tests.api.conftest import Gateway
from tests.api.test_ingest_and_health import count
from tests.conftest import SHOP_SECRET
from tests.support.shopify import order_payload, signed


async def post(gw: Gateway, body: bytes, **kw: str) -> tuple[int, dict[str, object]]:
    response = await gw.client.post(
        "/webhooks/shop", content=body, headers=signed(body, SHOP_SECRET, **kw)
    )
    return response.status_code, response.json()


async def test_a_captured_body_resent_with_a_fresh_webhook_id_is_a_duplicate(gw: Gateway) -> None:
    body = json.dumps(order_payload(901)).encode()
    first, _ = await post(gw, body, webhook_id="wh-original")
    replayed, answer = await post(gw, body, webhook_id="wh-forged-fresh-id")
    assert (first, replayed) == (202, 200) and answer["duplicate"] is True
    assert await count(gw, InboundEvent) == 1


async def test_long_webhook_ids_sharing_a_prefix_are_different_events(gw: Gateway) -> None:
    prefix = "w" * 260
    one, _ = await post(gw, json.dumps(order_payload(902)).encode(), webhook_id=prefix + "-a")
    two, answer = await post(gw, json.dumps(order_payload(903)).encode(), webhook_id=prefix + "-b")
    assert (one, two) == (202, 202), answer
    async with gw.rt.sessions() as session:
        keys = list(await session.scalars(sa.select(InboundEvent.dedupe_key)))
    assert len(set(keys)) == 2 and all(k.startswith("sha256:") and len(k) <= 256 for k in keys)


async def test_signature_headers_are_never_stored(gw: Gateway) -> None:
    body = json.dumps(order_payload(904)).encode()
    status, _ = await post(gw, body)
    assert status == 202
    async with gw.rt.sessions() as session:
        (headers,) = list(await session.scalars(sa.select(InboundEvent.headers)))
    assert "x-shopify-topic" in headers
    assert not [name for name in headers if "hmac" in name or "signature" in name]


async def test_json_nested_500_deep_is_refused_before_parsing(gw: Gateway) -> None:
    order = order_payload(905)
    order["note_attributes"] = [{"name": "x", "value": json.loads("[" * 500 + "]" * 500)}]
    status, answer = await post(gw, json.dumps(order).encode())
    assert status == 422 and "nested deeper than 64" in json.dumps(answer)
    assert await count(gw, InboundEvent) == 0
    # brackets inside strings are text, not depth
    order["note"] = "[" * 500
    del order["note_attributes"]
    status, _ = await post(gw, json.dumps(order).encode())
    assert status == 202


async def test_a_topic_longer_than_the_column_is_a_400_not_a_500(gw: Gateway) -> None:
    status, answer = await post(gw, json.dumps(order_payload(906)).encode(), topic="o" * 129)
    assert status == 400, answer
    assert await count(gw, InboundEvent) == 0


async def test_every_answer_is_the_documented_model(gw: Gateway) -> None:
    body = json.dumps(order_payload(904)).encode()
    answers = [await post(gw, body), await post(gw, body)]  # accepted, then a duplicate
    answers.append(await post(gw, b'{"id": 905, "line_items": "not a list"}'))  # quarantined
    assert [status for status, _ in answers] == [202, 200, 200]
    for _, answer in answers:
        # the keys and types the OpenAPI document promises, no more
        assert WebhookAccepted.model_validate(answer).model_dump() == answer
    assert answers[1][1]["duplicate"] is True and answers[2][1]["quarantined"] is True
    assert isinstance(answers[2][1]["reason"], str) and answers[0][1]["reason"] is None
