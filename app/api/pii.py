"""What the operator API shows of personal data and of stored signatures.

Two rules, one place:

- **Signatures are never shown.** A stored webhook's signature header (``x-shopify-hmac-sha256``,
  ``x-gateway-signature``, ``webhook-signature``, any header whose name contains ``signature``
  or ``hmac``) is replay material: whoever has it can re-send the webhook. No role sees it,
  even in rows stored before the gateway stopped keeping them.
- **Personal data is masked for viewers.** Operators and ``pii-reader`` keys see it as
  stored; ``viewer`` keys get every document the gateway stored from other systems (canonical
  payloads, raw webhook bodies, the HTTP exchanges of delivery attempts, their headers) with
  personal values masked, and e-mail addresses masked wherever they appear (entity keys of
  guests, error messages). Ids, SKUs, amounts, statuses and order numbers stay.

Masking is by key name (``email``, ``phone``, ``first_name``, ``address1``, ``zip``,
``company``, ``browser_ip``…, case and ``_``/``-`` ignored; ``name`` only inside an address
or customer object, so an order's ``name`` "#1001" and a line item's name stay) plus a value
pattern for e-mail addresses anywhere. E-mails keep their first character and domain
(``j***@example.com``), phones their last two digits (``***67``), everything else becomes
``***``. A raw body is masked after JSON parsing; a body that is not JSON is replaced by a
notice (JSON cut at the log's length limit is masked field by field instead). Walks use an
explicit stack, never recursion, so a hostile 10 000-deep document cannot crash a read.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

MASK = "***"
NOT_JSON_NOTICE = (
    "[not shown: the body is not JSON, so personal data in it cannot be masked; "
    "a pii-reader or operator key shows it]"
)

_SIGNATURE_MARKERS = ("signature", "hmac")

EMAIL_KEYS = frozenset(
    {"email", "contactemail", "customeremail", "emailaddress", "altemail", "billingemail"}
)
PHONE_KEYS = frozenset(
    {
        "phone",
        "phonenumber",
        "telephone",
        "mobile",
        "mobilephone",
        "homephone",
        "altphone",
        "addrphone",
        "fax",
    }
)
OTHER_PERSONAL_KEYS = frozenset(
    {
        # names
        "firstname",
        "lastname",
        "middlename",
        "fullname",
        "altname",
        "contactname",
        "customername",
        "addressee",
        "attention",
        # street, postal code, city
        "address",
        "address1",
        "address2",
        "address3",
        "addr1",
        "addr2",
        "addr3",
        "line1",
        "line2",
        "line3",
        "street",
        "street1",
        "street2",
        "streetaddress",
        "addrtext",
        "shipaddress",
        "billaddress",
        "zip",
        "zipcode",
        "postalcode",
        "postcode",
        "city",
        "latitude",
        "longitude",
        # company
        "company",
        "companyname",
        # free text a customer writes
        "note",
        "notes",
        "comments",
        # network
        "ip",
        "browserip",
        "clientip",
        "customerip",
        "remoteip",
        "ipaddress",
        "xforwardedfor",
        "xrealip",
        "forwarded",
        "cfconnectingip",
        "trueclientip",
        "xclientip",
        "xoriginatingip",
    }
)
PERSONAL_KEYS = EMAIL_KEYS | PHONE_KEYS | OTHER_PERSONAL_KEYS
# Whose whole content is about the person: masked as a whole.
PERSONAL_SUBTREES = frozenset({"clientdetails", "noteattributes", "customattributes"})
# ``name`` is a person's or a company's under these keys (an address, a customer) …
_PERSON_CONTEXTS = frozenset(
    {
        "customer",
        "customers",
        "contact",
        "contacts",
        "billing",
        "shipping",
        "billto",
        "shipto",
        "soldto",
        "recipient",
        "buyer",
        "person",
        "company",
        "destination",
        "origin",
    }
)
# … or next to these keys (an address or a person written without a telling parent key)
# (not ``email``: an order has one, and its ``name`` is its number)
_PERSON_SIBLINGS = frozenset(
    {"firstname", "lastname", "address1", "line1", "zip", "postalcode", "addressee"}
)

# An address as people write them; it starts after a character that cannot be in one, or
# after a URL-encoded one (``?q=email%20IS%20jane@example.com``); ``%40`` is an encoded @.
_EMAIL = re.compile(
    r"(?:(?<=%[0-9A-Fa-f]{2})|(?<![A-Za-z0-9._+%-]))"
    r"(?P<first>[A-Za-z0-9_+-])[A-Za-z0-9._+-]*"
    r"(?P<at>@|%40)(?P<domain>[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+)"
)
# a JSON text field (in a body cut short, which no longer parses): "key": "value" or number
_JSON_FIELD = re.compile(
    r'"(?P<key>[A-Za-z_][\w-]{0,63})"\s*:\s*'
    r'(?:"(?P<text>(?:[^"\\]|\\.)*)"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?))'
)

M = TypeVar("M", bound=BaseModel)


def norm_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


# --- signatures -----------------------------------------------------------------------------


def is_signature_header(name: str) -> bool:
    lowered = name.lower()
    return any(marker in lowered for marker in _SIGNATURE_MARKERS)


def without_signatures(headers: Mapping[str, Any]) -> dict[str, Any]:
    """The headers minus every signature (for every role)."""
    return {k: v for k, v in headers.items() if not is_signature_header(str(k))}


def exchanges_without_signatures(exchanges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Delivery attempts' HTTP exchanges with the signature headers of each side removed."""
    out: list[dict[str, Any]] = []
    for exchange in exchanges:
        if not isinstance(exchange, dict):
            out.append(exchange)
            continue
        cleaned = dict(exchange)
        for side in ("request", "response"):
            part = cleaned.get(side)
            if isinstance(part, dict) and isinstance(part.get("headers"), dict):
                cleaned[side] = {**part, "headers": without_signatures(part["headers"])}
        out.append(cleaned)
    return out


# --- values ---------------------------------------------------------------------------------


def mask_emails(text: str) -> str:
    """Every e-mail address in ``text`` (also URL-encoded) as ``j***@example.com``."""
    if "@" not in text and "%40" not in text:
        return text
    return _EMAIL.sub(lambda m: f"{m['first']}{MASK}{m['at']}{m['domain']}", text)


def mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return MASK + digits[-2:] if len(digits) > 4 else MASK


def mask_value(nkey: str, value: Any) -> Any:
    """A personal field's value, masked; empty values and booleans stay as they are."""
    if value is None or isinstance(value, bool) or value == "":
        return value
    if isinstance(value, str):
        if nkey in EMAIL_KEYS:
            masked = mask_emails(value)
            return masked if masked != value else MASK
        if nkey in PHONE_KEYS:
            return mask_phone(value)
    if isinstance(value, int | float):
        return mask_phone(str(value)) if nkey in PHONE_KEYS else MASK
    return MASK


def _is_personal(nkey: str, person_context: bool) -> bool:
    return nkey in PERSONAL_KEYS or (nkey == "name" and person_context)


def _context_of(nkey: str | None) -> bool:
    if nkey is None:
        return False
    return nkey in _PERSON_CONTEXTS or nkey.endswith(("address", "addresses"))


# --- documents ------------------------------------------------------------------------------


def mask_document(doc: Any) -> Any:
    """A JSON document from another system (a payload, a body, an exchange) with personal
    data masked; a new value, the input is left alone. Strings under a ``body`` key are
    parsed as JSON and masked inside."""
    if isinstance(doc, str):
        return mask_emails(doc)
    if not isinstance(doc, dict | list):
        return doc
    root: Any = _shallow_copy(doc)
    # (container already copied, the normalized key it sits under, inside a person object)
    stack: list[tuple[dict[str, Any] | list[Any], str | None, bool]] = [(root, None, False)]
    while stack:
        node, under, person_parent = stack.pop()
        if isinstance(node, dict):
            keys = {norm_key(k) for k in node if isinstance(k, str)}
            person = person_parent or _context_of(under) or bool(keys & _PERSON_SIBLINGS)
            for key, value in list(node.items()):
                nkey = norm_key(key) if isinstance(key, str) else ""
                node[key] = _masked_item(nkey, value, person, stack)
        else:
            for index, value in enumerate(node):
                node[index] = _masked_item(under or "", value, person_parent, stack, in_list=True)
    return root


def _masked_item(
    nkey: str,
    value: Any,
    person: bool,
    stack: list[tuple[dict[str, Any] | list[Any], str | None, bool]],
    *,
    in_list: bool = False,
) -> Any:
    if nkey in PERSONAL_SUBTREES and value not in (None, "", [], {}):
        return MASK
    personal = _is_personal(nkey, person)
    if isinstance(value, dict | list):
        copied = _shallow_copy(value)
        # an address written as an object under a personal key: everything in it is
        inside = personal or (person and isinstance(value, list))
        stack.append((copied, nkey or None, inside))
        return copied
    if personal:
        return mask_value(nkey, value)
    if isinstance(value, str):
        if nkey == "body" and not in_list:
            return mask_body_text(value)
        return mask_emails(value)
    return value


def _shallow_copy(value: dict[str, Any] | list[Any]) -> Any:
    return dict(value) if isinstance(value, dict) else list(value)


def mask_body_text(text: str) -> str:
    """A body kept as text (an exchange's request or response): JSON is masked and written
    again; JSON cut at the log's length limit is masked field by field; anything else is
    replaced by a notice (form fields, XML: no telling what is personal)."""
    stripped = text.lstrip()
    if not stripped:
        return text
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        parsed = _NOT_JSON
    if isinstance(parsed, dict | list):
        masked = _dumps(mask_document(parsed))
        return masked if masked is not None else NOT_JSON_NOTICE
    if parsed is not _NOT_JSON:  # a bare JSON string, number, true/false/null
        return mask_emails(text)
    if stripped[0] in "{[":
        return _mask_json_text(text)
    return NOT_JSON_NOTICE


def _mask_json_text(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        nkey = norm_key(match["key"])
        # without the structure, a ``name`` may be a person's: masked to be safe
        if nkey in PERSONAL_KEYS or nkey == "name" or nkey in PERSONAL_SUBTREES:
            if match["text"] is not None:
                value = mask_value(nkey, match["text"]) if match["text"] else ""
                return f'"{match["key"]}": "{value}"'
            return f'"{match["key"]}": "{mask_value(nkey, float(match["number"]))}"'
        return match.group(0)

    return mask_emails(_JSON_FIELD.sub(replace, text))


def mask_raw_body(body: bytes) -> str:
    """A raw webhook body for a viewer: JSON masked (and written again), else a notice."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return NOT_JSON_NOTICE
    if not isinstance(parsed, dict | list):
        return mask_emails(json.dumps(parsed, ensure_ascii=False))
    return _dumps(mask_document(parsed)) or NOT_JSON_NOTICE


def mask_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """Headers for a viewer: no signatures, client IPs masked, e-mails masked."""
    out: dict[str, Any] = {}
    for name, value in without_signatures(headers).items():
        nkey = norm_key(str(name))
        if nkey in PERSONAL_KEYS:
            out[name] = mask_value(nkey, value)
        elif isinstance(value, str):
            out[name] = mask_emails(value)
        else:
            out[name] = value
    return out


def _dumps(doc: Any) -> str | None:
    try:
        return json.dumps(doc, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        return None


_NOT_JSON = object()


# --- response models --------------------------------------------------------------------------

# Fields of the API's own shapes that hold documents from other systems.
_DOCUMENT_FIELDS = frozenset({"payload", "exchanges", "data", "directives"})


def mask_response(model: M) -> M:
    """An API response for a viewer: the documents it carries masked, e-mails masked in
    every other string (entity keys of guests, error messages); the shape stays valid."""
    data = model.model_dump(mode="json")
    stack: list[dict[str, Any] | list[Any]] = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "body" in node and "body_encoding" in node and "headers" in node:
                _mask_inbound(node)
            for key, value in list(node.items()):
                if key in _DOCUMENT_FIELDS and isinstance(value, dict | list):
                    node[key] = mask_document(value)
                elif key == "headers" and isinstance(value, dict):
                    node[key] = mask_headers(value)
                elif isinstance(value, str):
                    node[key] = mask_emails(value)
                elif isinstance(value, dict | list):
                    stack.append(value)
        else:
            for index, value in enumerate(node):
                if isinstance(value, str):
                    node[index] = mask_emails(value)
                elif isinstance(value, dict | list):
                    stack.append(value)
    return type(model).model_validate(data)


def _mask_inbound(node: dict[str, Any]) -> None:
    """An inbound event's raw body (utf-8 text or base64) → masked text (its headers are
    masked by the caller's walk)."""
    body = node.get("body")
    if not isinstance(body, str):
        return
    if node.get("body_encoding") == "base64":
        try:
            raw = base64.b64decode(body, validate=True)
        except ValueError:
            raw = b""
        node["body"] = mask_raw_body(raw) if raw else NOT_JSON_NOTICE
    else:
        node["body"] = mask_raw_body(body.encode("utf-8"))
    node["body_encoding"] = "utf-8"
