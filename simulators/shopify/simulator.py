"""A Shopify simulator: signed webhook deliveries and an Admin REST API subset (ASGI).

Webhooks (``WebhookSender``): deliveries carry Shopify's real headers (``X-Shopify-Topic``,
``X-Shopify-Hmac-Sha256``, ``X-Shopify-Shop-Domain``, ``X-Shopify-API-Version``,
``X-Shopify-Webhook-Id``, ``X-Shopify-Event-Id``, ``X-Shopify-Triggered-At``,
``Content-Type``), signed over the exact bytes sent. A delivery can be re-sent unchanged (same
webhook id, as Shopify's retries are) or sent with a deliberately wrong signature.

Admin API (``create_app()``), auth by ``X-Shopify-Access-Token``:

- ``GET /admin/api/{version}/orders.json``: ``limit`` (1 to 250, default 50), ``status``
  (``open`` default, ``closed``, ``cancelled``, ``any``), ``since_id``, ``ids``,
  ``updated_at_min`` (inclusive), ``fields``;
  cursor paging by ``page_info`` in the ``Link`` header (``rel="next"``/``rel="previous"``),
  with which only ``limit`` and ``fields`` may be sent, as in Shopify; orders by id ascending;
- ``GET /admin/api/{version}/orders/count.json`` and ``…/orders/{id}.json``;
- a wrong or missing token → 401 with Shopify's body; every answer carries
  ``X-Shopify-Shop-Api-Call-Limit: used/size`` from a leaky bucket (default 40, leaking
  2/s); a full bucket → 429 with ``Retry-After`` (seconds, e.g. ``0.5``).

Control (no auth), over HTTP so other processes can drive it:

- ``POST /_sim/orders``: ``{"skus": [...], "quantities": [...], "guest": false,
  "discount": "5.00", "tax_rate": "0.0725", "currency": "USD", "presentment_currency": "EUR",
  "shipping": "10.00"}`` (all optional) or ``{"order": {...}}`` creates an order; with a webhook
  target set, sends ``orders/create`` and reports the gateway's answer; ``GET`` lists orders;
- ``POST /_sim/orders/{id}/cancel``: cancels it and sends ``orders/cancelled`` then
  ``orders/updated`` (one merchant action, so one ``X-Shopify-Event-Id``);
- ``GET|POST|DELETE /_sim/webhooks``: ``{"url": …, "secret": …, "topics": [...]}``; GET shows
  the target (never the secret) and every delivery made;
- ``GET|POST|DELETE /_sim/faults``: ``{"latency_seconds": 0.2,
  "outage": {"count": 3} | {"until_cleared": true}, "rate_limit": {"count": 2,
  "retry_after": 1}}`` for the Admin API (POST sets what it names, DELETE clears all);
- ``GET /_sim/stats``; ``POST /_sim/reset`` (orders, target, deliveries, faults, bucket, stats).

The store behind the write endpoints (catalogue, stock, fulfillment orders, fulfillments,
refunds, customers, GraphQL SKU search), the shopper's ``POST /_sim/checkout``, ``GET
/_sim/state`` and the ``/_sim/send/…`` webhook helpers live in ``routes`` and
``store``; they are mounted here.

Where the parts live: ``webhooks`` (signed deliveries, batch sending), ``shop`` (the
simulator's state and the Admin API guard), ``orders_api`` (the order endpoints and paging),
``routes`` (the Admin API writes), ``control`` (every ``/_sim/`` endpoint), ``store`` and
the modules it builds on (the store's data and rules); this module builds the app and runs
the CLI.

Webhook subscriptions made through the Admin API (GraphQL ``webhookSubscriptionCreate``),
the app's scopes, subscriptions removed after 8 failed deliveries in a row and lost
deliveries are in ``subscriptions`` (control: ``/_sim/app``); ``GET customers.json`` (with
``updated_at_min``) in ``customers_api``.

Not simulated: webhook retries by the simulator itself.

CLI: ``python -m simulators.shopify.simulator send --url URL --secret S --count N --rate R
[--sku SKU ...]`` and ``python -m simulators.shopify.simulator serve --port P`` (limits:
``--bucket-size`` and ``--leak-rate`` for REST, ``--graphql-restore-rate`` for GraphQL's cost
points, 100 a second as on Shopify's standard plan).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from collections.abc import Callable

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from simulators.serving import serve
from simulators.shopify.control import add_control_routes
from simulators.shopify.customers_api import add_customer_list_route
from simulators.shopify.orders_api import add_order_routes, admin_call
from simulators.shopify.routes import add_store_routes
from simulators.shopify.samples import make_order
from simulators.shopify.shop import (
    ALL_TOPICS,
    DEFAULT_ACCESS_TOKEN,
    INVALID_TOKEN_BODY,
    LeakyBucket,
    ShopifySimulator,
    WebhookTarget,
)
from simulators.shopify.subscriptions import add_app_routes
from simulators.shopify.values import AdminError
from simulators.shopify.webhooks import (
    DEFAULT_API_VERSION,
    DEFAULT_SHOP_DOMAIN,
    WebhookDelivery,
    WebhookSender,
    send_orders,
)

__all__ = [
    "ALL_TOPICS",
    "DEFAULT_API_VERSION",
    "INVALID_TOKEN_BODY",
    "AdminError",
    "LeakyBucket",
    "ShopifySimulator",
    "WebhookDelivery",
    "WebhookSender",
    "create_app",
    "main",
    "make_order",
]


def create_app(
    *,
    access_token: str = DEFAULT_ACCESS_TOKEN,
    shop_domain: str = DEFAULT_SHOP_DOMAIN,
    api_version: str = DEFAULT_API_VERSION,
    bucket_size: int = 40,
    leak_rate: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    webhook_client: httpx.AsyncClient | None = None,
    simulator: ShopifySimulator | None = None,
) -> FastAPI:
    """The simulator as an ASGI app; its state is ``app.state.simulator``.

    ``clock`` drives the leaky bucket (tests pass a fake one instead of sleeping);
    ``webhook_client`` carries the webhooks it sends (e.g. to a gateway app in process).
    """
    sim = simulator or ShopifySimulator(
        access_token=access_token,
        shop_domain=shop_domain,
        api_version=api_version,
        bucket=LeakyBucket(bucket_size, leak_rate, clock),
        webhook_client=webhook_client,
    )
    app = FastAPI(
        title="Shopify simulator",
        docs_url="/_sim/docs",
        redoc_url=None,
        openapi_url="/_sim/openapi.json",
    )
    app.state.simulator = sim

    @app.exception_handler(AdminError)
    async def admin_error(request: Request, exc: AdminError) -> JSONResponse:
        sim.stats[f"admin status {exc.status}"] += 1
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    add_order_routes(app)
    add_customer_list_route(app)
    add_store_routes(app, admin_call)
    add_control_routes(app)
    add_app_routes(app)
    return app


# --- CLI -------------------------------------------------------------------------------------


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.shopify.simulator",
        description="Shopify simulator: send signed webhooks, or serve the Admin API subset.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    send = sub.add_parser("send", help="send signed orders/create webhooks to a gateway")
    send.add_argument("--url", required=True, help="the gateway webhook URL")
    send.add_argument(
        "--secret",
        default=os.environ.get("SHOPIFY_WEBHOOK_SECRET"),
        help="webhook secret (default: $SHOPIFY_WEBHOOK_SECRET)",
    )
    send.add_argument("--count", type=_positive_int, default=10)
    send.add_argument("--rate", type=_positive_float, default=10.0, help="webhooks per second")
    send.add_argument("--sku", action="append", dest="skus", help="a line's SKU (repeatable)")
    send.add_argument("--start", type=int, default=1, help="number of the first order")
    send.add_argument("--concurrency", type=_positive_int, default=50)
    serve = sub.add_parser("serve", help="serve the Admin API subset and /_sim control")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8102)
    serve.add_argument(
        "--access-token", default=os.environ.get("SHOPIFY_ACCESS_TOKEN", DEFAULT_ACCESS_TOKEN)
    )
    serve.add_argument("--bucket-size", type=_positive_int, default=40)
    serve.add_argument("--leak-rate", type=_positive_float, default=2.0)
    serve.add_argument(
        "--graphql-restore-rate",
        type=_positive_float,
        default=100.0,
        help="GraphQL cost points restored per second (standard plan 100, Plus 1000)",
    )
    serve.add_argument("--orders", type=int, default=0, help="orders to create at start")
    serve.add_argument("--webhook-url", help="send webhooks for new orders here")
    serve.add_argument("--webhook-secret", default=os.environ.get("SHOPIFY_WEBHOOK_SECRET"))
    serve.add_argument(
        "--webhook-retries",
        type=_delays,
        default=(),
        metavar="SECONDS,...",
        help="re-send a failed webhook after these waits, as Shopify does (8 retries over "
        "4 hours there), e.g. 1,2,4; default: no retries",
    )
    serve.add_argument("--log-level", default="warning")
    return parser


def _delays(text: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError("must be seconds separated by commas") from None
    if any(not d >= 0 or math.isinf(d) for d in delays):
        raise argparse.ArgumentTypeError("each wait must be 0 or more seconds")
    return delays


async def _run_send(args: argparse.Namespace) -> int:
    async with WebhookSender(args.url, args.secret) as sender:
        report = await send_orders(
            sender,
            args.count,
            args.rate,
            skus=args.skus,
            start=args.start,
            concurrency=args.concurrency,
        )
    print(report.summary(), flush=True)
    return 1 if report.error else 0


def _run_serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    app = create_app(
        access_token=args.access_token, bucket_size=args.bucket_size, leak_rate=args.leak_rate
    )
    sim: ShopifySimulator = app.state.simulator
    sim.webhook_retry_delays = args.webhook_retries
    sim.graphql_restore_rate = sim.store.graphql_restore_rate = args.graphql_restore_rate
    for _ in range(args.orders):
        sim.new_order()
    if args.webhook_url:
        if not args.webhook_secret:
            parser.error("--webhook-url needs --webhook-secret (or $SHOPIFY_WEBHOOK_SECRET)")
        sim.target = WebhookTarget(args.webhook_url, args.webhook_secret, frozenset(ALL_TOPICS))
    print(
        f"Shopify simulator on http://{args.host}:{args.port} "
        f"(Admin API /admin/api/{DEFAULT_API_VERSION}/orders.json, control /_sim/)",
        flush=True,
    )
    serve(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "send":
        if not args.secret:
            parser.error("send needs --secret (or $SHOPIFY_WEBHOOK_SECRET)")
        return asyncio.run(_run_send(args))
    return _run_serve(args, parser)


if __name__ == "__main__":
    sys.exit(main())
