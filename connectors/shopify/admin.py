"""Shopify Admin API calls with the typed errors, and SKU → variant resolution.

Catalogue, prices, stock, fulfillments and refunds go through the GraphQL Admin API
(``graphql`` for the call and its two kinds of errors, ``graphql_documents`` for what is
sent); customers and the stock read-back of reconciliation still use REST. SKUs are
resolved with one GraphQL query, ``productVariants(first: N, query: "sku:… OR sku:…")``,
because REST cannot search variants by SKU and paging every product to fill a cache costs
a call per 250 products on each cache miss. Shopify's search matches loosely, so results
are filtered to exact SKUs. Resolved variants are kept per connector instance and handed
back as links, so the next delivery for the same SKU makes no lookup at all.

Error mapping (``connectors._kit.http``): 429 → RateLimitedError (``Retry-After``); 5xx
(503 too), timeouts and connection failures → TransientError; 401/403 → PermanentError (token
or scopes); 404 → NotFoundError naming the resource; 422/400 → PermanentError with Shopify's
``errors``. GraphQL ``THROTTLED`` → RateLimitedError.

Stock changes (deltas) go through ``inventoryAdjustQuantities`` with Shopify's ``@idempotent``
directive, so a retried delivery is answered with the first result instead of applying twice.
Its ``userErrors`` → PermanentError (an unknown inventory item → NotFoundError, so a stale link
gets one fresh lookup); the codes Shopify documents as "try again" → TransientError, safe
because the retry carries the same key.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from connectors._kit.http import StatusPolicy, error_for_status, send
from connectors.shopify import graphql
from connectors.shopify.graphql import gid
from connectors.shopify.graphql_documents import ADJUST_AVAILABLE, VARIANTS_BY_SKU
from kernel.errors import PermanentError, TransientError

DEFAULT_API_VERSION = "2026-01"  # the first with @idempotent inventory mutations
CALL_LIMIT_HEADER = "x-shopify-shop-api-call-limit"
SKUS_PER_QUERY = 50  # keeps the search string and the query cost small
DEFAULT_RETRY_AFTER = 2.0  # Shopify's REST bucket leaks 2 calls/s
STATUS_POLICY = StatusPolicy(
    credentials_hint=(
        "the connection's access_token, and that the app has the scopes for this flow "
        "(write_inventory, write_products, write_fulfillments/"
        "write_merchant_managed_fulfillment_orders, write_orders, write_customers)"
    ),
    default_retry_after=DEFAULT_RETRY_AFTER,
    # Shopify's 503 is an outage (retried with backoff, counted by the breaker), not pacing
    rate_limit_503=False,
)

# userErrors Shopify documents as transient ("try again"); everything else is permanent
RETRYABLE_USER_ERRORS = frozenset(
    {"IDEMPOTENCY_CONCURRENT_REQUEST", "ADJUST_QUANTITIES_FAILED", "SERVICE_UNAVAILABLE"}
)


def delivery_uri(key: str) -> str:
    """The adjustment's reference document: our delivery, so the store's history names it."""
    return f"gid://erp-gateway/Delivery/{quote(key, safe='')}"


@dataclass(frozen=True)
class VariantRef:
    """Where one SKU lives in the store."""

    sku: str
    variant_id: str
    product_id: str
    inventory_item_id: str


def variant_ref(node: dict[str, Any]) -> VariantRef:
    """A variant node (``graphql_documents.VARIANT_FIELDS``) as a VariantRef."""
    try:
        return VariantRef(
            sku=str(node.get("sku") or ""),
            variant_id=str(node["legacyResourceId"]),
            product_id=str(node["product"]["legacyResourceId"]),
            inventory_item_id=str(node["inventoryItem"]["legacyResourceId"]),
        )
    except (KeyError, TypeError):
        raise PermanentError(
            "Shopify answered a variant without its id, product or inventory item; the "
            "answer is not what the API documents: check the product there, then replay"
        ) from None


class NotFoundError(PermanentError):
    """A 404: the resource named in the message does not exist (callers may look again)."""


def sku_query(skus: list[str]) -> str:
    """Shopify search syntax for exact SKUs; quotes and backslashes escaped."""

    def quoted(sku: str) -> str:
        return '"' + sku.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return " OR ".join(f"sku:{quoted(s)}" for s in skus)


class ShopifyAdmin:
    """One shop's Admin API: ``request`` maps failures to typed errors."""

    def __init__(
        self, http: httpx.AsyncClient, base_url: str, token: str, api_version: str
    ) -> None:
        self.http = http
        self.base = f"{base_url.rstrip('/')}/admin/api/{api_version}"
        self.token = token
        self.last_call_limit: str | None = None  # e.g. "12/40", for delivery summaries
        self.variants: dict[str, VariantRef] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json_body: Any = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        """The JSON answer of one call; ``what`` names the resource in error messages."""
        url = f"{self.base}/{path.lstrip('/')}"
        headers = {"X-Shopify-Access-Token": self.token, "Accept": "application/json"}
        request = self.http.build_request(
            method, url, json=json_body, params=params, headers=headers
        )
        describe = f"Shopify ({method} {path}, {what})"
        response = await send(
            self.http, request, timeout=None, describe=describe, check_status=False
        )
        self.last_call_limit = response.headers.get(CALL_LIMIT_HEADER, self.last_call_limit)
        if response.status_code == 404:
            raise NotFoundError(f"{what} not found in the Shopify store ({method} {path})")
        error = error_for_status(response, describe=describe, policy=STATUS_POLICY)
        if error is not None:
            raise error
        if not response.content:
            return {}
        try:
            return json.loads(response.content, parse_float=Decimal)
        except ValueError:
            raise TransientError(
                f"Shopify answered {method} {path} with a body that is not JSON"
            ) from None

    async def graphql(self, query: str, variables: dict[str, Any], *, what: str) -> Any:
        """``data`` of one GraphQL request (see ``graphql.execute`` for the errors)."""
        return await graphql.execute(self, query, variables, what=what)

    def lock(self, name: str) -> asyncio.Lock:
        """One lock per name in this connector (e.g. a product handle being created)."""
        return self._locks.setdefault(name, asyncio.Lock())

    async def adjust_available(
        self, item_id: str, location_id: str, delta: int, *, key: str, what: str
    ) -> int | None:
        """Change ``available`` by ``delta`` once per ``key``; the quantity after, if told."""
        variables = {
            "input": {
                "reason": "correction",
                "name": "available",
                "referenceDocumentUri": delivery_uri(key),
                "changes": [
                    {
                        "inventoryItemId": gid("InventoryItem", item_id),
                        "locationId": gid("Location", location_id),
                        "delta": delta,
                    }
                ],
            },
            "key": key,
        }
        data = await self.graphql(ADJUST_AVAILABLE, variables, what=what)
        try:
            payload = graphql.payload(
                data, "inventoryAdjustQuantities", what, transient=RETRYABLE_USER_ERRORS
            )
        except graphql.UserErrorsError as exc:
            if exc.retry:  # safe: the retry carries the same key
                raise TransientError(exc.message, detail=exc.detail) from None
            if "INVALID_INVENTORY_ITEM" in exc.codes:
                raise NotFoundError(exc.message, detail=exc.detail) from None
            raise
        changes = (payload.get("inventoryAdjustmentGroup") or {}).get("changes") or []
        after = next(
            (c.get("quantityAfterChange") for c in changes if c.get("name") == "available"), None
        )
        return after if isinstance(after, int) and not isinstance(after, bool) else None

    # SKU resolution ------------------------------------------------------------------------
    async def find_variants(self, skus: list[str]) -> dict[str, VariantRef]:
        """The store's variants for ``skus`` (exact match); unknown SKUs are absent."""
        found: dict[str, VariantRef] = {}
        wanted = list(dict.fromkeys(s for s in skus if s))
        for start in range(0, len(wanted), SKUS_PER_QUERY):
            chunk = wanted[start : start + SKUS_PER_QUERY]
            data = await self.graphql(
                VARIANTS_BY_SKU,
                # twice the SKUs: loose matches (prefixes) may crowd the exact ones out
                {"query": sku_query(chunk), "first": min(250, 2 * len(chunk) + 5)},
                what="variants by SKU",
            )
            for node in (data.get("productVariants") or {}).get("nodes") or []:
                sku = node.get("sku") or ""
                if sku in chunk and sku not in found:
                    found[sku] = variant_ref(node)
        self.variants.update(found)
        return found

    async def variant(self, sku: str, *, fresh: bool = False) -> VariantRef | None:
        if not fresh and sku in self.variants:
            return self.variants[sku]
        self.variants.pop(sku, None)
        return (await self.find_variants([sku])).get(sku)

    def forget(self, sku: str) -> None:
        self.variants.pop(sku, None)
