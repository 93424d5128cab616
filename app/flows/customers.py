"""Business rules of the customers flow: field ownership, duplicate matching, erasure.

Matching works on normalized keys ("email:…", "phone:…", "name_postcode:…") so that the
same person typed slightly differently in two systems is found, not created twice.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote_plus

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.canonical.customer import Customer, ErasureRequest

Side = Literal["store", "erp"]
MatchOn = Literal["email", "phone", "name_postcode"]

# identity travels with every view; it is nobody's to overwrite
IDENTITY_FIELDS: frozenset[str] = frozenset({"source", "external_id", "updated_at"})
# default_billing/default_shipping index into addresses, so they go wherever addresses go
_ADDRESS_INDEX_FIELDS = ("default_billing", "default_shipping")
OWNABLE_FIELDS: frozenset[str] = frozenset(
    set(Customer.model_fields) - IDENTITY_FIELDS - {"schema_version", *_ADDRESS_INDEX_FIELDS}
)

ERASED = "[erased]"
MIN_NEEDLE = 4  # shorter needles would erase unrelated text ("jo", "12")


def _default_owners() -> dict[str, Side]:
    # B2C: people register in the store; commercial terms are set in the ERP
    store: dict[str, Side] = {
        f: "store"
        for f in (
            "email",
            "first_name",
            "last_name",
            "phone",
            "addresses",
            "accepts_marketing",
            "company",
        )
    }
    erp: dict[str, Side] = {
        f: "erp"
        for f in ("group", "terms", "credit_limit", "tax_exempt", "tax_exemption_certificate")
    }
    return {**store, **erp}


def _default_match_on() -> list[MatchOn]:
    return ["email", "phone", "name_postcode"]


class CustomerRules(BaseModel):
    """``rules.customers`` in the config file; editable at run time through the API."""

    model_config = ConfigDict(extra="forbid")

    field_owner: dict[str, Side] = Field(
        default_factory=_default_owners,
        description="Record of truth per customer field: only the owning system's changes "
        "are written to the other one. A field not listed is owned by nobody and never "
        "synced. The default suits B2C; for B2B give the ERP the contact fields too.",
    )
    match_on: list[MatchOn] = Field(
        default_factory=_default_match_on,
        description="Keys that identify the same person across systems, strongest first; "
        "a customer matching an existing one on any of them is a duplicate, not a new one.",
    )
    default_country_code: str | None = Field(
        default=None,
        description="ISO country (e.g. DE) whose calling code is added to phone numbers "
        "written without one, when the customer's address does not say the country.",
    )

    @field_validator("field_owner")
    @classmethod
    def _known_fields(cls, value: dict[str, Side]) -> dict[str, Side]:
        unknown = sorted(set(value) - OWNABLE_FIELDS)
        if unknown:
            raise ValueError(
                f"unknown customer field(s) {', '.join(unknown)}; "
                f"ownable fields: {', '.join(sorted(OWNABLE_FIELDS))}"
            )
        return value

    @field_validator("default_country_code")
    @classmethod
    def _iso_country(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = value.strip().upper()
        if code not in CALLING_CODES:
            raise ValueError(
                f"no calling code known for country {value!r}; "
                f"known: {', '.join(sorted(CALLING_CODES))}"
            )
        return code


# --- normalization ------------------------------------------------------------------------

# ISO country → calling code, for the countries our shops sell to most
CALLING_CODES: dict[str, str] = {
    "US": "1",
    "CA": "1",
    "GB": "44",
    "IE": "353",
    "DE": "49",
    "AT": "43",
    "CH": "41",
    "FR": "33",
    "BE": "32",
    "NL": "31",
    "LU": "352",
    "ES": "34",
    "PT": "351",
    "IT": "39",
    "PL": "48",
    "CZ": "420",
    "DK": "45",
    "SE": "46",
    "NO": "47",
    "FI": "358",
    "AU": "61",
    "NZ": "64",
}
# Italy keeps the leading 0 of its area codes after the country code
_KEEPS_TRUNK_ZERO = frozenset({"IT"})
_EXTENSION = re.compile(r"(?i)\s*(?:ext\.?|extension|x|#)\s*\d+\s*$")
MIN_PHONE_DIGITS = 7  # country code included; fewer cannot be a reachable number
MAX_PHONE_DIGITS = 15  # E.164 limit


def normalize_email(value: str | None) -> str | None:
    """Trimmed and lower-cased; None when empty."""
    if value is None:
        return None
    email = value.strip().lower()
    return email or None


def normalize_phone(value: str | None, default_country_code: str | None = None) -> str | None:
    """E.164-like "+<digits>", or None when it cannot be made one.

    "00" is the international prefix; a national number ("030 123456") gets the calling
    code of ``default_country_code`` with its trunk 0 dropped. Without a known country a
    national number is None: guessing would match strangers.
    """
    if value is None:
        return None
    text = _EXTENSION.sub("", value.strip())
    international = text.startswith("+")
    # "+49 (0)30 …": the bracketed trunk zero is not dialled from abroad
    text = text.replace("(0)", "")
    digits = re.sub(r"\D", "", text)
    if not international and digits.startswith("00"):
        international, digits = True, digits[2:]
    if not international:
        country = (default_country_code or "").strip().upper()
        calling = CALLING_CODES.get(country)
        if calling is None:
            return None
        if calling == "1" and len(digits) == 11 and digits.startswith("1"):
            digits = digits[1:]  # NANP numbers are often written with the leading 1
        elif country not in _KEEPS_TRUNK_ZERO:
            digits = digits.lstrip("0")
        digits = calling + digits
    if not MIN_PHONE_DIGITS <= len(digits) <= MAX_PHONE_DIGITS:
        return None
    return "+" + digits


def normalize_name(value: str | None) -> str:
    """Case-folded, without accents, single-spaced: "  José  MÜLLER " → "jose muller"."""
    if not value:
        return ""
    decomposed = unicodedata.normalize("NFKD", value)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.casefold().split())


def normalize_postcode(value: str | None) -> str:
    """Upper case without whitespace: "sw1a 1aa" → "SW1A1AA"."""
    if not value:
        return ""
    return "".join(value.upper().split())


# --- duplicate matching -------------------------------------------------------------------


def _full_name(first: str | None, last: str | None) -> str:
    return normalize_name(f"{first or ''} {last or ''}")


def _customer_country(customer: Customer) -> str | None:
    """The country of the customer's billing address, else of any address."""
    indexes = [i for i in (customer.default_billing,) if i is not None]
    indexes += list(range(len(customer.addresses)))
    for i in indexes:
        if 0 <= i < len(customer.addresses) and customer.addresses[i].country_code:
            return customer.addresses[i].country_code
    return None


def match_keys(customer: Customer, rules: CustomerRules) -> list[str]:
    """Normalized identity keys of a customer, grouped in the order of ``rules.match_on``.

    A phone written without a calling code takes the country of its address, else the
    customer's address country, else ``rules.default_country_code``.
    """
    keys: dict[str, None] = {}  # ordered set
    country = _customer_country(customer) or rules.default_country_code
    for kind in rules.match_on:
        if kind == "email":
            email = normalize_email(customer.email)
            if email:
                keys.setdefault(f"email:{email}", None)
        elif kind == "phone":
            phones = [normalize_phone(customer.phone, country)]
            phones += [
                normalize_phone(a.phone, a.country_code or country) for a in customer.addresses
            ]
            for phone in phones:
                if phone:
                    keys.setdefault(f"phone:{phone}", None)
        elif kind == "name_postcode":
            name = _full_name(customer.first_name, customer.last_name)
            if not name:
                continue
            for address in customer.addresses:
                postcode = normalize_postcode(address.postal_code)
                if postcode:
                    keys.setdefault(f"name_postcode:{name}|{postcode}", None)
    return list(keys)


def find_duplicate(
    keys: list[str], index: Mapping[str, str], *, exclude: str | None = None
) -> tuple[str, str] | None:
    """The first key found in ``index`` (match key → customer key) and whose it is.

    ``keys`` come from :func:`match_keys`, strongest first, so an e-mail match wins over a
    phone match. ``exclude`` skips the customer's own entries when it is already indexed.
    """
    for key in keys:
        owner = index.get(key)
        if owner is not None and owner != exclude:
            return key, owner
    return None


# --- field ownership ----------------------------------------------------------------------


def writable_fields(source_side: Side, rules: CustomerRules) -> frozenset[str]:
    """Fields that ``source_side`` owns and therefore may write to the other system."""
    owned = {name for name, owner in rules.field_owner.items() if owner == source_side}
    if "addresses" in owned:
        owned.update(_ADDRESS_INDEX_FIELDS)
    return frozenset(owned)


def owned_view(customer: Customer, source_side: Side, rules: CustomerRules) -> dict[str, Any]:
    """The customer as JSON with only what ``source_side`` owns, plus its identity."""
    include = set(writable_fields(source_side, rules) | IDENTITY_FIELDS)
    return customer.model_dump(mode="json", include=include)


# --- erasure (GDPR/CCPA) ------------------------------------------------------------------


def erasure_needles(
    request: ErasureRequest,
    known: list[Customer],
    default_country_code: str | None = None,
) -> set[str]:
    """Strings whose presence marks a value as the data subject's personal data.

    The request's e-mail and phone (as written and normalized) plus, from the known
    records of that person, their e-mails, phones, full names and street lines.
    """
    candidates: list[str | None] = []

    def add_email(email: str | None) -> None:
        candidates.extend([(email or "").strip(), normalize_email(email)])

    def add_phone(phone: str | None, country: str | None) -> None:
        candidates.extend([(phone or "").strip(), normalize_phone(phone, country)])

    add_email(request.email)
    add_phone(request.phone, default_country_code)
    for customer in known:
        add_email(customer.email)
        add_phone(customer.phone, _customer_country(customer) or default_country_code)
        candidates.append(
            " ".join(f"{customer.first_name or ''} {customer.last_name or ''}".split())
        )
        for address in customer.addresses:
            candidates.append((address.line1 or "").strip())
            add_phone(address.phone, address.country_code or default_country_code)
    return {c for c in candidates if c and len(c) >= MIN_NEEDLE}


def _contains(text: str, folded_needles: list[str]) -> bool:
    folded = text.casefold()
    return any(n in folded for n in folded_needles)


def _scrub(value: Any, needles: list[str]) -> tuple[Any, int]:
    if isinstance(value, str):
        return (ERASED, 1) if _contains(value, needles) else (value, 0)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        count = 0
        for key, item in value.items():
            new_item, n = _scrub(item, needles)
            count += n
            if isinstance(key, str) and _contains(key, needles):
                # keys can be personal too (an index by e-mail); keep them distinct
                key, suffix = ERASED, 2
                while key in out or key in value:
                    key, suffix = f"{ERASED}#{suffix}", suffix + 1
                count += 1
            out[key] = new_item
        return out, count
    if isinstance(value, list | tuple):
        items = [_scrub(item, needles) for item in value]
        return [item for item, _ in items], sum(n for _, n in items)
    return value, 0


def scrub(value: Any, needles: set[str]) -> tuple[Any, int]:
    """``value`` with every string that contains a needle (any case) replaced by "[erased]".

    Walks dicts (keys and values), lists and tuples; returns the copy and how many strings
    were replaced. Whole strings go, not just the needle: "Jane Doe <jane@x.org>" leaks
    the name if only the address is cut out.
    """
    folded = [n.casefold() for n in needles if n]
    if not folded:
        return value, 0
    return _scrub(value, folded)


def scrub_bytes(body: bytes, needles: set[str]) -> tuple[bytes, int]:
    """A raw webhook body without the needles.

    JSON is parsed, scrubbed like :func:`scrub` and serialized again (only when something
    was erased, so untouched bodies keep their exact bytes). Anything else gets a
    case-insensitive replacement of each needle, also in its URL-encoded form.
    """
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        parsed = _NOT_JSON
    if parsed is not _NOT_JSON:
        cleaned, count = scrub(parsed, needles)
        if count == 0:
            return body, 0
        return json.dumps(cleaned, ensure_ascii=False).encode("utf-8"), count

    patterns: set[str] = set()
    for needle in needles:
        if needle:
            patterns.update({needle, quote_plus(needle)})
    count = 0
    # longest first, so "jane@example.com" goes before an overlapping shorter needle
    for needle in sorted(patterns, key=len, reverse=True):
        pattern = re.compile(re.escape(needle.encode("utf-8")), re.IGNORECASE)
        body, n = pattern.subn(ERASED.encode(), body)
        count += n
    return body, count


_NOT_JSON = object()
