"""Canonical → Shopify Admin API: stock, prices and customers (products: ``graphql_products``).

Stock changes the core sends as a ``delta`` directive go through GraphQL
``inventoryAdjustQuantities`` with ``@idempotent`` (see ``admin.adjust_available``); absolute
levels (first push, reconciliation) through ``inventorySetQuantities`` as a compare-and-set
(``graphql_stock``), so a sale between our read and our write is kept. Prices through
``productVariantsBulkUpdate``; customers through REST.

Links this module reads and writes, keyed by our product key ``<source>:product:<sku>`` (one
of every inventory/price event's related keys, so the core hands them back next time):
``product`` → variant id, ``inventory_item`` → inventory item id, ``shopify_product`` →
product id. Customers link ``customer`` → Shopify customer id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from connectors._kit.http import pick
from connectors.shopify import graphql
from connectors.shopify.admin import NotFoundError, ShopifyAdmin, VariantRef
from connectors.shopify.graphql import gid
from connectors.shopify.graphql_documents import VARIANTS_BULK_UPDATE
from connectors.shopify.graphql_stock import SetOutcome, set_available
from connectors.shopify.options import ShopifyOptions
from kernel.canonical.common import Address
from kernel.canonical.customer import Customer
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.inventory import StockAvailability
from kernel.canonical.product import Price
from kernel.errors import PermanentError
from kernel.types import DeliveryContext, DeliveryResult, Finding, RemoteLink

WEIGHT_UNITS = {"g": "g", "kg": "kg", "oz": "oz", "lb": "lb", "lbs": "lb", "gram": "g"}


def product_key(source: str, sku: str) -> str:
    return f"{source}:product:{sku}"


def rest_id(value: str) -> int | str:
    """Shopify REST ids are JSON numbers; keep anything else as given."""
    return int(value) if value.isdigit() else value


def money_text(amount: Decimal) -> str:
    return f"{amount:f}"


def sku_links(ref: VariantRef, key: str) -> list[RemoteLink]:
    return [
        RemoteLink("product", key, ref.variant_id),
        RemoteLink("inventory_item", key, ref.inventory_item_id),
        RemoteLink("shopify_product", key, ref.product_id),
    ]


async def resolve_sku(
    admin: ShopifyAdmin, sku: str, key: str, ctx: DeliveryContext
) -> VariantRef | None:
    """The variant from links (no call), the connector's cache, or a lookup by SKU."""
    variant, item, product = (
        ctx.link(t, key) for t in ("product", "inventory_item", "shopify_product")
    )
    if variant and item and product:
        ref = VariantRef(sku, variant, product, item)
        admin.variants.setdefault(sku, ref)
        return ref
    return await admin.variant(sku)


def unknown_sku(sku: str) -> PermanentError:
    return PermanentError(
        f"SKU {sku!r} does not exist in the Shopify store: create the product there (or "
        "route the products flow to this store so the gateway creates it), or fix the SKU "
        "in the ERP, then replay this delivery"
    )


async def update_variants(
    admin: ShopifyAdmin, ref: VariantRef, fields: dict[str, Any], *, what: str
) -> None:
    """``productVariantsBulkUpdate`` of one variant; an unknown variant → NotFoundError (so a
    stale link gets one fresh lookup)."""
    data = await admin.graphql(
        VARIANTS_BULK_UPDATE,
        {
            "productId": gid("Product", ref.product_id),
            "variants": [{"id": gid("ProductVariant", ref.variant_id), **fields}],
        },
        what=what,
    )
    try:
        graphql.payload(data, "productVariantsBulkUpdate", what)
    except graphql.UserErrorsError as exc:
        if exc.codes & {"PRODUCT_DOES_NOT_EXIST", "PRODUCT_VARIANT_DOES_NOT_EXIST"}:
            raise NotFoundError(exc.message, detail=exc.detail) from None
        raise


async def with_variant(
    admin: ShopifyAdmin,
    sku: str,
    key: str,
    ctx: DeliveryContext,
    action: Callable[[VariantRef], Awaitable[None]],
) -> VariantRef:
    """Run ``action`` on the SKU's variant; a stale link (404) gets one fresh lookup."""
    ref = await resolve_sku(admin, sku, key, ctx)
    if ref is None:
        raise unknown_sku(sku)
    try:
        await action(ref)
        return ref
    except NotFoundError:
        fresh = await admin.variant(sku, fresh=True)
        if fresh is None:
            raise unknown_sku(sku) from None
        if fresh == ref:
            raise
    await action(fresh)
    return fresh


# --- inventory ------------------------------------------------------------------------------


async def set_availability(
    admin: ShopifyAdmin, opts: ShopifyOptions, event: CanonicalEvent, ctx: DeliveryContext
) -> DeliveryResult:
    """Adjust by the core's ``delta`` directive, or set the absolute ``available``.

    A delta commutes with the store's own checkouts; an absolute value computed before a
    checkout would undo it (and offer units already sold). The absolute set is for the first
    push of a SKU and for reconciliation (``absolute`` directive), or when no delta is given.
    """
    stock = event.payload_as(StockAvailability)
    location = stock.location or opts.location_id
    if not location:
        raise PermanentError(
            f"no Shopify location for SKU {stock.sku!r}: set the connection option "
            "location_id (the store's location id) or send a location with the availability"
        )
    delta = _delta_directive(ctx.directives)
    if delta is not None and ctx.directives.get("absolute") is not True:
        return await _adjust_availability(admin, stock, location, delta, ctx)
    # Shopify counts whole units; rounding down never offers a unit we do not have.
    quantity = max(stock.available, Decimal(0)).to_integral_value(rounding=ROUND_FLOOR)
    findings = []
    if quantity != stock.available:
        findings.append(
            Finding(
                "fractional_stock",
                f"{stock.sku}: {stock.available} available sent as {quantity} (whole units)",
                {"sku": stock.sku, "available": str(stock.available)},
            )
        )

    key = product_key(stock.source, stock.sku)
    idempotency_key = ctx.directives.get("idempotency_key")
    if not isinstance(idempotency_key, str) or not idempotency_key.strip():
        idempotency_key = f"erp-gateway-set-{stock.sku}@{location}-{stock.as_of.isoformat()}"
    outcome: list[SetOutcome] = []

    async def write(ref: VariantRef) -> None:
        outcome.append(
            await set_available(
                admin,
                ref.inventory_item_id,
                location,
                int(quantity),
                key=idempotency_key,
                what=f"inventory of SKU {stock.sku!r} at location {location}",
            )
        )

    ref = await with_variant(admin, stock.sku, key, ctx, write)
    done = outcome[-1]
    if done.kept:
        findings.append(
            Finding(
                "stock_sale_kept",
                f"{stock.sku}: the store's quantity changed by {done.kept} while it was set; "
                f"kept (set to {done.quantity} instead of {quantity})",
                {"sku": stock.sku, "location": location, "kept": done.kept},
            )
        )
    if done.replayed:
        summary = f"{stock.sku} already set at location {location} by an earlier attempt"
    elif done.written:
        summary = f"set {stock.sku} available={done.quantity} at location {location}"
    else:
        summary = f"{stock.sku} already {done.quantity} at location {location}"
    return DeliveryResult(
        links=sku_links(ref, key), summary=summary + _usage(admin), findings=findings
    )


def _delta_directive(directives: dict[str, Any]) -> Decimal | None:
    raw = directives.get("delta")
    if raw is None:
        return None
    try:
        delta = None if isinstance(raw, bool | float) else Decimal(str(raw))
    except InvalidOperation:
        delta = None
    if delta is None or not delta.is_finite():
        raise PermanentError(
            f"the delta directive {raw!r} is not a decimal string or an integer (core bug)"
        )
    return delta


async def _adjust_availability(
    admin: ShopifyAdmin,
    stock: StockAvailability,
    location: str,
    delta: Decimal,
    ctx: DeliveryContext,
) -> DeliveryResult:
    # Whole units, rounded toward -inf: a fraction never becomes a unit we do not have.
    units = delta.to_integral_value(rounding=ROUND_FLOOR)
    findings = []
    if units != delta:
        findings.append(
            Finding(
                "fractional_stock",
                f"{stock.sku}: change of {delta} sent as {units} (whole units)",
                {"sku": stock.sku, "delta": str(delta)},
            )
        )
    if units == 0:
        return DeliveryResult(
            summary=f"{stock.sku} unchanged at location {location} (delta {delta})",
            findings=findings,
        )
    idempotency_key = ctx.directives.get("idempotency_key")
    if not isinstance(idempotency_key, str) or not idempotency_key.strip():
        # Without a key a retried delivery could apply the same change twice.
        raise PermanentError(
            f"stock change of SKU {stock.sku!r} came without an idempotency_key directive "
            "(core bug); not sent, a retry could apply it twice"
        )
    after: list[int | None] = []

    async def write(ref: VariantRef) -> None:
        # The same key on the stale-link retry too: the first attempt applied nothing, and a
        # key that once applied must never apply again under any item.
        after.append(
            await admin.adjust_available(
                ref.inventory_item_id,
                location,
                int(units),
                key=idempotency_key,
                what=f"inventory of SKU {stock.sku!r} at location {location}",
            )
        )

    key = product_key(stock.source, stock.sku)
    ref = await with_variant(admin, stock.sku, key, ctx, write)
    now = after[-1]
    if now is not None and now < 0:
        findings.append(
            Finding(
                "negative_stock",
                f"{stock.sku}: available at location {location} is {now} after a change of "
                f"{units}; the store sold more than the ERP has",
                {"sku": stock.sku, "location": location, "available": now},
            )
        )
    shown = f" (now {now})" if now is not None else ""
    return DeliveryResult(
        links=sku_links(ref, key),
        summary=f"adjusted {stock.sku} by {units} at location {location}{shown}" + _usage(admin),
        findings=findings,
    )


# --- prices ---------------------------------------------------------------------------------


async def update_price(
    admin: ShopifyAdmin, opts: ShopifyOptions, event: CanonicalEvent, ctx: DeliveryContext
) -> DeliveryResult:
    price = event.payload_as(Price)
    if opts.currency and price.currency != opts.currency:
        return DeliveryResult(
            summary=f"price of {price.sku} in {price.currency} not written",
            findings=[
                Finding(
                    "currency_mismatch",
                    f"price list for {price.sku} is in {price.currency}, the store sells in "
                    f"{opts.currency}; route only {opts.currency} prices to this store",
                    {"sku": price.sku, "currency": price.currency},
                )
            ],
        )
    # A sale shows as price = sale price with the base price struck through (compare-at).
    selling, compare_at = (
        (price.sale.price, price.base) if price.sale is not None else (price.base, None)
    )

    async def write(ref: VariantRef) -> None:
        await update_variants(
            admin,
            ref,
            {
                "price": money_text(selling),
                "compareAtPrice": money_text(compare_at) if compare_at is not None else None,
            },
            what=f"price of SKU {price.sku!r}",
        )

    key = product_key(price.source, price.sku)
    ref = await with_variant(admin, price.sku, key, ctx, write)
    shown = f"{selling} (compare at {compare_at})" if compare_at is not None else str(selling)
    return DeliveryResult(
        links=sku_links(ref, key), summary=f"price of {price.sku} set to {shown}" + _usage(admin)
    )


# --- customers ------------------------------------------------------------------------------


def _address_body(address: Address, default: bool) -> dict[str, Any]:
    fields = {
        "first_name": address.first_name,
        "last_name": address.last_name,
        "company": address.company,
        "address1": address.line1,
        "address2": address.line2,
        "city": address.city,
        "province": address.region,
        "province_code": address.region_code,
        "zip": address.postal_code,
        "country_code": address.country_code,
        "phone": address.phone,
    }
    return {**{k: v for k, v in fields.items() if v is not None}, "default": default}


def _customer_fields(customer: Customer) -> dict[str, Any]:
    fields = {
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "email": customer.email,
        "phone": customer.phone,
    }
    return {**{k: v for k, v in fields.items() if v is not None}, "tax_exempt": customer.tax_exempt}


async def _find_customer_by_email(admin: ShopifyAdmin, email: str) -> str | None:
    answer = await admin.request(
        "GET",
        "customers/search.json",
        what=f"customers with email {email}",
        params={"query": f'email:"{email}"', "fields": "id,email"},
    )
    wanted = email.strip().lower()
    for found in answer.get("customers") or []:
        if (found.get("email") or "").strip().lower() == wanted:
            return str(found["id"])
    return None


async def upsert_customer(
    admin: ShopifyAdmin,
    opts: ShopifyOptions,
    event: CanonicalEvent,
    ctx: DeliveryContext,
    connection_id: str,
) -> DeliveryResult:
    """Update the linked (or same-email) customer, else create one.

    Only a create sends addresses, the group tag and marketing consent: on an update they
    would replace what the store keeps itself (address book, tags, consent).
    """
    customer = event.payload_as(Customer)
    key = customer.entity_key
    linked = ctx.link("customer", key) or (
        customer.external_id if customer.source == connection_id else None
    )
    candidates = [linked] if linked else []
    for customer_id in candidates:
        try:
            return await _update_customer(admin, customer, customer_id, key)
        except NotFoundError:
            pass  # deleted in the store since; look again by e-mail below
    if customer.email:
        found = await _find_customer_by_email(admin, customer.email)
        if found:
            return await _update_customer(admin, customer, found, key)
    body: dict[str, Any] = _customer_fields(customer)
    if customer.addresses:
        default = customer.default_shipping if customer.default_shipping is not None else 0
        body["addresses"] = [
            _address_body(a, i == default) for i, a in enumerate(customer.addresses)
        ]
    if customer.group:
        body["tags"] = f"{opts.group_tag_prefix}{customer.group}"
    if customer.accepts_marketing:
        body["email_marketing_consent"] = {"state": "subscribed", "opt_in_level": "single_opt_in"}
    answer = await admin.request(
        "POST",
        "customers.json",
        what=f"new customer {customer.email or key}",
        json_body={"customer": body},
    )
    new_id = str(pick(answer, "customer", "id", describe="Shopify (new customer)"))
    return DeliveryResult(
        links=[RemoteLink("customer", key, new_id)],
        summary=f"created customer {new_id}" + _usage(admin),
    )


async def _update_customer(
    admin: ShopifyAdmin, customer: Customer, customer_id: str, key: str
) -> DeliveryResult:
    await admin.request(
        "PUT",
        f"customers/{customer_id}.json",
        what=f"customer {customer_id}",
        json_body={"customer": {"id": rest_id(customer_id), **_customer_fields(customer)}},
    )
    return DeliveryResult(
        links=[RemoteLink("customer", key, customer_id)],
        summary=f"updated customer {customer_id}" + _usage(admin),
    )


def _usage(admin: ShopifyAdmin) -> str:
    return f" [API calls {admin.last_call_limit}]" if admin.last_call_limit else ""
