"""A custom shop (Standard Webhooks, ``type: custom``) and NetSuite, on the embedded default.

Real processes: ``erp-gateway serve`` on SQLite with the in-process worker and scheduler, the
custom shop simulator and the NetSuite simulator posting signed user-event webhooks. The shop
sends a canonical order; stock and the shipment come back to the shop, signed.
"""

from __future__ import annotations

import asyncio
import base64
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators.custom.simulator import ShopSender
from tests.conftest import NS_CREDS
from tests.support.factories import make_order
from tests.support.processes import free_port, poll, process_group, wait_http

pytestmark = pytest.mark.e2e

# NetSuite without the user-event script: the gateway reads changes with SuiteQL
POLL = """    poll: {streams: [inventory, shipments], interval_seconds: 1, page_size: 50}
"""
SHOP_SECRET = "whsec_" + base64.b64encode(b"custom-shop-secret-0123456789ab").decode()
NS_WEBHOOK_SECRET = "ns-webhook-secret"


@dataclass
class Stack:
    gateway_url: str
    shop_url: str
    ns_url: str
    restart: Callable[[], None]

    def received(self, event_type: str) -> list[dict[str, Any]]:
        with httpx.Client(base_url=self.shop_url, timeout=10) as shop:
            answer = shop.get("/_sim/received", params={"type": event_type}).json()
        items = answer["items"] if isinstance(answer, dict) else answer
        return [item["envelope"] for item in items]

    def sales_orders(self) -> list[dict[str, Any]]:
        with httpx.Client(base_url=self.ns_url, timeout=10) as ns:
            body = ns.get("/_sim/records/salesOrder").json()
        return body["items"] if isinstance(body, dict) else body  # type: ignore[no-any-return]


@pytest.fixture(params=["webhooks", "polling"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    polling = request.param == "polling"
    ns_port, shop_port, gw_port = free_port(), free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gw_port}"
    shop_url, ns_url = f"http://127.0.0.1:{shop_port}", f"http://127.0.0.1:{ns_port}"
    creds = ", ".join(f"{k}: {v}" for k, v in NS_CREDS.items())
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"""
connections:
  - id: shop
    type: custom
    base_url: {shop_url}
    credentials: {{webhook_secret: "{SHOP_SECRET}"}}
  - id: erp
    type: netsuite
    base_url: {ns_url}
    credentials: {{{creds}, webhook_secret: {NS_WEBHOOK_SECRET}}}
{POLL if polling else ""}routes:
  - {{flow: orders, from: shop, to: erp}}
  - {{flow: inventory, from: erp, to: shop}}
  - {{flow: shipments, from: erp, to: shop}}
mappings:
  sku: {{erp: {{"SKU-RED-M": "1042"}}}}
delivery: {{backoff_base_seconds: 0.05, backoff_max_seconds: 0.5, request_timeout_seconds: 5}}
"""
    )
    db = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    env = {
        "GATEWAY_DATABASE_URL": db,
        "GATEWAY_REDIS_URL": "",
        "GATEWAY_CONFIG": str(config),
        "GATEWAY_API_KEYS": "operator-key:operator",
        "GATEWAY_LOG_FORMAT": "json",
        "GATEWAY_SCHEDULE_TICK_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    with process_group(tmp_path) as group:
        from app.cli import migrate

        migrate(db)
        ns_args = [sys.executable, "-m", "simulators.netsuite.simulator", "--host", "127.0.0.1"]
        ns_args += ["--port", str(ns_port)]
        for key, value in NS_CREDS.items():
            ns_args += [f"--{key.replace('_', '-')}", value]
        netsuite = group.start("netsuite", ns_args, {"PYTHONUNBUFFERED": "1"})
        shop_args = [sys.executable, "-m", "simulators.custom.simulator", "serve"]
        shop_args += ["--host", "127.0.0.1", "--port", str(shop_port), "--secret", SHOP_SECRET]
        shop = group.start("shop", shop_args, {"PYTHONUNBUFFERED": "1"})
        gateway = group.start(
            "gateway", [sys.executable, "-m", "app.cli", "serve", "--port", str(gw_port)], env
        )
        wait_http(f"{ns_url}/_sim/stats", netsuite)
        wait_http(f"{shop_url}/_sim/stats", shop)
        wait_http(f"{gateway_url}/readyz", gateway)
        with httpx.Client(base_url=ns_url, timeout=10) as ns:
            ns.post("/_sim/seed", json={"items": [{"id": "1042", "itemId": "SKU-RED-M"}]})
            if not polling:  # the user-event script posts every change
                ns.post(
                    "/_sim/config",
                    json={
                        "webhook_url": f"{gateway_url}/webhooks/erp",
                        "webhook_secret": NS_WEBHOOK_SECRET,
                    },
                ).raise_for_status()

        def restart() -> None:
            nonlocal gateway
            gateway.stop()
            gateway = group.start(
                "gateway", [sys.executable, "-m", "app.cli", "serve", "--port", str(gw_port)], env
            )
            wait_http(f"{gateway_url}/readyz", gateway)

        yield Stack(gateway_url, shop_url, ns_url, restart)


def test_custom_shop_order_reaches_netsuite_and_stock_and_shipment_come_back(stack: Stack) -> None:
    order = make_order("5001", skus=("SKU-RED-M",)).model_dump(mode="json")

    async def send() -> httpx.Response:
        async with ShopSender(f"{stack.gateway_url}/webhooks/shop", SHOP_SECRET) as sender:
            return await sender.send("order.created", order, webhook_id="msg_order_5001")

    answer = asyncio.run(send())
    assert answer.status_code == 202, answer.text
    assert asyncio.run(send()).json()["duplicate"] is True  # the shop's retry is recognised
    so = poll(
        lambda: [o for o in stack.sales_orders() if o.get("externalId") == "shop-5001"],
        message="the sales order",
    )
    assert len(so) == 1

    with httpx.Client(base_url=stack.ns_url, timeout=10) as ns:
        ns.post(
            "/_sim/stock", json={"item": "1042", "location": "1", "on_hand": 7}
        ).raise_for_status()

    def latest_stock() -> Decimal | None:
        pushes = stack.received("inventory.availability_changed")
        return Decimal(pushes[-1]["data"]["available"]) if pushes else None

    # 7 on hand, 1 committed to the shop's own order: 6 to sell
    poll(lambda: latest_stock() == 6, message="stock pushed to the shop")

    with httpx.Client(base_url=stack.ns_url, timeout=10) as ns:
        ns.post(
            "/_sim/fulfil",
            json={
                "order": "eid:shop-5001",
                "packages": [{"tracking": "1ZCUSTOM01", "carrier": "UPS"}],
            },
        ).raise_for_status()
    (shipment,) = poll(lambda: stack.received("shipment.created"), message="the shipment")
    assert shipment["data"]["order_key"] == "shop:order:5001"
    assert shipment["data"]["packages"][0]["tracking_number"] == "1ZCUSTOM01"
    assert shipment["directives"]["notify_customer"] is True

    # a restart resumes from where it was (stored cursor): a new change arrives once, and
    # nothing already sent is sent again
    stack.restart()
    with httpx.Client(base_url=stack.ns_url, timeout=10) as ns:
        ns.post(
            "/_sim/stock", json={"item": "1042", "location": "1", "on_hand": 3}
        ).raise_for_status()
    poll(lambda: latest_stock() == 3, message="stock after the restart")
    assert len(stack.received("shipment.created")) == 1
