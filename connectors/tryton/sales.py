"""Orders → ``sale.sale``: looked up by reference before any create, amended while open.

``order.created`` / ``order.updated``:

1. everything that can fail without writing is checked first: SKUs (product codes, or the
   ``sku`` mapping when present), the shipping and discount products, currency, warehouse;
2. the party (see ``parties.py``) and its invoice and shipment addresses;
3. the sale, by ``reference`` (``<source>-<order id>``; the remembered link first): absent →
   created with its lines, then looked up again: should a retry racing a timed-out first
   attempt have made a second one, the newer draft is deleted and the older kept; present →
   a retry of a create changes nothing, an update replaces the lines while the sale is a
   draft or quotation (a quotation goes back to draft for it) and is held for a person once
   it is confirmed (an approved amendment of a confirmed, unprocessed sale is applied);
4. the sale is taken to ``options.sale_state``: ``quote``, ``confirm`` (Tryton processes a
   confirmed sale by itself unless its configuration delays it), ``process``.

``order.cancelled``: ``cancel`` while draft or quotation (a confirmed sale goes back to draft
first); a sale being processed (shipments, invoices) is held for a person.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from connectors.tryton import records as rec
from connectors.tryton.client import TrytonClient
from connectors.tryton.options import TrytonOptions
from connectors.tryton.parties import Parties
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.order import Order
from kernel.errors import HoldError, NeedsMappingError, PermanentError
from kernel.mappings import tax_code_key
from kernel.types import DeliveryContext, DeliveryResult, Finding, MappingNeed, RemoteLink

SALE_FIELDS = ["id", "reference", "state", "number"]


class Sales:
    def __init__(self, client: TrytonClient, options: TrytonOptions, parties: Parties) -> None:
        self.client = client
        self.options = options
        self.parties = parties
        self._ids: dict[tuple[str, str], int] = {}

    # --- what the order needs ----------------------------------------------------------
    async def _one(self, model: str, domain: list[Any], what: str) -> int:
        key = (model, repr(domain))
        if key not in self._ids:
            ids = await self.client.search(model, domain, limit=1)
            if not ids:
                raise PermanentError(f"Tryton has no {what}")
            self._ids[key] = ids[0]
        return self._ids[key]

    async def products(
        self, codes: Mapping[str, str], *, with_taxes: bool
    ) -> dict[str, rec.ProductRef]:
        """Our key → product, for products whose code is the mapped value; missing ones left out."""
        if not codes:
            return {}
        rows = await self.client.search_read(
            rec.PRODUCT,
            [("code", "in", sorted(set(codes.values())))],
            ["id", "code", "sale_uom", "default_uom", "template.account_category"],
        )
        by_code = {str(r["code"]): r for r in rows}
        taxes = await self._category_taxes(rows) if with_taxes else {}
        out: dict[str, rec.ProductRef] = {}
        for key, code in codes.items():
            row = by_code.get(code)
            if row is not None:
                category = (row.get("template.") or {}).get("account_category")
                out[key] = rec.ProductRef(
                    id=int(row["id"]),
                    code=code,
                    unit=int(row.get("sale_uom") or row["default_uom"]),
                    taxes=taxes.get(category, ()) if category else (),
                )
        return out

    async def _category_taxes(
        self, rows: Sequence[Mapping[str, Any]]
    ) -> dict[int, tuple[int, ...]]:
        ids = sorted({c for r in rows if (c := (r.get("template.") or {}).get("account_category"))})
        cats = await self.client.read("product.category", ids, ["customer_taxes_used"])
        return {
            int(c["id"]): tuple(int(t) for t in c.get("customer_taxes_used") or ()) for c in cats
        }

    async def _service(
        self, code: str | None, option: str, order: Order, with_taxes: bool
    ) -> rec.ProductRef:
        if not code:
            raise PermanentError(
                f"order {order.number} needs a {option.split('_')[0]} line, but this Tryton "
                f"connection has no options.{option} (the code of a service product); set it "
                "and replay the delivery"
            )
        found = (await self.products({code: code}, with_taxes=with_taxes)).get(code)
        if found is None:
            raise PermanentError(f"options.{option} is {code!r}, but Tryton has no such product")
        return found

    async def check(self, order: Order, ctx: DeliveryContext) -> dict[str, Any]:
        """Everything the sale needs that cannot change by writing: checked before any write."""
        if not order.lines:
            raise PermanentError(f"order {order.number} has no lines; a sale needs one")
        for line in order.lines:
            if not line.sku:
                raise PermanentError(
                    f"order {order.number} line {line.line_id} ({line.title!r}) has no SKU, "
                    "so it cannot be matched to a Tryton product"
                )
        erp_taxes = _tax_source(ctx) == "erp"
        mapped = ctx.mappings.get("sku", {})
        codes = {line.sku: mapped.get(line.sku, line.sku) for line in order.lines if line.sku}
        products = await self.products(codes, with_taxes=erp_taxes)
        missing = [MappingNeed("sku", sku) for sku in codes if sku not in products]
        if missing:
            raise NeedsMappingError(missing)
        found: dict[str, Any] = {"products": products}
        if rec.has_shipping(order):
            found["shipping"] = await self._service(
                self.options.shipping_product_code, "shipping_product_code", order, erp_taxes
            )
        if order.totals.discounts.amount:
            found["discount"] = await self._service(
                self.options.discount_product_code, "discount_product_code", order, False
            )
        found["currency"] = await self._one(
            "currency.currency", [("code", "=", order.currency)], f"currency {order.currency}"
        )
        if self.options.warehouse:
            found["warehouse"] = await self._one(
                "stock.location",
                [("type", "=", "warehouse"), ("code", "=", self.options.warehouse)],
                f"warehouse with code {self.options.warehouse!r} (options.warehouse)",
            )
        present = await self.client.has_fields(rec.SALE, ["shipment_cost_method", "carrier"])
        # shipping is the store's price on its own line; Tryton must not add a computed one
        found["extra"] = {"shipment_cost_method": None} if "shipment_cost_method" in present else {}
        carriers = ctx.mappings.get("shipping_method", {})
        shipping = order.shipping_lines[0] if order.shipping_lines else None
        if (
            "carrier" in present
            and shipping
            and (carrier := carriers.get(shipping.code or shipping.title))
        ):
            found["carrier"] = int(carrier)
        if not erp_taxes:
            found["taxes"] = _mapped_taxes(order, ctx)
        return found

    # --- find ----------------------------------------------------------------------------
    async def find(self, order: Order, ctx: DeliveryContext) -> dict[str, Any] | None:
        reference = rec.sale_reference(self.options, order)
        linked = ctx.link("order", order.entity_key)
        if linked and linked.isdigit():
            rows = await self.client.search_read(
                rec.SALE, [("id", "=", int(linked))], SALE_FIELDS, limit=1
            )
            if rows and rows[0].get("reference") == reference:
                return rows[0]
        rows = await self.client.search_read(
            rec.SALE, [("reference", "=", reference)], SALE_FIELDS, order=[("id", "ASC")], limit=1
        )
        return rows[0] if rows else None

    # --- create / update -----------------------------------------------------------------
    async def upsert(self, event: CanonicalEvent, ctx: DeliveryContext) -> DeliveryResult:
        order = event.payload_as(Order)
        needs = await self.check(order, ctx)
        existing = await self.find(order, ctx)
        if existing is not None and event.type == "order.updated":
            _guard_amendment(existing, order, ctx)
        party, customer_link = await self.parties.for_order(order, ctx)
        invoice = await self.parties.address(party, order.billing_address or order.shipping_address)
        shipment = await self.parties.address(
            party, order.shipping_address or order.billing_address
        )
        if invoice is None:  # an order without addresses (digital goods, point of sale)
            invoice = shipment = await self.parties.default_address(party)
        parts = rec.SaleParts(
            party=party,
            invoice_address=invoice,
            shipment_address=shipment,
            currency=needs["currency"],
            products=needs["products"],
            shipping=needs.get("shipping"),
            discount=needs.get("discount"),
            taxes=needs.get("taxes", {}),
            warehouse=needs.get("warehouse"),
            carrier=needs.get("carrier"),
            extra=needs["extra"],
        )
        reference = rec.sale_reference(self.options, order)
        values = rec.sale_values(
            order, reference, parts, rec.local_date(order.created_at, self.options)
        )
        lines = rec.sale_lines(order, parts)
        if existing is None:
            sale_id, state = await self._create(reference, {**values, "lines": [["create", lines]]})
            what = "created"
        elif event.type == "order.updated":
            sale_id, state = int(existing["id"]), str(existing["state"])
            if state != "draft":
                await self.client.button(rec.SALE, "draft", [sale_id])
            old = await self.client.search(rec.SALE_LINE, [("sale", "=", sale_id)])
            await self.client.write(
                rec.SALE, [sale_id], {**values, "lines": [["delete", old], ["create", lines]]}
            )
            state, what = "draft", "amended"
        else:
            sale_id, state, what = int(existing["id"]), str(existing["state"]), "already there"
        state = await self.advance(sale_id, state)
        links = [RemoteLink("order", event.entity_key, str(sale_id))]
        if customer_link is not None:
            links.append(customer_link)
        findings = (
            await self._tax_findings(order, sale_id, ctx) if _tax_source(ctx) == "erp" else []
        )
        return DeliveryResult(
            links=links,
            summary=f"sale {sale_id} ({reference}) {what}, {state}; party {party}",
            findings=findings,
        )

    async def _create(self, reference: str, values: Mapping[str, Any]) -> tuple[int, str]:
        """The new sale (id, state); or the older twin a racing attempt made, if any."""
        (created,) = await self.client.create(rec.SALE, [values])
        twins = await self.client.search_read(
            rec.SALE, [("reference", "=", reference)], ["id", "state"], order=[("id", "ASC")]
        )
        if twins and int(twins[0]["id"]) != created:
            await self.client.delete(rec.SALE, [created])
            return int(twins[0]["id"]), str(twins[0]["state"])
        return created, "draft"

    async def advance(self, sale_id: int, state: str) -> str:
        """Take the sale to ``options.sale_state`` (never back)."""
        target = rec.SALE_FLOW.index(self.options.sale_state)
        steps = (("draft", "quote", "quotation"), ("quotation", "confirm", "confirmed"))
        for before, button, after in steps:
            if state == before and target >= rec.SALE_FLOW.index(after):
                await self.client.button(rec.SALE, button, [sale_id])
                state = after
        if self.options.sale_state == "processing" and state == "confirmed":
            await self.client.button(rec.SALE, "process", [sale_id])
        rows = await self.client.read(rec.SALE, [sale_id], ["state"])
        return str(rows[0]["state"]) if rows else state

    async def _tax_findings(
        self, order: Order, sale_id: int, ctx: DeliveryContext
    ) -> list[Finding]:
        (row,) = await self.client.read(rec.SALE, [sale_id], ["tax_amount"])
        erp_tax = row.get("tax_amount")
        store_tax = order.totals.tax.amount
        tolerance = Decimal(str(ctx.directives.get("tax_tolerance", "0.01")))
        if not isinstance(erp_tax, Decimal) or abs(erp_tax - store_tax) <= tolerance:
            return []
        return [
            Finding(
                "tax_difference",
                f"Tryton computed tax {erp_tax} {order.currency} on sale {sale_id} for order "
                f"{order.number}; the store charged {store_tax} (tolerance {tolerance})",
                {
                    "order": order.entity_key,
                    "erp_tax": str(erp_tax),
                    "store_tax": str(store_tax),
                    "difference": str(erp_tax - store_tax),
                    "currency": order.currency,
                },
            )
        ]

    # --- cancel --------------------------------------------------------------------------
    async def cancel(self, event: CanonicalEvent, ctx: DeliveryContext) -> DeliveryResult:
        order = event.payload_as(Order)
        existing = await self.find(order, ctx)
        if existing is None:
            return DeliveryResult(
                summary=f"no Tryton sale for {order.entity_key}; nothing to cancel"
            )
        sale_id, state = int(existing["id"]), str(existing["state"])
        links = [RemoteLink("order", event.entity_key, str(sale_id))]
        name = f"sale {existing.get('number') or sale_id} ({existing.get('reference')})"
        if state == "cancelled":
            return DeliveryResult(links=links, summary=f"{name} already cancelled")
        if state in ("processing", "done"):
            raise HoldError(
                f"{name} is {state} in Tryton (shipments or invoices exist); cancel it there, "
                "or reject this cancellation",
                detail={"state": state, "order": order.entity_key},
            )
        if state == "confirmed":
            await self.client.button(rec.SALE, "draft", [sale_id])
        await self.client.button(rec.SALE, "cancel", [sale_id])
        return DeliveryResult(links=links, summary=f"{name} cancelled (was {state})")


def _tax_source(ctx: DeliveryContext) -> str:
    source = str(ctx.directives.get("tax_source") or "store")
    if source not in ("store", "erp"):
        raise PermanentError(f"unknown tax_source directive {source!r} (store or erp)")
    return source


def _mapped_taxes(order: Order, ctx: DeliveryContext) -> dict[str, tuple[int, ...]]:
    """``tax_code`` mappings (a line's first tax line title → Tryton tax id), when given."""
    table = ctx.mappings.get("tax_code", {})
    out: dict[str, tuple[int, ...]] = {}
    for line in order.lines:
        if (key := tax_code_key(line)) and (tax := table.get(key)):
            out[line.line_id] = (int(tax),)
    return out


def _guard_amendment(existing: Mapping[str, Any], order: Order, ctx: DeliveryContext) -> None:
    """Hold an update Tryton cannot take as is."""
    state = str(existing.get("state"))
    name = f"sale {existing.get('number') or existing.get('id')} ({existing.get('reference')})"
    approved = (ctx.directives.get("decision") or {}).get("outcome") == "approved"
    if state == "cancelled":
        raise HoldError(f"{name} is cancelled in Tryton; the amendment of {order.number} waits")
    if approved:
        if state in ("processing", "done"):
            raise PermanentError(
                f"{name} is {state} in Tryton (shipments or invoices exist); the approved "
                "amendment cannot be applied by the gateway, make the change in Tryton"
            )
        return
    if ctx.directives.get("amendments") == "hold":
        raise HoldError(
            f"{name} already exists in Tryton and amendments are held by rule; approve to apply"
        )
    if state not in rec.AMENDABLE:
        details = ctx.directives.get("amendment_details")
        raise HoldError(
            f"{name} is {state} in Tryton; the amendment of {order.number} cannot be applied "
            "automatically" + (f" ({'; '.join(details)})" if isinstance(details, list) else ""),
            detail={"state": state, "order": order.entity_key},
        )


__all__ = ["Sales"]
