"""Who a customer is, in a form every system can compare: the duplicate rules.

The domain guide ("Customers → Duplicate detection": the same person in both systems with
slightly different data) asks for matching logic, not a comparison of raw strings. An ERP
connector uses this module to find an order's customer among the ERP's *own* customers
(one a sales rep typed in, never seen by the gateway), so the order is booked on that
customer instead of a new one:

- e-mail: trimmed and case-folded;
- phone: E.164 through libphonenumber (``phonenumbers``); a number written without its
  calling code takes the country of the customer's address, else the configured default
  country; without a country it is not compared (guessing would match strangers);
- name + postcode: the full name case-folded, accents and extra spaces dropped, and the
  postcode upper-cased without spaces.

The keys are tried strongest first (the order of ``rules.customers.match_on``): the first
kind that matches anyone decides. One ERP customer: the order is booked on it. Two or more:
the match is ambiguous and is never guessed (``Match.ambiguous``); what happens then is the
rule the core hands over (``customer_match.ambiguous``, see ``docs/flows.md``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import phonenumbers

from kernel.canonical.order import Order
from kernel.errors import NeedsMappingError
from kernel.types import DeliveryContext, Finding, MappingNeed

MatchKind = Literal["email", "phone", "name_postcode"]
MATCH_KINDS: tuple[MatchKind, ...] = ("email", "phone", "name_postcode")
Ambiguous = Literal["park", "oldest", "new"]
# the their-key of a ``customer`` mapping that means "none of the candidates: a new customer"
NEW_CUSTOMER = "new"


# --- normalisation ----------------------------------------------------------------------


def normalize_email(value: str | None) -> str | None:
    """Trimmed and case-folded; None when empty."""
    email = (value or "").strip().casefold()
    return email or None


def normalize_phone(value: str | None, country: str | None = None) -> str | None:
    """``+<E.164 digits>``, or None when it is no possible number (or has no country).

    ``country`` (ISO 3166 alpha-2) is used only for a number written without its calling
    code ("030 1234567"); "+49 …" and "0049 …" say theirs.
    """
    text = (value or "").strip()
    if not text:
        return None
    region = (country or "").strip().upper() or None
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def national_digits(e164: str) -> str:
    """The national significant number of an E.164 number ("+4930123456" → "30123456"):
    what every way of writing the number ends with, whatever its prefix."""
    return str(phonenumbers.parse(e164, None).national_number)


def normalize_name(value: str | None) -> str:
    """Case-folded, without accents, single-spaced: "  José  MÜLLER " → "jose muller"."""
    decomposed = unicodedata.normalize("NFKD", value or "")
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.casefold().split())


def full_name(first: str | None, last: str | None) -> str:
    return normalize_name(f"{first or ''} {last or ''}")


def normalize_postcode(value: str | None) -> str:
    """Upper case without whitespace: "sw1a 1aa" → "SW1A1AA"."""
    return "".join((value or "").upper().split())


# --- the two sides ----------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """What the store says about the person an order (or a customer record) belongs to."""

    email: str | None = None
    phones: tuple[str, ...] = ()  # E.164
    name: str = ""  # normalised full name
    last_name: str = ""  # normalised, for the ERP-side search
    postcodes: tuple[str, ...] = ()  # normalised

    @classmethod
    def of(
        cls,
        *,
        email: str | None,
        phones: Iterable[tuple[str | None, str | None]],
        first_name: str | None,
        last_name: str | None,
        postcodes: Iterable[str | None],
    ) -> Identity:
        """``phones``: (number, country of the address it came with, or the default)."""
        e164 = (normalize_phone(number, country) for number, country in phones)
        return cls(
            email=normalize_email(email),
            phones=tuple(dict.fromkeys(p for p in e164 if p)),
            name=full_name(first_name, last_name),
            last_name=normalize_name(last_name),
            postcodes=tuple(dict.fromkeys(p for p in map(normalize_postcode, postcodes) if p)),
        )

    def has(self, kind: str) -> bool:
        if kind == "email":
            return self.email is not None
        if kind == "phone":
            return bool(self.phones)
        return bool(self.name and self.postcodes)


@dataclass
class Candidate:
    """One ERP customer as the ERP's own search returned it."""

    id: str
    label: str = ""  # what people call it in the ERP (entity id, party name)
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)  # as stored, normalised when compared
    names: set[str] = field(default_factory=set)  # normalised full names
    postcodes: set[str] = field(default_factory=set)  # normalised
    country: str | None = None  # of its addresses, for phones stored without a code
    ours: bool = False  # the record the gateway itself made for this customer

    def add(self, **values: Any) -> None:
        """Fold in one more row of the same customer (one row per address or contact)."""
        if email := normalize_email(values.get("email")):
            self.emails.add(email)
        if phone := (values.get("phone") or "").strip():
            self.phones.add(phone)
        name = full_name(values.get("first_name"), values.get("last_name"))
        if name:
            self.names.add(name)
        if postcode := normalize_postcode(values.get("postcode")):
            self.postcodes.add(postcode)
        if not self.country and values.get("country"):
            self.country = str(values["country"]).upper()

    def matches(self, kind: str, who: Identity, default_country: str | None) -> bool:
        if kind == "email":
            return who.email is not None and who.email in self.emails
        if kind == "phone":
            country = self.country or default_country
            mine = {normalize_phone(p, country) for p in self.phones}
            return any(p in mine for p in who.phones)
        return who.name in self.names and any(p in self.postcodes for p in who.postcodes)


@dataclass(frozen=True)
class Match:
    """The outcome: nobody, exactly one ERP customer, or several (never guessed)."""

    kind: str | None  # the key that decided ("email", …); None: no match
    candidates: tuple[Candidate, ...] = ()

    @property
    def one(self) -> Candidate | None:
        return self.candidates[0] if len(self.candidates) == 1 else None

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1

    def describe(self) -> str:
        return ", ".join(f"{c.label or c.id} (id {c.id})" for c in self.candidates)


def match(
    who: Identity,
    candidates: Iterable[Candidate],
    match_on: Sequence[str],
    default_country: str | None = None,
) -> Match:
    """The ERP customers ``who`` is, by the first key (strongest first) that finds any."""
    pool = [c for c in candidates if not c.ours]
    for kind in match_on:
        if not who.has(kind):
            continue
        hits = [c for c in pool if c.matches(kind, who, default_country)]
        if hits:
            return Match(kind, tuple(sorted(hits, key=_id_order)))
    return Match(None)


def _id_order(candidate: Candidate) -> tuple[int, str]:
    """Oldest first: internal ids grow with creation in NetSuite and Tryton alike."""
    return (int(candidate.id), "") if candidate.id.isdigit() else (1 << 62, candidate.id)


def merge_rows(rows: Iterable[Mapping[str, Any]], ours: str | None = None) -> list[Candidate]:
    """Rows (one per customer and address) → one Candidate per customer id, in row order.

    Row keys: ``id``, ``label``, ``email``, ``phone``, ``first_name``, ``last_name``,
    ``postcode``, ``country``, ``external_id`` (``ours``: the external id the gateway gives
    this customer; a row carrying it is the gateway's own record).
    """
    out: dict[str, Candidate] = {}
    for row in rows:
        ident = str(row.get("id") or "")
        if not ident:
            continue
        candidate = out.setdefault(ident, Candidate(ident, str(row.get("label") or "")))
        candidate.add(**row)
        if ours is not None and row.get("external_id") == ours:
            candidate.ours = True
    return list(out.values())


def order_identity(order: Order, default_country: str | None) -> Identity:
    """The person behind an order: its customer's e-mail, phones (theirs and the addresses'),
    name (else the billing address's) and the addresses' postcodes."""
    c = order.customer
    addresses = [a for a in (order.billing_address, order.shipping_address) if a]
    country = next((a.country_code for a in addresses if a.country_code), None)
    country = country or default_country
    first = c.first_name or next((a.first_name for a in addresses if a.first_name), None)
    last = c.last_name or next((a.last_name for a in addresses if a.last_name), None)
    return Identity.of(
        email=c.email,
        phones=[(c.phone, country)] + [(a.phone, a.country_code or country) for a in addresses],
        first_name=first,
        last_name=last,
        postcodes=[a.postal_code for a in addresses],
    )


@dataclass(frozen=True)
class Booking:
    """Which ERP customer an order goes on: ``customer_id`` (an existing one), or None for
    the gateway's own record (found or created by its external id); with a finding."""

    customer_id: str | None
    finding: Finding | None = None


def decide(
    found: Match, ambiguous: str, customer_key: str, what: str, ctx: DeliveryContext
) -> Booking:
    """What to do with a match: book on the one customer; for several, the operator's
    ``customer`` mapping, else the rule ``ambiguous`` (park | oldest | new).

    ``what`` names the order for people ("order #1001"). Parking raises NeedsMappingError on
    ``customer`` <customer_key>, naming every candidate: the operator maps the key to one of
    their ids (or to ``new``) and the delivery goes out by itself.
    """
    chosen = ctx.mappings.get("customer", {}).get(customer_key)
    if chosen is not None:
        return Booking(None if chosen.strip().lower() == NEW_CUSTOMER else chosen.strip())
    one = found.one
    if one is not None:
        return Booking(
            one.id,
            Finding(
                "customer_matched",
                f"{what} is booked on the existing ERP customer {one.label or one.id} "
                f"(id {one.id}), matched on {found.kind}, instead of a new one",
                {"customer": customer_key, "remote_id": one.id, "match": found.kind},
            ),
        )
    if not found.ambiguous:
        return Booking(None)
    data = {
        "customer": customer_key,
        "match": found.kind,
        "candidates": [c.id for c in found.candidates],
    }
    if ambiguous == "oldest":
        oldest = found.candidates[0]
        return Booking(
            oldest.id,
            Finding(
                "customer_ambiguous",
                f"{what}: {len(found.candidates)} ERP customers match on {found.kind} "
                f"({found.describe()}); booked on the oldest, {oldest.id} "
                "(rules.customers.ambiguous_match: oldest)",
                data,
            ),
        )
    if ambiguous == "new":
        return Booking(
            None,
            Finding(
                "customer_ambiguous",
                f"{what}: {len(found.candidates)} ERP customers match on {found.kind} "
                f"({found.describe()}); a customer of its own is used instead "
                "(rules.customers.ambiguous_match: new)",
                data,
            ),
        )
    raise NeedsMappingError(
        [MappingNeed("customer", customer_key)],
        message=(
            f"{what}: {len(found.candidates)} ERP customers match {customer_key} on "
            f"{found.kind}: {found.describe()}. Not guessed: map the customer to the right one "
            f'(PUT /api/v1/mappings/customer/<connection> {{"{customer_key}": "<id>"}}, '
            f'or "{NEW_CUSTOMER}" for a customer of its own) and the order goes out by itself'
        ),
    )


def directive(value: Any) -> tuple[list[str], str | None, str] | None:
    """The ``customer_match`` directive as (match_on, default_country, ambiguous), or None
    when the core asked for no matching (a guest, a shared account, ``match_on: []``)."""
    if not isinstance(value, Mapping):
        return None
    on = [k for k in value.get("on") or () if k in MATCH_KINDS]
    if not on:
        return None
    ambiguous = str(value.get("ambiguous") or "park")
    country = value.get("default_country")
    return on, (str(country) if country else None), ambiguous


__all__ = [
    "MATCH_KINDS",
    "NEW_CUSTOMER",
    "Booking",
    "Candidate",
    "Identity",
    "Match",
    "decide",
    "directive",
    "full_name",
    "match",
    "merge_rows",
    "national_digits",
    "normalize_email",
    "normalize_name",
    "normalize_phone",
    "normalize_postcode",
    "order_identity",
]
