"""Canonical products → Shopify products and variants, through the GraphQL Admin API.

The ERP sends one ``product.upserted`` per SKU; a variant names its configurable parent in
``parent_sku``. In Shopify the variants of one parent live under one product (up to 2048
variants through GraphQL, 100 through REST), found by a handle made from the parent SKU.

- A known SKU (link, cache or search): product fields by ``productSet`` with
  ``identifier: {id}`` and no list fields (so no variant or option is touched), variant
  fields by ``productVariantsBulkUpdate``.
- A new SKU: ``productByIdentifier(identifier: {handle})`` (a direct lookup, not the search
  index). No product: ``productSet`` creates it with this variant. A product whose only
  variant is the standalone "Default Title" (made by the parent's own event): ``productSet``
  on it with this variant's options and variant replaces the placeholder. Otherwise
  ``productVariantsBulkCreate`` (strategy DEFAULT) adds the variant.
- Retries cannot duplicate: a create that went through is found by its handle next time, and
  a variant that already exists is refused by Shopify (VARIANT_ALREADY_EXISTS), then found
  in the product's variants by its option values and linked when it carries our SKU.
- Two variants of a new parent at once: one lock per handle in this connector; across
  processes Shopify refuses the second create of a handle (HANDLE_NOT_UNIQUE) and that
  delivery adds its variant to the product the first made.

Variants without option values get one option "Variant" valued with their title.
"""

from __future__ import annotations

import re
from typing import Any

from connectors.shopify import graphql
from connectors.shopify.admin import NotFoundError, ShopifyAdmin, VariantRef, variant_ref
from connectors.shopify.graphql import gid, legacy_id
from connectors.shopify.graphql_documents import (
    PRODUCT_BY_HANDLE,
    PRODUCT_SET,
    PRODUCT_VARIANTS_PAGE,
    VARIANTS_BULK_CREATE,
)
from connectors.shopify.options import ShopifyOptions
from connectors.shopify.outbound import (
    _usage,
    money_text,
    resolve_sku,
    sku_links,
    update_variants,
)
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.product import Product
from kernel.errors import PermanentError
from kernel.types import DeliveryContext, DeliveryResult, Finding, RemoteLink

WEIGHT_UNITS = {
    "g": "GRAMS",
    "gram": "GRAMS",
    "kg": "KILOGRAMS",
    "oz": "OUNCES",
    "lb": "POUNDS",
    "lbs": "POUNDS",
}
DEFAULT_OPTION = ("Title", "Default Title")
VARIANT_OPTION = "Variant"
MAX_OPTIONS = 3


def handle_for(sku: str) -> str:
    """The product handle for a parent (or standalone) SKU: lower case, dashes."""
    return re.sub(r"[^a-z0-9]+", "-", sku.lower()).strip("-") or "product"


def options_of(product: Product) -> list[tuple[str, str]]:
    if product.options:
        return list(product.options.items())[:MAX_OPTIONS]
    if product.parent_sku:
        return [(VARIANT_OPTION, product.title)]
    return [DEFAULT_OPTION]


def _item_input(product: Product) -> dict[str, Any]:
    item: dict[str, Any] = {"sku": product.sku, "tracked": True}
    unit = WEIGHT_UNITS.get((product.weight_unit or "").strip().lower())
    if product.weight is not None and unit:
        item["measurement"] = {"weight": {"value": float(product.weight), "unit": unit}}
    return item


def variant_input(product: Product, options: list[tuple[str, str]]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "optionValues": [{"optionName": n, "name": v} for n, v in options],
        "inventoryItem": _item_input(product),
    }
    if product.barcode:
        fields["barcode"] = product.barcode
    return fields


def product_fields(product: Product) -> dict[str, Any]:
    fields: dict[str, Any] = {"title": product.title, "status": product.status.upper()}
    if product.description is not None:
        fields["descriptionHtml"] = product.description
    return fields


async def upsert_product(
    admin: ShopifyAdmin, opts: ShopifyOptions, event: CanonicalEvent, ctx: DeliveryContext
) -> DeliveryResult:
    product = event.payload_as(Product)
    key = product.entity_key
    findings = []
    if product.components:
        findings.append(
            Finding(
                "bundle_not_synced",
                f"{product.sku} is a bundle; Shopify bundles need a bundles app, so it was "
                "written as a plain product without its components",
                {"sku": product.sku},
            )
        )
    ref = await resolve_sku(admin, product.sku, key, ctx)
    if ref is not None:
        try:
            await _update(admin, product, ref)
        except NotFoundError:  # a stale link or cache entry: one fresh lookup
            admin.forget(product.sku)
            ref = await admin.variant(product.sku, fresh=True)
            if ref is not None:
                await _update(admin, product, ref)
        if ref is not None:
            return DeliveryResult(
                links=sku_links(ref, key),
                summary=f"updated product {ref.product_id} (SKU {product.sku})" + _usage(admin),
                findings=findings,
            )
    handle = handle_for(product.parent_sku or product.sku)
    async with admin.lock(handle):
        placed = await _place(admin, product, handle, race_left=1)
    if isinstance(placed, VariantRef):
        admin.variants[product.sku] = placed
        return DeliveryResult(
            links=sku_links(placed, key),
            summary=f"product {placed.product_id} ({handle}) has variant {placed.variant_id} "
            f"(SKU {product.sku})" + _usage(admin),
            findings=findings,
        )
    return DeliveryResult(
        links=[RemoteLink("shopify_product", key, placed)],
        summary=f"updated product {placed} ({handle}), the parent of its variants; no "
        f"variant of its own for SKU {product.sku}" + _usage(admin),
        findings=findings,
    )


async def _update(admin: ShopifyAdmin, product: Product, ref: VariantRef) -> None:
    what = f"product {ref.product_id} (SKU {product.sku!r})"
    if not product.parent_sku:  # a variant's event does not own the product's fields
        identifier = {"id": gid("Product", ref.product_id)}
        await _product_set(admin, identifier, product_fields(product), what)
    fields: dict[str, Any] = {"inventoryItem": _item_input(product)}
    if product.barcode:
        fields["barcode"] = product.barcode
    what = f"variant {ref.variant_id} (SKU {product.sku!r})"
    await update_variants(admin, ref, fields, what=what)


async def _product_set(
    admin: ShopifyAdmin, identifier: dict[str, Any] | None, fields: dict[str, Any], what: str
) -> dict[str, Any]:
    data = await admin.graphql(PRODUCT_SET, {"identifier": identifier, "input": fields}, what=what)
    try:
        payload = graphql.payload(data, "productSet", what)
    except graphql.UserErrorsError as exc:
        if "PRODUCT_DOES_NOT_EXIST" in exc.codes:
            raise NotFoundError(exc.message, detail=exc.detail) from None
        raise
    product = payload.get("product")
    if not isinstance(product, dict):
        raise PermanentError(f"Shopify answered productSet for {what} without the product")
    return product


def _first_variant(product: dict[str, Any], sku: str) -> VariantRef:
    nodes = (product.get("variants") or {}).get("nodes") or []
    node = next((n for n in nodes if n.get("sku") == sku), nodes[0] if nodes else None)
    if node is None:
        raise PermanentError(f"Shopify answered product {product.get('handle')} without variants")
    return variant_ref(node)


async def _place(
    admin: ShopifyAdmin, product: Product, handle: str, *, race_left: int
) -> VariantRef | str:
    """The variant for a SKU the store does not know yet (or the product id, for a parent)."""
    what = f"product {handle} (SKU {product.sku!r})"
    data = await admin.graphql(PRODUCT_BY_HANDLE, {"handle": handle}, what=what)
    node = data.get("productByIdentifier")
    options = options_of(product)
    if not isinstance(node, dict):
        fields = {
            **product_fields(product),
            "handle": handle,
            "productOptions": [{"name": n, "values": [{"name": v}]} for n, v in options],
            "variants": [variant_input(product, options)],
        }
        try:
            made = await _product_set(admin, None, fields, what)
        except graphql.UserErrorsError as exc:
            if "HANDLE_NOT_UNIQUE" in exc.codes and race_left > 0:
                # another worker made it a moment ago: add to that one
                return await _place(admin, product, handle, race_left=race_left - 1)
            raise
        return _first_variant(made, product.sku)
    product_gid = str(node["id"])
    count = int((node.get("variantsCount") or {}).get("count") or 0)
    nodes = (node.get("variants") or {}).get("nodes") or []
    placeholder = count == 1 and nodes and nodes[0].get("title") == DEFAULT_OPTION[1]
    if not product.parent_sku:
        mine = await _find_variant(admin, product_gid, sku=product.sku)
        if mine is not None:  # made by an attempt whose answer was lost
            await _update(admin, product, mine)
            return mine
        if count > 1 or (count == 1 and not placeholder):
            # the parent of variants that arrived before it: its fields, no variant of its own
            await _product_set(admin, {"id": product_gid}, product_fields(product), what)
            return legacy_id(product_gid)
        raise PermanentError(
            f"the Shopify product with handle {handle!r} has a variant with SKU "
            f"{nodes[0].get('sku') if nodes else None!r}, not {product.sku!r}: two SKUs map to "
            "one handle; rename one of them or change the product's handle in Shopify"
        )
    if placeholder:  # the parent's own event made it: this variant replaces the default
        fields = {
            "productOptions": [{"name": n, "values": [{"name": v}]} for n, v in options],
            "variants": [variant_input(product, options)],
        }
        made = await _product_set(admin, {"id": product_gid}, fields, what)
        return _first_variant(made, product.sku)
    have = sorted(str(o.get("name")) for o in node.get("options") or [])
    want = sorted(n for n, _ in options)
    if have != want:
        raise PermanentError(
            f"SKU {product.sku!r} has options {', '.join(want)} but its product {handle!r} in "
            f"Shopify has {', '.join(have)}: send the same option names for every variant of "
            f"{product.parent_sku!r} (or change the product's options in Shopify)"
        )
    return await _add_variant(admin, product, product_gid, options, what)


async def _add_variant(
    admin: ShopifyAdmin,
    product: Product,
    product_gid: str,
    options: list[tuple[str, str]],
    what: str,
) -> VariantRef:
    data = await admin.graphql(
        VARIANTS_BULK_CREATE,
        {"productId": product_gid, "variants": [variant_input(product, options)]},
        what=what,
    )
    try:
        payload = graphql.payload(data, "productVariantsBulkCreate", what)
    except graphql.UserErrorsError as exc:
        if "VARIANT_ALREADY_EXISTS" not in exc.codes:
            raise
        existing = await _find_variant(admin, product_gid, values=dict(options))
        if existing is not None and existing.sku == product.sku:
            return existing  # made by an attempt whose answer was lost
        raise PermanentError(
            f"{exc.message}: the variant with these options has SKU "
            f"{existing.sku if existing else '?'!r}, not {product.sku!r}; give the variants "
            "distinct option values",
            detail=exc.detail,
        ) from None
    created = payload.get("productVariants") or []
    if not created:
        raise PermanentError(f"Shopify answered productVariantsBulkCreate for {what} without it")
    return variant_ref(created[0])


async def _find_variant(
    admin: ShopifyAdmin,
    product_gid: str,
    *,
    sku: str | None = None,
    values: dict[str, str] | None = None,
) -> VariantRef | None:
    """A variant of the product by SKU or by option values (pages of 250)."""
    after: str | None = None
    while True:
        data = await admin.graphql(
            PRODUCT_VARIANTS_PAGE,
            {"id": product_gid, "after": after},
            what=f"variants of product {legacy_id(product_gid)}",
        )
        page = ((data.get("product") or {}).get("variants")) or {}
        for node in page.get("nodes") or []:
            chosen = {o["name"]: o["value"] for o in node.get("selectedOptions") or []}
            if (sku is not None and node.get("sku") == sku) or (
                values is not None and chosen == values
            ):
                return variant_ref(node)
        info = page.get("pageInfo") or {}
        if not info.get("hasNextPage"):
            return None
        after = info.get("endCursor")


__all__ = ["handle_for", "money_text", "upsert_product"]
