"""Request bodies for the non-order outbound events: customers, returns, erasure.

Kept apart from ``connector.py`` (orders) so each body can be read and tested on its own.
Like the order bodies, amounts and quantities stay Decimal end to end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernel.canonical.customer import Customer, ErasureRequest
from kernel.canonical.returns import Return
from kernel.errors import PermanentError

ERASED = "Erased"
MAX_MEMO_LENGTH = 999


def _ref(internal_id: str) -> dict[str, str]:
    return {"id": internal_id}


# canonical Customer field → the NetSuite body fields it fills
_BODY_FIELDS: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "phone": ("phone",),
    "first_name": ("firstName",),
    "last_name": ("lastName",),
    "company": ("companyName",),
    "addresses": ("addressBook",),
    "tax_exemption_certificate": ("resaleNumber",),
}
_ALWAYS = ("externalId", "isPerson", "subsidiary")


def owned_fields_only(body: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    """Keep only what the sending system owns (rules.customers.field_owner), so a store's
    update never overwrites what the ERP is the record of truth for."""
    keep = set(_ALWAYS)
    for field, names in _BODY_FIELDS.items():
        if field in fields:
            keep.update(names)
    if "lastName" not in keep and "firstName" in keep:
        keep.add("lastName")  # NetSuite needs a last name next to a first name
    return {k: v for k, v in body.items() if k in keep}


def customer_record_body(
    customer: Customer,
    eid: str,
    subsidiary_id: str | None,
    address_body: Any,
) -> dict[str, Any]:
    """A store customer as NetSuite's customer record; addresses replace the address book.

    A customer with a company and no person's name is a company record (``isPerson``
    false); anyone else an individual, who needs a last name (the email stands in).
    """
    is_person = bool(customer.first_name or customer.last_name or not customer.company)
    body: dict[str, Any] = {
        "externalId": eid,
        "isPerson": is_person,
        "email": customer.email,
        "phone": customer.phone,
    }
    if is_person:
        body["firstName"] = customer.first_name
        body["lastName"] = customer.last_name or customer.email or "Customer"
        if customer.company:
            body["companyName"] = customer.company
    else:
        body["companyName"] = customer.company
    if subsidiary_id:
        body["subsidiary"] = _ref(subsidiary_id)
    if customer.tax_exemption_certificate:
        body["resaleNumber"] = customer.tax_exemption_certificate
    body["addressBook"] = {
        "items": [
            {
                "defaultBilling": customer.default_billing == i,
                "defaultShipping": customer.default_shipping == i,
                "addressBookAddress": address_body(address),
            }
            for i, address in enumerate(customer.addresses)
        ]
    }
    return {k: v for k, v in body.items() if v is not None and v != ""}


def erasure_body() -> dict[str, Any]:
    """What an erased customer keeps: a placeholder name, no contact data, inactive.

    ``addressBook`` with no lines, sent with ``replace=addressBook``, removes every address.
    """
    return {
        "firstName": ERASED,
        "lastName": ERASED,
        "companyName": ERASED,
        "email": "",
        "altEmail": "",
        "phone": "",
        "mobilePhone": "",
        "altPhone": "",
        "fax": "",
        "comments": "",
        "isInactive": True,
        "addressBook": {"items": []},
    }


def erasure_targets(request: ErasureRequest, external_id: Any, normalized: Any) -> list[str]:
    """External ids the gateway may have given this person: the store id and the guest key."""
    eids = []
    if request.customer_external_id:
        eids.append(external_id(f"{request.source}-{request.customer_external_id}"))
    if request.email and normalized(request.email):
        eids.append(external_id(f"{request.source}-guest-{normalized(request.email)}"))
    if not eids:
        raise PermanentError(
            f"erase request {request.entity_key} names neither a customer id nor an email; "
            "nothing in NetSuite can be matched to it"
        )
    return eids


def return_memo(ret: Return) -> str:
    parts = [f"{ret.source} return {ret.external_id}"]
    if ret.order_number:
        parts.append(f"order {ret.order_number}")
    reasons = [f"{line.sku}: {line.reason}" for line in ret.lines if line.reason]
    if reasons:
        parts.append("reasons: " + "; ".join(reasons))
    if ret.note:
        parts.append(f"note: {ret.note}")
    memo = ", ".join(parts)
    return memo if len(memo) <= MAX_MEMO_LENGTH else memo[: MAX_MEMO_LENGTH - 1] + "…"


def return_authorization_body(
    ret: Return,
    eid: str,
    item_ids: Mapping[str, str],
    reason_column: str | None,
    location_id: str | None,
) -> dict[str, Any]:
    """The body of ``POST salesOrder/{id}/!transform/returnAuthorization?replace=item``.

    The transform copies the customer, currency and addresses from the sales order and
    sets the RMA's ``createdfrom`` to it (Oracle, "Transforming Records": POST
    …/record/v1/<type>/<id>/!transform/<type>, a body may set fields and sublist lines;
    ``replace=item`` makes the body's lines the RMA's lines instead of all the order's).
    The external id makes the RMA findable again: the retry of an attempt whose answer was
    lost looks it up before transforming a second time.
    """
    lines = []
    for line in ret.lines:
        values: dict[str, Any] = {"item": _ref(item_ids[line.sku]), "quantity": line.quantity}
        if reason_column and line.reason:
            values[reason_column] = line.reason
        lines.append(values)
    body: dict[str, Any] = {
        "externalId": eid,
        "tranDate": ret.requested_at.date().isoformat(),
        "memo": return_memo(ret),
        "item": {"items": lines},
    }
    if location_id:
        body["location"] = _ref(location_id)
    return body


__all__ = [
    "customer_record_body",
    "erasure_body",
    "erasure_targets",
    "return_authorization_body",
    "return_memo",
]
