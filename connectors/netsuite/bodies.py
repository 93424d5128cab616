"""What the NetSuite connector writes and reads, apart from the calls: external ids, the
customer and sales order bodies, and the helpers that read records back.

External ids: NetSuite allows letters, digits, ``_`` and ``-``; ``external_id`` keeps a clean
value as is and otherwise replaces the rest and appends a short hash, so a retry always
addresses the same record. Sales orders are ``<source>-<order id>``, customers
``<source>-<store customer id>`` (guests ``<source>-guest-<email>``).

Bodies keep amounts and quantities Decimal end to end (``wire.dumps`` refuses floats); empty
values are left out, so an update never blanks a field the store did not send. The bodies of
the other outbound events (customers, returns, erasure) are in ``outbound``.

References. Every select field is set as ``{"id": "<internal id>"}``: NetSuite's REST
records give a reference as ``{"id", "refName", links}`` where ``refName`` is only the
display text (Oracle, "Format of Selects and References", section_1545142037: ``"currency":
{"refName": "USD", "id": "1"}``), and Oracle's own bodies set them by id (``"entity": {"id":
107}``, ``"location": {"id": 1}``, ``"item": {"id": …}``: "Error Handling in REST Web
Services", section_156570709583; ``"subsidiary": {"id": "1"}``: "Using External IDs",
section_156334828635). So ``entity``, ``currency`` (its id read from the account,
``lookups.Currencies``), ``orderStatus``, ``subsidiary``, ``location``, ``shipMethod``,
``paymentMethod``, ``discountItem``, line ``item`` and ``taxCode``, and the address
``country`` (its id is the ISO code) are all ``{"id": …}``, never a bare string.

Taxes. REST web services "do not support legacy tax features; to work with taxation through
REST web services, you must have the SuiteTax feature enabled" (Oracle, "REST Web Services
Supported Records", chapter_1558962745), and on a SuiteTax account the legacy tax codes are
inactive ("Tax Code Records in SuiteTax", section_4797203596): the tax engine computes each
line's tax from the item, the customer and the addresses. So a line ``taxCode`` is sent only
with ``options.tax_engine: legacy`` (an account that still takes it); on SuiteTax (the
default) the body carries no tax and the connector compares NetSuite's ``taxTotal`` with the
store's afterwards (``tax_difference``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.netsuite.options import NetSuiteOptions
from kernel.canonical.common import Address
from kernel.canonical.order import Order
from kernel.errors import PermanentError
from kernel.mappings import line_kind_key, tax_code_key

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


@dataclass(frozen=True)
class OrderRefs:
    """Internal ids from the optional mappings; None/empty: not mapped, not sent."""

    payment_method: str | None = None
    ship_method: str | None = None
    location: str | None = None
    tax_codes: Mapping[str, str] = field(default_factory=dict)  # tax line title → id
    non_sku_items: Mapping[str, str] = field(default_factory=dict)  # line kind → item id
    currency: str | None = None  # internal id; None: the account's (no Multiple Currencies)


def line_items(
    order: Order,
    item_ids: Mapping[str, str],
    tax_codes: Mapping[str, str] | None = None,
    non_sku_items: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The ``item`` sublist lines; quantities and rates stay Decimal end to end.

    A line without a SKU (gift card, tip, custom item) goes on the non-inventory item mapped
    for its kind (``non_sku_items``: ``kernel.mappings.line_kind_key`` → item id). Line
    ``taxCode``s are only given for a legacy-tax account (``tax_codes`` empty otherwise).
    """
    codes = tax_codes or {}
    kinds = non_sku_items or {}
    out = []
    for line in order.lines:
        key = tax_code_key(line)
        item = item_ids[line.sku] if line.sku else kinds[line_kind_key(line)]
        out.append(
            _compact(
                {
                    "item": _ref(item),
                    "quantity": line.quantity,
                    "rate": line.unit_price.amount,
                    "description": line.title,
                    "taxCode": _ref(codes[key]) if key and key in codes else None,
                }
            )
        )
    return out


def discount_fields(order: Order, options: NetSuiteOptions) -> dict[str, Any]:
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
    order: Order,
    customer_id: str,
    item_ids: Mapping[str, str],
    options: NetSuiteOptions,
    refs: OrderRefs | None = None,
) -> dict[str, Any]:
    """The sales order as NetSuite's REST record.

    ``exchangeRate`` is only sent with ``send_exchange_rate``: the canonical rate converts
    the presentment currency to the shop currency, while NetSuite's converts the transaction
    currency to the subsidiary's base currency; they agree only in some account setups.
    """
    refs = refs or OrderRefs()
    body: dict[str, Any] = {
        "externalId": order_external_id(order),
        "entity": _ref(customer_id),
        "otherRefNum": order.number,
        "tranDate": order.created_at.date().isoformat(),
        "memo": order_memo(order),
        "item": {"items": line_items(order, item_ids, refs.tax_codes, refs.non_sku_items)},
    }
    if refs.currency:
        body["currency"] = _ref(refs.currency)
    if options.send_exchange_rate and order.exchange_rate is not None:
        body["exchangeRate"] = order.exchange_rate
    if options.subsidiary_id:
        body["subsidiary"] = _ref(options.subsidiary_id)
    if location := refs.location or options.location_id:
        body["location"] = _ref(location)
    if options.order_status:
        body["orderStatus"] = _ref(options.order_status)
    if order.shipping_address:
        body["shippingAddress"] = address_body(order.shipping_address)
    if order.billing_address:
        body["billingAddress"] = address_body(order.billing_address)
    if order.shipping_lines or order.totals.shipping.amount:
        body["shippingCost"] = order.totals.shipping.amount
        if ship_method := refs.ship_method or options.ship_method_id:
            body["shipMethod"] = _ref(ship_method)
    if refs.payment_method:
        body["paymentMethod"] = _ref(refs.payment_method)
    if options.payment_gateway_field and (gateways := _gateways(order)):
        body[options.payment_gateway_field] = ", ".join(gateways)
    body.update(discount_fields(order, options))
    return body


# --- reading records back -------------------------------------------------------------------


def open_line_keys(record: Mapping[str, Any]) -> list[Any]:
    sublist = record.get("item")
    lines = sublist.get("items", []) if isinstance(sublist, Mapping) else []
    return [
        line["line"]
        for line in lines
        if isinstance(line, Mapping)
        and "line" in line
        and not (line.get("isClosed") or line.get("isclosed"))
    ]


def order_key_parts(order_key: str) -> tuple[str, str]:
    """``"shop-eu:order:1001"`` → ``("shop-eu", "1001")``; PermanentError for anything else."""
    source, marker, order_id = order_key.partition(":order:")
    if not marker or not source or not order_id:
        raise PermanentError(f"{order_key!r} is not an order key (<source>:order:<id>)")
    return source, order_id


def decimal_or_none(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool | float):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def status_of(record: Mapping[str, Any]) -> tuple[str, str]:
    """(id, name) of a sales order's status as the REST record gives it."""
    status = record.get("status")
    if isinstance(status, Mapping):
        return str(status.get("id") or ""), str(status.get("refName") or status.get("id") or "")
    text = str(status or record.get("orderStatus") or "")
    return text, text


def ref_of(value: Any) -> str | None:
    if isinstance(value, Mapping) and value.get("id") not in (None, ""):
        return str(value["id"])
    return None
