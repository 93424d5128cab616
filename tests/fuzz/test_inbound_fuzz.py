"""Hostile but validly signed webhooks against the real ingest endpoint.

Every inbound parser (Shopify orders, customers, erasure, refunds and returns; the custom
shop's events; NetSuite's user-event posts) gets its real sample payloads mutated by
hypothesis: values replaced with huge, negative, NaN or infinite numbers, NUL characters,
lone surrogates, very long strings, values of the wrong type, nesting up to 50 levels, keys
removed or added. Each body is signed with the connection's real secret and posted to
``POST /webhooks/{connection_id}`` of the gateway running in process on the embedded default
(SQLite, in-process delivery). What must hold for every one of them:

- never a 5xx (an unhandled error would also surface here, raised by the ASGI transport);
- a 4xx stores nothing: no inbound event, no canonical event;
- a 202 stores the inbound event, one canonical event per returned id (pointing at it), and
  a delivery for every order event (orders are routed to the ERP);
- a 200 is a duplicate of something already stored, or a body the parser refused kept in
  quarantine (Shopify and NetSuite: one inbound event saying why, no canonical event);
- nothing stored is something Postgres would refuse, though SQLite takes it: no NUL or lone
  surrogate in any text or JSON column, no string over its varchar length, no number over
  its NUMERIC precision (so a 500 on Postgres shows up here, on the embedded default);
- nothing accepted is garbage for the ERP: quantities 0..10^9, amounts within 10^12, unit
  prices not negative, every order amount in the order currency, ids not empty.

Deterministic (``derandomize``) and bounded: a few hundred examples, well under a minute.
Deliveries are accepted in process (no connector calls out), so only ingest is exercised.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlmodel import SQLModel, col

from app.config import parse_config
from app.models import CanonicalEventRow, Delivery, InboundEvent
from app.runtime import Runtime
from connectors.custom import signing as custom_signing
from connectors.netsuite import inbound as netsuite_inbound
from connectors.shopify import inbound as shopify_inbound
from connectors.shopify import records as shopify_records
from connectors.shopify.inbound import sign as shopify_sign
from kernel.canonical.events import CanonicalEvent
from kernel.types import DeliveryContext, DeliveryResult, MappingNeed
from tests.conftest import NS_CREDS, NS_WEBHOOK_SECRET, SHOP_SECRET, make_settings, running_app
from tests.unit.custom.conftest import (
    customer_data,
    erasure_data,
    order_data,
    refund_data,
    return_data,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CUSTOM_SECRET = "whsec_" + base64.b64encode(b"fuzzing-the-custom-shop-0123456").decode()
EXAMPLES = 60  # per test; seven tests: a few hundred examples in all

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one gateway per test, not per example
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

CONFIG = f"""
connections:
  - id: shop
    type: shopify
    base_url: https://shop.myshopify.com
    credentials: {{webhook_secret: {SHOP_SECRET}, access_token: shpat_test}}
  - id: myshop
    type: custom
    base_url: https://myshop.example.com
    credentials: {{webhook_secret: "{CUSTOM_SECRET}"}}
  - id: erp
    type: netsuite
    base_url: http://127.0.0.1:9/ns
    credentials: {{{", ".join(f"{k}: {v}" for k, v in NS_CREDS.items())},
                   webhook_secret: {NS_WEBHOOK_SECRET}}}
    options: {{discount_item_id: "900", order_sources: [shop, myshop]}}
routes:
  - {{flow: orders, from: shop, to: erp}}
  - {{flow: orders, from: myshop, to: erp}}
  - {{flow: customers, from: shop, to: erp}}
  - {{flow: customers, from: myshop, to: erp}}
  - {{flow: returns, from: shop, to: erp}}
  - {{flow: returns, from: myshop, to: erp}}
  - {{flow: inventory, from: erp, to: shop}}
  - {{flow: products, from: erp, to: shop}}
  - {{flow: shipments, from: erp, to: shop}}
mappings:
  sku:
    erp: {{"SKU-RED-M": "1042", "TSHIRT-RED-M": "1042", "SKU2006-001": "7"}}
"""


# --- the gateway, accepting every delivery -------------------------------------------------


@dataclass
class Gateway:
    client: httpx.AsyncClient
    rt: Runtime
    statuses: Counter[int] = field(default_factory=Counter)
    quarantined: int = 0  # signed but unparseable: kept (the refusal of quarantining types)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    expect_accepted: bool = True  # some mutations (none at all, say) are still valid


async def _accept(event: CanonicalEvent, ctx: DeliveryContext) -> DeliveryResult:
    return DeliveryResult(summary=f"fuzz: accepted {event.type}")


def _no_mappings(event: CanonicalEvent) -> list[MappingNeed]:
    return []


@pytest.fixture
async def gateway(clean_db: str) -> AsyncIterator[Gateway]:
    config = parse_config(CONFIG, "fuzz-config")
    async with running_app(make_settings(clean_db), config) as (app, client):
        rt: Runtime = app.state.runtime
        for connector in rt.connectors.values():
            # ingest is under test; what the worker does afterwards must not call out
            connector.deliver = _accept  # type: ignore[method-assign]
            connector.required_mappings = _no_mappings  # type: ignore[method-assign]
        gw = Gateway(client, rt)
        yield gw
        await assert_postgres_would_store_everything(rt)  # what the worker wrote as well
        # the mutations must not all be refused (nor all accepted): both paths are exercised
        assert gw.quarantined or any(400 <= s < 500 for s in gw.statuses), gw.statuses
        if gw.expect_accepted:
            assert any(200 <= s < 300 for s in gw.statuses), gw.statuses


WireHeaders = list[tuple[bytes, bytes]]


async def _counts(rt: Runtime) -> tuple[int, int]:
    async with rt.sessions() as session:
        inbound = await session.scalar(sa.select(sa.func.count()).select_from(InboundEvent))
        events = await session.scalar(
            sa.select(sa.func.count())
            .select_from(CanonicalEventRow)
            .where(col(CanonicalEventRow.inbound_event_id).is_not(None))
        )
    return int(inbound or 0), int(events or 0)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _unstorable_text(text: str) -> str | None:
    if "\x00" in text:
        return "a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone surrogate"
    return None


async def assert_postgres_would_store_everything(rt: Runtime) -> None:
    """Every row of every table fits the column types Postgres enforces and SQLite does not."""
    problems: list[str] = []
    async with rt.sessions() as session:
        for table in SQLModel.metadata.sorted_tables:
            rows = (await session.execute(sa.select(table))).mappings().all()
            for row in rows:
                for column in table.columns:
                    value = row[column.name]
                    where = f"{table.name}.{column.name} (row {row.get('id', '?')})"
                    if value is None or isinstance(value, bytes):
                        continue
                    if isinstance(column.type, sa.Numeric) and column.type.precision:
                        digits = column.type.precision - (column.type.scale or 0)
                        if not abs(Decimal(str(value))) < Decimal(10) ** digits:
                            problems.append(f"{where}: {value} overflows {column.type}")
                        continue
                    length = getattr(column.type, "length", None)
                    if isinstance(value, str) and length and len(value) > length:
                        problems.append(f"{where}: {len(value)} characters, over {length}")
                    for text in _strings(value):
                        if (bad := _unstorable_text(text)) is not None:
                            problems.append(f"{where}: {bad} in {text[:60]!r}")
    assert not problems, "rows Postgres would refuse:\n" + "\n".join(problems[:20])


MAX_ID = 200
_ID_KEYS = frozenset({"external_id", "line_id", "order_line_id", "variant_id", "product_id"})


def assert_sane_for_the_erp(payload: dict[str, Any], entity_type: str, shown: str) -> None:
    """What an accepted event carries is something an ERP can book."""

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            if set(value) == {"amount", "currency"}:
                assert abs(Decimal(value["amount"])) < Decimal(10) ** 12, f"{path} {shown}"
            for key, item in value.items():
                here = f"{path}.{key}"
                if key in ("quantity", "min_quantity") and item is not None:
                    assert 0 <= Decimal(item) <= 10**9, f"{here}={item} {shown}"
                if key in _ID_KEYS and item is not None:
                    assert item.strip() and len(item) <= MAX_ID, f"{here}={item!r} {shown}"
                walk(item, here)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")

    walk(payload, "payload")
    if entity_type == "order":
        assert payload["external_id"].strip(), shown
        for i, line in enumerate(payload["lines"]):
            assert Decimal(line["unit_price"]["amount"]) >= 0, f"lines[{i}] {shown}"
            if line["sku"] is not None:
                assert line["sku"].strip(), f"lines[{i}].sku {shown}"
        currencies = {
            money["currency"]
            for key in ("lines", "shipping_lines", "discounts", "tax_lines", "totals")
            for money in _moneys(payload[key])
        }
        assert currencies <= {payload["currency"]}, f"{currencies} in one order: {shown}"


def _moneys(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        if set(value) == {"amount", "currency"}:
            return [value]
        return [m for v in value.values() for m in _moneys(v)]
    if isinstance(value, list):
        return [m for v in value for m in _moneys(v)]
    return []


async def post_and_check(
    gw: Gateway, connection_id: str, body: bytes, headers: Mapping[str, str] | WireHeaders
) -> httpx.Response:
    """Post one signed webhook and check what it left in the database."""
    before = await _counts(gw.rt)
    response = await gw.client.post(f"/webhooks/{connection_id}", content=body, headers=headers)
    gw.statuses[response.status_code] += 1
    shown = f"{response.status_code} {response.text[:400]} for {body[:400]!r}"
    assert response.status_code < 500, shown
    assert response.status_code != 401, f"the fuzz signs every body: {shown}"
    after = await _counts(gw.rt)
    if response.status_code >= 400:
        assert after == before, f"a refused webhook left rows behind: {shown}"
        assert response.json()["error"]["message"], shown  # says what was wrong
        return response
    answer = response.json()
    if response.status_code == 200 and answer.get("quarantined") and not answer["duplicate"]:
        gw.quarantined += 1
        assert after == (before[0] + 1, before[1]), shown
        assert answer["reason"] and answer["event_ids"] == [], shown
        async with gw.rt.sessions() as session:
            row = await session.get(InboundEvent, answer["inbound_event_id"])
        assert row is not None and row.status == "quarantined" and row.note, shown
        await assert_postgres_would_store_everything(gw.rt)
        return response
    if response.status_code == 200:
        assert answer["duplicate"] is True, shown
        assert after == before, shown
        return response
    assert response.status_code == 202, shown
    event_ids = answer["event_ids"]
    assert after == (before[0] + 1, before[1] + len(event_ids)), shown
    async with gw.rt.sessions() as session:
        rows = (
            await session.execute(
                sa.select(CanonicalEventRow).where(col(CanonicalEventRow.id).in_(event_ids))
            )
        ).scalars()
        stored = {row.id: row for row in rows}
        assert set(stored) == set(event_ids), shown
        for row in stored.values():
            assert row.inbound_event_id == answer["inbound_event_id"], shown
            assert_sane_for_the_erp(row.payload, row.entity_type, shown)
            if row.entity_type == "order":
                deliveries = await session.scalar(
                    sa.select(sa.func.count())
                    .select_from(Delivery)
                    .where(col(Delivery.canonical_event_id) == row.id)
                )
                assert deliveries, f"an accepted order has no delivery: {shown}"
    await assert_postgres_would_store_everything(gw.rt)
    return response


# --- mutations of the real sample payloads -------------------------------------------------


class Raw(str):
    """A JSON number written as is (``1e999999``), which json.dumps could not write."""


def nested(depth: int) -> Any:
    value: Any = "deep"
    for i in range(depth):
        value = [value] if i % 2 else {"n": value}
    return value


NUMBERS = st.sampled_from(
    [
        Raw("1e30"),
        Raw("1e999999"),
        Raw("-1e999999"),
        Raw("1.5e-999999"),
        Raw("-0.0"),
        Raw("123456789012345678901234567890.123456789"),
        -1000,
        -1,
        0,
        10**30,
        2**63,
        "1e30",
        "-1000",
        "-0.01",
        "NaN",
        "Infinity",
        "-inf",
        "1.0000001",
        "0x1F",
        "1_000",
    ]
)
TEXTS = st.sampled_from(
    [
        "\u0000",
        "a\u0000b",
        "\ud800",
        "x\udfff",
        "\udbff\udfff",  # a valid pair: the astral character U+10FFFF
        "",
        "   ",
        "é",
        "\u00b2",
        "\u202e",
        "<script>",
        "2026-13-45T99:99:99Z",
        "9999-12-31T23:59:59-05:00",
        "2026-11-01T12:30:00",
    ]
)
LONG = st.sampled_from([129, 201, 257, 1_001, 10_001, 100_000]).map(lambda n: "x" * n)
WRONG_TYPES = st.sampled_from([True, False, None, [], {}, [1, "2"], {"a": 1}])
HOSTILE = st.one_of(
    NUMBERS,
    TEXTS,
    LONG,
    WRONG_TYPES,
    st.integers(min_value=1, max_value=50).map(nested),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: Raw(repr(f))),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.text(max_size=12),
)


def locations(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document: each key of each object, each item of each array."""
    out = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += locations(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += locations(item, (*path, index))
    return out


@dataclass(frozen=True)
class Mutation:
    kind: str  # set | delete | add
    path: tuple[Any, ...]
    value: Any = None

    def apply(self, doc: Any) -> None:
        parent = doc
        for part in self.path[:-1]:
            try:
                parent = parent[part]
            except (KeyError, IndexError, TypeError):
                return  # an earlier mutation took it away
        last = self.path[-1]
        if isinstance(parent, dict) or (isinstance(parent, list) and last < len(parent)):
            if self.kind == "set":
                parent[last] = self.value
            elif self.kind == "delete":
                if isinstance(parent, dict):
                    parent.pop(last, None)
                else:
                    parent.pop(last)
            elif isinstance(parent, dict):  # add: an unexpected key beside this one
                parent["fuzz\u0000" if len(self.path) % 2 else "fuzz_extra"] = self.value


def _value_at(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float | Decimal):
        return True
    try:
        return isinstance(value, str) and Decimal(value).is_finite()
    except ArithmeticError:
        return False


def _hostile_like(value: Any) -> st.SearchStrategy[Any]:
    """Mostly values of the same kind gone wrong (numbers for numbers, text for text)."""
    if _numeric(value):
        return st.one_of(NUMBERS, NUMBERS, HOSTILE)
    if isinstance(value, str):
        return st.one_of(TEXTS, LONG, HOSTILE)
    return HOSTILE


def mutations_of(doc: Any, read: frozenset[str] | None = None) -> st.SearchStrategy[list[Mutation]]:
    """Up to four mutations of ``doc``; most hit a value the parser reads (a key in ``read``,
    or anything when ``read`` is None) with a value of its own kind gone wrong."""
    places = locations(doc)
    leaves = [
        p
        for p in places
        if not isinstance(_value_at(doc, p), dict | list)
        and (read is None or all(part in read for part in p if isinstance(part, str)))
    ]
    targeted = st.sampled_from(leaves).flatmap(
        lambda p: _hostile_like(_value_at(doc, p)).map(lambda v: Mutation("set", p, v))
    )
    anywhere = st.sampled_from(places)
    other = st.one_of(
        st.builds(Mutation, st.just("set"), anywhere, HOSTILE),
        st.builds(Mutation, st.just("delete"), anywhere),
        st.builds(Mutation, st.just("add"), anywhere, HOSTILE),
    )
    return st.lists(st.one_of(targeted, targeted, other), min_size=0, max_size=4)


def _field_names(*modules: Any) -> frozenset[str]:
    """The JSON keys a parser reads: every field of every pydantic model in ``modules``."""
    names: set[str] = set()
    for module in modules:
        for item in vars(module).values():
            if isinstance(item, type) and issubclass(item, BaseModel):
                names.update(item.model_fields)
    return frozenset(names)


SHOPIFY_READS = _field_names(shopify_inbound, shopify_records)


def encode(doc: Any) -> bytes:
    """JSON as a sender would write it: ASCII escapes (``\\u0000``, ``\\ud800``), raw numbers."""
    raws: list[str] = []

    def default(value: Any) -> Any:
        if isinstance(value, Decimal):
            raws.append(str(value))
            return f"@@raw-{len(raws) - 1}@@"
        raise TypeError(type(value).__name__)

    def mark(value: Any) -> Any:
        if isinstance(value, Raw):
            raws.append(str(value))
            return f"@@raw-{len(raws) - 1}@@"
        if isinstance(value, dict):
            return {k: mark(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mark(v) for v in value]
        return value

    text = json.dumps(mark(doc), default=default)
    for i, raw in enumerate(raws):
        text = text.replace(f'"@@raw-{i}@@"', raw)
    return text.encode("ascii")


def mutated(doc: Any, mutations: list[Mutation]) -> bytes:
    doc = copy.deepcopy(doc)
    for mutation in mutations:
        mutation.apply(doc)
    return encode(doc)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(), parse_float=Decimal)


# --- signing as each sender does -----------------------------------------------------------


def shopify_headers(gw: Gateway, body: bytes, topic: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": shopify_sign(body, SHOP_SECRET),
        "X-Shopify-Shop-Domain": "shop.myshopify.com",
        "X-Shopify-Webhook-Id": f"fuzz-{next(gw.ids)}",
        "X-Shopify-Triggered-At": "2026-11-26T12:00:00Z",
    }


def custom_headers(gw: Gateway, body: bytes) -> dict[str, str]:
    headers = custom_signing.sign_headers(
        CUSTOM_SECRET, f"msg_fuzz_{next(gw.ids)}", body, timestamp=int(time.time())
    )
    return {**headers, "Content-Type": "application/json"}


def netsuite_headers(body: bytes) -> dict[str, str]:
    return netsuite_inbound.signed_headers(body, NS_WEBHOOK_SECRET)


# --- the tests -----------------------------------------------------------------------------


def cases(documents: dict[str, Any], read: frozenset[str] | None = None) -> Any:
    """(name, document, mutations of it) for one of ``documents``."""
    return st.sampled_from(sorted(documents)).flatmap(
        lambda name: st.tuples(
            st.just(name), st.just(documents[name]), mutations_of(documents[name], read)
        )
    )


SHOPIFY_ORDER = load("shopify_orders_create.json")
SHOPIFY_ORDERS = {
    topic: SHOPIFY_ORDER for topic in ("orders/create", "orders/updated", "orders/cancelled")
}


@FUZZ
@given(case=cases(SHOPIFY_ORDERS, SHOPIFY_READS))
async def test_shopify_orders(gateway: Gateway, case: tuple[str, Any, list[Mutation]]) -> None:
    topic, order, mutations = case
    body = mutated(order, mutations)
    await post_and_check(gateway, "shop", body, shopify_headers(gateway, body, topic))


SHOPIFY_RECORDS: dict[str, Any] = {
    "customers/create": load("shopify_customers_create.json"),
    "customers/update": load("shopify_customers_create.json"),
    "customers/redact": load("shopify_customers_redact.json"),
    "refunds/create": load("shopify_refunds_create.json"),
    "returns/request": load("shopify_returns_request.json"),
}


@FUZZ
@given(case=cases(SHOPIFY_RECORDS, SHOPIFY_READS))
async def test_shopify_customers_redact_refunds_and_returns(
    gateway: Gateway, case: tuple[str, Any, list[Mutation]]
) -> None:
    topic, payload, mutations = case
    body = mutated(payload, mutations)
    await post_and_check(gateway, "shop", body, shopify_headers(gateway, body, topic))


def _wire(value: str) -> bytes:
    """A header value as bytes on the wire: latin-1 where it can be (Starlette decodes it
    so, which is how "\u00b2" reaches a parser), else UTF-8."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


HEADER_VALUES = st.one_of(
    st.sampled_from(
        ["orders/" + "x" * 122, "x" * 300, "x" * 2000, "orders/créate", " ", "\t", "a\x7fb"]
    ),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=300),
)


@FUZZ
@given(
    name=st.sampled_from(
        ["X-Shopify-Topic", "X-Shopify-Webhook-Id", "X-Shopify-Event-Id", "X-Shopify-Shop-Domain"]
    ),
    value=HEADER_VALUES,
)
async def test_shopify_header_values(gateway: Gateway, name: str, value: str) -> None:
    body = (FIXTURES / "shopify_orders_create.json").read_bytes()
    headers = {**shopify_headers(gateway, body, "orders/create"), name: value}
    # latin-1, as the bytes arrive on the wire and Starlette decodes them
    raw = [(k.encode(), _wire(v)) for k, v in headers.items() if v.strip()]
    await post_and_check(gateway, "shop", body, raw)


CUSTOM_EVENTS: dict[str, Any] = {
    event_type: {"type": event_type, "timestamp": "2026-11-01T12:30:00Z", "data": data}
    for event_type, data in (
        ("order.created", order_data()),
        ("order.updated", order_data()),
        ("order.cancelled", order_data(status="cancelled")),
        ("customer.upserted", customer_data()),
        ("customer.erase_requested", erasure_data()),
        ("return.requested", return_data()),
        ("refund.created", refund_data()),
    )
}


@FUZZ
@given(case=cases(CUSTOM_EVENTS))
async def test_custom_shop_events(gateway: Gateway, case: tuple[str, Any, list[Mutation]]) -> None:
    _, envelope, mutations = case
    body = mutated(envelope, mutations)
    await post_and_check(gateway, "myshop", body, custom_headers(gateway, body))


NETSUITE_POSTS: dict[str, Any] = {
    f"{record_type}.{event_type}": {
        "eventId": f"{record_type}-{record['id']}-{event_type}",
        "eventType": event_type,
        "recordType": record_type,
        "id": record["id"],
        "lastModifiedDate": "2026-11-02T10:15:00Z",
        "record": record,
    }
    for record_type, record in load("netsuite_user_event_records.json").items()
    for event_type in ("create", "edit")
}


@FUZZ
@given(case=cases(NETSUITE_POSTS))
async def test_netsuite_user_events(
    gateway: Gateway, case: tuple[str, Any, list[Mutation]]
) -> None:
    _, post, mutations = case
    body = mutated(post, mutations)
    await post_and_check(gateway, "erp", body, netsuite_headers(body))


SIGNATURE_HEADERS = {
    "myshop": custom_signing.TIMESTAMP_HEADER,
    "erp": netsuite_inbound.TIMESTAMP_HEADER,
}


@FUZZ
@given(
    connection=st.sampled_from(sorted(SIGNATURE_HEADERS)),
    stamp=st.one_of(
        st.sampled_from(["\u00b2", "1\u00b2", "\u0661\u0662", "9" * 5000, "1e9", "-1", "0x10"]),
        st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF), max_size=20),
    ),
    signature=st.one_of(
        st.none(),
        st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF), max_size=60),
    ),
)
async def test_signature_headers(
    gateway: Gateway, connection: str, stamp: str, signature: str | None
) -> None:
    """A hostile timestamp or signature is a 401, never a crash (validly signed otherwise)."""
    gateway.expect_accepted = False
    body = encode(CUSTOM_EVENTS["order.created"] if connection == "myshop" else {"eventId": "x"})
    headers = custom_headers(gateway, body) if connection == "myshop" else netsuite_headers(body)
    headers[SIGNATURE_HEADERS[connection]] = stamp
    if signature is not None:
        name = "webhook-signature" if connection == "myshop" else netsuite_inbound.SIGNATURE_HEADER
        headers[name] = ("v1," if connection == "myshop" else "sha256=") + signature
    raw = [(k.encode(), _wire(v)) for k, v in headers.items()]
    before = await _counts(gateway.rt)
    response = await gateway.client.post(f"/webhooks/{connection}", content=body, headers=raw)
    gateway.statuses[response.status_code] += 1
    assert response.status_code == 401 or (
        stamp.isascii() and stamp.isdigit() and 400 <= response.status_code < 500
    ), f"{response.status_code} {response.text[:300]}"
    assert await _counts(gateway.rt) == before


@FUZZ
@given(
    connection=st.sampled_from(["shop", "myshop", "erp"]),
    body=st.one_of(
        st.binary(max_size=200),
        st.integers(min_value=1, max_value=50).map(lambda n: encode(nested(n))),
        st.sampled_from(
            [
                b"[" * 100_000,
                b'{"a": NaN}',
                b"\xff\xfe",
                b"null",
                b'"\\ud800"',
                b"{" + b'"a":1,' * 10 + b'"a":2}',
            ]
        ),
    ),
)
async def test_any_bytes_at_all(gateway: Gateway, connection: str, body: bytes) -> None:
    gateway.expect_accepted = False
    if connection == "shop":
        headers = shopify_headers(gateway, body, "orders/create")
    elif connection == "myshop":
        headers = custom_headers(gateway, body)
    else:
        headers = netsuite_headers(body)
    await post_and_check(gateway, connection, body, headers)
