"""``erp-gateway demo``: the gateway between a Shopify and a NetSuite simulator.

NetSuite's stock reaches the store; shoppers check out in the store (which takes the units
off its stock, as Shopify does, and refuses what is not in stock) and their signed orders flow
to NetSuite (one parks on a SKU not mapped yet: the summary prints the mapping that releases
it); a 90% price cut in NetSuite is held for approval instead of reaching the store.

Runs on the embedded default (SQLite in ./var, in-process delivery) unless
GATEWAY_DATABASE_URL / GATEWAY_REDIS_URL say otherwise, then prints what flowed and where to
look, and keeps running until Ctrl-C so the API can be explored.

Before starting anything it checks that every port it will use is free (gateway, PORT+101,
PORT+102); the simulators and the gateway are its children and die with it (Ctrl-C, SIGTERM,
and on Linux even SIGKILL: they are spawned with PR_SET_PDEATHSIG); a child that stops early
stops the demo with one line pointing at its log; and the summary is only printed once the
gateway answering on PORT proved to be this run's (it knows a key made for this run).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from app.startup import StartupError

ROOT = Path(__file__).resolve().parents[1]  # the source tree the demo runs from
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
SKUS = {"TSHIRT-RED-M": "1042", "MUG-BLACK": "959"}  # mapped in the config
# a NetSuite item the config does not map yet: its order parks until the mapping is added
UNMAPPED_SKU, UNMAPPED_ITEM = "POSTER-A2", "1077"
ITEMS = {**SKUS, UNMAPPED_SKU: UNMAPPED_ITEM}
DISCOUNT_ITEM = "900"  # NetSuite takes order discounts as a discount item
NS_WEBHOOK_SECRET = "demo-netsuite-script-secret"
SHOP_TOKEN = "shpat_demo"
STORE_LOCATION = "10000000000000001"  # the Shopify simulator's default location
# enough for the default 20 orders (33 shirts, 32 mugs, 1 poster): the store never oversells
STOCK = {"TSHIRT-RED-M": 60, "MUG-BLACK": 50, UNMAPPED_SKU: 10}
PRICES = {"TSHIRT-RED-M": "19.99", "MUG-BLACK": "12.50", UNMAPPED_SKU: "15.00"}
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


NS_PORT_OFFSET, SHOP_PORT_OFFSET = 101, 102
PR_SET_PDEATHSIG = 1  # linux/prctl.h
STOP_SECONDS = 10.0  # a child that has not stopped by then is killed


def _ports(port: int) -> list[tuple[int, str]]:
    return [
        (port, "the gateway"),
        (port + NS_PORT_OFFSET, f"the NetSuite simulator, PORT+{NS_PORT_OFFSET}"),
        (port + SHOP_PORT_OFFSET, f"the Shopify simulator, PORT+{SHOP_PORT_OFFSET}"),
    ]


def _port_taken(port: int) -> bool:
    """Can we not listen on 127.0.0.1:port? (as uvicorn will: SO_REUSEADDR, so a closed
    connection in TIME_WAIT does not count; a listener on any address does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def check_ports(port: int) -> None:
    """Every port the demo will use is free, or StartupError naming the first taken one and
    a PORT that would work."""
    highest = 65535 - SHOP_PORT_OFFSET
    if not 1 <= port <= highest:
        raise StartupError(
            f"--port must be between 1 and {highest} (the simulators use +101, +102)"
        )
    for taken, what in _ports(port):
        if _port_taken(taken):
            other = next(
                (
                    p
                    for p in range(port + 1, min(port + 200, highest + 1))
                    if not any(_port_taken(q) for q, _ in _ports(p))
                ),
                port + 1,
            )
            role = "" if taken == port else f" ({what})"
            raise StartupError(
                f"port {taken}{role} is already in use; stop what uses it or run "
                f"`make run PORT={other}` (or `erp-gateway demo --port {other}`)"
            )


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGTERM when the demo dies, however it dies
    (Linux PR_SET_PDEATHSIG); None where that does not exist."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:  # runs in the child between fork and exec
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the demo died before the request took effect
            os._exit(1)

    return preexec


class Children:
    """The demo's child processes: each in its own session (Ctrl-C reaches only the demo,
    which stops them in order), each dying with the demo, each with its log in var/."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes], int]] = []
        self._preexec = _die_with_parent()

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        path = VAR / f"{name}.log"
        with path.open("ab") as log:
            offset = log.tell()
            proc = subprocess.Popen(
                args,
                cwd=ROOT,
                env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=self._preexec,  # the demo has no threads: fork-safe
            )
        self.procs.append((name, proc, offset))
        return proc

    def check(self) -> None:
        """StartupError pointing at the log of a child that has stopped."""
        for name, proc, offset in self.procs:
            code = proc.poll()
            if code is not None:
                last = _last_line(VAR / f"{name}.log", offset)
                said = f": {last}" if last else ""
                raise StartupError(f"{name} stopped (exit status {code}){said}; see var/{name}.log")

    def stop_all(self) -> None:
        for _, proc, _ in reversed(self.procs):
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for _, proc, _ in reversed(self.procs):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(5)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)


def _last_line(path: Path, offset: int) -> str:
    """The last thing a child logged in this run (the message of a JSON log line)."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            lines = [ln.strip() for ln in log.read().decode(errors="replace").splitlines()]
    except OSError:
        return ""
    text = next((ln for ln in reversed(lines) if ln), "")
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    if isinstance(record, dict) and "event" in record:
        text = str(record["event"])
    return text if len(text) <= 300 else text[:300] + "…"


def _wait_ready(url: str, children: Children, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children.check()
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise StartupError(f"{name} did not become ready at {url}; see var/{name}.log")


def _own_gateway(gateway: str, run_key: str) -> bool | None:
    """True: the gateway answering is this run's (it knows this run's key and config);
    False: something else answers; None: nothing answers (yet)."""
    try:
        answer = httpx.get(
            f"{gateway}/api/v1/connections",
            headers={"Authorization": f"Bearer {run_key}"},
            timeout=2,
        )
    except httpx.HTTPError:
        return None
    if answer.status_code != 200:
        return False
    try:
        ids = {c["id"] for c in answer.json()["items"]}
    except (ValueError, KeyError, TypeError):
        return False
    return ids == {"shop", "erp"}


def _wait_own_gateway(gateway: str, run_key: str, children: Children, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        children.check()
        seen = _own_gateway(gateway, run_key)
        if seen:
            return
        time.sleep(0.1)
    if seen is False:
        raise StartupError(
            f"something else answers at {gateway}, not this demo's gateway; see var/gateway.log"
        )
    raise StartupError(f"the gateway did not become ready at {gateway}; see var/gateway.log")


def _basket(n: int, count: int) -> list[dict[str, Any]]:
    """What shopper ``n`` buys: one or both mapped products, 1 to 3 of each; the last one
    buys the product NetSuite has but the config does not map yet."""
    skus = list(SKUS)
    chosen = [skus[n % 2], skus[(n + 1) % 2]] if n % 3 else [skus[n % 2]]
    if n == count:
        chosen = [UNMAPPED_SKU]
    return [{"sku": sku, "quantity": 1 + (n + i) % 3} for i, sku in enumerate(chosen)]


async def _shop_orders(gateway: str, shop_url: str, count: int) -> Counter[str]:
    """Shoppers check out in the store (it takes the units off its stock and refuses what it
    does not have); Shopify sends each order, signed, to the gateway, and re-sends one."""
    from simulators.shopify.simulator import WebhookSender

    results: Counter[str] = Counter()
    sender = WebhookSender(f"{gateway}/webhooks/shop", DEMO_SECRET)
    first_delivery: Any = None
    async with httpx.AsyncClient(base_url=shop_url, timeout=10) as shop:
        for n in range(1, count + 1):
            basket = {"line_items": _basket(n, count), "shipping": "10.00"}
            checkout = await shop.post("/_sim/checkout", json=basket)
            if checkout.status_code == 409:  # the store is out of it: no order, no oversell
                results["out of stock"] += 1
                continue
            checkout.raise_for_status()
            response, delivery = await sender.send_order(checkout.json()["order"])
            first_delivery = first_delivery or delivery
            results["duplicate" if response.status_code == 200 else str(response.status_code)] += 1
    if first_delivery is not None:  # Shopify re-sends a webhook it thinks failed
        response = await sender.resend(first_delivery)
        results["duplicate" if response.json().get("duplicate") else str(response.status_code)] += 1
    return results


def _settle(
    api: httpx.Client, expected: int, children: Children, timeout: float = 60
) -> Counter[str]:
    """Order delivery statuses once nothing is on its way any more (all flows)."""
    deadline = time.monotonic() + timeout
    counts: Counter[str] = Counter()
    while time.monotonic() < deadline:
        children.check()
        items = api.get("/api/v1/deliveries", params={"limit": 500}).json()["items"]
        counts = Counter(d["status"] for d in items if d["flow"] == "orders")
        busy = sum(1 for d in items if d["status"] in ("pending", "in_flight"))
        if sum(counts.values()) >= expected and not busy:
            break
        time.sleep(0.2)
    return counts


def _erp_changes(netsuite_url: str) -> None:
    """What an ERP user does: stock arrives and the products get their prices."""
    with httpx.Client(base_url=netsuite_url, timeout=10) as ns:
        for sku, quantity in STOCK.items():
            ns.post(
                "/_sim/stock", json={"item": ITEMS[sku], "on_hand": quantity}
            ).raise_for_status()
        for sku, price in PRICES.items():
            ns.post("/_sim/price", json={"item": ITEMS[sku], "basePrice": price}).raise_for_status()


def _store_stock(shop_url: str) -> dict[str, Any]:
    inventory = httpx.get(f"{shop_url}/_sim/state", timeout=10).json()["inventory"]
    return {sku: inventory.get(sku, {}).get(STORE_LOCATION) for sku in STOCK}


def _cut_price(netsuite_url: str) -> None:
    sku, _, cut = PRICE_CUT
    answer = httpx.post(f"{netsuite_url}/_sim/price", json={"item": SKUS[sku], "basePrice": cut})
    answer.raise_for_status()


def _wait_for(check: Any, children: Children, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children.check()
        if found := check():
            return found
        time.sleep(0.2)
    return None


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_demo(orders: int = 20, port: int = 8000, *, stay: bool = True) -> None:
    check_ports(port)  # before anything starts: one clear line instead of a half demo
    children = Children()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # stop like Ctrl-C does
    try:
        _run(children, orders, port, stay=stay)
    except KeyboardInterrupt:
        pass
    finally:
        children.stop_all()
        signal.signal(signal.SIGTERM, previous)


def _run(children: Children, orders: int, port: int, *, stay: bool) -> None:
    VAR.mkdir(exist_ok=True)
    ns_port, shop_port = port + NS_PORT_OFFSET, port + SHOP_PORT_OFFSET
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
    run_key = f"demo-run-{secrets.token_urlsafe(12)}"  # proves the gateway on PORT is ours
    env = {
        "GATEWAY_CONFIG": str(config_path),
        "GATEWAY_DATABASE_URL": db_url,
        "GATEWAY_API_KEYS": f"{DEMO_API_KEY}:operator,{run_key}:viewer",
        "GATEWAY_LOG_FORMAT": "json",
        "GATEWAY_SWEEP_INTERVAL_SECONDS": "1",
        "GATEWAY_AUTO_MIGRATE": "1",
    }
    print(
        "erp-gateway demo: starting NetSuite and Shopify simulators and the gateway …",
        flush=True,
    )
    ns_args = [
        sys.executable,
        "-m",
        "simulators.netsuite.simulator",
        "--port",
        str(ns_port),
        "--items",
        ",".join([*ITEMS.values(), DISCOUNT_ITEM]),
    ]
    for key, value in NS.items():
        ns_args += [f"--{key.replace('_', '-')}", value]
    children.spawn("netsuite-simulator", ns_args, {})
    shop_args = [sys.executable, "-m", "simulators.shopify.simulator", "serve"]
    shop_args += ["--port", str(shop_port), "--access-token", SHOP_TOKEN]
    shop_args += ["--bucket-size", "1000", "--leak-rate", "100"]
    children.spawn("shopify-simulator", shop_args, {})
    children.spawn("gateway", [sys.executable, "-m", "app.cli", "serve", "--port", str(port)], env)
    _wait_ready(f"{netsuite_url}/_sim/stats", children, "netsuite-simulator")
    _wait_ready(f"{shop_url}/_sim/state", children, "shopify-simulator")
    try:
        for sku, price in PRICES.items():  # the store's catalogue, no stock yet
            httpx.post(f"{shop_url}/_sim/products", json={"sku": sku, "price": price})
        items = [{"id": item, "itemId": sku} for sku, item in ITEMS.items()]
        httpx.post(f"{netsuite_url}/_sim/seed", json={"items": [*items, DISCOUNT_ITEM]})
        httpx.post(
            f"{netsuite_url}/_sim/config",
            json={"webhook_url": f"{gateway}/webhooks/erp", "webhook_secret": NS_WEBHOOK_SECRET},
        )
        _wait_own_gateway(gateway, run_key, children)
        if os.environ.get("GATEWAY_REDIS_URL"):
            children.spawn("worker", [sys.executable, "-m", "app.cli", "worker"], env)

        print("NetSuite receives stock and prices (its user-event webhooks) …", flush=True)
        _erp_changes(netsuite_url)
        if not _wait_for(lambda: _store_stock(shop_url) == STOCK, children):
            raise StartupError(
                f"NetSuite's stock did not reach the store (it has {_store_stock(shop_url)}, "
                f"NetSuite {STOCK}); see var/gateway.log"
            )
        print(
            f"{orders} shoppers check out in the store; Shopify sends their signed orders "
            "(and re-sends one webhook) …",
            flush=True,
        )
        sent = asyncio.run(_shop_orders(gateway, shop_url, orders))
        with httpx.Client(
            base_url=gateway, timeout=10, headers={"Authorization": f"Bearer {DEMO_API_KEY}"}
        ) as api:
            counts = _settle(api, sent["202"], children)
            print("a NetSuite user cuts a price by 90% by mistake …", flush=True)
            _cut_price(netsuite_url)
            held = _wait_for(lambda: api.get("/api/v1/approvals").json()["items"], children)
            _settle(api, sent["202"], children)
            sales_orders = httpx.get(f"{netsuite_url}/_sim/records/salesOrder").json()
            store = httpx.get(f"{shop_url}/_sim/state").json()
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        children.check()  # a child that died is the better explanation
        raise StartupError(
            f"the demo's traffic failed ({type(exc).__name__}: {exc}); see var/gateway.log"
        ) from None
    children.check()
    if not _own_gateway(gateway, run_key):
        raise StartupError(
            f"the gateway at {gateway} is no longer this demo's; see var/gateway.log"
        )
    _summary(gateway, netsuite_url, sent, counts, sales_orders, store, held or [])
    if stay:
        print(
            "\nRunning; press Ctrl-C to stop. Logs: var/gateway.log, "
            "var/netsuite-simulator.log, var/shopify-simulator.log",
            flush=True,
        )
        while True:
            children.check()
            time.sleep(0.5)


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
    stock = {sku: store["inventory"].get(sku, {}).get(STORE_LOCATION) for sku in STOCK}
    prices = {sku: store["prices"].get(sku, {}).get("price") for sku in PRICES}
    refused = f"\n  refused at checkout      {sent['out of stock']}  (out of stock)" * bool(
        sent["out of stock"]
    )
    approvals = "; ".join(h.get("held_reason") or "" for h in held) or "none"
    print(
        f"""
What flowed
  webhooks accepted        {sent["202"]}
  duplicates recognised    {sent["duplicate"]}{refused}
  order deliveries         {dict(counts)}
  NetSuite sales orders    {len(records)}  (one per order, however often Shopify re-sends)
  stock in the store       {stock}  (NetSuite's {STOCK}, less what the orders took)
  prices in the store      {prices}
  held for approval        {len(held)}: {approvals}

Where to look (API key: {key})
  OpenAPI / try it         {gateway}/docs
  deliveries               curl -H 'Authorization: Bearer {key}' {gateway}/api/v1/deliveries
  the parked order         curl -H 'Authorization: Bearer {key}' '{gateway}/api/v1/deliveries?status=parked'
  release it by mapping    curl -X PUT -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
                             -d '{json.dumps({"entries": {UNMAPPED_SKU: UNMAPPED_ITEM}})}' {gateway}/api/v1/mappings/sku/erp
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
