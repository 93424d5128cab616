"""Mappings: the one definition of which of our keys an event uses for each mapping kind.

A mapping translates one of our keys (a SKU, a payment gateway, a tax title) into the
destination's id for it. Three parties ask for mappings, and all of them take the keys from
here, so a route rule that requires ``location`` and the connector that reads it can never
disagree about the key:

- a connector's ``required_mappings(event)``: what it cannot deliver without (usually ``sku``);
  a missing one parks the delivery until an operator adds it;
- a route's ``rules.orders.required_mappings``: kinds the operator wants every order to resolve;
- a connector's ``mapping_kinds``: kinds it uses when a mapping exists (a ship method id
  instead of the default one); the core hands over what is found, nothing parks.

The delivery engine resolves all three in one query before the attempt and puts the result in
``DeliveryContext.mappings``; a connector reads it with ``require`` (or ``first_mapped``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Literal, get_args

from kernel.canonical.events import CanonicalEvent
from kernel.canonical.order import Order, OrderLine, ShippingLine
from kernel.canonical.returns import Return
from kernel.errors import NeedsMappingError
from kernel.types import DeliveryContext, MappingNeed

MappingKind = Literal[
    "sku",
    "payment_method",
    "shipping_method",
    "tax_code",
    "location",
    "non_sku_item",
    "customer",
]
MAPPING_KINDS: tuple[str, ...] = get_args(MappingKind)

# an order tag like "location:WH-2" names the fulfilment location's key
LOCATION_TAG_PREFIX = "location:"
# the non_sku_item key of a line without a SKU whose store says nothing of what it is, and
# the fallback of every kind without a mapping of its own (app/flows/orders/hooks.py)
DEFAULT_LINE_KIND = "default"

ORDER_EVENTS = frozenset({"order.created", "order.updated"})


def _unique(values: list[str | None]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        if value and value.strip():
            seen.setdefault(value.strip(), None)
    return list(seen)


def tax_code_key(line: OrderLine | ShippingLine) -> str | None:
    """The key of a line's tax code: the title of its first tax line."""
    return line.tax_lines[0].title if line.tax_lines else None


def line_kind_key(line: OrderLine) -> str:
    """The ``non_sku_item`` key of a line without a SKU: its kind, else ``default``."""
    return (line.kind or "").strip().lower() or DEFAULT_LINE_KIND


def order_location_keys(tags: Iterable[str], source: str) -> list[str]:
    """The ``location`` keys of an order: its ``location:<key>`` tags, else its source.

    Also read from stored order payloads (the stock of orders in transit), so it takes the
    two fields rather than an ``Order``.
    """
    tagged = _unique(
        [
            tag[len(LOCATION_TAG_PREFIX) :]
            for tag in tags
            if tag.lower().startswith(LOCATION_TAG_PREFIX)
        ]
    )
    return tagged or _unique([source])


def order_mapping_keys(order: Order, kinds: Sequence[str]) -> dict[str, list[str]]:
    """Our keys of each mapping kind the order uses, in order of first appearance.

    - ``sku``: the SKUs of the lines
    - ``payment_method``: ``payments[].gateway``
    - ``shipping_method``: ``shipping_lines[].code``, or the title when there is no code
    - ``tax_code``: titles of the tax lines of the order, its lines and its shipping lines
    - ``location``: the value of the order's ``location:<key>`` tags; without one, the
      connection the order came from (one shop, one warehouse)
    - ``non_sku_item``: the kinds of the lines without a SKU (``gift_card``, ``tip``, …, or
      ``default``); their key is the ERP item (id or product code) such lines are booked on
    - ``customer``: the order's customer key, mapped by an operator to the ERP customer the
      order belongs to when several match (``kernel.matching``; ``new``: none of them)

    A kind with nothing to map gets an empty list (an order without payments needs no
    payment method mapping). An unknown kind is a programming or configuration bug:
    ValueError.
    """
    result: dict[str, list[str]] = {}
    for kind in kinds:
        values: list[str | None]
        if kind == "sku":
            values = [line.sku for line in order.lines]
        elif kind == "non_sku_item":
            values = [line_kind_key(line) for line in order.lines if not line.sku]
        elif kind == "customer":
            values = [order.customer_key]
        elif kind == "payment_method":
            values = [p.gateway for p in order.payments]
        elif kind == "shipping_method":
            values = [s.code or s.title for s in order.shipping_lines]
        elif kind == "tax_code":
            values = [t.title for t in order.tax_lines]
            values += [t.title for line in order.lines for t in line.tax_lines]
            values += [t.title for s in order.shipping_lines for t in s.tax_lines]
        elif kind == "location":
            values = list(order_location_keys(order.tags, order.source))
        else:
            raise ValueError(
                f"unknown mapping kind {kind!r}; the kinds are {', '.join(MAPPING_KINDS)}"
            )
        result[kind] = _unique(values)
    return result


def mapping_needs(event: CanonicalEvent, kinds: Collection[str]) -> list[MappingNeed]:
    """The mappings of ``kinds`` that ``event`` uses (orders and returns; others use none)."""
    wanted = [kind for kind in MAPPING_KINDS if kind in kinds]
    if not wanted:
        return []
    if event.type in ORDER_EVENTS:
        keys = order_mapping_keys(event.payload_as(Order), wanted)
        return [MappingNeed(kind, key) for kind in wanted for key in keys[kind]]
    if event.type == "return.requested" and "sku" in wanted:
        lines = event.payload_as(Return).lines
        return [MappingNeed("sku", sku) for sku in _unique([line.sku for line in lines])]
    return []


def require(ctx: DeliveryContext, kind: str, keys: list[str]) -> dict[str, str]:
    """Their key for each of ``keys``; NeedsMappingError (the delivery parks) for any missing."""
    known = ctx.mappings.get(kind, {})
    missing = [MappingNeed(kind, key) for key in dict.fromkeys(keys) if key not in known]
    if missing:
        raise NeedsMappingError(missing)
    return {key: known[key] for key in keys}


def first_mapped(ctx: DeliveryContext, kind: str, keys: list[str]) -> str | None:
    """Their key for the first of ``keys`` that has a mapping, or None."""
    table = ctx.mappings.get(kind, {})
    return next((table[key] for key in keys if key in table), None)
