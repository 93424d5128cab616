"""The domain guide's scenarios, through real processes on loopback.

A Shopify store simulator (it takes checkouts and sends signed webhooks), the gateway
(``serve``, plus an arq ``worker`` on Postgres + Redis) and a NetSuite simulator that
commits stock, fulfils, issues credit memos and posts signed user-event webhooks back:

- 500 checkouts in a burst while stock runs out: the store never sells more than there is;
- a 90% price cut in the ERP is held until an operator approves it;
- 5 items shipped in 3 packages become three store fulfillments with the right tracking;
- a partial return: RMA in the ERP, credit memo, store refund of the same amount;
- a customer's erase request reaches the ERP and leaves no trace in the gateway's own data.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import NS_CREDS, REDIS_URL, SHOP_SECRET, require_services
from tests.support.processes import (
    ProcessGroup,
    free_port,
    poll,
    process_group,
    wait_http,
    wait_log,
)

pytestmark = pytest.mark.e2e

OPERATOR = {"Authorization": "Bearer operator-key"}
NS_WEBHOOK_SECRET = "ns-webhook-secret"
SHOP_TOKEN = "shpat_e2e"
LOCATION = "10000000000000001"  # the store simulator's default location
ITEMS = {"SKU-RED-M": "1042", "SKU-BLUE-L": "959", "SKU-GREEN-S": "777"}


def flows_yaml(shop_url: str, ns_url: str) -> str:
    creds = ", ".join(f"{k}: {v}" for k, v in NS_CREDS.items())
    skus = ", ".join(f'"{sku}": "{item}"' for sku, item in ITEMS.items())
    return f"""
connections:
  - id: shop
    type: shopify
    base_url: {shop_url}
    credentials: {{webhook_secret: {SHOP_SECRET}, access_token: {SHOP_TOKEN}}}
    options: {{location_id: "{LOCATION}"}}
  - id: erp
    type: netsuite
    base_url: {ns_url}
    credentials: {{{creds}, webhook_secret: {NS_WEBHOOK_SECRET}}}
    options: {{discount_item_id: "900"}}
routes:
  - {{flow: orders, from: shop, to: erp}}
  - {{flow: returns, from: shop, to: erp}}
  - {{flow: customers, from: shop, to: erp}}
  - {{flow: inventory, from: erp, to: shop}}
  - {{flow: products, from: erp, to: shop}}
  - {{flow: shipments, from: erp, to: shop}}
  - {{flow: returns, from: erp, to: shop}}
mappings:
  sku:
    erp: {{{skus}}}
rules:
  pricing: {{guard_percent: 20}}
  shipments: {{notify_on: [shipped]}}
delivery:
  retry_window_seconds: 60
  backoff_base_seconds: 0.05
  backoff_max_seconds: 0.5
  request_timeout_seconds: 5
  max_concurrency: 8
"""


@dataclass
class Flows:
    group: ProcessGroup
    gateway_url: str
    shop_url: str
    ns_url: str

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=f"{self.gateway_url}/api/v1", headers=OPERATOR, timeout=10)

    def shop(self) -> httpx.Client:
        return httpx.Client(base_url=self.shop_url, timeout=30)

    def ns(self) -> httpx.Client:
        return httpx.Client(base_url=self.ns_url, timeout=10)

    def shop_state(self) -> dict[str, Any]:
        with self.shop() as shop:
            return shop.get("/_sim/state").json()  # type: ignore[no-any-return]

    def ns_records(self, record_type: str) -> list[dict[str, Any]]:
        with self.ns() as ns:
            body = ns.get(f"/_sim/records/{record_type}").json()
        return body["items"] if isinstance(body, dict) else body  # type: ignore[no-any-return]

    def busy(self) -> int:
        """Deliveries still on their way (pending or in flight)."""
        with self.api() as api:
            return sum(
                len(api.get("/deliveries", params={"status": s, "limit": 500}).json()["items"])
                for s in ("pending", "in_flight")
            )

    def where_orders_are(self, accepted: int) -> str:
        """What a stuck order wait needs: the store's webhook outcomes, the gateway's
        deliveries by status and the ERP's web orders."""
        with self.shop() as shop:
            stats = shop.get("/_sim/stats").json()
        with self.api() as api:
            deliveries = {
                s: len(api.get("/deliveries", params={"status": s, "limit": 500}).json()["items"])
                for s in ("pending", "in_flight", "delivered", "dead", "held", "parked")
            }
            inbound = len(api.get("/inbound-events", params={"limit": 500}).json()["items"])
        erp = [
            o for o in self.ns_records("salesOrder") if o.get("externalId", "").startswith("shop-")
        ]
        return (
            f"accepted {accepted}, in the ERP {len(erp)}; store webhooks {stats}; "
            f"gateway deliveries {deliveries}; inbound events {inbound}"
        )

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until nothing is on its way, twice in a row (webhooks may still be landing)."""
        quiet = 0

        def calm() -> bool:
            nonlocal quiet
            quiet = quiet + 1 if self.busy() == 0 else 0
            return quiet >= 3

        poll(calm, timeout=timeout, interval=0.3, message="the gateway to settle")


@pytest.fixture
def flows(
    request: pytest.FixtureRequest, tmp_path: Path, clean_db: str, redis_url: str | None
) -> Iterator[Flows]:
    require_services()
    ns_port, shop_port, gw_port = free_port(), free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gw_port}"
    shop_url, ns_url = f"http://127.0.0.1:{shop_port}", f"http://127.0.0.1:{ns_port}"
    config = tmp_path / "gateway.yaml"
    config.write_text(flows_yaml(shop_url, ns_url))
    env = {
        "GATEWAY_DATABASE_URL": clean_db,
        "GATEWAY_REDIS_URL": REDIS_URL or "",
        "GATEWAY_CONFIG": str(config),
        "GATEWAY_API_KEYS": "operator-key:operator",
        "GATEWAY_LOG_FORMAT": "json",
        "GATEWAY_LEASE_SECONDS": "10",
        "GATEWAY_SWEEP_INTERVAL_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    with process_group(tmp_path) as group:
        ns_args = [sys.executable, "-m", "simulators.netsuite.simulator", "--host", "127.0.0.1"]
        ns_args += ["--port", str(ns_port)]
        for key, value in NS_CREDS.items():
            ns_args += [f"--{key.replace('_', '-')}", value]
        # all four started together (each needs only the database), then awaited
        netsuite = group.start("netsuite", ns_args, {"PYTHONUNBUFFERED": "1"})
        shop_args = [sys.executable, "-m", "simulators.shopify.simulator", "serve"]
        shop_args += ["--host", "127.0.0.1", "--port", str(shop_port)]
        shop_args += ["--webhook-url", f"{gateway_url}/webhooks/shop"]
        shop_args += ["--webhook-secret", SHOP_SECRET, "--access-token", SHOP_TOKEN]
        shop_args += ["--bucket-size", "100000", "--leak-rate", "100000"]
        shop_args += ["--webhook-retries", "1,2,4,8,16"]  # Shopify re-sends what failed
        shop = group.start("shopify", shop_args, {"PYTHONUNBUFFERED": "1"})
        gateway = group.start(
            "gateway", [sys.executable, "-m", "app.cli", "serve", "--port", str(gw_port)], env
        )
        worker = group.start("worker", [sys.executable, "-m", "app.cli", "worker"], env)
        wait_http(f"{ns_url}/_sim/stats", netsuite)
        wait_http(f"{gateway_url}/readyz", gateway)
        wait_log(worker, "worker started")
        wait_http(f"{shop_url}/_sim/state", shop)
        with httpx.Client(base_url=ns_url, timeout=10) as ns:
            items = [{"id": item, "itemId": sku} for sku, item in ITEMS.items()] + ["900"]
            ns.post("/_sim/seed", json={"items": items}).raise_for_status()
            ns.post(
                "/_sim/config",
                json={
                    "webhook_url": f"{gateway_url}/webhooks/erp",
                    "webhook_secret": NS_WEBHOOK_SECRET,
                },
            ).raise_for_status()
        yield Flows(group, gateway_url, shop_url, ns_url)
        if getattr(request.node, "rep_call", None) and request.node.rep_call.failed:
            for proc in group.procs:
                print(f"--- {proc.name} ---\n{proc.log_tail(80)}")


def seed(flows: Flows, sku: str, *, stock: int, price: str = "19.99") -> None:
    """The same product in both systems; the ERP reports its stock (webhook → store)."""
    with flows.shop() as shop:
        shop.post(
            "/_sim/products", json={"sku": sku, "price": price, "available": 0}
        ).raise_for_status()
    with flows.ns() as ns:
        ns.post(
            "/_sim/stock", json={"item": ITEMS[sku], "location": "1", "on_hand": stock}
        ).raise_for_status()


def store_available(flows: Flows, sku: str) -> int | None:
    value = flows.shop_state()["inventory"].get(sku, {}).get(LOCATION)
    return None if value is None else int(value)


def checkout(flows: Flows, lines: dict[str, int]) -> httpx.Response:
    with flows.shop() as shop:
        return shop.post(
            "/_sim/checkout",
            json={"line_items": [{"sku": s, "quantity": q} for s, q in lines.items()]},
        )


def ns_order(flows: Flows, shop_order_id: Any) -> dict[str, Any] | None:
    eid = f"shop-{shop_order_id}"
    return next((o for o in flows.ns_records("salesOrder") if o.get("externalId") == eid), None)


# --- scenarios -------------------------------------------------------------------------------


def test_a_90_percent_price_cut_is_held_until_approved(flows: Flows) -> None:
    seed(flows, "SKU-BLUE-L", stock=5, price="100.00")
    with flows.ns() as ns:
        ns.post(
            "/_sim/price", json={"item": ITEMS["SKU-BLUE-L"], "basePrice": "100.00"}
        ).raise_for_status()
    flows.settle()
    with flows.ns() as ns:
        ns.post(
            "/_sim/price", json={"item": ITEMS["SKU-BLUE-L"], "basePrice": "10.00"}
        ).raise_for_status()
    with flows.api() as api:
        held = poll(
            lambda: api.get("/approvals").json()["items"], message="the price cut to be held"
        )
    (approval,) = held
    assert "90" in approval["held_reason"] and approval["event_type"] == "price.changed"
    flows.settle()
    assert _price(flows, "SKU-BLUE-L") == Decimal("100.00")  # the store never showed 10.00
    with flows.api() as api:
        api.post(
            f"/approvals/{approval['id']}/approve", json={"note": "clearance sale"}
        ).raise_for_status()
    poll(lambda: _price(flows, "SKU-BLUE-L") == Decimal("10.00"), message="the approved price")


def test_scheduled_jobs_run_as_arq_cron_jobs(flows: Flows) -> None:
    # with Redis, `serve` runs no scheduler of its own: a run recorded here is the worker's
    def ran() -> list[str]:
        with flows.api() as api:
            jobs = api.get("/jobs").json()["items"]
        return [j["name"] for j in jobs if j["last_run_at"]]

    assert {"prices", "reconcile"} <= set(poll(ran, message="the cron jobs to run"))


def _price(flows: Flows, sku: str) -> Decimal | None:
    value = flows.shop_state()["prices"].get(sku, {}).get("price")
    return None if value is None else Decimal(str(value))


def test_five_items_in_three_packages_make_three_fulfillments(flows: Flows) -> None:
    seed(flows, "SKU-RED-M", stock=20)
    seed(flows, "SKU-BLUE-L", stock=20)
    poll(lambda: store_available(flows, "SKU-BLUE-L") == 20, message="stock in the store")
    answer = checkout(flows, {"SKU-RED-M": 3, "SKU-BLUE-L": 2})
    assert answer.status_code == 201, answer.text
    order_id = answer.json()["order"]["id"] if "order" in answer.json() else answer.json()["id"]
    poll(lambda: ns_order(flows, order_id), message="the sales order in NetSuite")
    shipments = [
        ({"1042": 2}, "1Z0000000000000001"),
        ({"1042": 1, "959": 1}, "1Z0000000000000002"),
        ({"959": 1}, "1Z0000000000000003"),
    ]
    with flows.ns() as ns:
        for lines, tracking in shipments:
            ns.post(
                "/_sim/fulfil",
                json={
                    "order": f"eid:shop-{order_id}",
                    "lines": lines,
                    "packages": [{"tracking": tracking, "carrier": "UPS"}],
                    "ship_status": "C",
                },
            ).raise_for_status()

    def fulfillments() -> list[dict[str, Any]]:
        return flows.shop_state()["fulfillments"].get(str(order_id), [])  # type: ignore[no-any-return]

    done = poll(lambda: len(fulfillments()) == 3 and fulfillments(), message="three fulfillments")
    flows.settle()
    assert sorted(n for f in fulfillments() for n in _tracking(f)) == [t for _, t in shipments]
    shipped = sum(int(li["quantity"]) for f in done for li in f.get("line_items", []))
    assert shipped == 5
    assert all(f.get("notify_customer") is True for f in done)  # status "shipped" notifies


def _tracking(fulfillment: dict[str, Any]) -> list[str]:
    numbers = fulfillment.get("tracking_numbers") or []
    if not numbers and fulfillment.get("tracking_number"):
        numbers = [fulfillment["tracking_number"]]
    return [str(n) for n in numbers]


def test_partial_return_credit_memo_and_refund_match(flows: Flows) -> None:
    seed(flows, "SKU-RED-M", stock=10)
    poll(lambda: store_available(flows, "SKU-RED-M") == 10, message="stock in the store")
    answer = checkout(flows, {"SKU-RED-M": 2})
    assert answer.status_code == 201, answer.text
    order_id = answer.json()["order"]["id"] if "order" in answer.json() else answer.json()["id"]
    poll(lambda: ns_order(flows, order_id), message="the sales order in NetSuite")
    flows.settle()
    with flows.shop() as shop:
        sent = shop.post(
            "/_sim/send/return",
            json={
                "order_id": order_id,
                "line_items": [{"sku": "SKU-RED-M", "quantity": 1, "reason": "too small"}],
            },
        )
        assert sent.status_code < 300, sent.text
    rma = poll(lambda: flows.ns_records("returnAuthorization"), message="the RMA in NetSuite")[0]
    with flows.ns() as ns:
        ns.post(
            "/_sim/credit_memo",
            json={
                "rma": rma["id"],
                "amount": "19.99",
                "lines": [{"item": "1042", "quantity": 1, "amount": "19.99"}],
                "restock": [
                    {"item": "1042", "quantity": 1, "disposition": "restock", "location": "1"}
                ],
            },
        ).raise_for_status()

    def refunds() -> list[dict[str, Any]]:
        return flows.shop_state()["refunds"].get(str(order_id), [])  # type: ignore[no-any-return]

    poll(refunds, message="the store refund")
    flows.settle()
    (refund,) = refunds()
    assert Decimal(str(refund.get("amount") or refund.get("total"))) == Decimal("19.99")
    with flows.api() as api:
        assert api.get("/findings", params={"kind": "refund_mismatch"}).json()["items"] == []


def test_a_burst_of_500_checkouts_never_oversells(flows: Flows) -> None:
    stock = 40
    seed(flows, "SKU-GREEN-S", stock=stock)
    poll(lambda: store_available(flows, "SKU-GREEN-S") == stock, message="stock in the store")

    async def burst() -> list[int]:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=flows.shop_url, timeout=60, limits=limits) as shop:
            body = {"line_items": [{"sku": "SKU-GREEN-S", "quantity": 1}]}
            answers = await asyncio.gather(
                *(shop.post("/_sim/checkout", json=body) for _ in range(500))
            )
        return [a.status_code for a in answers]

    statuses = asyncio.run(burst())
    accepted = statuses.count(201)
    assert set(statuses) <= {201, 409}, set(statuses)
    assert 0 < accepted <= stock  # never more sold than there was

    def web_orders() -> list[dict[str, Any]]:
        return [
            o for o in flows.ns_records("salesOrder") if o.get("externalId", "").startswith("shop-")
        ]

    def in_erp() -> bool:
        return len(web_orders()) >= accepted

    # the store's webhooks trail the burst: wait for them, then for the deliveries
    try:
        poll(in_erp, timeout=90, message="every order in the ERP")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{flows.where_orders_are(accepted)}") from None
    flows.settle(timeout=180)
    assert len(web_orders()) == accepted  # every accepted order reached the ERP, once
    sellable = stock - accepted
    # never above what the ERP can sell; an order the ERP booked after the level it last
    # sent still counts as sold (the store may show less, never more) until its next level
    shown = store_available(flows, "SKU-GREEN-S")
    assert shown is not None and shown <= sellable, shown
    # the ERP's next level (here 5 units received) settles it exactly, without a
    # reconciliation
    with flows.ns() as ns:
        ns.post(
            "/_sim/stock",
            json={"item": ITEMS["SKU-GREEN-S"], "location": "1", "on_hand": stock + 5},
        ).raise_for_status()
    sellable += 5
    poll(
        lambda: store_available(flows, "SKU-GREEN-S") == sellable,
        timeout=30,
        message=f"the store at the ERP's sellable {sellable}",
    )
    flows.settle()
    assert store_available(flows, "SKU-GREEN-S") == sellable


def test_an_erase_request_reaches_the_erp_and_scrubs_the_gateway(flows: Flows) -> None:
    email = "erika.mustermann@example.com"
    with flows.shop() as shop:
        made = shop.post(
            "/_sim/send/customer",
            json={"email": email, "first_name": "Erika", "last_name": "Mustermann"},
        )
        made.raise_for_status()
    customer_id = made.json()["customer"]["id"]

    def ns_customer() -> dict[str, Any] | None:
        eid = f"shop-{customer_id}"
        return next((c for c in flows.ns_records("customer") if c.get("externalId") == eid), None)

    assert poll(ns_customer, message="the customer in NetSuite")["email"] == email
    flows.settle()
    with flows.shop() as shop:
        shop.post(
            "/_sim/send/customers_redact", json={"customer_id": customer_id}
        ).raise_for_status()
    poll(lambda: (ns_customer() or {}).get("isInactive") is True, message="the ERP erasure")
    erased = ns_customer()
    assert erased is not None and email not in str(erased)

    def erasure_done() -> bool:  # the worker's scheduled job scrubs the gateway's copies
        with flows.api() as api:
            items = api.get("/erasures").json()["items"]
        return bool(items) and items[0]["status"] == "done"

    poll(erasure_done, timeout=60, message="the erasure job to finish")
    with flows.api() as api:  # the gateway's copies: raw webhooks and canonical events
        inbound = api.get("/inbound-events", params={"limit": 500}).json()["items"]
        bodies = [
            api.get(f"/inbound-events/{i['id']}").text
            for i in inbound
            if i.get("topic") == "customers/create"
        ]
        events = api.get("/events", params={"limit": 500}).text
    assert bodies and all(email not in b and "Mustermann" not in b for b in bodies)
    assert "Mustermann" not in events
