"""Catalogue mutations of the GraphQL Admin API over the store: ``productSet``,
``productVariantsBulkCreate``, ``productVariantsBulkUpdate``.

Behaviour as documented (shopify.dev/docs/api/admin-graphql/2026-01/mutations/...):
- productSet: with ``identifier`` it upserts (``handle``) or updates (``id``) that product,
  without it creates one. List fields (``productOptions``, ``variants``) replace what the
  product has: variants left out are deleted. Other fields are set when given. An explicit
  handle another product holds is refused (HANDLE_NOT_UNIQUE). At most 2048 variants.
- productVariantsBulkCreate: adds variants whose option values name existing options; an
  existing combination is refused (VARIANT_ALREADY_EXISTS); strategy DEFAULT deletes the
  standalone "Default Title" variant when it is the only one, REMOVE_STANDALONE_VARIANT any
  lone variant. New variants are stocked (0) at the default location.
- productVariantsBulkUpdate: variants by ``id``, which must belong to the product.
Every mutation is all or nothing: userErrors, nothing applied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulators.shopify.catalogue import GRAPHQL_MAX_VARIANTS
from simulators.shopify.graphql_views import (
    DEFAULT_TITLE,
    gid_of,
    option_names,
    product_view,
    variant_title,
    variant_view,
)
from simulators.shopify.values import AdminError, UserErrors, now_text, text, user_error

if TYPE_CHECKING:
    from simulators.shopify.store import Store

WEIGHT_UNITS = {"GRAMS": "g", "KILOGRAMS": "kg", "OUNCES": "oz", "POUNDS": "lb"}


def _money(value: Any, *path: str) -> str:
    from decimal import Decimal, InvalidOperation

    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise UserErrors(user_error("INVALID_INPUT", "is not a valid amount", *path)) from None
    if not amount.is_finite() or amount < 0:
        raise UserErrors(user_error("INVALID_INPUT", "must be 0 or more", *path))
    return text(amount)


def _apply_variant_fields(variant: dict[str, Any], data: dict[str, Any], *path: str) -> None:
    if data.get("sku") is not None:
        variant["sku"] = data["sku"]
    item = data.get("inventoryItem") or {}
    if item.get("sku") is not None:
        variant["sku"] = item["sku"]
    if item.get("tracked") is not None:
        variant["inventory_management"] = "shopify" if item["tracked"] else None
    weight = (item.get("measurement") or {}).get("weight")
    if weight:
        variant["weight"] = weight["value"]
        variant["weight_unit"] = WEIGHT_UNITS[weight["unit"]]
    if "barcode" in data:
        variant["barcode"] = data["barcode"]
    if data.get("price") is not None:
        variant["price"] = _money(data["price"], *path, "price")
    if "compareAtPrice" in data:
        raw = data["compareAtPrice"]
        variant["compare_at_price"] = (
            None if raw in (None, "") else _money(raw, *path, "compareAtPrice")
        )
    variant["updated_at"] = now_text()


def _values(product: dict[str, Any], data: dict[str, Any], *path: str) -> list[str]:
    """The variant's option values in the product's option order."""
    names = option_names(product)
    given: dict[str, str] = {}
    for i, value in enumerate(data.get("optionValues") or []):
        name = value.get("optionName")
        if name is None and value.get("optionId"):
            position = int(str(value["optionId"]).rsplit("/", 1)[-1][-1])
            name = names[position - 1] if 0 < position <= len(names) else None
        if name not in names:
            raise UserErrors(
                user_error(
                    "OPTION_DOES_NOT_EXIST",
                    f"Option '{value.get('optionName')}' does not exist on the product.",
                    *path,
                    "optionValues",
                    str(i),
                )
            )
        given[str(name)] = str(value.get("name"))
    if set(given) != set(names):
        raise UserErrors(
            user_error(
                "INVALID",
                f"Variant options must name every option of the product: {', '.join(names)}",
                *path,
                "optionValues",
            )
        )
    return [given[n] for n in names]


def _set_values(variant: dict[str, Any], values: list[str]) -> None:
    for i in range(3):
        variant[f"option{i + 1}"] = values[i] if i < len(values) else None


def _stock_new(store: Store, variants: list[dict[str, Any]]) -> None:
    for v in variants:
        store.locations.add(store.default_location_id)
        store.inventory.setdefault((v["inventory_item_id"], store.default_location_id), 0)


def _find(store: Store, product_gid: Any, *path: str) -> dict[str, Any]:
    try:
        product_id = gid_of(product_gid, "Product", *path)
    except UserErrors:
        product_id = -1
    product = store.products.get(product_id)
    if product is None:
        raise UserErrors(user_error("PRODUCT_DOES_NOT_EXIST", "Product does not exist", *path))
    return product


# --- productSet --------------------------------------------------------------------------------


def product_set(store: Store, identifier: dict[str, Any] | None, data: dict[str, Any]) -> dict:
    try:
        product = _product_set(store, identifier or {}, data)
    except UserErrors as exc:
        return {"product": None, "productSetOperation": None, "userErrors": exc.errors}
    return {
        "product": product_view(store, product),
        "productSetOperation": None,
        "userErrors": [],
    }


def _product_set(store: Store, identifier: dict[str, Any], data: dict[str, Any]) -> dict:
    variants_in = data.get("variants")
    if variants_in is not None and len(variants_in) > GRAPHQL_MAX_VARIANTS:
        raise UserErrors(
            user_error(
                "GRAPHQL_INPUT_VARIANT_LIMIT",
                f"Input must contain at most {GRAPHQL_MAX_VARIANTS} variants.",
                "input",
                "variants",
            )
        )
    product = None
    if identifier.get("id"):
        product = _find(store, identifier["id"], "identifier", "id")
    elif identifier.get("handle"):
        product = store.product_by_handle(str(identifier["handle"]))
    handle = data.get("handle")
    if handle:
        holder = store.product_by_handle(str(handle))
        if holder is not None and holder is not product:
            raise UserErrors(
                user_error(
                    "HANDLE_NOT_UNIQUE",
                    f"Handle '{handle}' already in use. Please provide a new handle.",
                    "input",
                    "handle",
                )
            )
    if product is None:
        return _create(store, data, handle or identifier.get("handle"))
    _update(store, product, data)
    return product


def _create(store: Store, data: dict[str, Any], handle: str | None) -> dict[str, Any]:
    if not str(data.get("title") or "").strip():
        raise UserErrors(user_error("INVALID_PRODUCT", "Title can't be blank", "input", "title"))
    if data.get("variants") and not data.get("productOptions"):
        raise UserErrors(
            user_error(
                "PRODUCT_OPTIONS_INPUT_MISSING",
                "Product options input is required when updating variants.",
                "input",
                "productOptions",
            )
        )
    product_id = store.new_id()
    product: dict[str, Any] = {
        "id": product_id,
        "handle": store.unique_handle(str(handle or data["title"])),
        "title": data["title"],
        "body_html": data.get("descriptionHtml"),
        "status": str(data.get("status") or "ACTIVE").lower(),
        "options": [{"name": "Title"}],
        "created_at": now_text(),
        "updated_at": now_text(),
        "variants": [],
    }
    _replace_lists(store, product, data)
    if not product["variants"]:  # Shopify makes the standalone default variant
        variant = store._new_variant(product_id, {})
        product["variants"] = [variant]
        _stock_new(store, [variant])
    store.products[product_id] = product
    return product


def _update(store: Store, product: dict[str, Any], data: dict[str, Any]) -> None:
    for key, field in (("title", "title"), ("descriptionHtml", "body_html")):
        if key in data and data[key] is not None:
            product[field] = data[key]
    if data.get("status"):
        product["status"] = str(data["status"]).lower()
    if data.get("handle"):
        product["handle"] = data["handle"]
        store.catalogue_changed()
    _replace_lists(store, product, data)
    product["updated_at"] = now_text()


def _replace_lists(store: Store, product: dict[str, Any], data: dict[str, Any]) -> None:
    """``productOptions`` and ``variants`` replace the product's (list fields)."""
    if data.get("productOptions") is not None:
        names = [str(o.get("name")) for o in data["productOptions"]][:3]
        if len(data["productOptions"]) > 3:
            raise UserErrors(
                user_error("INVALID_INPUT", "Products can have at most 3 options.", "input")
            )
        product["options"] = [{"name": n} for n in names]
    if data.get("variants") is None:
        return
    by_id = {v["id"]: v for v in product["variants"]}
    kept: list[dict[str, Any]] = []
    seen: set[tuple[str, ...]] = set()
    for i, spec in enumerate(data["variants"]):
        path = ("input", "variants", str(i))
        values = _values(product, spec, *path)
        if tuple(values) in seen:
            raise UserErrors(
                user_error("INVALID_INPUT", f"The variant '{' / '.join(values)}' is given twice.")
            )
        seen.add(tuple(values))
        existing = (
            by_id.get(gid_of(spec["id"], "ProductVariant", *path, "id"))
            if spec.get("id")
            else next((v for v in product["variants"] if _current(product, v) == values), None)
        )
        variant = existing or store._new_variant(product["id"], {})
        _set_values(variant, values)
        _apply_variant_fields(variant, spec, *path)
        kept.append(variant)
    gone = [v for v in product["variants"] if all(v is not k for k in kept)]
    for v in gone:  # deleted with the product's list: their stock goes too
        for key in [k for k in store.inventory if k[0] == v["inventory_item_id"]]:
            del store.inventory[key]
    product["variants"] = kept
    store.catalogue_changed()
    _stock_new(store, kept)


def _current(product: dict[str, Any], variant: dict[str, Any]) -> list[str]:
    return [str(variant.get(f"option{i + 1}")) for i in range(len(option_names(product)))]


# --- bulk variants ----------------------------------------------------------------------------


def bulk_create(store: Store, product_id: Any, specs: list[dict], strategy: str) -> dict:
    try:
        product = _find(store, product_id, "productId")
        created = _bulk_create(store, product, specs, strategy)
    except UserErrors as exc:
        return {"product": None, "productVariants": None, "userErrors": exc.errors}
    return {
        "product": product_view(store, product),
        "productVariants": [variant_view(store, v, product) for v in created],
        "userErrors": [],
    }


def _bulk_create(
    store: Store, product: dict[str, Any], specs: list[dict], strategy: str
) -> list[dict[str, Any]]:
    existing = product["variants"]
    lone = existing[0] if len(existing) == 1 else None
    drop = lone is not None and (
        strategy == "REMOVE_STANDALONE_VARIANT"
        or (strategy == "DEFAULT" and variant_title(product, lone) == DEFAULT_TITLE)
    )
    kept = [] if drop else list(existing)
    if len(kept) + len(specs) > GRAPHQL_MAX_VARIANTS:
        raise UserErrors(
            user_error(
                "TOO_MANY_VARIANTS_CREATED",
                f"You can only have a maximum of {GRAPHQL_MAX_VARIANTS} variants per product",
                "variants",
            )
        )
    combos = {tuple(_current(product, v)) for v in kept}
    created = []
    for i, spec in enumerate(specs):
        path = ("variants", str(i))
        values = _values(product, spec, *path)
        if tuple(values) in combos:
            raise UserErrors(
                user_error(
                    "VARIANT_ALREADY_EXISTS",
                    f"The variant '{' / '.join(values)}' already exists.",
                    *path,
                )
            )
        combos.add(tuple(values))
        variant = store._new_variant(product["id"], {})
        _set_values(variant, values)
        _apply_variant_fields(variant, spec, *path)
        created.append(variant)
    if drop and lone is not None:
        for key in [k for k in store.inventory if k[0] == lone["inventory_item_id"]]:
            del store.inventory[key]
    product["variants"] = kept + created
    store.catalogue_changed()
    _stock_new(store, created)
    return created


def bulk_update(store: Store, product_id: Any, specs: list[dict]) -> dict:
    try:
        product = _find(store, product_id, "productId")
        updated = _bulk_update(product, specs)
    except UserErrors as exc:
        return {"product": None, "productVariants": None, "userErrors": exc.errors}
    finally:
        store.catalogue_changed()  # SKUs may have changed
    return {
        "product": product_view(store, product),
        "productVariants": [variant_view(store, v, product) for v in updated],
        "userErrors": [],
    }


def _bulk_update(product: dict[str, Any], specs: list[dict]) -> list[dict[str, Any]]:
    by_id = {v["id"]: v for v in product["variants"]}
    planned = []
    for i, spec in enumerate(specs):
        path = ("variants", str(i))
        if not spec.get("id"):
            raise UserErrors(
                user_error("PRODUCT_VARIANT_ID_MISSING", "Product variant is missing ID", *path)
            )
        variant = by_id.get(gid_of(spec["id"], "ProductVariant", *path, "id"))
        if variant is None:
            raise UserErrors(
                user_error(
                    "PRODUCT_VARIANT_DOES_NOT_EXIST",
                    "Product variant does not exist",
                    *path,
                    "id",
                )
            )
        planned.append((variant, spec, path))
    trial = [({**v}, spec, path) for v, spec, path in planned]
    for copy, spec, path in trial:  # validate everything before changing anything
        _apply_variant_fields(copy, spec, *path)
        if spec.get("optionValues"):
            _values(product, spec, *path)
    for variant, spec, path in planned:
        _apply_variant_fields(variant, spec, *path)
        if spec.get("optionValues"):
            _set_values(variant, _values(product, spec, *path))
    return [v for v, _s, _p in planned]


def admin_errors(exc: AdminError) -> list[dict[str, Any]]:
    """A REST-style refusal of the shared store as GraphQL ``userErrors``."""
    errors = exc.body.get("errors") if isinstance(exc.body, dict) else exc.body
    if isinstance(errors, dict):
        return [
            {"field": [str(field)], "message": "; ".join(str(m) for m in messages)}
            for field, messages in errors.items()
        ]
    return [{"field": None, "message": str(errors)}]
