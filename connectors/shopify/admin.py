"""Shopify Admin API calls with the typed errors, and SKU → variant resolution.

REST (legacy but documented and simple) for every write. SKUs are resolved with one GraphQL
query, ``productVariants(first: N, query: "sku:… OR sku:…")``, because REST cannot search
variants by SKU and paging every product to fill a cache costs a call per 250 products on
each cache miss. Shopify's search matches loosely, so results are filtered to exact SKUs.
Resolved variants are kept per connector instance and handed back as links, so the next
delivery for the same SKU makes no lookup at all.

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

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from connectors._kit.http import StatusPolicy, error_for_status, send
from kernel.errors import PermanentError, RateLimitedError, TransientError

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

VARIANTS_QUERY = """
query VariantsBySku($query: String!, $first: Int!) {
  productVariants(first: $first, query: $query) {
    nodes {
      legacyResourceId
      sku
      price
      compareAtPrice
      product { legacyResourceId }
      inventoryItem { legacyResourceId }
    }
  }
}
"""


# The directive belongs on the mutation field (not the operation); Shopify knows it from API
# version 2026-01 and requires it from 2026-04.
ADJUST_AVAILABLE_MUTATION = """
mutation AdjustAvailable($input: InventoryAdjustQuantitiesInput!, $key: String!) {
  inventoryAdjustQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup {
      id
      changes { name delta quantityAfterChange }
    }
    userErrors { field message code }
  }
}
"""
# userErrors Shopify documents as transient ("try again"); everything else is permanent
RETRYABLE_USER_ERRORS = frozenset(
    {"IDEMPOTENCY_CONCURRENT_REQUEST", "ADJUST_QUANTITIES_FAILED", "SERVICE_UNAVAILABLE"}
)


def gid(kind: str, value: str) -> str:
    """A GraphQL global id from a REST id (an id that is already a gid stays as is)."""
    return value if value.startswith("gid://") else f"gid://shopify/{kind}/{value}"


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
        body = await self.request(
            "POST", "graphql.json", what=what, json_body={"query": query, "variables": variables}
        )
        errors = body.get("errors") or []
        if errors:
            codes = {str((e.get("extensions") or {}).get("code")) for e in errors}
            if "THROTTLED" in codes:
                raise RateLimitedError("Shopify GraphQL cost limit reached", retry_after=1.0)
            messages = "; ".join(str(e.get("message")) for e in errors)
            raise PermanentError(f"Shopify GraphQL refused the {what} query: {messages}")
        return body.get("data") or {}

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
        data = await self.graphql(ADJUST_AVAILABLE_MUTATION, variables, what=what)
        payload = data.get("inventoryAdjustQuantities")
        if not isinstance(payload, dict):
            # no result and no error: unknown whether it applied; a retry with the key is safe
            raise TransientError(f"Shopify answered the adjustment of {what} without a result")
        errors = payload.get("userErrors") or []
        if errors:
            codes = {str(e.get("code")) for e in errors}
            text = f"Shopify refused to adjust {what}: " + "; ".join(
                f"{e.get('message')} ({e.get('code')})" for e in errors
            )
            if codes & RETRYABLE_USER_ERRORS:
                raise TransientError(text, detail=errors)
            if "INVALID_INVENTORY_ITEM" in codes:
                raise NotFoundError(text, detail=errors)
            raise PermanentError(text, detail=errors)
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
                VARIANTS_QUERY,
                # twice the SKUs: loose matches (prefixes) may crowd the exact ones out
                {"query": sku_query(chunk), "first": min(250, 2 * len(chunk) + 5)},
                what="variants by SKU",
            )
            for node in (data.get("productVariants") or {}).get("nodes") or []:
                sku = node.get("sku") or ""
                if sku in chunk and sku not in found:
                    found[sku] = VariantRef(
                        sku=sku,
                        variant_id=str(node["legacyResourceId"]),
                        product_id=str(node["product"]["legacyResourceId"]),
                        inventory_item_id=str(node["inventoryItem"]["legacyResourceId"]),
                    )
        self.variants.update(found)
        return found

    async def variant(self, sku: str, *, fresh: bool = False) -> VariantRef | None:
        if not fresh and sku in self.variants:
            return self.variants[sku]
        self.variants.pop(sku, None)
        return (await self.find_variants([sku])).get(sku)

    def forget(self, sku: str) -> None:
        self.variants.pop(sku, None)
