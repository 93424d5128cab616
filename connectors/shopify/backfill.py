"""Backfill: what changed in the shop since the last poll, read back, so a webhook that never
came (dropped, or sent while Shopify had deleted the subscription) still arrives within one
poll interval.

Shopify retries a failed delivery 8 times over 4 hours, then deletes a subscription made
through the API (https://shopify.dev/changelog/updates-to-webhook-retry-mechanism;
../shared/reference/storefront-apis.md §1.1), and delivery is not guaranteed in order or at
all ("run reconciliation jobs": https://shopify.dev/apps/webhooks/best-practices).

Streams (the connection's ``poll: {streams: [orders, customers]}``):

- ``orders``: ``GET orders.json?status=any&updated_at_min=…`` — each order becomes
  ``order.created`` (the core makes it an update when the order is already known) and, when
  ``cancelled_at`` is set, ``order.cancelled`` (recorded once); each of its ``refunds``
  becomes ``refund.created``;
- ``customers``: ``GET customers.json?updated_at_min=…`` → ``customer.upserted``.

REST, legacy since 2024-10 but still served to custom apps, on purpose: a webhook's body "is
the full REST resource payload for the topic"
(https://shopify.dev/docs/apps/build/webhooks/delivery-structure), so an order read back is
parsed by the very code that parses its webhook into the very same canonical event, and the
core's dedupe keeps one of the two, whichever came first. (A GraphQL ``orders(query:
"updated_at:>…")`` read is a different shape, needing a second parser that agrees with the
first field for field.)

Paging: cursor-based, ``page_info`` from the ``Link`` header's ``rel="next"``; with
``page_info`` only ``limit`` and ``fields`` may be sent
(https://shopify.dev/docs/api/usage/pagination-rest). ``updated_at_min`` is inclusive.

The cursor (opaque to the core, JSON): ``since`` — the newest ``updated_at`` read so far;
each pass asks from ``since`` minus ``backfill_overlap_seconds`` (a change committed late
within the same second, clock skew), and repeats are dropped by the core; ``page`` — the
next page of the pass in progress (a page token Shopify no longer accepts restarts the
pass); ``newest`` — the newest ``updated_at`` of that pass. The first pass starts at
``backfill_start`` if set, else now: the backfill covers gaps from when it is switched on,
it does not re-import the shop's history.

A record that cannot be parsed is handed to the core as ``Unparsed`` (kept in quarantine
with the topic header its webhook would carry, replayable after a fix): it never stops the
stream.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connectors._kit.http import error_for_status, send
from connectors.shopify import records, webhooks
from connectors.shopify.admin import STATUS_POLICY, ShopifyAdmin
from connectors.shopify.inbound import load_json
from connectors.shopify.options import ShopifyOptions
from kernel.canonical.events import CanonicalEvent
from kernel.errors import PayloadError, PermanentError, TransientError
from kernel.types import PollPage, Unparsed

STREAMS = frozenset({"orders", "customers"})
MAX_LIMIT = 250  # Shopify's page size limit


@dataclass(frozen=True)
class Cursor:
    since: datetime
    page: str | None = None
    newest: datetime | None = None

    def text(self) -> str:
        return json.dumps(
            {
                "since": self.since.isoformat(),
                "page": self.page,
                "newest": self.newest.isoformat() if self.newest else None,
            }
        )

    @classmethod
    def read(cls, text: str | None, start: datetime) -> Cursor:
        if not text:
            return cls(start)
        try:
            data = json.loads(text)
            newest = data.get("newest")
            return cls(
                datetime.fromisoformat(data["since"]),
                data.get("page") or None,
                datetime.fromisoformat(newest) if newest else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return cls(start)  # not ours (an older format): start a pass from now


async def poll(
    admin: ShopifyAdmin,
    options: ShopifyOptions,
    source: str,
    stream: str,
    cursor: str | None,
    limit: int,
    *,
    now: datetime | None = None,
) -> PollPage:
    """One page of ``stream`` after ``cursor``."""
    if stream not in STREAMS:
        raise PermanentError(
            f"Shopify cannot poll {stream!r}; it polls {', '.join(sorted(STREAMS))}"
        )
    start = options.backfill_start or (now or datetime.now(UTC))
    at = Cursor.read(cursor, start)
    overlap = timedelta(seconds=options.backfill_overlap_seconds)
    limit = max(1, min(limit, MAX_LIMIT))
    try:
        items, next_page = await _read(admin, stream, at, overlap, limit)
    except PermanentError:
        if at.page is None:
            raise
        # a page token Shopify no longer takes (it expired): the pass starts again
        at = Cursor(at.since)
        items, next_page = await _read(admin, stream, at, overlap, limit)
    events: list[CanonicalEvent] = []
    unparsed: list[Unparsed] = []
    newest = at.newest
    for item in items:
        found, failed = _records(stream, item, source)
        events += found
        unparsed += failed
        stamp = _updated_at(item)
        if stamp is not None and (newest is None or stamp > newest):
            newest = stamp
    if next_page:
        following = Cursor(at.since, next_page, newest)
    else:  # the pass is complete: the next one starts from the newest change it read
        following = Cursor(max(at.since, newest) if newest else at.since)
    return PollPage(events, following.text(), has_more=bool(next_page), unparsed=unparsed)


async def _read(
    admin: ShopifyAdmin, stream: str, at: Cursor, overlap: timedelta, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    params = {"limit": str(limit)}
    if at.page is not None:
        params["page_info"] = at.page
    else:
        params["updated_at_min"] = (at.since - overlap).isoformat()
        if stream == "orders":
            params["status"] = "any"  # cancelled and closed orders too (the default is open)
    url = f"{admin.base}/{stream}.json"
    headers = {"X-Shopify-Access-Token": admin.token, "Accept": "application/json"}
    describe = f"Shopify (GET {stream}.json, backfill)"
    request = admin.http.build_request("GET", url, params=params, headers=headers)
    response = await send(admin.http, request, timeout=None, describe=describe, check_status=False)
    error = error_for_status(response, describe=describe, policy=STATUS_POLICY)
    if error is not None:
        raise error
    try:
        body = load_json(response.content)
    except PayloadError as exc:
        raise TransientError(f"{describe} answered with a body that is not JSON: {exc}") from None
    items = body.get(stream) if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise PermanentError(f"{describe} answered without a {stream!r} list")
    return [i for i in items if isinstance(i, dict)], _next_page(response.links)


def _next_page(links: Mapping[str | None, Mapping[str, str]]) -> str | None:
    url = (links.get("next") or {}).get("url")
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("page_info")
    return values[0] if values else None


def _updated_at(item: Mapping[str, Any]) -> datetime | None:
    text = item.get("updated_at")
    if not isinstance(text, str):
        return None
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _records(
    stream: str, item: dict[str, Any], source: str
) -> tuple[list[CanonicalEvent], list[Unparsed]]:
    """The events of one record read back, as its webhooks would give them."""
    if stream == "customers":
        return _parsed("customers/update", item, source, "customer")
    events, unparsed = _parsed("orders/updated", item, source, "order")
    for refund in item.get("refunds") or []:
        if isinstance(refund, dict):
            found, failed = _parsed("refunds/create", refund, source, "refund")
            events += found
            unparsed += failed
    return events, unparsed


def _parsed(
    topic: str, item: dict[str, Any], source: str, kind: str
) -> tuple[list[CanonicalEvent], list[Unparsed]]:
    try:
        if kind == "order":
            events = webhooks.order_events("order.created", item, source)
            if item.get("cancelled_at"):
                events += webhooks.order_events("order.cancelled", item, source)
            return events, []
        return records.record_events(topic, item, {}, source), []
    except PayloadError as exc:
        key = f"backfill:{kind}:{item.get('id')}:{item.get('updated_at') or item.get('created_at')}"
        return [], [
            Unparsed(
                topic=topic,
                dedupe_key=key,
                # amounts read as Decimal go back as strings, as Shopify writes them
                body=json.dumps(item, default=str).encode(),
                error=str(exc),
                headers={"x-shopify-topic": topic},
            )
        ]
