"""Keys and record values: how canonical entities are named and written in Tryton.

Pure functions (no I/O), so each mapping can be read and tested on its own.

Keys the gateway finds its records by (a lookup before every create):

- a sale's ``reference`` is ``<reference_prefix><source>-<order id>``;
- a party's ``code`` (unique in Tryton) is ``<party_code_prefix><source>-<customer id>``,
  or ``<party_code_prefix><source>-guest-<sha256(e-mail)[:16]>`` for a guest, so a repeat
  guest is the same party and no e-mail address is spelled out in a code.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from connectors.tryton.options import TrytonOptions
from connectors.tryton.wire import Number
from kernel.canonical.common import Address
from kernel.canonical.order import Order
from kernel.errors import PermanentError

SALE = "sale.sale"
SALE_LINE = "sale.line"
PARTY = "party.party"
ADDRESS = "party.address"
CONTACT = "party.contact_mechanism"
PRODUCT = "product.product"
# sale states in workflow order; an order may be changed while the sale is in the first two
SALE_FLOW = ("draft", "quotation", "confirmed", "processing", "done")
AMENDABLE = frozenset({"draft", "quotation"})
MAX_DESCRIPTION = 1000


# --- keys --------------------------------------------------------------------------------


def sale_reference(options: TrytonOptions, order: Order) -> str:
    return f"{options.reference_prefix}{order.source}-{order.external_id}"


def order_key_of(options: TrytonOptions, reference: str | None) -> str | None:
    """Our order key (``<source>:order:<id>``) back from a sale reference; None if not ours."""
    if not reference or not reference.startswith(options.reference_prefix):
        return None
    rest = reference[len(options.reference_prefix) :]
    for source in sorted(options.order_sources, key=len, reverse=True):
        if rest.startswith(f"{source}-") and len(rest) > len(source) + 1:
            return f"{source}:order:{rest[len(source) + 1 :]}"
    if options.order_sources:
        return None  # a reference of some other origin (typed in Tryton, another channel)
    source, dash, external_id = rest.partition("-")
    if not dash or not source or not external_id:
        return None
    return f"{source}:order:{external_id}"


def party_code(options: TrytonOptions, source: str, customer_id: str) -> str:
    return f"{options.party_code_prefix}{source}-{customer_id}"


def guest_party_code(options: TrytonOptions, source: str, email: str) -> str:
    digest = hashlib.sha256(normalized_email(email).encode("utf-8")).hexdigest()[:16]
    return f"{options.party_code_prefix}{source}-guest-{digest}"


def normalized_email(email: str) -> str:
    return email.strip().lower()


def order_party_code(options: TrytonOptions, order: Order) -> str:
    if order.customer.external_id:
        return party_code(options, order.source, order.customer.external_id)
    email = normalized_email(order.customer.email or "")
    if not email:
        raise PermanentError(
            f"order {order.number} ({order.entity_key}) has neither a customer id nor an "
            "e-mail, so no Tryton party can be found or created for it"
        )
    return guest_party_code(options, order.source, email)


# --- names and addresses -----------------------------------------------------------------


def person_name(first: str | None, last: str | None) -> str:
    return " ".join(p.strip() for p in (first, last) if p and p.strip())


def party_name(first: str | None, last: str | None, company: str | None, email: str | None) -> str:
    """Tryton has one name per party: the company's, else the person's, else the e-mail."""
    return (
        (company or "").strip() or person_name(first, last) or (email or "").strip() or ("Customer")
    )


def split_name(name: str | None) -> tuple[str | None, str | None]:
    """A Tryton party name as (first, last): the last word is the last name."""
    words = (name or "").split()
    if not words:
        return None, None
    if len(words) == 1:
        return None, words[0]
    return " ".join(words[:-1]), words[-1]


def address_values(
    address: Address, country_id: int | None, subdivision_id: int | None
) -> dict[str, Any]:
    """A canonical address as ``party.address`` values (without ``party``)."""
    person = person_name(address.first_name, address.last_name)
    street = "\n".join(line.strip() for line in (address.line1, address.line2) if line)
    return {
        "party_name": (address.company or person or None),
        "attn": person if address.company and person else None,
        "street": street or None,
        "postal_code": address.postal_code or None,
        "city": address.city or None,
        "country": country_id,
        "subdivision": subdivision_id,
    }


def _norm(value: Any) -> str:
    if value is None:
        return ""
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode()
    return re.sub(r"\s+", " ", text).strip().casefold()


ADDRESS_FIELDS = ("party_name", "attn", "street", "postal_code", "city", "country", "subdivision")


def address_key(values: Mapping[str, Any]) -> tuple[str, ...]:
    """What makes two addresses the same place (case, accents and spacing aside)."""
    return tuple(_norm(values.get(name)) for name in ADDRESS_FIELDS)


def address_from_row(row: Mapping[str, Any]) -> Address:
    """A ``party.address`` row read with ``country.code`` and ``subdivision.code``."""
    lines = [ln for ln in str(row.get("street") or "").splitlines() if ln.strip()]
    first, last = split_name(row.get("attn") or row.get("party_name"))
    country = row.get("country.") or {}
    subdivision = row.get("subdivision.") or {}
    region = subdivision.get("code") if isinstance(subdivision, Mapping) else None
    if region and "-" in region:
        region = region.split("-", 1)[1]
    return Address(
        first_name=first,
        last_name=last,
        company=row.get("party_name") if row.get("attn") else None,
        line1=lines[0] if lines else None,
        line2=" ".join(lines[1:]) or None,
        city=row.get("city") or None,
        region_code=region or None,
        postal_code=row.get("postal_code") or None,
        country_code=(country.get("code") if isinstance(country, Mapping) else None) or None,
    )


# --- sales -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductRef:
    """A Tryton product a line sells: its id, sale unit and customer taxes."""

    id: int
    code: str
    unit: int
    taxes: tuple[int, ...] = ()


@dataclass(frozen=True)
class SaleParts:
    """What a sale needs besides the order: resolved ids."""

    party: int
    invoice_address: int | None
    shipment_address: int | None
    currency: int
    products: Mapping[str, ProductRef]
    shipping: ProductRef | None = None
    discount: ProductRef | None = None
    taxes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # line id → tax ids
    warehouse: int | None = None
    carrier: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # e.g. shipment_cost_method


def order_description(order: Order) -> str:
    text = f"{order.source} order {order.number}"
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"


def _line(
    sequence: int,
    product: ProductRef,
    quantity: Decimal,
    unit_price: Decimal,
    description: str,
    taxes: Sequence[int],
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "type": "line",
        "sequence": sequence,
        "product": product.id,
        "unit": product.unit,
        "quantity": Number(quantity),
        "unit_price": unit_price,
        "description": description,
    }
    if taxes:
        values["taxes"] = [["add", list(taxes)]]
    return values


def has_shipping(order: Order) -> bool:
    return bool(order.shipping_lines) or order.totals.shipping.amount != 0


def sale_lines(order: Order, parts: SaleParts) -> list[dict[str, Any]]:
    """The order's lines, then one shipping line and one discount line when it has them.

    Prices are the store's, exactly (Decimal): the sale shows what the customer paid for.
    """
    lines: list[dict[str, Any]] = []
    for line in order.lines:
        assert line.sku is not None  # checked before any write
        product = parts.products[line.sku]
        taxes = parts.taxes.get(line.line_id, product.taxes)
        lines.append(
            _line(
                len(lines) + 1,
                product,
                line.quantity,
                line.unit_price.amount,
                line.title,
                taxes,
            )
        )
    if has_shipping(order):
        assert parts.shipping is not None  # checked before any write
        titles = ", ".join(s.title for s in order.shipping_lines if s.title) or "Shipping"
        lines.append(
            _line(
                len(lines) + 1,
                parts.shipping,
                Decimal(1),
                order.totals.shipping.amount,
                titles,
                parts.shipping.taxes,
            )
        )
    if order.totals.discounts.amount:
        assert parts.discount is not None  # checked before any write
        codes = ", ".join(d.code for d in order.discounts if d.code)
        lines.append(
            _line(
                len(lines) + 1,
                parts.discount,
                Decimal(1),
                -order.totals.discounts.amount,
                f"Discount {codes}".strip(),
                (),
            )
        )
    return lines


def sale_values(order: Order, reference: str, parts: SaleParts, sale_date: date) -> dict[str, Any]:
    """``sale.sale`` values (lines apart: they are created or replaced separately)."""
    values: dict[str, Any] = {
        "party": parts.party,
        "reference": reference,
        "description": order_description(order),
        "sale_date": sale_date,
        "currency": parts.currency,
        "invoice_address": parts.invoice_address,
        "shipment_address": parts.shipment_address,
        "comment": order.note or None,
    }
    if parts.warehouse is not None:
        values["warehouse"] = parts.warehouse
    if parts.carrier is not None:
        values["carrier"] = parts.carrier
    values.update(parts.extra)
    return values


def local_date(moment: datetime, options: TrytonOptions) -> date:
    return moment.astimezone(options.zone).date()


__all__ = [
    "AMENDABLE",
    "SALE_FLOW",
    "ProductRef",
    "SaleParts",
    "address_from_row",
    "address_key",
    "address_values",
    "guest_party_code",
    "has_shipping",
    "order_key_of",
    "order_party_code",
    "party_code",
    "party_name",
    "sale_lines",
    "sale_reference",
    "sale_values",
    "split_name",
]
