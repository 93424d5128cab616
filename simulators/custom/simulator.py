"""A custom shop (ASGI) that receives the gateway's pushes, plus a sender of its webhooks.

The shop side of ``type: custom``:
- ``POST /gateway/events``: Standard Webhooks signature checked (401 otherwise); the envelope
  is stored once per ``webhook-id`` (a re-send answers 200 with the first answer again);
  answers ``{"id": "shop-<n>"}``. ``inventory.availability_changed`` updates the stock table
  unless its ``as_of`` is older than the row's (then it is stored with ``"applied": false``);
- ``GET /gateway/stock?sku=A&sku=B``: signed like a push (empty body); the stock table as
  ``{"items": [{"sku", "location", "available"}]}`` (no ``sku``: every row);
- ``GET /_sim/received?type=…``: stored envelopes, oldest first;
- ``GET /_sim/stats``: received, duplicates, bad signatures, stale availability, responses;
- ``POST /_sim/reset``: everything back to empty, faults cleared;
- ``GET|PUT /_sim/stock``: read or set rows directly (``{"items": [{"sku", "location",
  "available", "as_of"?}]}``), e.g. to make the shop drift from the ERP;
- ``GET|POST|DELETE /_sim/faults``: ``{"latency_seconds": 0.2,
  "outage": {"count": 3} | {"until_cleared": true}, "rate_limit": {"count": 2,
  "retry_after": 1}, "accept_then_fail": {"count": 1}}`` — the last stores a push and then
  answers 500, the case that makes a gateway retry something the shop already has.

``ShopSender`` signs and posts canonical events to the gateway like a shop would.
Run: ``python -m simulators.custom.simulator serve --port 8103 --secret whsec_…``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.custom import signing
from kernel.canonical.inventory import StockAvailability
from kernel.errors import SignatureError
from simulators.faults import FaultControls, FaultCounters
from simulators.serving import serve

SECRET_ENV = "CUSTOM_SHOP_SECRET"
DEFAULT_PORT = 8103
AVAILABILITY_EVENT = "inventory.availability_changed"


class ControlError(Exception):
    """A bad request to a ``/_sim`` endpoint (answered 400)."""


@dataclass
class Faults(FaultCounters):
    """The shared counters plus "stored it, then failed to answer"."""

    accept_then_fail_remaining: int = 0

    def take_accept_then_fail(self) -> bool:
        if self.accept_then_fail_remaining > 0:
            self.accept_then_fail_remaining -= 1
            return True
        return False

    def snapshot(self) -> dict[str, Any]:
        return {
            **super().snapshot(),
            "accept_then_fail": {"count": self.accept_then_fail_remaining},
        }


@dataclass
class StockRow:
    available: Decimal
    as_of: datetime | None = None  # None: set by hand, any event may overwrite it


@dataclass
class Received:
    webhook_id: str
    shop_id: str
    envelope: dict[str, Any]
    received_at: datetime
    applied: bool = True  # False: an availability older than what the shop had

    def as_json(self) -> dict[str, Any]:
        return {
            "webhook_id": self.webhook_id,
            "id": self.shop_id,
            "type": self.envelope.get("type"),
            "received_at": self.received_at.isoformat(),
            "applied": self.applied,
            "envelope": self.envelope,
        }


@dataclass
class Stats:
    received: int = 0
    duplicates: int = 0
    bad_signatures: int = 0
    stale_availability: int = 0
    responses: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "duplicates": self.duplicates,
            "bad_signatures": self.bad_signatures,
            "stale_availability": self.stale_availability,
            "responses": dict(self.responses),
        }


class ShopSimulator(FaultControls[Faults]):
    """One shop: its secret, what it received, its stock table and faults, plus the ASGI app."""

    def __init__(
        self,
        secret: str,
        *,
        faults: Faults | None = None,
        tolerance_seconds: float = signing.DEFAULT_TOLERANCE_SECONDS,
    ) -> None:
        self.key = signing.secret_key(secret)  # ValueError now beats 401s later
        self.tolerance_seconds = tolerance_seconds
        self.faults = faults or Faults()
        self.received: list[Received] = []
        self.by_webhook_id: dict[str, Received] = {}
        self.stock: dict[tuple[str, str | None], StockRow] = {}
        self.stats = Stats()
        self.app = self._build_app()

    # --- state ------------------------------------------------------------------------
    def reset(self) -> None:
        self.faults = Faults()
        self.received.clear()
        self.by_webhook_id.clear()
        self.stock.clear()
        self.stats = Stats()

    def events(self, event_type: str | None = None) -> list[Received]:
        return [r for r in self.received if event_type in (None, r.envelope.get("type"))]

    def set_stock(
        self, sku: str, location: str | None, available: Decimal, as_of: datetime | None = None
    ) -> None:
        self.stock[(sku, location)] = StockRow(available, as_of)

    def accept_then_fail(self, count: int = 1) -> None:
        """The next ``count`` pushes are stored, then answered 500."""
        self.faults.accept_then_fail_remaining = count

    def clear_faults(self) -> None:
        self.faults = Faults()

    # --- HTTP -------------------------------------------------------------------------
    def _build_app(self) -> Starlette:
        app = Starlette(
            routes=[
                Route("/gateway/events", self._events, methods=["POST"]),
                Route("/gateway/stock", self._stock, methods=["GET"]),
                Route("/_sim/{path:path}", self._control, methods=["GET", "POST", "PUT", "DELETE"]),
            ]
        )
        app.state.simulator = self
        return app

    async def _guard(self, request: Request, body: bytes) -> Response | None:
        """Injected faults first (a real outage does not read the request), then the signature."""
        if self.faults.latency_seconds:
            await asyncio.sleep(self.faults.latency_seconds)
        if self.faults.take_outage():
            return _error(503, "shop is temporarily unavailable")
        retry = self.faults.take_rate_limit()
        if retry is not None:
            seconds = str(int(retry) if float(retry).is_integer() else retry)
            return _error(429, "too many requests", {"Retry-After": seconds})
        try:
            signing.verify(
                self.key, request.headers, body, tolerance_seconds=self.tolerance_seconds
            )
        except SignatureError as exc:
            self.stats.bad_signatures += 1
            return _error(401, str(exc))
        return None

    async def _events(self, request: Request) -> Response:
        response = await self._receive(request)
        self.stats.responses[str(response.status_code)] += 1
        return response

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        refused = await self._guard(request, body)
        if refused is not None:
            return refused
        msg_id = request.headers[signing.ID_HEADER]
        seen = self.by_webhook_id.get(msg_id)
        if seen is not None:
            self.stats.duplicates += 1
            return JSONResponse({"id": seen.shop_id, "duplicate": True})
        try:
            envelope = json.loads(body, parse_float=Decimal)
        except ValueError as exc:
            return _error(400, f"body is not JSON: {exc}")
        if not isinstance(envelope, dict) or not isinstance(envelope.get("type"), str):
            return _error(422, 'expected {"type": …, "timestamp": …, "data": {…}}')
        applied = True
        if envelope["type"] == AVAILABILITY_EVENT:
            try:
                applied = self._apply_availability(envelope.get("data"))
            except ValidationError as exc:
                return _error(422, f"bad availability: {exc.errors(include_url=False)}")
        record = Received(
            msg_id, f"shop-{len(self.received) + 1}", _plain(envelope), datetime.now(UTC), applied
        )
        self.received.append(record)
        self.by_webhook_id[msg_id] = record
        self.stats.received += 1
        if self.faults.take_accept_then_fail():
            return _error(500, "stored, but the shop crashed before answering")
        return JSONResponse({"id": record.shop_id})

    def _apply_availability(self, data: Any) -> bool:
        level = StockAvailability.model_validate(data)
        key = (level.sku, level.location)
        row = self.stock.get(key)
        if row is not None and row.as_of is not None and level.as_of < row.as_of:
            # an older fact arriving late must not overwrite a newer one
            self.stats.stale_availability += 1
            return False
        self.stock[key] = StockRow(level.available, level.as_of)
        return True

    async def _stock(self, request: Request) -> Response:
        refused = await self._guard(request, await request.body())
        if refused is not None:
            self.stats.responses[str(refused.status_code)] += 1
            return refused
        skus = set(request.query_params.getlist("sku"))
        self.stats.responses["200"] += 1
        return JSONResponse({"items": self._stock_items(skus or None)})

    def _stock_items(self, skus: set[str] | None) -> list[dict[str, Any]]:
        return [
            {
                "sku": sku,
                "location": location,
                "available": str(row.available),
                "as_of": row.as_of.isoformat() if row.as_of else None,
            }
            for (sku, location), row in sorted(self.stock.items(), key=lambda kv: str(kv[0]))
            if skus is None or sku in skus
        ]

    async def _control(self, request: Request) -> Response:
        path = request.path_params["path"].strip("/")
        try:
            answer = await self._control_answer(request, path)
        except ControlError as exc:
            return _error(400, str(exc))
        if answer is None:
            return _error(404, f"no control endpoint {request.method} /_sim/{path}")
        return JSONResponse(answer)

    async def _control_answer(self, request: Request, path: str) -> dict[str, Any] | None:
        method = request.method
        if path == "received" and method == "GET":
            items = [r.as_json() for r in self.events(request.query_params.get("type"))]
            return {"count": len(items), "items": items}
        if path == "stats" and method == "GET":
            return self.stats.as_json()
        if path == "reset" and method == "POST":
            self.reset()
            return {"reset": True}
        if path == "stock" and method in ("GET", "PUT"):
            if method == "PUT":
                self._put_stock(await _control_body(request))
            return {"items": self._stock_items(None)}
        if path == "faults" and method in ("GET", "POST", "DELETE"):
            if method == "DELETE":
                self.clear_faults()
            elif method == "POST":
                self._set_faults(await _control_body(request))
            return self.faults.snapshot()
        return None

    def _put_stock(self, body: Mapping[str, Any]) -> None:
        items = body.get("items")
        if not isinstance(items, list):
            raise ControlError('expected {"items": [{"sku", "location", "available"}]}')
        for index, item in enumerate(items):
            try:
                available = Decimal(str(item["available"]))
                as_of = datetime.fromisoformat(item["as_of"]) if item.get("as_of") else None
                self.set_stock(str(item["sku"]), item.get("location"), available, as_of)
            except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
                raise ControlError(f"items[{index}]: {exc!r}") from None

    def _set_faults(self, body: Mapping[str, Any]) -> None:
        try:
            self.set_common_faults(body)
            if "accept_then_fail" in body:
                self.accept_then_fail(int((body["accept_then_fail"] or {}).get("count", 1)))
        except (TypeError, ValueError, AttributeError) as exc:
            raise ControlError(f"bad fault settings: {exc}") from None


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=dict(headers or {}))


def _plain(value: Any) -> Any:
    """JSON-ready copy (Decimals from parse_float back to strings)."""
    return json.loads(json.dumps(value, default=str))


async def _control_body(request: Request) -> Mapping[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise ControlError(f"body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ControlError("body must be a JSON object")
    return body


def create_app(
    secret: str,
    *,
    faults: Faults | None = None,
    tolerance_seconds: float = signing.DEFAULT_TOLERANCE_SECONDS,
) -> Starlette:
    """The shop as an ASGI app; ``app.state.simulator`` is the ShopSimulator."""
    return ShopSimulator(secret, faults=faults, tolerance_seconds=tolerance_seconds).app


# --- the shop's side of inbound: sending webhooks to the gateway -------------------------


class ShopSender:
    """Signs and POSTs canonical events to a gateway webhook URL, as a custom shop does."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.key = signing.secret_key(secret)
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(timeout=timeout)

    async def send(
        self,
        event_type: str,
        payload: Mapping[str, Any],
        webhook_id: str | None = None,
        *,
        occurred_at: datetime | None = None,
        signed_at: int | None = None,
    ) -> httpx.Response:
        """POST one signed envelope; ``webhook_id`` defaults to a fresh ``msg_…``."""
        envelope = {
            "type": event_type,
            "timestamp": (occurred_at or datetime.now(UTC)).isoformat(),
            "data": dict(payload),
        }
        body = json.dumps(envelope, default=str).encode()
        msg_id = webhook_id or f"msg_{uuid.uuid4().hex}"
        headers = signing.sign_headers(self.key, msg_id, body, timestamp=signed_at)
        headers["content-type"] = "application/json"
        return await self.client.post(self.url, content=body, headers=headers)

    async def aclose(self) -> None:
        if self._own_client:
            await self.client.aclose()

    async def __aenter__(self) -> ShopSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


# --- CLI ----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.custom.simulator",
        description="Custom shop simulator (Standard Webhooks): serve the shop, or send events.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve /gateway/events, /gateway/stock and /_sim/")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--secret", default=os.environ.get(SECRET_ENV), help=f"${SECRET_ENV}")
    serve.add_argument("--log-level", default="warning")
    send = sub.add_parser("send", help="send one signed canonical event to a gateway")
    send.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8000/webhooks/shop")
    send.add_argument("--secret", default=os.environ.get(SECRET_ENV), help=f"${SECRET_ENV}")
    send.add_argument("--type", required=True, dest="event_type", help="e.g. order.created")
    send.add_argument("--data", required=True, help="JSON file with the payload ('-': stdin)")
    send.add_argument("--webhook-id", help="default: a fresh msg_… id")
    return parser


async def _run_send(args: argparse.Namespace, payload: Mapping[str, Any]) -> int:
    async with ShopSender(args.url, args.secret) as sender:
        response = await sender.send(args.event_type, payload, args.webhook_id)
    print(f"{response.status_code} {response.text}", flush=True)
    return 0 if response.is_success else 1


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.secret:
        parser.error(f"{args.command} needs --secret (or ${SECRET_ENV})")
    try:
        signing.secret_key(args.secret)
    except ValueError as exc:
        parser.error(f"--secret: {exc}")
    if args.command == "send":
        text = sys.stdin.read() if args.data == "-" else Path(args.data).read_text()
        try:
            payload = json.loads(text, parse_float=Decimal)
        except ValueError as exc:
            parser.error(f"--data is not JSON: {exc}")
        return asyncio.run(_run_send(args, payload))
    app = create_app(args.secret)
    print(
        f"Custom shop simulator on http://{args.host}:{args.port} "
        "(pushes /gateway/events, stock /gateway/stock, control /_sim/)",
        flush=True,
    )
    serve(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["Faults", "ShopSender", "ShopSimulator", "create_app", "main"]
