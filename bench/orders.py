"""Signed Shopify order webhooks, written to a pool file that wrk's Lua script replays.

wrk's Lua has no HMAC, so every request is built and signed here beforehand: one line per
request, ``webhook id <TAB> signature <TAB> JSON body`` (json.dumps writes no newline).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "shopify_orders_create.json"
SECRET = "bench-secret"
SHOP_DOMAIN = "bench.myshopify.com"
SKUS = ("BENCH-SKU-1", "BENCH-SKU-2")

_SAMPLE: dict[str, Any] = json.loads(FIXTURE.read_text())


def order_body(key: str, number: int) -> bytes:
    """The fixture order under a new id (from ``key``) with the two benchmark SKUs."""
    order = {
        **_SAMPLE,  # a shallow copy: only these top-level fields change
        "id": int(hashlib.sha256(key.encode()).hexdigest()[:12], 16),
        "name": f"#B{number}",
        "line_items": [  # two lines, each a SKU the benchmark config maps
            dict(_SAMPLE["line_items"][0], sku=SKUS[0]),
            dict(_SAMPLE["line_items"][1], sku=SKUS[1]),
        ],
    }
    return json.dumps(order).encode()


def sign(body: bytes) -> str:
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


def write_pool(path: Path, run: str, count: int, *, hot: bool = False) -> Path:
    """``count`` signed webhooks: distinct orders, or one order (``hot``) under new webhook ids."""
    path.parent.mkdir(parents=True, exist_ok=True)
    hot_body = order_body(f"{run}-hot", 0)
    hot_line = f"{sign(hot_body)}\t{hot_body.decode()}"
    with path.open("w") as out:
        for i in range(count):
            if hot:
                rest = hot_line
            else:
                body = order_body(f"{run}-{i}", i)
                rest = f"{sign(body)}\t{body.decode()}"
            out.write(f"{uuid.uuid4()}\t{rest}\n")
    return path
