"""The SuiteScript user-event script, run for real: Node executes
``connectors/netsuite/user_event_script.js`` against fakes of the N/ modules built from the
SuiteScript docs (``tests/netsuite_script``), on records shaped like NetSuite's
(``tests/netsuite_script/cases``). What it posts must equal the golden payloads in
``tests/fixtures/netsuite_script``, and those same files must verify and parse, through the
gateway's own parser, into the canonical events a store needs. One Node process runs every case.

``UPDATE_GOLDEN=1`` rewrites the golden files from the script's output (review the diff!).
Without ``node`` the test is skipped outside CI and fails in CI (``CI=true``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from connectors.netsuite import inbound
from connectors.netsuite.connector import NetSuiteConnector
from kernel.canonical.customer import Customer
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.inventory import InventoryLevel
from kernel.canonical.product import Price, Product
from kernel.canonical.returns import CreditMemo, Return
from kernel.canonical.shipment import Shipment
from simulators.netsuite.script_shape import script_record, shape_errors
from simulators.netsuite.simulator import NetSuiteSimulator
from tests.support.connectors import connect
from tests.unit.netsuite.conftest import context, event_for, make_connection, realistic_order

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "connectors" / "netsuite" / "user_event_script.js"
HARNESS = ROOT / "tests" / "netsuite_script"
GOLDEN = ROOT / "tests" / "fixtures" / "netsuite_script"
SECRET = "whsec-netsuite"  # the API secret's value in tests/netsuite_script/account.json
ACCOUNT_ZONE = ZoneInfo("America/New_York")
NODE = shutil.which("node")
IN_CI = os.environ.get("CI") == "true"

CASES = {path.stem: json.loads(path.read_text()) for path in sorted(HARNESS.glob("cases/*.json"))}
GOLDEN_ABOUT = (
    "What connectors/netsuite/user_event_script.js posts for tests/netsuite_script/cases/{}.json "
    "(the test runs the script under Node and compares; UPDATE_GOLDEN=1 rewrites this file). "
    "The same test verifies its signature and parses it with connectors/netsuite/inbound.py."
)


def wire(body: Any) -> bytes:
    """The bytes JSON.stringify gives for ``body`` (same key order, no spaces, raw UTF-8)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


# --- running the script -----------------------------------------------------------------------


def variants() -> dict[str, dict[str, Any]]:
    """Extra cases built here: date handling across zones and formats, errors, a big order."""
    out: dict[str, dict[str, Any]] = {}
    fulfilment = CASES["itemfulfillment-ship"]
    formats = [
        ("M/D/YYYY", "en_US"),
        ("DD.MM.YYYY", "de_DE"),
        ("YYYY-MM-DD", "sv_SE"),
        ("DD-Mon-YYYY", "fr_FR"),
        ("D MONTH, YYYY", "es_ES"),
        ("DD-MONTH-YYYY", "ja_JP"),
    ]
    zones = ["Pacific/Auckland", "Asia/Kolkata", "America/Los_Angeles", "Pacific/Honolulu"]
    for midnight in ("user", "server"):
        for zone in zones:
            for pattern, language in formats:
                name = f"date {midnight} {zone} {pattern} {language}"
                user = {"TIMEZONE": zone, "DATEFORMAT": pattern, "LANGUAGE": language}
                out[name] = {**fulfilment, "name": name, "user": user, "dateZone": midnight}
    customer = CASES["customer-create"]
    out["refused"] = {**customer, "name": "refused", "response": {"code": 422, "body": "no"}}
    out["unreachable"] = {
        **customer,
        "name": "unreachable",
        "response": {"throws": {"name": "SSS_CONNECTION_TIME_OUT", "message": "timed out"}},
    }
    lines = [
        {
            "item": ["select", str(50_000 + i), f"BULK : BULK-{i}"],
            "quantity": ["float", 1],
            "location": ["select", "1", "Main Warehouse"],
        }
        for i in range(300)
    ]
    order = CASES["salesorder-create"]
    big = {**order["record"], "id": "9900", "sublists": {"item": lines}}
    out["big order"] = {**order, "name": "big order", "record": big}
    return out


def account() -> dict[str, Any]:
    data = json.loads((HARNESS / "account.json").read_text())
    tables = data["suiteql"]
    for i in range(300):  # the big order's items, stocked at the main warehouse
        tables["item"].append({"id": 50_000 + i, "itemid": f"BULK-{i}", "parent": None})
        tables["aggregateitemlocation"].append(
            {"item": 50_000 + i, "location": 1, "quantityonhand": i, "quantitycommitted": 1}
        )
    return data


@pytest.fixture(scope="module")
def runs() -> dict[str, dict[str, Any]]:
    if NODE is None:
        reason = (
            "node is not installed: the NetSuite user-event script is NOT being tested. "
            "Install Node.js 18+ (e.g. apt-get install nodejs); under CI this is a failure."
        )
        if IN_CI:
            pytest.fail(reason)
        warnings.warn(reason, stacklevel=1)  # in the summary even without -rs
        pytest.skip(reason)
    cases = [*CASES.values(), *variants().values()]
    proc = subprocess.run(
        [NODE, str(HARNESS / "run.js"), str(SCRIPT)],
        input=json.dumps({"account": account(), "cases": cases}),
        capture_output=True,
        text=True,
        timeout=120,
        # NetSuite runs server scripts in Pacific time; the script must not depend on it
        env={**os.environ, "TZ": "America/Los_Angeles"},
        check=False,
    )
    assert proc.returncode == 0, f"node failed:\n{proc.stderr[-3000:]}"
    return {run["name"]: run for run in json.loads(proc.stdout)}


def only_post(run: dict[str, Any]) -> dict[str, Any]:
    assert run["thrown"] is None, run["thrown"]
    assert [log for log in run["logs"] if log["level"] == "error"] == [], run["logs"]
    (post,) = run["posts"]
    return dict(post)


# --- the script's posts are the golden payloads -------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_script_posts_the_golden_payload(runs: dict[str, dict[str, Any]], name: str) -> None:
    post = only_post(runs[name])
    body = json.loads(post["body"])
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden = {"_about": GOLDEN_ABOUT.format(name), **post, "body": body}
        path.write_text(json.dumps(golden, indent=2, ensure_ascii=False) + "\n")
    golden = json.loads(path.read_text())
    assert (post["url"], post["headers"]) == (golden["url"], golden["headers"])
    assert body == golden["body"]
    assert post["body"].encode() == wire(golden["body"])  # so the golden signature holds
    assert runs[name]["usage"] <= 100  # of the 1,000 units a user event script has


def test_every_case_has_a_golden_payload_and_no_golden_is_stale() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == sorted(CASES)


# --- the golden payloads are what the gateway understands ------------------------------------


def connector() -> NetSuiteConnector:
    config = make_connection(
        timezone="America/New_York",
        base_currency="USD",
        order_sources=["shop-eu"],
        custom_fields={
            "sale_price": "custitem_gw_sale_price",
            "sale_start": "custitem_gw_sale_start",
            "sale_end": "custitem_gw_sale_end",
            "map_price": "custitem_gw_map_price",
            "reserved": "custrecord_gw_qty_reserved",
            "return_reason": "custcol_gw_return_reason",
            "disposition": "custcol_gw_disposition",
        },
    )
    config.credentials["webhook_secret"] = type(config.credentials["token_id"])(SECRET)
    return connect(NetSuiteConnector, config, httpx.AsyncClient())


def golden(name: str) -> tuple[dict[str, str], bytes]:
    data = json.loads((GOLDEN / f"{name}.json").read_text())
    return data["headers"], wire(data["body"])


def parsed(name: str) -> list[CanonicalEvent]:
    headers, body = golden(name)
    return connector().parse_webhook(headers, body).events


def of(events: list[CanonicalEvent], kind: str, model: type[Any]) -> list[Any]:
    return [e.payload_as(model) for e in events if e.type == kind]


def levels(events: list[CanonicalEvent]) -> list[tuple[str, str, Decimal, Decimal]]:
    found = of(events, "inventory.level_changed", InventoryLevel)
    return [(lv.sku, lv.location, lv.on_hand, lv.allocated) for lv in found]


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_payloads_are_signed_for_the_connection(name: str) -> None:
    headers, body = golden(name)
    sent = int(headers[inbound.TIMESTAMP_HEADER])
    inbound.verify(headers, body, SECRET, now=sent + 1)
    with pytest.raises(Exception, match="does not match"):
        inbound.verify(headers, body.replace(b'"id":"', b'"id":"9', 1), SECRET, now=sent)


def test_item_sku_parent_prices_in_base_currency_and_stock_per_location() -> None:
    events = parsed("inventoryitem-edit")
    (product,) = of(events, "product.upserted", Product)
    # the item's own itemid, not the "TSHIRT : TSHIRT-RED-M" text NetSuite shows for it
    assert (product.sku, product.parent_sku, product.weight_unit) == (
        "TSHIRT-RED-M",
        "TSHIRT",
        "kg",
    )
    (price,) = of(events, "price.changed", Price)
    assert (price.currency, price.base, price.cost, price.map_price) == (
        "USD",
        Decimal("19.99"),
        Decimal("7.1"),
        Decimal("17.5"),
    )
    assert [(b.min_quantity, b.price) for b in price.breaks] == [(10, Decimal(18))]
    assert [(g.group, g.price) for g in price.group_prices] == [("Wholesale", Decimal(12))]
    # a date field set in Sydney to 20 November is 20 November, not the 19th in UTC
    assert price.sale is not None and price.sale.starts_at is not None
    assert price.sale.starts_at == datetime(2026, 11, 20, tzinfo=ACCOUNT_ZONE)
    assert levels(events) == [("TSHIRT-RED-M", "1", 38, 1), ("TSHIRT-RED-M", "2", -3, 0)]


def test_assembly_items_are_items_and_month_names_are_read() -> None:
    events = parsed("assemblyitem-create")
    assert [e.type for e in events] == [
        "product.upserted",
        "price.changed",
        "inventory.level_changed",
    ]
    (price,) = of(events, "price.changed", Price)
    assert price.sale is None  # no sale price, but its start date was readable:
    _, body = golden("assemblyitem-create")
    assert json.loads(body)["record"]["custitem_gw_sale_start"] == "2027-03-01"


def test_customer_currency_is_an_iso_code_and_addresses_come_whole() -> None:
    (customer,) = of(parsed("customer-create"), "customer.upserted", Customer)
    assert customer.credit_limit is not None
    assert (customer.credit_limit.amount, customer.credit_limit.currency) == (5000, "EUR")
    assert (customer.terms, customer.group, customer.tax_exempt) == ("Net 30", "Wholesale", True)
    assert (customer.default_shipping, customer.default_billing) == (0, 1)
    shipping = customer.addresses[0]
    assert (shipping.line1, shipping.city, shipping.postal_code, shipping.country_code) == (
        "1 Rue de la Paix",
        "Paris",
        "75002",
        "FR",
    )
    assert (shipping.first_name, shipping.last_name, shipping.company) == (
        "Ada",
        "Lovelace",
        "ACME Analytical Engines",
    )


def test_an_inline_edit_posts_the_whole_customer() -> None:
    (customer,) = of(parsed("customer-xedit"), "customer.upserted", Customer)
    assert (customer.first_name, customer.email) == ("Grace", "grace@example.com")
    assert customer.tax_exempt is False  # a SuiteTax account has no taxable field


def test_fulfilment_is_a_shipment_of_the_ticked_lines_and_moves_stock() -> None:
    events = parsed("itemfulfillment-ship")
    (shipment,) = of(events, "shipment.created", Shipment)
    assert (shipment.order_key, shipment.order_number) == ("shop-eu:order:1001", "SO1001")
    assert shipment.shipped_at == datetime(2026, 11, 3, tzinfo=ACCOUNT_ZONE)
    first, second = shipment.packages
    assert (first.tracking_number, first.carrier, first.service, first.weight) == (
        "1Z999AA10123456784",
        "UPS",
        "UPS Ground",
        Decimal("1.5"),
    )
    assert second.tracking_number == "1Z999AA10123456795"
    assert [(ln.sku, ln.quantity) for ln in first.lines] == [("TSHIRT-RED-M", 2)]
    assert levels(events) == [("TSHIRT-RED-M", "1", 38, 1)]


def test_a_transfer_orders_fulfilment_only_moves_stock() -> None:
    events = parsed("itemfulfillment-transfer")
    assert levels(events) == [("MUG-BLUE", "1", 12, 2)]
    assert [e.type for e in events] == ["inventory.level_changed"]


def test_credit_memo_in_euros_for_the_rma_of_the_shops_order() -> None:
    events = parsed("creditmemo-create")
    (memo,) = of(events, "credit_memo.created", CreditMemo)
    assert (memo.amount.amount, memo.amount.currency) == (Decimal("39.98"), "EUR")
    assert (memo.order_key, memo.return_key, memo.rma_number) == (
        "shop-eu:order:1001",
        "shop-eu:return:R1",
        "RMA5",
    )
    assert [(r.sku, r.quantity, r.disposition) for r in memo.restock] == [
        ("TSHIRT-RED-M", 2, "restock")
    ]
    assert memo.created_at == datetime(2026, 11, 10, tzinfo=ACCOUNT_ZONE)
    assert levels(events) == [("TSHIRT-RED-M", "2", -3, 0)]


def test_return_authorization_status_reason_and_disposition() -> None:
    (ret,) = of(parsed("returnauthorization-edit"), "return.updated", Return)
    assert (ret.status, ret.rma_number, ret.order_key, ret.note) == (
        "authorized",
        "RMA5",
        "shop-eu:order:1001",
        "arrived broken",
    )
    assert [(ln.sku, ln.reason, ln.disposition) for ln in ret.lines] == [
        ("MUG-BLUE", "broken", "damaged")
    ]
    assert ret.requested_at.date() == date(2026, 11, 5)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("salesorder-create", [("MUG-BLUE", "1", 12, 2), ("TSHIRT-RED-M", "1", 38, 1)]),
        ("itemreceipt-create", [("TSHIRT-RED-M", "2", -3, 0)]),
        ("inventoryadjustment-create", [("MUG-BLUE", "1", 12, 2), ("TSHIRT-RED-M", "1", 38, 1)]),
        ("inventoryadjustment-delete", [("MUG-BLUE", "1", 12, 2)]),
        ("inventorytransfer-create", [("TSHIRT-RED-M", "1", 38, 1), ("TSHIRT-RED-M", "3", 4, 0)]),
        ("assemblybuild-create", [("GIFTBOX", "1", 6, 0), ("RIBBON-RED", "1", Decimal("92.5"), 0)]),
        ("purchaseorder-create", [("RIBBON-RED", "1", Decimal("92.5"), 0)]),
    ],
)
def test_stock_moving_transactions_send_the_quantities_after_the_move(
    name: str, expected: list[tuple[str, str, Decimal, Decimal]]
) -> None:
    events = parsed(name)
    assert {e.type for e in events} == {"inventory.level_changed"}
    assert levels(events) == expected
    _, body = golden(name)
    sent = datetime.fromisoformat(json.loads(body)["lastModifiedDate"])
    assert all(lv.as_of == sent for lv in of(events, "inventory.level_changed", InventoryLevel))


def test_a_purchase_order_shows_as_incoming_stock() -> None:
    (level,) = of(parsed("purchaseorder-create"), "inventory.level_changed", InventoryLevel)
    assert [i.quantity for i in level.incoming] == [200]


def test_named_location_columns_come_with_the_stock() -> None:
    events = parsed("inventoryadjustment-create")
    reserved = {
        (lv.sku, lv.reserved) for lv in of(events, "inventory.level_changed", InventoryLevel)
    }
    assert reserved == {("TSHIRT-RED-M", 2), ("MUG-BLUE", 0)}


# --- how the script behaves --------------------------------------------------------------------


def test_dates_are_the_day_the_user_sees_whatever_zone_or_format(
    runs: dict[str, dict[str, Any]],
) -> None:
    """A date field comes back as a Date at *some* midnight (the user's or the server's); the
    script must send 3 November whatever the user's zone, date format and language."""
    dates = {
        name: json.loads(only_post(run)["body"])["record"]["tranDate"]
        for name, run in runs.items()
        if name.startswith("date ")
    }
    assert len(dates) == 48
    assert {name: day for name, day in dates.items() if day != "2026-11-03"} == {}


def test_a_refused_or_failed_post_is_logged_and_never_fails_the_save(
    runs: dict[str, dict[str, Any]],
) -> None:
    refused, unreachable = runs["refused"], runs["unreachable"]
    assert refused["thrown"] is None and unreachable["thrown"] is None
    (log,) = refused["logs"]
    assert (log["level"], log["title"]) == ("error", "erp-gateway webhook refused")
    assert "customer 20716: HTTP 422 no" in log["details"]
    (log,) = unreachable["logs"]
    assert log["level"] == "error" and "SSS_CONNECTION_TIME_OUT timed out" in log["details"]


def test_a_300_line_order_stays_well_inside_the_governance_limit(
    runs: dict[str, dict[str, Any]],
) -> None:
    run = runs["big order"]
    body = json.loads(only_post(run)["body"])
    assert len(body["record"]["stock"]) == 300
    assert run["usage"] <= 100  # 1 SKU query, 6 stock queries of 50 items, the post: 80
    events = inbound.parse(wire(body), connector().settings).events
    assert len(events) == 300 and events[299].payload_as(InventoryLevel).sku == "BULK-299"


def test_the_timestamp_is_the_clock_and_the_dedupe_key_unique(
    runs: dict[str, dict[str, Any]],
) -> None:
    case = CASES["itemfulfillment-ship"]
    post = only_post(runs["itemfulfillment-ship"])
    sent = datetime.fromisoformat(case["now"])
    assert post["headers"][inbound.TIMESTAMP_HEADER] == str(int(sent.timestamp()))
    body = json.loads(post["body"])
    assert body["lastModifiedDate"] == case["now"]
    assert body["eventId"] == f"itemfulfillment-3301-create-{int(sent.timestamp() * 1000)}"


# --- the simulator posts what the script posts ------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_golden_payloads_have_the_shape_the_simulator_posts(name: str) -> None:
    body = json.loads(golden(name)[1])
    record_type, record = body["recordType"], body["record"]
    assert shape_errors(record_type, record) == []
    # reshaping what the script sent changes nothing: same keys, order and values
    assert wire(script_record(record_type, record, record.get("stock"))) == wire(record)


def test_the_shape_check_names_what_the_script_never_sends() -> None:
    record = {"id": "1", "itemId": "X", "weight": 0.25, "basePrice": "1", "locations": [{}]}
    assert shape_errors("inventoryitem", record) == [
        "record.weight is float 0.25; the script sends strings and booleans",
        "record.basePrice is not something the script sends",
    ]
    line = {"itemId": "X", "quantity": Decimal(2)}
    assert shape_errors("salesorder", {"id": "1", "items": [line], "salesOrder": {}}) == [
        "record.salesOrder is not something the script sends",
        "record.items[0].quantity is Decimal Decimal('2'); the script sends strings and booleans",
    ]


async def test_the_simulator_posts_what_the_script_posts(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector
) -> None:
    received: list[httpx.Request] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(202)

    sim.webhooks.http = httpx.AsyncClient(transport=httpx.MockTransport(gateway))
    sim._set_config({"webhook_url": "https://gw.test/webhooks/erp", "webhook_secret": SECRET})
    sim._find("inventoryItem", "1042").fields["itemId"] = "TSHIRT-RED-M"  # type: ignore[union-attr]
    sim.erp.set_stock("1042", "1", {"on_hand": 10})
    await sim_connector.deliver(event_for(realistic_order()), context())
    order = next(iter(sim._store("salesOrder").values()))
    sim.erp.fulfil(order.id, {"packages": [{"tracking": "1Z1", "weight": "1.5"}]})
    sim.erp.set_price("1042", {"basePrice": "21.00", "currency": "USD"})
    sim.erp.credit_memo(
        {"order": order.id, "lines": [{"item": "1042", "quantity": 1, "amount": "19.99"}]}
    )
    await sim.webhooks.drain()

    kinds = set()
    for request in received:
        assert set(request.headers) >= {
            "content-type",
            "x-gateway-timestamp",
            "x-gateway-signature",
        }
        body = json.loads(request.content)
        assert request.content == wire(body)  # as JSON.stringify writes it
        kinds.add(body["recordType"])
        assert shape_errors(body["recordType"], body["record"]) == [], body
        assert body["lastModifiedDate"].endswith("Z") and len(body["lastModifiedDate"]) == 24
        stamp = int(datetime.fromisoformat(body["lastModifiedDate"]).timestamp() * 1000)
        assert body["eventId"] == f"{body['recordType']}-{body['id']}-{body['eventType']}-{stamp}"
        connector().verify_signature(request.headers, request.content)
        connector().parse_webhook(request.headers, request.content)  # and it all parses
    assert {"inventoryitem", "customer", "salesorder", "itemfulfillment", "creditmemo"} <= kinds
    assert len({json.loads(r.content)["eventId"] for r in received}) == len(received)
