"""Business rules of the customers flow: field ownership, duplicate matching, erasure.

Matching works on normalized keys ("email:…", "phone:…", "name_postcode:…") so that the
same person typed slightly differently in two systems is found, not created twice.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kernel.canonical.customer import Customer

Side = Literal["store", "erp"]
MatchOn = Literal["email", "phone", "name_postcode"]

# identity travels with every view; it is nobody's to overwrite
IDENTITY_FIELDS: frozenset[str] = frozenset({"source", "external_id", "updated_at"})
# default_billing/default_shipping index into addresses, so they go wherever addresses go
_ADDRESS_INDEX_FIELDS = ("default_billing", "default_shipping")
OWNABLE_FIELDS: frozenset[str] = frozenset(
    set(Customer.model_fields) - IDENTITY_FIELDS - {"schema_version", *_ADDRESS_INDEX_FIELDS}
)


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
    ambiguous_match: Literal["park", "oldest", "new"] = Field(
        default="park",
        description="An order whose customer matches several of the ERP's own customers (by "
        "match_on): park waits for an operator to map the customer to one of them (the "
        "candidates are named; 'new' for a customer of its own); oldest books it on the "
        "oldest candidate; new on a customer of its own. Either way a finding says so.",
    )
    erase_linked_erp_records: bool = Field(
        default=True,
        description="An erase request also scrubs the gateway's copies of the ERP-side "
        "records linked to the person's customer (entity links, duplicate matches) and the "
        "ERP's records about their orders (shipments, credit memos). False: only what the "
        "requesting connection sent.",
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
    return [_fitting(key) for key in keys]


MATCH_KEY_MAX = 256  # the customer_matches column


def _fitting(key: str) -> str:
    """A key as stored: a long one (normalisation can lengthen a name) by its hash, so two
    long keys that share a prefix never match by accident."""
    if len(key) <= MATCH_KEY_MAX:
        return key
    kind = key.split(":", 1)[0]
    return f"{kind}:sha256:{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()}"


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
# The erasure itself (finding the person, scrubbing) is app/erasure/; the rules it follows:
# ``CustomerRules.erase_linked_erp_records`` and the normalization above (whole values only).


def erasure_email(value: str | None) -> str | None:
    """The e-mail as erasure compares it: the whole address, trimmed and lower-cased."""
    return normalize_email(value)


def erasure_phones(value: str | None, country: str | None) -> set[str]:
    """The forms a phone number is compared in: "+<E.164 digits>" when the country is known
    (from the number, its address or ``default_country_code``), else its bare digits."""
    if not value:
        return set()
    e164 = normalize_phone(value, country)
    if e164 is not None:
        return {e164}
    digits = re.sub(r"\D", "", value)
    return {digits} if len(digits) >= MIN_PHONE_DIGITS else set()


def erasure_request_phones(value: str | None, default_country_code: str | None) -> set[str]:
    """Every form a request's phone may have been stored in.

    A number written with its calling code has one form. Without one, the request does not
    say the country: with ``default_country_code`` set that country's form is used, else the
    forms for every known calling code (each compared whole, so this never matches a
    substring) plus the bare digits.
    """
    if not value:
        return set()
    forms = erasure_phones(value, None)
    if forms and next(iter(forms)).startswith("+"):
        return forms
    countries = [default_country_code] if default_country_code else list(CALLING_CODES)
    for country in countries:
        forms |= erasure_phones(value, country)
    digits = re.sub(r"\D", "", value)
    if len(digits) >= MIN_PHONE_DIGITS:
        forms.add(digits)
    return forms
