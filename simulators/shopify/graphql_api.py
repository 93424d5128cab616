"""``POST /admin/api/{version}/graphql.json``: the GraphQL Admin API subset, executed by
graphql-core against ``admin_schema.graphql`` (a subset of Shopify's schema, as documented).

graphql-core parses and validates every query as a GraphQL server does, so a field,
argument, type or directive the real API would refuse is refused here too, with a
top-level ``errors`` answer (HTTP 200, no ``data``), instead of being read by a regex that
only finds what our connector happens to send.

Cost and throttling (shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits): every
answer carries ``extensions.cost`` {requestedQueryCost, actualQueryCost, throttleStatus
{maximumAvailable, currentlyAvailable, restoreRate}}; the bucket holds 2000 points and
restores 100 per second (standard plan). A query costing more than is available is answered
``{"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation":
…}}], "extensions": {"cost": {… "actualQueryCost": null …}}}`` (the shape in
community.shopify.com/t/throttled/254776). The requested cost is an estimate: 10 for a
mutation, else 1 plus every ``first:`` in the query; it is taken from the bucket before the
query runs, and the difference to the actual cost (one point per object the answer holds,
"Running a query is the best way to find out its true cost") is given back after, as
Shopify does. ``store.throttle_next`` forces THROTTLED answers.

@idempotent is optional before 2026-04 and required from it on refundCreate and the
inventory quantity mutations (changelog/making-idempotency-mandatory-for-inventory-
adjustments-and-refund-mutations).
"""

from __future__ import annotations

import time
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphql import (
    GraphQLError,
    GraphQLSchema,
    OperationType,
    build_schema,
    execute_sync,
    parse,
    validate,
)
from graphql.execution.values import get_directive_values
from graphql.language import DocumentNode, FieldNode, IntValueNode, VariableNode, visit
from graphql.language.visitor import Visitor

from simulators.shopify.graphql_catalogue import bulk_create, bulk_update, product_set
from simulators.shopify.graphql_views import (
    connection,
    item_view,
    maybe_gid,
    order_view,
    product_view,
    variant_view,
)
from simulators.shopify.graphql_writes import (
    fulfillment_create,
    idempotent,
    refund_create,
    set_quantities,
    tracking_update,
)
from simulators.shopify.subscriptions import AppInstallation, WebhookFields

if TYPE_CHECKING:
    from simulators.shopify.store import Store

SCHEMA_PATH = Path(__file__).with_name("admin_schema.graphql")
# webhook subscriptions and the app's scopes (``subscriptions``), extending the same schema
WEBHOOKS_SCHEMA_PATH = Path(__file__).with_name("admin_schema_webhooks.graphql")
MAXIMUM_AVAILABLE = 2000.0
RESTORE_RATE = 100.0
MUTATION_COST = 10
DOCS = "https://shopify.dev/api/usage/rate-limits"
IDEMPOTENT_MUTATIONS = frozenset(
    {"refundCreate", "inventoryAdjustQuantities", "inventorySetQuantities"}
)


@cache
def schema() -> GraphQLSchema:
    return build_schema(
        SCHEMA_PATH.read_text(encoding="utf-8")
        + "\n"
        + WEBHOOKS_SCHEMA_PATH.read_text(encoding="utf-8")
    )


@lru_cache(maxsize=256)
def _checked(query: str) -> tuple[DocumentNode | None, tuple[Any, ...]]:
    """The parsed query and its validation errors (the connector sends the same few
    documents again and again: validated once each)."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        return None, (exc.formatted,)
    return document, tuple(p.formatted for p in validate(schema(), document))


class _FirstArguments(Visitor):
    def __init__(self, variables: dict[str, Any]) -> None:
        super().__init__()
        self.variables = variables
        self.total = 0

    def enter_field(self, node: FieldNode, *_args: Any) -> None:
        for arg in node.arguments or ():
            if arg.name.value != "first":
                continue
            if isinstance(arg.value, IntValueNode):
                self.total += int(arg.value.value)
            elif isinstance(arg.value, VariableNode):
                value = self.variables.get(arg.value.name.value)
                self.total += value if isinstance(value, int) else 0


def _cost(document: Any, variables: dict[str, Any]) -> int:
    operations = [d for d in document.definitions if hasattr(d, "operation")]
    if any(op.operation == OperationType.MUTATION for op in operations):
        return MUTATION_COST
    firsts = _FirstArguments(variables)
    visit(document, firsts)
    return 1 + firsts.total


def _restore(store: Store, now: float) -> None:
    if store.graphql_stamp is not None:
        elapsed = max(0.0, now - store.graphql_stamp)
        store.graphql_available = min(
            MAXIMUM_AVAILABLE, store.graphql_available + elapsed * store.graphql_restore_rate
        )
    store.graphql_stamp = now


def _cost_extension(
    requested: int, actual: int | None, available: float, rate: float
) -> dict[str, Any]:
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": MAXIMUM_AVAILABLE,
                "currentlyAvailable": int(available),
                "restoreRate": rate,
            },
        }
    }


def _idempotency_key(info: Any) -> str | None:
    directive = info.schema.get_directive("idempotent")
    values = get_directive_values(directive, info.field_nodes[0], info.variable_values)
    return None if values is None else str(values["key"])


class Root(WebhookFields):
    """Query and mutation fields: graphql-core calls ``root.<field>(info, **arguments)``."""

    def __init__(
        self,
        store: Store,
        orders: dict[int, dict[str, Any]],
        version: str,
        app: AppInstallation | None = None,
    ) -> None:
        self.store = store
        self.orders = orders
        self.version = version
        self.app = app if app is not None else AppInstallation()

    def _key(self, info: Any) -> str | None:
        key = _idempotency_key(info)
        if key is None and self.version >= "2026-04" and self.version != "unstable":
            raise GraphQLError(
                f"The @idempotent directive is required for {info.field_name} from 2026-04."
            )
        return key

    # queries --------------------------------------------------------------------------
    def productVariants(self, _info: Any, first: int | None = None, query: str = "", **kw: Any):
        if first is None and kw.get("last") is None:
            raise GraphQLError("you must provide one of first or last")
        hits = self.store.search_variants(query or "")
        return connection([variant_view(self.store, v) for v in hits], first, kw.get("after"))

    def productByIdentifier(self, _info: Any, identifier: dict[str, Any]):
        if identifier.get("id"):
            product = self.store.products.get(maybe_gid(identifier["id"], "Product") or -1)
        elif identifier.get("handle"):
            product = self.store.product_by_handle(str(identifier["handle"]))
        else:
            raise GraphQLError("identifier needs one of id, handle")
        return None if product is None else product_view(self.store, product)

    def product(self, _info: Any, id: str):
        product = self.store.products.get(maybe_gid(id, "Product") or -1)
        return None if product is None else product_view(self.store, product)

    def inventoryItem(self, _info: Any, id: str):
        item = maybe_gid(id, "InventoryItem")
        variant = next((v for v in self.store.variants() if v["inventory_item_id"] == item), None)
        return None if variant is None else item_view(self.store, variant)

    def order(self, _info: Any, id: str):
        order = self.orders.get(maybe_gid(id, "Order") or -1)
        return None if order is None else order_view(self.store, order)

    # mutations ------------------------------------------------------------------------
    def productSet(self, _info: Any, input: dict, identifier: dict | None = None, **_: Any):
        return product_set(self.store, identifier, input)

    def productVariantsBulkCreate(
        self, _info: Any, productId: str, variants: list, strategy: str = "DEFAULT"
    ):
        return bulk_create(self.store, productId, variants, strategy)

    def productVariantsBulkUpdate(self, _info: Any, productId: str, variants: list, **_: Any):
        return bulk_update(self.store, productId, variants)

    def inventoryAdjustQuantities(self, info: Any, input: dict):
        return self.store.adjust_quantities(input, self._key(info))

    def inventorySetQuantities(self, info: Any, input: dict):
        key = self._key(info)
        return idempotent(
            self.store, info.field_name, key, input, lambda: set_quantities(self.store, input)
        )

    def refundCreate(self, info: Any, input: dict):
        key = self._key(info)
        return idempotent(
            self.store,
            info.field_name,
            key,
            input,
            lambda: refund_create(self.store, self.orders, input),
        )

    def fulfillmentCreate(self, _info: Any, fulfillment: dict, message: str | None = None):
        return fulfillment_create(self.store, self.orders, fulfillment)

    def fulfillmentTrackingInfoUpdate(
        self,
        _info: Any,
        fulfillmentId: str,
        trackingInfoInput: dict,
        notifyCustomer: bool | None = None,
    ):
        return tracking_update(
            self.store, self.orders, fulfillmentId, trackingInfoInput, notifyCustomer
        )


def answer(
    store: Store,
    orders: dict[int, dict[str, Any]],
    body: dict[str, Any],
    version: str,
    clock: Any = time.monotonic,
    app: AppInstallation | None = None,
) -> dict[str, Any]:
    """The JSON answer to one GraphQL request body (``app``: the installation's scopes and
    webhook subscriptions)."""
    query = body.get("query")
    variables = body.get("variables") or {}
    if not isinstance(query, str) or not isinstance(variables, dict):
        return {"errors": [{"message": "Parameter Missing or Invalid"}]}
    document, problems = _checked(query)
    if document is None or problems:
        return {"errors": list(problems)}
    requested = _cost(document, variables)
    _restore(store, clock())
    if store.throttle_next > 0 or requested > store.graphql_available:
        if store.throttle_next > 0:
            store.throttle_next -= 1
            store.graphql_available = min(store.graphql_available, requested / 2)
        return {
            "errors": [
                {
                    "message": "Throttled",
                    "extensions": {"code": "THROTTLED", "documentation": DOCS},
                }
            ],
            "extensions": _cost_extension(
                requested, None, store.graphql_available, store.graphql_restore_rate
            ),
        }
    store.graphql_available -= requested
    result = execute_sync(
        schema(),
        document,
        root_value=Root(store, orders, version, app),
        variable_values=variables,
    )
    out: dict[str, Any] = {}
    if result.errors:
        out["errors"] = [e.formatted for e in result.errors]
    if result.data is not None:
        out["data"] = result.data
    actual = requested if requested == MUTATION_COST else min(requested, _objects(result.data))
    store.graphql_available = min(MAXIMUM_AVAILABLE, store.graphql_available + requested - actual)
    out["extensions"] = _cost_extension(
        requested, actual, store.graphql_available, store.graphql_restore_rate
    )
    return out


def _objects(value: Any) -> int:
    """How many objects an answer holds (what a query actually costs, at least 1)."""
    if isinstance(value, dict):
        return 1 + sum(_objects(v) for v in value.values())
    if isinstance(value, list):
        return sum(_objects(v) for v in value)
    return 0
