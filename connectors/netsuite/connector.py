"""NetSuite connector: every flow, both directions.

Inbound (``inventory``, ``products``, ``customers``, ``shipments``, ``returns``):

- webhook ``POST /webhooks/{connection_id}`` from the user-event script
  (``user_event_script.js``): headers ``X-Gateway-Timestamp`` (unix seconds) and
  ``X-Gateway-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{raw body}">`` keyed with
  credential ``webhook_secret`` (or, while rotating, ``previous_webhook_secret``); timestamps
  further than ``webhook_tolerance_seconds``
  (default 300, a number from 1 to 3600) from our clock are refused; body ``{"eventId",
  "eventType", "recordType", "id", "lastModifiedDate", "record"}``, deduplicated by
  ``eventId``. Record types and what
  they become (``records.py`` documents the record fields):
  ``inventoryitem`` → product.upserted + price.changed + inventory.level_changed per location;
  ``customer`` → customer.upserted; ``itemfulfillment`` → shipment.created (eventType create)
  or shipment.updated; ``creditmemo`` → credit_memo.created; ``returnauthorization`` →
  return.updated; other types and deletes are stored without events. Bad JSON is a 400, a
  bad field a 422 that names it;
- polling with SuiteQL (``suiteql.py``, ``queries.py``), streams ``inventory`` (from the
  transactions that move stock), ``products``, ``customers``, ``shipments``, ``returns``,
  ``credit_memos``; the cursor is ``{"t": "<lastmodified>", "id": <id>}``;
- ``fetch_levels`` (reconciliation): the stock of given SKUs per location, read now.

Outbound: ``order.created|updated|cancelled`` (below), ``customer.upserted`` (PUT
``customer/eid:<source>-<id>``, the address book replaced), ``return.requested`` (the sales
order transformed: ``POST salesOrder/{id}/!transform/returnAuthorization?replace=item`` with
the returned lines and external id ``<source>-<return id>``, looked up by that id first so a
retry never makes a second RMA) and ``customer.erase_requested`` (PATCH the customer: names
"Erased", contact data blanked, addresses removed, inactive).

Orders.

Every write is an upsert by external id (``PUT …/{record}/eid:{externalId}``), so a retry
after a timeout updates the record the first attempt may already have created instead of
making a second one. Order of calls for ``order.created`` / ``order.updated``:

0. ``SELECT id, symbol FROM currency`` once per connector (``currency`` is ``{"id": …}``);
1. the customer (directive ``customer_match``, for account customers): the one the
   operator mapped (``customer`` mapping), else the linked one, else one SuiteQL query over
   the account's customers by e-mail, phone and last name + postcode (``lookups.py``),
   compared by ``kernel.matching``: the gateway's own record (its external id) is upserted;
   one other match → the order is booked on it, nothing written to it (finding
   ``customer_matched``); several → never guessed: parked on ``customer`` <key> naming the
   candidates, or the rule's ``oldest`` / ``new``; none →
   ``PUT customer/eid:<source>-<store customer id>`` (guests: ``<source>-guest-<email>``);
   its internal id (the sales order's ``entity``) comes from the ``Location`` header, or from
   ``GET customer/eid:…`` when NetSuite sends none;
2. ``PUT salesOrder/eid:<source>-<order id>?replace=item``; ``replace=item`` makes the body's
   lines replace the existing ones, since without it NetSuite *appends* them on update; its
   internal id (``Location``, else a ``GET``) is what the gateway remembers as a link.

Cancelling: the REST record service has no cancel action for sales orders. Oracle's documented
way ("Use Case For Approving Your Sales Order" → "Close a Sales Order", and "Updating Your
Sales Order") is to close the lines: ``PATCH salesOrder/{id}`` with
``{"item": {"items": [{"line": 1, "isClosed": true}, …]}}``; a sales order whose lines are
all closed has status Closed. We read the order with ``expandSubResources=true`` to learn the
line keys, then PATCH the still-open lines (by external id). A cancel for an order NetSuite
has never seen is a success with nothing to do; a cancel of an already closed order makes no
write at all.

Taxes (directive ``tax_source``): ``store`` (default) sends the store's prices; on a
legacy-tax account (``options.tax_engine: legacy``) a line whose first tax line title has a
``tax_code`` mapping also gets that ``taxCode``. On SuiteTax (the default; REST takes taxes
only there) NetSuite's engine computes the tax and REST cannot force the store's amounts (the
Tax Details Override needs a tax type and code per line and the Tax Details Tab permission,
and is not documented for REST), so the store's tax is what the gateway checks against:
both modes read the order's ``taxTotal`` back and report a ``tax_difference`` finding when it
differs from the store's tax by more than the directive ``tax_tolerance`` (default 0.01).
``erp`` sends no tax codes and reports an order whose ``taxTotal`` cannot be read.

Lines without a SKU (gift cards, tips, custom items) go on the non-inventory item mapped
for their kind (``non_sku_item`` mapping, required: the core falls back to its ``default``
entry and parks the order while neither exists).

Amendments (``order.updated``) are checked first: a sales order that is no longer Pending
Approval / Pending Fulfillment (partially fulfilled, billed, closed) is held for a person
(HoldError), and so is any update of an existing order when the directive ``amendments`` is
``hold``. With the directive ``guest_customer_id`` the order is booked against that shared
customer and no customer is upserted.

Optional mappings (``mapping_kinds``), used when they exist, their keys as
``kernel.mappings`` defines them: ``payment_method`` (the first mapped payment gateway →
``paymentMethod``), ``shipping_method`` (shipping line code, else title → ``shipMethod``),
``tax_code`` (a line's first tax line title → line ``taxCode``), ``location`` (the order's
``location:`` tag, else its source connection → ``location``). Mapped values win over the
``ship_method_id`` / ``location_id`` options. ``options.require_mappings`` (or the route's
``rules.orders.required_mappings``) makes them required: a missing one parks the order.

Connection config: ``options.py`` (credentials and options, each explained); request
bodies and external ids: ``bodies.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx

from connectors._kit import signatures
from connectors._kit.concurrency import limiter_for
from connectors.netsuite import inbound, outbound
from connectors.netsuite.auth import CREDENTIAL_KEYS, TbaCredentials
from connectors.netsuite.bodies import (
    OrderRefs,
    address_body,
    customer_body,
    customer_external_id,
    customer_key,
    decimal_or_none,
    discount_fields,
    external_id,
    normalized_email,
    open_line_keys,
    order_external_id,
    order_key_parts,
    sales_order_body,
    status_of,
)
from connectors.netsuite.client import NetSuiteClient, RecordRef, by_eid, by_id
from connectors.netsuite.fields import MappingSettings
from connectors.netsuite.lookups import CANDIDATE_FIELDS, Currencies, customer_candidates
from connectors.netsuite.options import NetSuiteCredentials, NetSuiteOptions
from connectors.netsuite.suiteql import STREAMS, Poller
from kernel import matching
from kernel.canonical.customer import Customer, ErasureRequest
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.inventory import InventoryLevel
from kernel.canonical.order import Order
from kernel.canonical.returns import Return
from kernel.contract import ConnectionSettings, Connector
from kernel.errors import (
    HoldError,
    PermanentError,
    SignatureError,
    TransientError,
)
from kernel.mappings import MAPPING_KINDS, first_mapped, mapping_needs, order_mapping_keys, require
from kernel.types import (
    DeliveryContext,
    DeliveryResult,
    Finding,
    MappingNeed,
    ParsedWebhook,
    PollPage,
    RemoteLink,
)

SALES_ORDER = "salesOrder"
CUSTOMER = "customer"
RETURN_AUTHORIZATION = "returnAuthorization"
WEBHOOK_SECRET = "webhook_secret"
# sales order statuses an amendment may still change (REST gives ids or letters)
AMENDABLE_STATUSES = frozenset(
    {"A", "B", "pendingApproval", "pendingFulfillment", "Pending Approval", "Pending Fulfillment"}
)


# --- the connector ---------------------------------------------------------------------------


def _credentials(settings: ConnectionSettings) -> TbaCredentials:
    return TbaCredentials.from_mapping({k: settings.secret(k) for k in CREDENTIAL_KEYS})


class NetSuiteConnector(Connector):
    """NetSuite over the REST record and query services, plus the user-event webhook."""

    type_name = "netsuite"
    inbound_flows = frozenset({"inventory", "products", "customers", "shipments", "returns"})
    outbound_flows = frozenset({"orders", "customers", "returns"})
    poll_streams = STREAMS
    side = "erp"
    Options = NetSuiteOptions
    Credentials = NetSuiteCredentials
    webhook_credentials = frozenset({WEBHOOK_SECRET})
    # TBA: consumer key, token id and signature travel in Authorization (every call out)
    sensitive_headers = frozenset({"authorization", "x-gateway-signature"})
    # other people's customer records that a customer match reads (lookups.py)
    sensitive_fields = CANDIDATE_FIELDS
    mapping_kinds = frozenset(
        {"payment_method", "shipping_method", "tax_code", "location", "customer"}
    )
    # a store's refunds and credit memos are not booked in NetSuite (its credit memos come
    # from the RMA there): the returns flow brings RMAs only
    outbound_events = frozenset(
        {
            "order.created",
            "order.updated",
            "order.cancelled",
            "customer.upserted",
            "customer.erase_requested",
            "return.requested",
        }
    )

    def __init__(self, settings: ConnectionSettings, http: httpx.AsyncClient) -> None:
        super().__init__(settings, http)
        self.options: NetSuiteOptions = settings.options
        self.settings = MappingSettings.from_options(settings.id, self.options.model_dump())
        self.client = NetSuiteClient(
            http,
            settings.base_url,
            _credentials(settings),
            timeout_seconds=settings.timeout_seconds,
            limiter=limiter_for(settings),
            concurrency_limit=self.options.concurrency_limit,
        )
        self.poller = Poller(self.client.suiteql, self.settings)
        self.currencies = Currencies(self.client)

    @classmethod
    def option_warnings(cls, options: Any) -> list[str]:
        if options.discount_item_id is None:
            return [
                "no discount_item_id: every order with a discount will be dead (NetSuite takes "
                "order discounts as a discount item); set options.discount_item_id"
            ]
        return []

    # --- inbound ---------------------------------------------------------------------
    def verify_signature(self, headers: Mapping[str, str], body: bytes) -> None:
        secret = self.config.credentials.webhook_secret
        if secret is None:
            raise SignatureError(
                f"connection {self.config.id!r} has no credential {WEBHOOK_SECRET}; set it to "
                "the secret the user-event script signs with"
            )
        previous = self.config.credentials.previous_webhook_secret
        secrets = [secret] if previous is None else [secret, previous]
        signatures.verify_with_any(
            [s.get_secret_value() for s in secrets],
            lambda s: inbound.verify(
                headers, body, s, tolerance_seconds=self.options.webhook_tolerance_seconds
            ),
        )

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ParsedWebhook:
        return inbound.parse(body, self.settings)

    async def poll(self, stream: str, cursor: str | None, limit: int) -> PollPage:
        return await self.poller.poll(stream, cursor, limit)

    # --- outbound --------------------------------------------------------------------
    def required_mappings(self, event: CanonicalEvent) -> list[MappingNeed]:
        """SKUs of order and return lines, the item of each kind of line without a SKU
        (``non_sku_item``), plus the optional kinds the options require."""
        return mapping_needs(event, {"sku", "non_sku_item", *self.options.require_mappings})

    async def deliver(self, event: CanonicalEvent, ctx: DeliveryContext) -> DeliveryResult:
        if event.type == "order.cancelled":
            return await self._cancel(event)
        if event.type in ("order.created", "order.updated"):
            return await self._upsert_order(event, ctx)
        if event.type == "customer.upserted":
            return await self._upsert_customer(event, ctx)
        if event.type == "customer.erase_requested":
            return await self._erase_customer(event, ctx)
        if event.type == "return.requested":
            return await self._request_return(event, ctx)
        raise PermanentError(
            f"NetSuite connection {self.config.id!r} cannot receive {event.type}; "
            "check the routes in the config"
        )

    # --- create / update ---------------------------------------------------------------
    def _item_ids(self, order: Order, ctx: DeliveryContext) -> dict[str, str]:
        """SKU → NetSuite item id for every line, or the error that says what is missing
        (lines without a SKU take their kind's item: ``_order_refs``)."""
        if not order.lines:
            raise PermanentError(f"order {order.number} has no lines; NetSuite needs at least one")
        return require(ctx, "sku", [line.sku for line in order.lines if line.sku])

    async def _order_refs(self, order: Order, ctx: DeliveryContext, tax_source: str) -> OrderRefs:
        """Ids from the optional mappings; a required kind without its entry parks the order.

        Line tax codes only for a legacy-tax account in ``tax_source: store``.
        """
        keys = order_mapping_keys(order, MAPPING_KINDS)
        for kind in self.options.require_mappings:
            require(ctx, kind, keys[kind])
        codes = ctx.mappings.get("tax_code", {})
        legacy = tax_source == "store" and self.options.tax_engine == "legacy"
        return OrderRefs(
            payment_method=first_mapped(ctx, "payment_method", keys["payment_method"]),
            ship_method=first_mapped(ctx, "shipping_method", keys["shipping_method"]),
            location=first_mapped(ctx, "location", keys["location"]),
            tax_codes={k: codes[k] for k in keys["tax_code"] if k in codes} if legacy else {},
            # the core resolved these (a kind without its own entry takes ``default``)
            non_sku_items=require(ctx, "non_sku_item", keys["non_sku_item"]),
            currency=await self.currencies.id_of(order.currency, self.options.base_currency),
        )

    async def _internal_id(self, ref: RecordRef) -> str:
        record = await self.client.get(ref)
        if record is None or not record.get("id"):
            raise TransientError(f"NetSuite accepted {ref} but does not return it yet")
        return str(record["id"])

    async def _guard_amendment(self, order: Order, ref: RecordRef, ctx: DeliveryContext) -> None:
        """Hold an update NetSuite cannot take as is; an order it never saw is created."""
        record = await self.client.get(ref)
        if record is None:
            return
        number = str(record.get("tranId") or record.get("id") or ref.key)
        decision = ctx.directives.get("decision") or {}
        if decision.get("outcome") == "approved":
            return  # a person looked at this amendment and let it through
        if ctx.directives.get("amendments") == "hold":
            raise HoldError(
                f"salesOrder {number} already exists in NetSuite and amendments to "
                f"{order.source} orders are held by rule; approve to apply this change"
            )
        status_id, status_name = status_of(record)
        if status_id not in AMENDABLE_STATUSES and status_name not in AMENDABLE_STATUSES:
            raise HoldError(
                f"salesOrder {number} is {status_name or 'in an unknown status'} in NetSuite; "
                "an amendment cannot be applied automatically",
                detail={"status": status_id, "order": order.entity_key},
            )

    async def _upsert_order(self, event: CanonicalEvent, ctx: DeliveryContext) -> DeliveryResult:
        order = event.payload_as(Order)
        item_ids = self._item_ids(order, ctx)
        tax_source = str(ctx.directives.get("tax_source") or "store")
        if tax_source not in ("store", "erp"):
            raise PermanentError(f"unknown tax_source directive {tax_source!r} (store or erp)")
        discount_fields(order, self.options)  # a config problem must stop us before any call
        refs = await self._order_refs(order, ctx, tax_source)
        order_ref = by_eid(SALES_ORDER, order_external_id(order))
        if event.type == "order.updated":
            await self._guard_amendment(order, order_ref, ctx)
        customer_id, links, findings = await self._order_customer(order, ctx)
        body = sales_order_body(order, customer_id, item_ids, self.options, refs)
        order_id = await self.client.upsert(
            order_ref, body, replace=("item",)
        ) or await self._internal_id(order_ref)
        links.append(RemoteLink("order", event.entity_key, order_id))
        # store mode too: the store's tax is what the customer paid; NetSuite's differing
        # from it (SuiteTax computes its own) is what docs/flows.md promises to report
        findings += await self._tax_findings(order, order_id, ctx, tax_source)
        return DeliveryResult(
            links=links,
            summary=f"salesOrder {order_id} (eid {order_ref.key})",
            findings=findings,
        )

    async def _order_customer(
        self, order: Order, ctx: DeliveryContext
    ) -> tuple[str, list[RemoteLink], list[Finding]]:
        """The customer the order is booked on: the shared guest account, the one the
        gateway knows (link), an existing NetSuite customer matched by the duplicate rules
        (``kernel.matching``), or the gateway's own (upserted by external id)."""
        guest = ctx.directives.get("guest_customer_id")
        if guest:
            return str(guest), [], []  # the shared web-guest account: nothing to upsert
        key = customer_key(order)
        customer_ref = by_eid(CUSTOMER, customer_external_id(order))
        rule = matching.directive(ctx.directives.get("customer_match"))
        booking = matching.Booking(None)
        if rule is not None:
            on, country, ambiguous = rule
            what = f"order {order.number}"
            linked = ctx.link("customer", key)
            if key in ctx.mappings.get("customer", {}):  # an operator chose
                booking = matching.decide(matching.Match(None), ambiguous, key, what, ctx)
            elif linked:
                booking = matching.Booking(linked)  # found (or made) by an earlier delivery
            else:
                who = matching.order_identity(order, country)
                candidates = await customer_candidates(self.client, who, on, customer_ref.key)
                if not any(c.ours for c in candidates):  # else: ours, upserted below
                    found = matching.match(who, candidates, on, country)
                    booking = matching.decide(found, ambiguous, key, what, ctx)
        if booking.customer_id is not None:
            findings = [booking.finding] if booking.finding else []
            return booking.customer_id, [RemoteLink("customer", key, booking.customer_id)], findings
        customer_id = await self.client.upsert(
            customer_ref, customer_body(order, self.options)
        ) or await self._internal_id(customer_ref)
        findings = [booking.finding] if booking.finding else []
        return customer_id, [RemoteLink("customer", key, customer_id)], findings

    async def _tax_findings(
        self, order: Order, order_id: str, ctx: DeliveryContext, tax_source: str
    ) -> list[Finding]:
        """Compare the tax NetSuite put on the order with what the store charged."""
        record = await self.client.get(by_id(SALES_ORDER, order_id))
        erp_tax = decimal_or_none(record.get("taxTotal")) if record else None
        if erp_tax is None and tax_source == "store":
            return []  # the store's tax stands; NetSuite shows none to compare it with
        if erp_tax is None:
            return [
                Finding(
                    "tax_difference",
                    f"salesOrder {order_id} shows no taxTotal; the store's tax of "
                    f"{order.totals.tax.amount} {order.currency} for {order.number} is unchecked",
                    {"order": order.entity_key, "store_tax": str(order.totals.tax.amount)},
                )
            ]
        tolerance = decimal_or_none(ctx.directives.get("tax_tolerance", "0.01")) or Decimal("0.01")
        store_tax = order.totals.tax.amount
        difference = erp_tax - store_tax
        if abs(difference) <= tolerance:
            return []
        return [
            Finding(
                "tax_difference",
                f"NetSuite computed tax {erp_tax} {order.currency} on salesOrder {order_id} for "
                f"order {order.number}; the store charged {store_tax} (difference {difference}, "
                f"tolerance {tolerance})",
                {
                    "order": order.entity_key,
                    "erp_tax": str(erp_tax),
                    "store_tax": str(store_tax),
                    "difference": str(difference),
                    "currency": order.currency,
                },
            )
        ]

    # --- cancel ------------------------------------------------------------------------
    async def _cancel(self, event: CanonicalEvent) -> DeliveryResult:
        order_ref = by_eid(SALES_ORDER, order_external_id(event.payload_as(Order)))
        record = await self.client.get(order_ref, expand_sub_resources=True)
        if record is None:
            return DeliveryResult(
                summary=f"salesOrder eid {order_ref.key} is not in NetSuite; nothing to cancel"
            )
        order_id = str(record.get("id", ""))
        open_lines = open_line_keys(record)
        if open_lines:
            closing = [{"line": key, "isClosed": True} for key in open_lines]
            await self.client.patch(order_ref, {"item": {"items": closing}})
        links = [RemoteLink("order", event.entity_key, order_id)] if order_id else []
        what = f"closed {len(open_lines)} line(s)" if open_lines else "already closed"
        return DeliveryResult(
            links=links, summary=f"salesOrder {order_id} (eid {order_ref.key}) {what}"
        )

    # --- customers -------------------------------------------------------------------
    async def _upsert_customer(self, event: CanonicalEvent, ctx: DeliveryContext) -> DeliveryResult:
        customer = event.payload_as(Customer)
        ref = by_eid(CUSTOMER, external_id(f"{customer.source}-{customer.external_id}"))
        body = outbound.customer_record_body(
            customer, ref.key, self.options.subsidiary_id, address_body
        )
        fields = ctx.directives.get("fields")
        if fields is not None:  # the sending side writes only the fields it owns
            body = outbound.owned_fields_only(body, set(fields))
        linked = ctx.directives.get("link_to") or ctx.link("customer", event.entity_key)
        if linked:
            # the same person already has a NetSuite record (found as a duplicate, or
            # written before): update that one instead of creating a second
            body.pop("externalId", None)
            replace = ("addressBook",) if "addressBook" in body else ()
            if await self.client.patch(
                by_id(CUSTOMER, str(linked)), body, replace=replace, missing_ok=True
            ):
                return DeliveryResult(
                    links=[RemoteLink("customer", event.entity_key, str(linked))],
                    summary=f"customer {linked} updated (linked)",
                )
        customer_id = await self.client.upsert(
            ref, body, replace=("addressBook",)
        ) or await self._internal_id(ref)
        return DeliveryResult(
            links=[RemoteLink("customer", event.entity_key, customer_id)],
            summary=f"customer {customer_id} (eid {ref.key})",
        )

    async def _erase_customer(self, event: CanonicalEvent, ctx: DeliveryContext) -> DeliveryResult:
        request = event.payload_as(ErasureRequest)
        refs = [
            by_eid(CUSTOMER, eid)
            for eid in outbound.erasure_targets(request, external_id, normalized_email)
        ]
        if linked := ctx.link("customer", event.entity_key):
            refs.insert(0, by_id(CUSTOMER, linked))
        erased: list[str] = []
        for ref in refs:
            if await self.client.patch(
                ref, outbound.erasure_body(), replace=("addressBook",), missing_ok=True
            ):
                erased.append(str(ref))
        if not erased:
            return DeliveryResult(
                summary=f"no NetSuite customer for {request.entity_key}; nothing to erase"
            )
        return DeliveryResult(
            summary=f"anonymized and inactivated {', '.join(erased)}; transactions keep their "
            "addresses (accounting records): review them in NetSuite if they must go too"
        )

    # --- returns ---------------------------------------------------------------------
    async def _request_return(self, event: CanonicalEvent, ctx: DeliveryContext) -> DeliveryResult:
        ret = event.payload_as(Return)
        if not ret.lines:
            raise PermanentError(f"return {ret.entity_key} has no lines; an RMA needs one")
        item_ids = require(ctx, "sku", [line.sku for line in ret.lines])
        linked = ctx.link("order", ret.order_key)
        source, order_id = order_key_parts(ret.order_key)
        order_ref = (
            by_id(SALES_ORDER, linked)
            if linked
            else by_eid(SALES_ORDER, external_id(f"{source}-{order_id}"))
        )
        order = await self.client.get(order_ref)
        if order is None or not order.get("id"):
            # the order's own delivery may still be on its way: retry rather than give up
            raise TransientError(
                f"the sales order for {ret.order_key} ({order_ref}) is not in NetSuite yet; "
                "the return waits for the order to be delivered"
            )
        order_id = str(order["id"])
        ref = by_eid(RETURN_AUTHORIZATION, external_id(f"{ret.source}-{ret.external_id}"))
        rma_id = await self._rma_id(ref)
        if rma_id is None:
            body = outbound.return_authorization_body(
                ret,
                ref.key,
                item_ids,
                self.settings.fields.return_reason,
                self.options.return_location_id,
            )
            rma_id = await self._transform_to_rma(order_id, ref, body)
        rma = await self.client.get(by_id(RETURN_AUTHORIZATION, rma_id))
        number = str(rma.get("tranId")) if rma and rma.get("tranId") else None
        return DeliveryResult(
            links=[RemoteLink("return", event.entity_key, rma_id)],
            summary=f"returnAuthorization {number or rma_id} (id {rma_id}, eid {ref.key}) "
            f"from salesOrder {order.get('tranId') or order_id}",
        )

    async def _rma_id(self, ref: RecordRef) -> str | None:
        """The RMA this return already made (a retry, a re-sent return), if any."""
        found = await self.client.get(ref)
        return str(found["id"]) if found and found.get("id") else None

    async def _transform_to_rma(self, order_id: str, ref: RecordRef, body: dict[str, Any]) -> str:
        """``POST salesOrder/{id}/!transform/returnAuthorization``: NetSuite's documented way
        to make an RMA of an order (204 and a ``Location`` naming the new RMA)."""
        path = f"{SALES_ORDER}/{order_id}/!transform/{RETURN_AUTHORIZATION}"
        try:
            response = await self.client.request(
                "POST",
                path,
                f"salesOrder {order_id} → returnAuthorization",
                params={"replace": "item"},
                body=body,
            )
        except PermanentError:
            # an earlier attempt that timed out may have made it (the external id is taken)
            if (rma_id := await self._rma_id(ref)) is not None:
                return rma_id
            raise
        location = response.headers.get("location", "") if response is not None else ""
        rma_id = location.rstrip("/").rsplit("/", 1)[-1]
        return rma_id if rma_id.isdigit() else await self._internal_id(ref)

    # --- reconciliation ----------------------------------------------------------------
    async def fetch_levels(self, skus: list[str]) -> list[InventoryLevel]:
        """NetSuite's stock of these SKUs now, per location (``aggregateitemlocation``)."""
        return await self.poller.levels(skus)


__all__ = [
    "NetSuiteConnector",
    "NetSuiteOptions",
    "OrderRefs",
    "customer_body",
    "customer_external_id",
    "external_id",
    "order_external_id",
    "sales_order_body",
]
