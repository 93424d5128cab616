"""The app installation: its granted scopes and its webhook subscriptions, as Shopify keeps
them; the GraphQL fields that read and write them; what happens to a subscription whose
deliveries fail.

- ``webhookSubscriptions`` / ``webhookSubscriptionCreate`` / ``webhookSubscriptionDelete`` /
  ``currentAppInstallation`` (``admin_schema_webhooks.graphql`` lists the sources). A topic
  needs the read scope of its resource (a write scope includes it); without it the create is
  refused as Shopify refuses a field the app may not use: a top-level ``ACCESS_DENIED``
  error, ``"data": {"webhookSubscriptionCreate": null}`` (the error shape in
  https://shopify.dev/docs/api/usage/access-scopes and community.shopify.com/t/
  is-there-any-api-for-getting-the-installed-app-list/144166). The same topic and address
  twice is a userError, ``address: for this topic has already been taken`` (REST's message
  for the same rule), and only HTTPS addresses are taken.
- Deliveries to a subscription are signed with the app's client secret. After 8
  consecutive failed deliveries the subscription is deleted and the app's contact e-mailed
  (https://shopify.dev/changelog/updates-to-webhook-retry-mechanism: 8 retries over 4 hours,
  then an API-made subscription is removed); each first attempt that fails counts (the
  simulator's retries, ``webhook_retry_delays`` on the shop, are off by default).
- Faults: ``drop`` makes the next deliveries vanish (never sent), as a lost webhook does.

Control (no auth): ``GET /_sim/app`` (scopes, subscriptions, removals, e-mails);
``POST /_sim/app`` ``{"client_secret": …, "scopes": [...], "drop_webhooks": n}`` (each
optional); ``DELETE /_sim/app/subscriptions/{id}`` removes one as Shopify does after failures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from graphql import GraphQLError
from pydantic import BaseModel, ConfigDict, Field

from simulators.shopify.graphql_views import connection
from simulators.shopify.values import now_text

DEFAULT_CLIENT_SECRET = "shpss_simulator"
FAILURES_BEFORE_REMOVAL = 8
# what a custom app set up for the gateway is granted (docs/../README: the scopes it needs)
DEFAULT_SCOPES = frozenset(
    {
        "read_orders",
        "write_orders",
        "read_customers",
        "write_customers",
        "read_products",
        "write_products",
        "write_inventory",
        "read_inventory",
        "read_locations",
        "read_returns",
        "write_merchant_managed_fulfillment_orders",
        "write_fulfillments",
    }
)
# WebhookSubscriptionTopic → the REST-style topic of the delivery, and the scopes allowing it
TOPICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ORDERS_CREATE": ("orders/create", ("read_orders", "write_orders")),
    "ORDERS_UPDATED": ("orders/updated", ("read_orders", "write_orders")),
    "ORDERS_CANCELLED": ("orders/cancelled", ("read_orders", "write_orders")),
    "ORDERS_PAID": ("orders/paid", ("read_orders", "write_orders")),
    "ORDERS_FULFILLED": ("orders/fulfilled", ("read_orders", "write_orders")),
    "ORDERS_EDITED": ("orders/edited", ("read_orders", "write_orders")),
    "REFUNDS_CREATE": ("refunds/create", ("read_orders", "write_orders")),
    "CUSTOMERS_CREATE": ("customers/create", ("read_customers", "write_customers")),
    "CUSTOMERS_UPDATE": ("customers/update", ("read_customers", "write_customers")),
    "CUSTOMERS_DELETE": ("customers/delete", ("read_customers", "write_customers")),
    "RETURNS_REQUEST": ("returns/request", ("read_returns", "write_returns")),
    "PRODUCTS_UPDATE": ("products/update", ("read_products", "write_products")),
    "INVENTORY_LEVELS_UPDATE": ("inventory_levels/update", ("read_inventory", "write_inventory")),
    "APP_UNINSTALLED": ("app/uninstalled", ()),
}
ACCESS_DOCS = "https://shopify.dev/api/usage/access-scopes"


@dataclass
class AppInstallation:
    """The gateway's app in the shop: scopes, subscriptions, what Shopify removed."""

    client_secret: str = DEFAULT_CLIENT_SECRET
    scopes: set[str] = field(default_factory=lambda: set(DEFAULT_SCOPES))
    subscriptions: dict[int, dict[str, Any]] = field(default_factory=dict)
    failures: dict[int, int] = field(default_factory=dict)
    removed: list[dict[str, Any]] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    drop_remaining: int = 0
    dropped: int = 0
    _next_id: int = 1_140_000_000

    # subscriptions ---------------------------------------------------------------------
    def subscribe(self, enum: str, uri: str, version: str) -> dict[str, Any]:
        self._next_id += 1
        now = now_text()
        sub: dict[str, Any] = {
            "id": self._next_id,
            "topic": enum,
            "uri": uri,
            "format": "JSON",
            "api_version": version,
            "created_at": now,
            "updated_at": now,
        }
        self.subscriptions[self._next_id] = sub
        return sub

    def remove(self, sub_id: int, why: str) -> dict[str, Any] | None:
        sub = self.subscriptions.pop(sub_id, None)
        self.failures.pop(sub_id, None)
        if sub is not None:
            self.removed.append({**sub, "removed_at": now_text(), "why": why})
        return sub

    def for_topic(self, topic: str) -> list[dict[str, Any]]:
        """Subscriptions that get deliveries of ``topic`` (e.g. ``orders/create``)."""
        return [s for s in self.subscriptions.values() if TOPICS[s["topic"]][0] == topic]

    def delivered(self, sub_id: int, ok: bool) -> None:
        """Count a delivery; the 8th failure in a row removes the subscription."""
        if ok:
            self.failures.pop(sub_id, None)
            return
        self.failures[sub_id] = self.failures.get(sub_id, 0) + 1
        if self.failures[sub_id] >= FAILURES_BEFORE_REMOVAL:
            sub = self.remove(sub_id, f"{FAILURES_BEFORE_REMOVAL} consecutive failed deliveries")
            if sub is not None:
                self.emails.append(
                    f"Your webhook subscription to {TOPICS[sub['topic']][0]} at {sub['uri']} "
                    "was removed after repeated failed deliveries."
                )

    def take_drop(self) -> bool:
        """Whether the next delivery vanishes (a lost webhook)."""
        if self.drop_remaining <= 0:
            return False
        self.drop_remaining -= 1
        self.dropped += 1
        return True

    def allowed(self, enum: str) -> bool:
        needed = TOPICS[enum][1]
        return not needed or bool(self.scopes & set(needed))

    def state(self) -> dict[str, Any]:
        return {
            "scopes": sorted(self.scopes),
            "subscriptions": [dict(s) for s in self.subscriptions.values()],
            "removed": list(self.removed),
            "emails": list(self.emails),
            "drop_remaining": self.drop_remaining,
            "dropped": self.dropped,
        }


def subscription_view(sub: dict[str, Any]) -> dict[str, Any]:
    gid = f"gid://shopify/WebhookSubscription/{sub['id']}"
    version = sub["api_version"]
    return {
        "id": gid,
        "legacyResourceId": str(sub["id"]),
        "topic": sub["topic"],
        "uri": sub["uri"],
        "callbackUrl": sub["uri"],
        "format": sub["format"],
        "includeFields": [],
        "filter": None,
        "apiVersion": {"handle": version, "displayName": version, "supported": True},
        "createdAt": sub["created_at"],
        "updatedAt": sub["updated_at"],
    }


class WebhookFields:
    """The GraphQL root fields over ``self.app`` (mixed into ``graphql_api.Root``)."""

    app: AppInstallation
    version: str

    def currentAppInstallation(self, _info: Any) -> dict[str, Any]:
        scopes = [
            {"handle": s, "description": s.replace("_", " ")} for s in sorted(self.app.scopes)
        ]
        return {"id": "gid://shopify/AppInstallation/1", "accessScopes": scopes}

    def webhookSubscriptions(
        self,
        _info: Any,
        first: int | None = None,
        after: str | None = None,
        topics: list[str] | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        if first is None and kw.get("last") is None:
            raise GraphQLError("you must provide one of first or last")
        subs = [
            subscription_view(s)
            for s in sorted(self.app.subscriptions.values(), key=lambda s: s["id"])
            if topics is None or s["topic"] in topics
        ]
        page = connection(subs, first, after)
        start = int(after) + 1 if after and after.isdigit() else 0
        page["edges"] = [
            {"cursor": str(start + i), "node": node} for i, node in enumerate(page["nodes"])
        ]
        return page

    def webhookSubscriptionCreate(
        self, _info: Any, topic: str, webhookSubscription: dict[str, Any]
    ) -> dict[str, Any]:
        if not self.app.allowed(topic):
            raise GraphQLError(
                "access denied",
                extensions={"code": "ACCESS_DENIED", "documentation": ACCESS_DOCS},
            )
        uri = webhookSubscription.get("uri") or webhookSubscription.get("callbackUrl") or ""
        problem = _address_problem(uri)
        if problem is None and any(
            s["topic"] == topic and s["uri"] == uri for s in self.app.subscriptions.values()
        ):
            problem = "Address for this topic has already been taken"
        if problem is not None:
            field_name = "uri" if webhookSubscription.get("uri") else "callbackUrl"
            return {
                "userErrors": [{"field": ["webhookSubscription", field_name], "message": problem}],
                "webhookSubscription": None,
            }
        sub = self.app.subscribe(topic, uri, self.version)
        return {"userErrors": [], "webhookSubscription": subscription_view(sub)}

    def webhookSubscriptionDelete(self, _info: Any, id: str) -> dict[str, Any]:
        tail = id.rsplit("/", 1)[-1]
        sub = self.app.remove(int(tail), "deleted by the app") if tail.isdigit() else None
        if sub is None:
            return {
                "deletedWebhookSubscriptionId": None,
                "userErrors": [{"field": ["id"], "message": "Webhook subscription does not exist"}],
            }
        return {"deletedWebhookSubscriptionId": id, "userErrors": []}


def _address_problem(uri: str) -> str | None:
    if not uri:
        return "Address can't be blank"
    if not uri.startswith("https://"):
        scheme = uri.split(":", 1)[0] if ":" in uri else uri
        return f"Address protocol {scheme}:// is not supported"
    return None


# --- control --------------------------------------------------------------------------------


class AppIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_secret: str | None = Field(default=None, min_length=1)
    scopes: list[str] | None = None
    drop_webhooks: int | None = Field(default=None, ge=0)


def add_app_routes(app: FastAPI) -> None:
    def installation(request: Request) -> AppInstallation:
        found: AppInstallation = request.app.state.simulator.app
        return found

    @app.get("/_sim/app")
    async def app_state(request: Request) -> Any:
        return installation(request).state()

    @app.post("/_sim/app")
    async def set_app(request: Request, body: AppIn) -> Any:
        inst = installation(request)
        if body.client_secret is not None:
            inst.client_secret = body.client_secret
        if body.scopes is not None:
            inst.scopes = set(body.scopes)
        if body.drop_webhooks is not None:
            inst.drop_remaining = body.drop_webhooks
        return inst.state()

    @app.delete("/_sim/app/subscriptions/{sub_id}")
    async def remove(request: Request, sub_id: int) -> Any:
        sub = installation(request).remove(sub_id, "removed by the control API")
        if sub is None:
            return JSONResponse({"detail": f"no subscription {sub_id}"}, 404)
        return {"removed": sub}
