"""NetSuite connector (outbound ``orders``): canonical orders → customer + sales order.

Every write is an upsert by external id (``PUT …/{record}/eid:{externalId}``), so a retry
after a timeout updates the record the first attempt may already have created instead of
making a second one. Order of calls for ``order.created`` / ``order.updated``:

1. ``PUT customer/eid:<source>-<store customer id>`` (guests: ``<source>-guest-<email>``);
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

Taxes are left to NetSuite (SuiteTax is required for sales orders over REST).

Connection config:
- credentials: ``account_id``, ``consumer_key``, ``consumer_secret``, ``token_id``,
  ``token_secret`` (token-based auth, HMAC-SHA256);
- options (all optional): ``subsidiary_id`` (customer and order), ``location_id`` (order),
  ``discount_item_id`` (needed for orders with a discount), ``ship_method_id``,
  ``payment_gateway_field`` (a custom body field id, e.g. ``custbody_payment_gateway``),
  ``order_status`` (e.g. ``"B"`` for pending fulfilment), ``send_exchange_rate`` (false: only
  when the canonical rate is the rate NetSuite expects, see ``sales_order_body``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from app.canonical.common import Address
from app.canonical.events import CanonicalEvent
from app.canonical.order import Order
from app.config import ConnectionConfig
from connectors.base import (
    Connector,
    DeliveryContext,
    DeliveryResult,
    MappingNeed,
    NeedsMappingError,
    PermanentError,
    RemoteLink,
    TransientError,
)
from connectors.netsuite.auth import CREDENTIAL_KEYS, TbaCredentials
from connectors.netsuite.client import NetSuiteClient, RecordRef, by_eid

SALES_ORDER = "salesOrder"
CUSTOMER = "customer"
MAX_EXTERNAL_ID_LENGTH = 100
MAX_MEMO_LENGTH = 999
_NOT_EID_CHAR = re.compile(r"[^A-Za-z0-9_-]")


# --- external ids and keys -----------------------------------------------------------------


def external_id(raw: str) -> str:
    """A NetSuite-safe external id for ``raw``, the same every time.

    NetSuite allows letters, digits, ``_`` and ``-``. A clean value is kept as is; otherwise
    the other characters become ``_`` and a short hash of the original is appended, so two
    values that differ only in replaced characters still get different ids.
    """
    if not raw:
        raise ValueError("an external id cannot be empty")
    cleaned = _NOT_EID_CHAR.sub("_", raw)
    if cleaned == raw and len(raw) <= MAX_EXTERNAL_ID_LENGTH:
        return raw
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:10]
    return f"{cleaned[: MAX_EXTERNAL_ID_LENGTH - 11]}-{digest}"


def normalized_email(email: str) -> str:
    return email.strip().lower()


def _guest_email(order: Order) -> str:
    email = normalized_email(order.customer.email or "")
    if not email:
        raise PermanentError(
            f"order {order.number} ({order.entity_key}) has neither a customer id nor an "
            "email, so no NetSuite customer can be found or created for it"
        )
    return email


def customer_external_id(order: Order) -> str:
    """``<source>-<store customer id>``, or for guests ``<source>-guest-<email>``, sanitized."""
    if order.customer.external_id:
        return external_id(f"{order.source}-{order.customer.external_id}")
    return external_id(f"{order.source}-guest-{_guest_email(order)}")


def customer_key(order: Order) -> str:
    """Our key of the customer, as the gateway core looks links up."""
    key = order.customer_key
    return key if key is not None else _guest_email(order)  # raises, naming the problem


def order_external_id(order: Order) -> str:
    return external_id(f"{order.source}-{order.external_id}")


# --- options -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetSuiteOptions:
    """``options`` of a NetSuite connection; ids may be written as numbers in YAML."""

    subsidiary_id: str | None = None
    location_id: str | None = None
    discount_item_id: str | None = None
    ship_method_id: str | None = None
    payment_gateway_field: str | None = None
    order_status: str | None = None
    send_exchange_rate: bool = False

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> NetSuiteOptions:
        def text(key: str) -> str | None:
            value = options.get(key)
            return None if value is None or value == "" else str(value)

        return cls(
            subsidiary_id=text("subsidiary_id"),
            location_id=text("location_id"),
            discount_item_id=text("discount_item_id"),
            ship_method_id=text("ship_method_id"),
            payment_gateway_field=text("payment_gateway_field"),
            order_status=text("order_status"),
            send_exchange_rate=bool(options.get("send_exchange_rate", False)),
        )


# --- request bodies --------------------------------------------------------------------------


def _ref(internal_id: str) -> dict[str, str]:
    return {"id": internal_id}


def _compact(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != ""}


def address_body(address: Address) -> dict[str, Any]:
    """A canonical address as NetSuite's address subrecord."""
    person = " ".join(p for p in (address.first_name, address.last_name) if p) or None
    return _compact(
        {
            "addressee": address.company or person,
            "attention": person if address.company else None,
            "addr1": address.line1,
            "addr2": address.line2,
            "city": address.city,
            "state": address.region_code or address.region,
            "zip": address.postal_code,
            "country": _ref(address.country_code) if address.country_code else None,
            "addrPhone": address.phone,
        }
    )


def _names(order: Order) -> tuple[str | None, str | None]:
    c = order.customer
    addresses = [a for a in (order.billing_address, order.shipping_address) if a]
    first = c.first_name or next((a.first_name for a in addresses if a.first_name), None)
    last = c.last_name or next((a.last_name for a in addresses if a.last_name), None)
    if not first and not last:
        # an individual needs a name; the email is the best stand-in a storefront gives us
        last = c.email or "Customer"
    return first, last


def customer_body(order: Order, options: NetSuiteOptions) -> dict[str, Any]:
    first, last = _names(order)
    return _compact(
        {
            "externalId": customer_external_id(order),
            "isPerson": True,
            "firstName": first,
            "lastName": last,
            "email": order.customer.email,
            "phone": order.customer.phone,
            "subsidiary": _ref(options.subsidiary_id) if options.subsidiary_id else None,
        }
    )


def _gateways(order: Order) -> list[str]:
    return list(dict.fromkeys(p.gateway for p in order.payments if p.gateway))


def order_memo(order: Order) -> str:
    parts = [f"{order.source} order {order.number}"]
    if gateways := _gateways(order):
        parts.append(f"payment: {', '.join(gateways)}")
    if order.note:
        parts.append(f"note: {order.note}")
    memo = "; ".join(parts)
    return memo if len(memo) <= MAX_MEMO_LENGTH else memo[: MAX_MEMO_LENGTH - 1] + "…"


def line_items(order: Order, item_ids: Mapping[str, str]) -> list[dict[str, Any]]:
    """The ``item`` sublist lines; quantities and rates stay Decimal end to end."""
    return [
        _compact(
            {
                "item": _ref(item_ids[line.sku]) if line.sku else None,
                "quantity": line.quantity,
                "rate": line.unit_price.amount,
                "description": line.title,
            }
        )
        for line in order.lines
    ]


def _discount_fields(order: Order, options: NetSuiteOptions) -> dict[str, Any]:
    amount = order.totals.discounts.amount
    if amount == 0:
        return {}
    if not options.discount_item_id:
        raise PermanentError(
            f"order {order.number} has a discount of {amount} {order.currency}, but this "
            "NetSuite connection has no options.discount_item_id (the internal id of a "
            "discount item); set it and replay the delivery"
        )
    return {"discountItem": _ref(options.discount_item_id), "discountRate": -abs(amount)}


def sales_order_body(
    order: Order, customer_id: str, item_ids: Mapping[str, str], options: NetSuiteOptions
) -> dict[str, Any]:
    """The sales order as NetSuite's REST record.

    ``exchangeRate`` is only sent with ``send_exchange_rate``: the canonical rate converts
    the presentment currency to the shop currency, while NetSuite's converts the transaction
    currency to the subsidiary's base currency; they agree only in some account setups.
    """
    body: dict[str, Any] = {
        "externalId": order_external_id(order),
        "entity": _ref(customer_id),
        "otherRefNum": order.number,
        "tranDate": order.created_at.date().isoformat(),
        "currency": {"refName": order.currency},
        "memo": order_memo(order),
        "item": {"items": line_items(order, item_ids)},
    }
    if options.send_exchange_rate and order.exchange_rate is not None:
        body["exchangeRate"] = order.exchange_rate
    if options.subsidiary_id:
        body["subsidiary"] = _ref(options.subsidiary_id)
    if options.location_id:
        body["location"] = _ref(options.location_id)
    if options.order_status:
        body["orderStatus"] = options.order_status
    if order.shipping_address:
        body["shippingAddress"] = address_body(order.shipping_address)
    if order.billing_address:
        body["billingAddress"] = address_body(order.billing_address)
    if order.shipping_lines or order.totals.shipping.amount:
        body["shippingCost"] = order.totals.shipping.amount
        if options.ship_method_id:
            body["shipMethod"] = _ref(options.ship_method_id)
    if options.payment_gateway_field and (gateways := _gateways(order)):
        body[options.payment_gateway_field] = ", ".join(gateways)
    body.update(_discount_fields(order, options))
    return body


# --- the connector ---------------------------------------------------------------------------


def _credentials(config: ConnectionConfig) -> TbaCredentials:
    """The TBA credentials, or a ValueError naming the connection and what is missing."""
    missing = [k for k in CREDENTIAL_KEYS if not config.credentials.get(k)]
    if missing:
        raise ValueError(
            f"connection {config.id!r} (netsuite) lacks credentials: {', '.join(missing)}"
        )
    return TbaCredentials.from_mapping({k: config.secret(k) for k in CREDENTIAL_KEYS})


def _open_line_keys(record: Mapping[str, Any]) -> list[Any]:
    sublist = record.get("item")
    lines = sublist.get("items", []) if isinstance(sublist, Mapping) else []
    return [
        line["line"]
        for line in lines
        if isinstance(line, Mapping)
        and "line" in line
        and not (line.get("isClosed") or line.get("isclosed"))
    ]


class NetSuiteConnector(Connector):
    """Delivers canonical order events to NetSuite over the REST record service."""

    type_name = "netsuite"
    outbound_flows = frozenset({"orders"})

    def __init__(self, config: ConnectionConfig, http: httpx.AsyncClient) -> None:
        super().__init__(config, http)
        self.options = NetSuiteOptions.from_mapping(config.options)
        timeout = config.delivery.request_timeout_seconds if config.delivery else None
        self.client = NetSuiteClient(
            http, config.base_url, _credentials(config), timeout_seconds=timeout
        )

    def required_mappings(self, event: CanonicalEvent) -> list[MappingNeed]:
        """Every line's SKU → NetSuite item id; a cancel sends no lines and needs none."""
        if event.type == "order.cancelled":
            return []
        skus = dict.fromkeys(line.sku for line in event.payload_as(Order).lines if line.sku)
        return [MappingNeed("sku", sku) for sku in skus]

    async def deliver(self, event: CanonicalEvent, ctx: DeliveryContext) -> DeliveryResult:
        if event.type == "order.cancelled":
            return await self._cancel(event)
        return await self._upsert_order(event, ctx)

    # --- create / update ---------------------------------------------------------------
    def _item_ids(self, order: Order, ctx: DeliveryContext) -> dict[str, str]:
        """SKU → NetSuite item id for every line, or the error that says what is missing."""
        if not order.lines:
            raise PermanentError(f"order {order.number} has no lines; NetSuite needs at least one")
        skus: list[str] = []
        for line in order.lines:
            if not line.sku:
                raise PermanentError(
                    f"order {order.number} line {line.line_id} ({line.title!r}) has no SKU, "
                    "so it cannot be matched to a NetSuite item"
                )
            skus.append(line.sku)
        known = ctx.mappings.get("sku", {})
        missing = [MappingNeed("sku", sku) for sku in dict.fromkeys(skus) if sku not in known]
        if missing:
            raise NeedsMappingError(missing)
        return {sku: known[sku] for sku in skus}

    async def _internal_id(self, ref: RecordRef) -> str:
        record = await self.client.get(ref)
        if record is None or not record.get("id"):
            raise TransientError(f"NetSuite accepted {ref} but does not return it yet")
        return str(record["id"])

    async def _upsert_order(self, event: CanonicalEvent, ctx: DeliveryContext) -> DeliveryResult:
        order = event.payload_as(Order)
        item_ids = self._item_ids(order, ctx)
        _discount_fields(order, self.options)  # a config problem must stop us before any write
        customer_ref = by_eid(CUSTOMER, customer_external_id(order))
        customer_id = await self.client.upsert(
            customer_ref, customer_body(order, self.options)
        ) or await self._internal_id(customer_ref)
        order_ref = by_eid(SALES_ORDER, order_external_id(order))
        body = sales_order_body(order, customer_id, item_ids, self.options)
        order_id = await self.client.upsert(
            order_ref, body, replace=("item",)
        ) or await self._internal_id(order_ref)
        return DeliveryResult(
            links=[
                RemoteLink("customer", customer_key(order), customer_id),
                RemoteLink("order", event.entity_key, order_id),
            ],
            summary=f"salesOrder {order_id} (eid {order_ref.key})",
        )

    # --- cancel ------------------------------------------------------------------------
    async def _cancel(self, event: CanonicalEvent) -> DeliveryResult:
        order_ref = by_eid(SALES_ORDER, order_external_id(event.payload_as(Order)))
        record = await self.client.get(order_ref, expand_sub_resources=True)
        if record is None:
            return DeliveryResult(
                summary=f"salesOrder eid {order_ref.key} is not in NetSuite; nothing to cancel"
            )
        order_id = str(record.get("id", ""))
        open_lines = _open_line_keys(record)
        if open_lines:
            closing = [{"line": key, "isClosed": True} for key in open_lines]
            await self.client.patch(order_ref, {"item": {"items": closing}})
        links = [RemoteLink("order", event.entity_key, order_id)] if order_id else []
        what = f"closed {len(open_lines)} line(s)" if open_lines else "already closed"
        return DeliveryResult(
            links=links, summary=f"salesOrder {order_id} (eid {order_ref.key}) {what}"
        )


__all__ = [
    "NetSuiteConnector",
    "NetSuiteOptions",
    "customer_body",
    "customer_external_id",
    "external_id",
    "order_external_id",
    "sales_order_body",
]
