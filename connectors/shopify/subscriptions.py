"""Webhook subscriptions kept alive.

Shopify retries a failed delivery 8 times over 4 hours; after 8 consecutive failures it
deletes a subscription made through the API and e-mails the app's contact
(https://shopify.dev/changelog/updates-to-webhook-retry-mechanism;
../shared/reference/storefront-apis.md §1.1 — older docs said 19 retries over 48 hours).
A gateway that was down for an afternoon would then never hear of an order again. So, with
the option ``public_url`` set, a job checks the subscriptions at start (every worker that
starts) and every ``webhook_check_interval_seconds``: GraphQL ``webhookSubscriptions`` (the
REST ``webhooks.json`` is legacy: https://shopify.dev/docs/api/admin-graphql/latest/queries/
webhookSubscriptions) and the app's granted scopes (``currentAppInstallation { accessScopes
}``: https://shopify.dev/docs/api/admin-graphql/latest/queries/currentappinstallation), and
re-creates each missing topic with ``webhookSubscriptionCreate(topic, webhookSubscription:
{uri, format: JSON})`` (https://shopify.dev/docs/api/admin-graphql/latest/mutations/
webhookSubscriptionCreate) where the app has the topic's scope. What it cannot fix is a
finding that says what to do (and is repeated daily while it lasts); what it re-created is a
finding too (the gap is covered by the backfill poll, ``backfill``).

A topic needs the read scope of its resource (a write scope includes the read one:
https://shopify.dev/docs/api/usage/access-scopes); there is no scope of its own for
managing subscriptions. Orders and refunds: ``read_orders``; customers:
``read_customers``; returns: ``read_returns`` or ``read_marketplace_returns``
(https://shopify.dev/docs/api/events/latest/return). ``customers/redact`` is a mandatory
compliance topic, subscribed in the Partner Dashboard or ``shopify.app.toml`` and never
through the API (https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance): it
is not checked here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from kernel.contract import JobReport
from kernel.errors import PermanentError, RateLimitedError
from kernel.types import Finding

if TYPE_CHECKING:
    from connectors.shopify.admin import ShopifyAdmin

# topic → (GraphQL WebhookSubscriptionTopic, the scopes that allow it: any of them)
TOPICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "orders/create": ("ORDERS_CREATE", ("read_orders", "write_orders")),
    "orders/updated": ("ORDERS_UPDATED", ("read_orders", "write_orders")),
    "orders/cancelled": ("ORDERS_CANCELLED", ("read_orders", "write_orders")),
    "refunds/create": ("REFUNDS_CREATE", ("read_orders", "write_orders")),
    "customers/create": ("CUSTOMERS_CREATE", ("read_customers", "write_customers")),
    "customers/update": ("CUSTOMERS_UPDATE", ("read_customers", "write_customers")),
    "returns/request": (
        "RETURNS_REQUEST",
        ("read_returns", "write_returns", "read_marketplace_returns"),
    ),
}
REPEAT_AFTER = timedelta(days=1)  # an unfixed problem is reported again after this long
PAGE = 100

# ``uri`` replaced ``callbackUrl`` (deprecated from 2025-04 on)
CHECK_QUERY = """
query GatewayWebhookCheck($after: String) {
  currentAppInstallation { accessScopes { handle } }
  webhookSubscriptions(first: %d, after: $after) {
    nodes { id topic %s }
    pageInfo { hasNextPage endCursor }
  }
}
"""
CREATE_MUTATION = """
mutation GatewayWebhookCreate(
  $topic: WebhookSubscriptionTopic!
  $webhookSubscription: WebhookSubscriptionInput!
) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    webhookSubscription { id topic }
    userErrors { field message }
  }
}
"""


def callback_url(public_url: str, connection_id: str) -> str:
    return f"{public_url.rstrip('/')}/webhooks/{connection_id}"


def _uses_uri(api_version: str) -> bool:
    return api_version == "unstable" or api_version >= "2025-04"


@dataclass
class Check:
    """One run's outcome: topics re-created, and the problems left (topic → what to do)."""

    recreated: list[str] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)


async def check(
    admin: ShopifyAdmin,
    connection_id: str,
    public_url: str,
    topics: list[str],
    api_version: str,
    state: str | None,
    *,
    now: datetime | None = None,
) -> JobReport:
    """Re-create what is missing; findings for what was done and what could not be."""
    callback = callback_url(public_url, connection_id)
    scopes, subscribed = await _read(admin, callback, api_version)
    outcome = Check()
    for topic in topics:
        enum, allowed = TOPICS[topic]
        if enum in subscribed:
            continue
        if not scopes & set(allowed):
            outcome.problems[topic] = (
                f"the app lacks the {allowed[0]} scope: grant it (Shopify admin → Settings → "
                "Apps and sales channels → Develop apps → the app → Configuration → Admin API "
                f"access scopes; then install the new version) or drop {topic} from "
                "options.webhook_topics"
            )
            continue
        problem = await _create(admin, enum, callback)
        if problem is None:
            outcome.recreated.append(topic)
        else:
            outcome.problems[topic] = problem
    return _report(outcome, connection_id, callback, state, now or datetime.now(UTC))


async def _read(admin: ShopifyAdmin, callback: str, api_version: str) -> tuple[set[str], set[str]]:
    """The granted scopes, and the topics (enum names) subscribed to ``callback``."""
    address = "uri" if _uses_uri(api_version) else "callbackUrl"
    query = CHECK_QUERY % (PAGE, address)
    scopes: set[str] = set()
    subscribed: set[str] = set()
    after: str | None = None
    for _ in range(50):  # 5000 subscriptions: far beyond any shop
        data = await admin.graphql(query, {"after": after}, what="webhook subscriptions")
        for scope in (data.get("currentAppInstallation") or {}).get("accessScopes") or []:
            if isinstance(scope, dict) and isinstance(scope.get("handle"), str):
                scopes.add(scope["handle"])
        page = data.get("webhookSubscriptions")
        if not isinstance(page, dict):
            raise PermanentError("Shopify answered webhookSubscriptions without a list")
        for node in page.get("nodes") or []:
            if isinstance(node, dict) and _same_url(node.get(address), callback):
                subscribed.add(str(node.get("topic")))
        info = page.get("pageInfo") or {}
        after = info.get("endCursor")
        if not info.get("hasNextPage") or not after:
            break
    return scopes, subscribed


def _same_url(found: Any, callback: str) -> bool:
    return isinstance(found, str) and found.rstrip("/") == callback.rstrip("/")


async def _create(admin: ShopifyAdmin, enum: str, callback: str) -> str | None:
    """Create one subscription; None when done, else what went wrong and what to do."""
    variables = {"topic": enum, "webhookSubscription": {"uri": callback, "format": "JSON"}}
    body = await admin.request(
        "POST",
        "graphql.json",
        what=f"webhook subscription {enum}",
        json_body={"query": CREATE_MUTATION, "variables": variables},
    )
    errors = (body.get("errors") or []) if isinstance(body, dict) else []
    codes = {str((e.get("extensions") or {}).get("code")) for e in errors if isinstance(e, dict)}
    if "THROTTLED" in codes:
        raise RateLimitedError("Shopify GraphQL cost limit reached", retry_after=1.0)
    if "ACCESS_DENIED" in codes:
        return (
            "Shopify refused the subscription (access denied): grant the app the topic's "
            "read scope and install the new version"
        )
    if errors:
        text = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
        return f"Shopify refused the subscription: {text}"
    payload = (body.get("data") or {}).get("webhookSubscriptionCreate") or {}
    user_errors = payload.get("userErrors") or []
    if user_errors:
        text = "; ".join(str(e.get("message")) for e in user_errors if isinstance(e, dict))
        return (
            f"Shopify refused the subscription: {text} (check options.public_url: Shopify "
            "only delivers to a public HTTPS address)"
        )
    if not payload.get("webhookSubscription"):
        return "Shopify answered webhookSubscriptionCreate without a subscription"
    return None


def _report(
    outcome: Check, connection_id: str, callback: str, state: str | None, now: datetime
) -> JobReport:
    findings = [
        Finding(
            "webhook_subscription_made",
            f"Shopify had no {topic} subscription to {callback} (it deletes one after 8 "
            "failed deliveries in a row); it was re-created. What changed meanwhile comes by "
            "the backfill poll (poll: streams [orders, customers]) if it is on.",
            {"topic": topic, "callback": callback, "entity_key": f"{connection_id}:{topic}"},
        )
        for topic in outcome.recreated
    ]
    before = _read_state(state)
    repeat = before.get("problems") != outcome.problems or _older_than(
        before.get("reported_at"), now - REPEAT_AFTER
    )
    reported_at = before.get("reported_at")
    if outcome.problems and repeat:
        reported_at = now.isoformat()
        findings += [
            Finding(
                "webhook_subscription_missing",
                f"{connection_id} has no {topic} subscription to {callback} and the gateway "
                f"cannot make it: {what}. Until then {topic} changes arrive only by the "
                "backfill poll (poll: streams [orders, customers]).",
                {"topic": topic, "callback": callback, "entity_key": f"{connection_id}:{topic}"},
            )
            for topic, what in sorted(outcome.problems.items())
        ]
    next_state = json.dumps(
        {"problems": outcome.problems, "reported_at": reported_at, "checked_at": now.isoformat()}
    )
    return JobReport(next_state, findings)


def _read_state(state: str | None) -> dict[str, Any]:
    try:
        data = json.loads(state) if state else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _older_than(stamp: Any, limit: datetime) -> bool:
    if not isinstance(stamp, str):
        return True
    try:
        return datetime.fromisoformat(stamp) < limit
    except ValueError:
        return True
