"""Calls to Shopify's GraphQL Admin API (``POST /admin/api/{version}/graphql.json``) and
the two kinds of errors it answers with.

1. Top-level ``errors`` (HTTP 200, no usable ``data``): the request was not executed.
   ``THROTTLED`` (shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits) comes with
   ``extensions.cost`` = {requestedQueryCost, actualQueryCost: null, throttleStatus:
   {maximumAvailable, currentlyAvailable, restoreRate}}: it becomes a RateLimitedError
   waiting (requestedQueryCost - currentlyAvailable) / restoreRate seconds, the time the
   bucket needs to hold the query (not an attempt: nothing was applied). ``INTERNAL_SERVER_
   ERROR`` is transient; anything else (an unknown field, a bad variable, ACCESS_DENIED) is
   permanent: retrying the same query cannot help.
2. A mutation's ``userErrors`` [{field: [path], message, code?}]: Shopify refused the input
   and applied nothing. PermanentError, keeping each field path and message (and code) in the
   message and in ``detail``; callers name the codes that mean something else (retry,
   stale link).

HTTP statuses (401/403, 429, 5xx, timeouts) are mapped by ``admin.request`` as for REST.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from kernel.errors import PermanentError, RateLimitedError, TransientError

if TYPE_CHECKING:
    from connectors.shopify.admin import ShopifyAdmin

DEFAULT_THROTTLE_WAIT = 1.0  # when the answer carries no throttle status
MIN_THROTTLE_WAIT = 0.05
MAX_THROTTLE_WAIT = 60.0
SCOPES_HINT = (
    "check that the app has the scopes this flow needs (README, Shopify section: "
    "write_products, write_inventory, write_orders, write_merchant_managed_fulfillment_orders)"
)


def gid(kind: str, value: str | int) -> str:
    """A global id from a REST id (an id that is already a gid stays as is)."""
    text = str(value)
    return text if text.startswith("gid://") else f"gid://shopify/{kind}/{text}"


def legacy_id(value: Any) -> str:
    """The REST id at the end of a global id (``gid://shopify/Order/12?x=1`` → ``12``)."""
    text = str(value)
    return text.rsplit("/", 1)[-1].split("?", 1)[0] if text.startswith("gid://") else text


def throttle_wait(extensions: Any) -> float:
    """Seconds until the bucket holds the refused query (documented throttle status)."""
    cost = extensions.get("cost") if isinstance(extensions, Mapping) else None
    status = cost.get("throttleStatus") if isinstance(cost, Mapping) else None
    try:
        requested = float(cost["requestedQueryCost"])  # type: ignore[index]
        available = float(status["currentlyAvailable"])  # type: ignore[index]
        rate = float(status["restoreRate"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return DEFAULT_THROTTLE_WAIT
    if rate <= 0:
        return MAX_THROTTLE_WAIT
    wait = (requested - available) / rate
    return min(MAX_THROTTLE_WAIT, max(MIN_THROTTLE_WAIT, wait))


def top_level_error(body: Mapping[str, Any], what: str) -> Exception | None:
    errors = body.get("errors")
    if not errors:
        return None
    items: list[Any] = errors if isinstance(errors, list) else [{"message": str(errors)}]
    codes = {
        str((e.get("extensions") or {}).get("code"))
        for e in items
        if isinstance(e, Mapping) and isinstance(e.get("extensions"), Mapping)
    }
    messages = "; ".join(str(e.get("message")) if isinstance(e, Mapping) else str(e) for e in items)
    if "THROTTLED" in codes:
        wait = throttle_wait(body.get("extensions"))
        return RateLimitedError(
            f"Shopify GraphQL cost limit reached for {what}; retry in {wait:g} s",
            retry_after=wait,
            detail={"errors": items, "extensions": body.get("extensions")},
        )
    if "INTERNAL_SERVER_ERROR" in codes:
        return TransientError(f"Shopify GraphQL failed on {what}: {messages}", detail=items)
    hint = f"; {SCOPES_HINT}" if "ACCESS_DENIED" in codes else ""
    return PermanentError(
        f"Shopify GraphQL refused the {what} request: {messages}{hint}", detail=items
    )


async def execute(
    admin: ShopifyAdmin, query: str, variables: Mapping[str, Any], *, what: str
) -> dict[str, Any]:
    """``data`` of one GraphQL request, or the typed error."""
    body = await admin.request(
        "POST",
        "graphql.json",
        what=what,
        json_body={"query": query, "variables": dict(variables)},
    )
    if not isinstance(body, Mapping):
        raise TransientError(f"Shopify answered the {what} request with no JSON object")
    error = top_level_error(body, what)
    if error is not None:
        raise error
    data = body.get("data")
    return dict(data) if isinstance(data, Mapping) else {}


def describe_user_errors(errors: list[Mapping[str, Any]]) -> str:
    parts = []
    for e in errors:
        field = e.get("field")
        where = ".".join(str(f) for f in field) if isinstance(field, list) and field else ""
        code = f" ({e.get('code')})" if e.get("code") else ""
        parts.append(f"{where + ': ' if where else ''}{e.get('message')}{code}")
    return "; ".join(parts)


def payload(
    data: Mapping[str, Any],
    mutation: str,
    what: str,
    *,
    transient: Collection[str] = (),
) -> dict[str, Any]:
    """The mutation's payload; its ``userErrors`` raised as a PermanentError (codes in
    ``transient`` as a TransientError)."""
    result = data.get(mutation)
    if not isinstance(result, Mapping):
        # no payload and no error: unknown whether it applied; callers retry safely
        raise TransientError(f"Shopify answered {mutation} for {what} without a result")
    errors = [e for e in result.get("userErrors") or [] if isinstance(e, Mapping)]
    if errors:
        raise UserErrorsError(mutation, what, errors, transient)
    return dict(result)


class UserErrorsError(PermanentError):
    """A mutation's userErrors: Shopify refused the input and applied nothing."""

    def __init__(
        self,
        mutation: str,
        what: str,
        errors: list[Mapping[str, Any]],
        transient: Collection[str] = (),
    ) -> None:
        super().__init__(
            f"Shopify refused {what} ({mutation}): {describe_user_errors(errors)}",
            detail=[dict(e) for e in errors],
        )
        self.mutation = mutation
        self.errors = [dict(e) for e in errors]
        self.codes = {str(e.get("code")) for e in errors if e.get("code")}
        self.retry = bool(self.codes & set(transient))
