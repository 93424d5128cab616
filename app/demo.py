"""``erp-gateway demo``: the gateway between a Shopify and a NetSuite simulator.

Signed Shopify orders flow to NetSuite (one parks on an unmapped SKU); NetSuite's stock
reaches the store; a 90% price cut in NetSuite is held for approval instead of reaching it.

Runs on the embedded default (SQLite in ./var, in-process delivery) unless
GATEWAY_DATABASE_URL / GATEWAY_REDIS_URL say otherwise, then prints what flowed and where to
look, and keeps running until Ctrl-C so the API can be explored.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from app.cli import ROOT, migrate

VAR = Path.cwd() / "var"
DEMO_SECRET = "demo-shopify-secret"
DEMO_API_KEY = "demo-operator-key"
NS = {
    "account_id": "1234567",
    "consumer_key": "demo-ck",
    "consumer_secret": "demo-cs",
    "token_id": "demo-tk",
    "token_secret": "demo-ts",
}
SKUS = {"TSHIRT-RED-M": "1042", "MUG-BLACK": "959"}
UNMAPPED_SKU = "POSTER-A2"
DISCOUNT_ITEM = "900"  # NetSuite takes order discounts as a discount item
NS_WEBHOOK_SECRET = "demo-netsuite-script-secret"
SHOP_TOKEN = "shpat_demo"
STORE_LOCATION = "10000000000000001"  # the Shopify simulator's default location
STOCK = {"TSHIRT-RED-M": 40, "MUG-BLACK": 25}
PRICE_CUT = ("TSHIRT-RED-M", "19.99", "1.99")  # an ERP user's slip: 90% off


def _config(netsuite_url: str, shop_url: str) -> str:
    creds = ", ".join(f'{k}: "{v}"' for k, v in NS.items())
    mapped = ", ".join(f'"{k}": "{v}"' for k, v in SKUS.items())
    return f"""# written by `erp-gateway demo`; every setting is explained in docs/flows.md
connections:
  - id: shop
    type: shopify
    base_url: {shop_url}
    credentials: {{webhook_secret: "{DEMO_SECRET}", access_token: "{SHOP_TOKEN}"}}
    options: {{location_id: "{STORE_LOCATION}"}}
  - id: erp
    type: netsuite
    base_url: {netsuite_url}
    credentials: {{{creds}, webhook_secret: "{NS_WEBHOOK_SECRET}"}}
    options: {{discount_item_id: "{DISCOUNT_ITEM}"}}
routes:
  - {{flow: orders, from: shop, to: erp}}
  - {{flow: inventory, from: erp, to: shop}}
  - {{flow: products, from: erp, to: shop}}
  - {{flow: shipments, from: erp, to: shop}}
mappings:
  sku:
    erp: {{{mapped}}}
rules:
  pricing: {{guard_percent: 20}}
"""


def _spawn(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (VAR / f"{name}.log").open("ab")
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_ready(url: str, proc: subprocess.Popen[bytes], name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited; see var/{name}.log")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{name} did not become ready at {url}; see var/{name}.log")


async def _send_orders(gateway: str, count: int) -> Counter[str]:
    from connectors.shopify.simulator import WebhookSender, make_order

    results: Counter[str] = Counter()
    sender = WebhookSender(f"{gateway}/webhooks/shop", DEMO_SECRET)
    skus = list(SKUS)
    first_delivery: Any = None
    for n in range(1, count + 1):
        order_skus = [skus[n % 2], skus[(n + 1) % 2]] if n % 3 else [skus[n % 2]]
        if n == count:  # one order the ERP cannot take yet: it parks until the SKU is mapped
            order_skus = [UNMAPPED_SKU]
        response, delivery = await sender.send_order(make_order(n, skus=order_skus))
        first_delivery = first_delivery or delivery
        results["duplicate" if response.status_code == 200 else str(response.status_code)] += 1
    # Shopify re-sends a webhook it thinks failed: the gateway recognises it
    response = await sender.resend(first_delivery)
    results["duplicate" if response.json().get("duplicate") else str(response.status_code)] += 1
    return results


def _settle(api: httpx.Client, expected: int, timeout: float = 60) -> Counter[str]:
    """Order delivery statuses once nothing is on its way any more (all flows)."""
    deadline = time.monotonic() + timeout
    counts: Counter[str] = Counter()
    while time.monotonic() < deadline:
        items = api.get("/api/v1/deliveries", params={"limit": 500}).json()["items"]
        counts = Counter(d["status"] for d in items if d["flow"] == "orders")
        busy = sum(1 for d in items if d["status"] in ("pending", "in_flight"))
        if sum(counts.values()) >= expected and not busy:
            break
        time.sleep(0.2)
    return counts


def _erp_changes(netsuite_url: str) -> None:
    """What an ERP user does: stock arrives, then a price is cut by 90% by mistake."""
    with httpx.Client(base_url=netsuite_url, timeout=10) as ns:
        for sku, quantity in STOCK.items():
            ns.post("/_sim/stock", json={"item": SKUS[sku], "on_hand": quantity}).raise_for_status()
        sku, price, _ = PRICE_CUT
        ns.post("/_sim/price", json={"item": SKUS[sku], "basePrice": price}).raise_for_status()


def _cut_price(netsuite_url: str) -> None:
    sku, _, cut = PRICE_CUT
    answer = httpx.post(f"{netsuite_url}/_sim/price", json={"item": SKUS[sku], "basePrice": cut})
    answer.raise_for_status()


def _wait_for(check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.2)
    return None


def run_demo(orders: int = 20, port: int = 8000, *, stay: bool = True) -> None:
    VAR.mkdir(exist_ok=True)
    ns_port, shop_port = port + 101, port + 102
    netsuite_url = f"http://127.0.0.1:{ns_port}"
    shop_url = f"http://127.0.0.1:{shop_port}"
    gateway = f"http://127.0.0.1:{port}"
    config_path = VAR / "demo-config.yaml"
    config_path.write_text(_config(netsuite_url, shop_url))
    db_url = os.environ.get("GATEWAY_DATABASE_URL") or ""
    if not db_url:  # the embedded default: a fresh demo database each run
        for old in VAR.glob("demo.db*"):
            old.unlink()
        db_url = f"sqlite+aiosqlite:///{VAR / 'demo.db'}"
    env = {
        "GATEWAY_CONFIG": str(config_path),
        "GATEWAY_DATABASE_URL": db_url,
        "GATEWAY_API_KEYS": f"{DEMO_API_KEY}:operator",
        "GATEWAY_LOG_FORMAT": "json",
        "GATEWAY_SWEEP_INTERVAL_SECONDS": "1",
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        print(
            "erp-gateway demo: starting NetSuite and Shopify simulators and the gateway …",
            flush=True,
        )
        ns_args = [
            sys.executable,
            "-m",
            "connectors.netsuite.simulator",
            "--port",
            str(ns_port),
            "--items",
            ",".join([*SKUS.values(), DISCOUNT_ITEM]),
        ]
        for key, value in NS.items():
            ns_args += [f"--{key.replace('_', '-')}", value]
        procs.append(_spawn("netsuite-simulator", ns_args, {}))
        _wait_ready(f"{netsuite_url}/_sim/stats", procs[-1], "netsuite-simulator")
        shop_args = [sys.executable, "-m", "connectors.shopify.simulator", "serve"]
        shop_args += ["--port", str(shop_port), "--access-token", SHOP_TOKEN]
        shop_args += ["--bucket-size", "1000", "--leak-rate", "100"]
        procs.append(_spawn("shopify-simulator", shop_args, {}))
        _wait_ready(f"{shop_url}/_sim/state", procs[-1], "shopify-simulator")
        for sku in SKUS:
            httpx.post(f"{shop_url}/_sim/products", json={"sku": sku, "price": "0.00"})
        items = [{"id": item, "itemId": sku} for sku, item in SKUS.items()]
        httpx.post(f"{netsuite_url}/_sim/seed", json={"items": [*items, DISCOUNT_ITEM]})
        httpx.post(
            f"{netsuite_url}/_sim/config",
            json={"webhook_url": f"{gateway}/webhooks/erp", "webhook_secret": NS_WEBHOOK_SECRET},
        )
        os.environ.update(env)
        migrate(db_url)
        procs.append(
            _spawn("gateway", [sys.executable, "-m", "app.cli", "serve", "--port", str(port)], env)
        )
        _wait_ready(f"{gateway}/readyz", procs[-1], "gateway")
        if os.environ.get("GATEWAY_REDIS_URL"):
            procs.append(_spawn("worker", [sys.executable, "-m", "app.cli", "worker"], env))

        print("NetSuite receives stock and a price (its user-event webhooks) …", flush=True)
        _erp_changes(netsuite_url)
        print(f"sending {orders} signed Shopify orders (and one re-sent webhook) …", flush=True)
        sent = asyncio.run(_send_orders(gateway, orders))
        with httpx.Client(
            base_url=gateway, timeout=10, headers={"Authorization": f"Bearer {DEMO_API_KEY}"}
        ) as api:
            counts = _settle(api, orders)
            print("a NetSuite user cuts a price by 90% by mistake …", flush=True)
            _cut_price(netsuite_url)
            held = _wait_for(lambda: api.get("/api/v1/approvals").json()["items"])
            _settle(api, orders)
            sales_orders = httpx.get(f"{netsuite_url}/_sim/records/salesOrder").json()
            store = httpx.get(f"{shop_url}/_sim/state").json()
        _summary(gateway, netsuite_url, sent, counts, sales_orders, store, held or [])
        if stay:
            print(
                "\nRunning; press Ctrl-C to stop. Logs: var/gateway.log, "
                "var/netsuite-simulator.log, var/shopify-simulator.log",
                flush=True,
            )
            stop = {signal.SIGINT, signal.SIGTERM}
            signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # so sigwait gets them, not a kill
            signal.sigwait(stop)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)


def _summary(
    gateway: str,
    netsuite_url: str,
    sent: Counter[str],
    counts: Counter[str],
    sales_orders: Any,
    store: dict[str, Any],
    held: list[dict[str, Any]],
) -> None:
    records = sales_orders["items"] if isinstance(sales_orders, dict) else sales_orders
    key = DEMO_API_KEY
    stock = {sku: store["inventory"].get(sku, {}).get(STORE_LOCATION) for sku in SKUS}
    prices = {sku: store["prices"].get(sku, {}).get("price") for sku in SKUS}
    approvals = "; ".join(h.get("held_reason") or "" for h in held) or "none"
    print(
        f"""
What flowed
  webhooks accepted        {sent["202"]}
  duplicates recognised    {sent["duplicate"]}
  order deliveries         {dict(counts)}
  NetSuite sales orders    {len(records)}  (one per order, however often Shopify re-sends)
  stock in the store       {stock}  (NetSuite's stock, less what the orders took)
  prices in the store      {prices}
  held for approval        {len(held)}: {approvals}

Where to look (API key: {key})
  OpenAPI / try it         {gateway}/docs
  deliveries               curl -H 'Authorization: Bearer {key}' {gateway}/api/v1/deliveries
  the parked order         curl -H 'Authorization: Bearer {key}' '{gateway}/api/v1/deliveries?status=parked'
  release it by mapping    curl -X PUT -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
                             -d '{json.dumps({"entries": {UNMAPPED_SKU: "959"}})}' {gateway}/api/v1/mappings/sku/erp
  the held price cut       curl -H 'Authorization: Bearer {key}' {gateway}/api/v1/approvals
  reject it                curl -X POST -H 'Authorization: Bearer {key}' {gateway}/api/v1/approvals/<id>/reject
  the rules in force       curl -H 'Authorization: Bearer {key}' {gateway}/api/v1/rules
  connections / breakers   curl -H 'Authorization: Bearer {key}' {gateway}/api/v1/connections
  metrics                  {gateway}/metrics
  NetSuite simulator       {netsuite_url}/_sim/records/salesOrder
  the flows and rules      docs/flows.md
""",
        flush=True,
    )
