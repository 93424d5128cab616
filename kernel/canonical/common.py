"""Shared building blocks of canonical entities: bounded numbers, text, money and addresses.

Everything a connector parses lands in these models, and everything in them ends up in a
database column or an outbound request, so they refuse what no column or ERP can hold:

- numbers are finite Decimals within bounds and with a limited number of decimal places
  (:data:`Amount` for money, :data:`Quantity` for quantities that cannot be negative,
  :data:`SignedQuantity` for stock levels, :data:`Rate` for tax and exchange rates); the
  bounds fit the NUMERIC(18,4) and NUMERIC(18,6) columns the values are stored in;
- every string is free of NUL characters (Postgres refuses them in text and jsonb) and of
  lone surrogates (they cannot be encoded as UTF-8), and has a maximum length: ids fit the
  varchar(256) entity-key columns once prefixed with ``<source>:<type>:``, SKUs the
  varchar(128) SKU columns, names, titles and notes a sane size;
- date-times carry a time zone (the columns are UTC) and lie in a sane range.

Each check raises ValueError with a short message that never echoes the offending value in
full, so a connector can turn a pydantic ValidationError into a 422 that names the field
(see :mod:`kernel.canonical.validation`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

# --- numbers ----------------------------------------------------------------------------

MAX_AMOUNT = Decimal(10) ** 12  # exclusive: NUMERIC(18,6) keeps 12 digits before the point
MAX_QUANTITY = Decimal(10) ** 9  # inclusive: no order line, shipment or stock level is larger
MAX_SELLABLE = Decimal(10) ** 12  # exclusive: a sum of stock levels over many locations
MAX_RATE = Decimal(10) ** 9  # exclusive: tax rates and exchange rates (VND per USD fits)
MONEY_PLACES = 6  # NUMERIC(18,6) price columns; the rounding rules allow up to 6 places
QUANTITY_PLACES = 6
RATE_PLACES = 12


@dataclass(frozen=True)
class DecimalRule:
    """Bounds and precision of one kind of number."""

    what: str  # "amount", "quantity", … (used in messages)
    low: Decimal | None
    high: Decimal
    places: int
    low_inclusive: bool = True
    high_inclusive: bool = True

    def describe(self) -> str:
        if self.low is not None and self.low_inclusive and self.high_inclusive:
            return f"must be between {self.low} and {self.high}"
        parts = []
        if self.low is not None:
            parts.append(f"{'at least' if self.low_inclusive else 'greater than'} {self.low}")
        parts.append(f"{'at most' if self.high_inclusive else 'less than'} {self.high}")
        return "must be " + " and ".join(parts)


AMOUNT_RULE = DecimalRule("amount", -MAX_AMOUNT, MAX_AMOUNT, MONEY_PLACES, False, False)
NON_NEGATIVE_AMOUNT_RULE = DecimalRule("amount", Decimal(0), MAX_AMOUNT, MONEY_PLACES, True, False)
QUANTITY_RULE = DecimalRule("quantity", Decimal(0), MAX_QUANTITY, QUANTITY_PLACES)
SIGNED_QUANTITY_RULE = DecimalRule("quantity", -MAX_QUANTITY, MAX_QUANTITY, QUANTITY_PLACES)
SELLABLE_RULE = DecimalRule("quantity", Decimal(0), MAX_SELLABLE, QUANTITY_PLACES, True, False)
RATE_RULE = DecimalRule("rate", Decimal(0), MAX_RATE, RATE_PLACES, True, False)
POSITIVE_RATE_RULE = DecimalRule("rate", Decimal(0), MAX_RATE, RATE_PLACES, False, False)


def shown(value: object, limit: int = 40) -> str:
    """A short, printable rendering of an input value for an error message."""
    text = ascii(value) if isinstance(value, str) else repr(value)
    text = text.encode("ascii", "backslashreplace").decode("ascii")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_decimal(value: object) -> Decimal:
    """A number as JSON or a person writes it, as an exact Decimal; ValueError otherwise.

    Strings and ints are exact; a float (from a caller's plain ``json.loads``) keeps its
    repr, which is what was written; booleans are not numbers.
    """
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > 100:
            raise ValueError("is not a number (over 100 characters)")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{shown(value)} is not a decimal number") from None
    else:
        raise ValueError(f"must be a number, not {type(value).__name__}")
    if not number.is_finite():
        raise ValueError("must be a finite number")
    return number


def check_decimal(value: object, rule: DecimalRule) -> Decimal:
    """``value`` as a Decimal that obeys ``rule``; ValueError names what is wrong."""
    number = to_decimal(value)
    low_ok = rule.low is None or (number >= rule.low if rule.low_inclusive else number > rule.low)
    high_ok = number <= rule.high if rule.high_inclusive else number < rule.high
    if not (low_ok and high_ok):
        raise ValueError(rule.describe())
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if exponent < -rule.places:
        # "1.50000000" is 1.5 written with trailing zeros: kept, at the rule's scale (a
        # thousand zeros would otherwise travel on to every system); "1.0000001" is refused
        scaled = number.quantize(Decimal(1).scaleb(-rule.places))
        if scaled != number:
            raise ValueError(f"has more than {rule.places} decimal places")
        number = scaled
    return number


# Decimals travel as JSON strings so no system along the way turns them into floats.
_AS_STRING = PlainSerializer(lambda d: str(d), return_type=str, when_used="json")

# money: |x| < 10^12, at most 6 places, may be negative (refund adjustments, differences)
Amount = Annotated[Decimal, BeforeValidator(lambda v: check_decimal(v, AMOUNT_RULE)), _AS_STRING]
# prices and the amounts of lines, discounts, taxes and totals: 0 <= x < 10^12
NonNegativeAmount = Annotated[
    Decimal, BeforeValidator(lambda v: check_decimal(v, NON_NEGATIVE_AMOUNT_RULE)), _AS_STRING
]
# order, shipment, return quantities: 0 <= q <= 10^9, at most 6 places
Quantity = Annotated[
    Decimal, BeforeValidator(lambda v: check_decimal(v, QUANTITY_RULE)), _AS_STRING
]
# stock levels as the ERP reports them (negative stock is reported, not refused)
SignedQuantity = Annotated[
    Decimal, BeforeValidator(lambda v: check_decimal(v, SIGNED_QUANTITY_RULE)), _AS_STRING
]
# what a store may sell, summed over the ERP's locations
Sellable = Annotated[
    Decimal, BeforeValidator(lambda v: check_decimal(v, SELLABLE_RULE)), _AS_STRING
]
# tax rates: 0 <= r < 10^9, at most 12 places
Rate = Annotated[Decimal, BeforeValidator(lambda v: check_decimal(v, RATE_RULE)), _AS_STRING]
# exchange rates: 0 < r < 10^9
PositiveRate = Annotated[
    Decimal, BeforeValidator(lambda v: check_decimal(v, POSITIVE_RATE_RULE)), _AS_STRING
]


# --- text -------------------------------------------------------------------------------

MAX_KEY_LENGTH = 256  # entity_key columns are varchar(256)
MAX_ID_LENGTH = 200  # leaves room for "<source>:<type>:" in a key
MAX_SOURCE_LENGTH = 64  # connection ids (source columns are varchar(64))
MAX_SKU_LENGTH = 128  # sku columns are varchar(128)
MAX_LOCATION_LENGTH = 64  # location columns are varchar(64)
MAX_CODE_LENGTH = 64  # statuses, kinds, units, region and country codes
MAX_LABEL_LENGTH = 255  # numbers, codes, carriers, tracking numbers, tags, groups
MAX_PERSON_NAME_LENGTH = 100  # first and last names (match keys must fit 256 characters)
MAX_EMAIL_LENGTH = 250  # "email:<address>" must fit a varchar(256) match key
MAX_PHONE_LENGTH = 64
MAX_POSTAL_CODE_LENGTH = 32
MAX_NAME_LENGTH = 1000  # titles, product and company names, address lines
MAX_URL_LENGTH = 2048
MAX_TEXT_LENGTH = 10_000  # notes, descriptions; and the limit of any other string


def check_text(value: str) -> str:
    """Refuse what no database column or JSON encoder downstream accepts."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters (\\u0000)")
    if value.isascii():  # most text; no surrogate can hide in it (and no copy is made)
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "must not contain lone surrogates (\\ud800-\\udfff): not valid Unicode text"
        ) from None
    return value


def check_not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


_CLEAN = AfterValidator(check_text)
_NOT_BLANK = AfterValidator(check_not_blank)

# an id in the source system: non-empty, <= 200
Id = Annotated[str, StringConstraints(max_length=MAX_ID_LENGTH), _CLEAN, _NOT_BLANK]
# the connection id an entity came from
Source = Annotated[str, StringConstraints(max_length=MAX_SOURCE_LENGTH), _CLEAN, _NOT_BLANK]
# non-empty, <= 128
Sku = Annotated[str, StringConstraints(max_length=MAX_SKU_LENGTH), _CLEAN, _NOT_BLANK]
# return/refund lines: "" when the store line has no SKU
SkuOrEmpty = Annotated[str, StringConstraints(max_length=MAX_SKU_LENGTH), _CLEAN]
# a location id
Location = Annotated[str, StringConstraints(max_length=MAX_LOCATION_LENGTH), _CLEAN, _NOT_BLANK]
# our key of another entity, e.g. shop:order:1001
Key = Annotated[str, StringConstraints(max_length=MAX_KEY_LENGTH), _CLEAN, _NOT_BLANK]
# statuses, kinds, units, region and country codes
Code = Annotated[str, StringConstraints(max_length=MAX_CODE_LENGTH), _CLEAN]
# numbers, carriers, tracking numbers, tags, groups
Label = Annotated[str, StringConstraints(max_length=MAX_LABEL_LENGTH), _CLEAN]
# a label that must say something
RequiredLabel = Annotated[str, StringConstraints(max_length=MAX_LABEL_LENGTH), _CLEAN, _NOT_BLANK]
# first or last name
PersonName = Annotated[str, StringConstraints(max_length=MAX_PERSON_NAME_LENGTH), _CLEAN]
# an e-mail address
Email = Annotated[str, StringConstraints(max_length=MAX_EMAIL_LENGTH), _CLEAN]
# a phone number
Phone = Annotated[str, StringConstraints(max_length=MAX_PHONE_LENGTH), _CLEAN]
# a postal code
PostalCode = Annotated[str, StringConstraints(max_length=MAX_POSTAL_CODE_LENGTH), _CLEAN]
# titles, product and company names, address lines
Name = Annotated[str, StringConstraints(max_length=MAX_NAME_LENGTH), _CLEAN]
# a URL
Url = Annotated[str, StringConstraints(max_length=MAX_URL_LENGTH), _CLEAN]
# notes, descriptions, reasons
Note = Annotated[str, StringConstraints(max_length=MAX_TEXT_LENGTH), _CLEAN]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


# --- date-times -------------------------------------------------------------------------

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def check_moment(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must carry a time zone offset (e.g. Z or +01:00)")
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"must lie between {EARLIEST.year} and {LATEST.year}")
    return value


Moment = Annotated[datetime, AfterValidator(check_moment)]


# --- the base model ---------------------------------------------------------------------


# Values no string can hide in: skipped before any slower isinstance check (this runs for
# every field of every model of every event).
_NO_TEXT = frozenset({int, float, bool, Decimal, datetime, type(None)})
_COLLECTIONS = (list, tuple, set, frozenset)


def _check_strings(value: Any, depth: int = 0) -> None:
    """Every string inside a field value (lists, dict keys and values) is clean and bounded."""
    kind = type(value)
    if kind in _NO_TEXT or isinstance(value, BaseModel):  # a model checked its own fields
        return
    if isinstance(value, str):
        check_text(value)
        if len(value) > MAX_TEXT_LENGTH:
            raise ValueError(f"must be at most {MAX_TEXT_LENGTH} characters")
    elif isinstance(value, _COLLECTIONS) and depth < 5:
        for item in value:
            _check_strings(item, depth + 1)
    elif isinstance(value, Mapping) and depth < 5:
        for key, item in value.items():
            _check_strings(key, depth + 1)
            _check_strings(item, depth + 1)


class CanonicalModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)

    @field_validator("*", mode="after")
    @classmethod
    def _clean_strings(cls, value: Any, info: ValidationInfo) -> Any:
        # Typed fields check themselves; this catches every other string (tags, notes,
        # option names…) so no field can carry NUL, a lone surrogate or megabytes of text.
        _check_strings(value)
        return value

    @model_validator(mode="after")
    def _keys_fit(self) -> Any:
        related = _related_keys_of(type(self))
        if related is not None:
            check_keys(related(self))
        return self


_RELATED_KEYS: dict[type, Callable[[Any], list[str]] | None] = {}


def _related_keys_of(cls: type) -> Callable[[Any], list[str]] | None:
    """The model's ``related_keys`` method, looked up once per class: ``getattr`` on a
    model without one went through pydantic's slow missing-attribute path for every
    nested model of every order (~0.2 ms of CPU per Shopify order)."""
    try:
        return _RELATED_KEYS[cls]
    except KeyError:
        found = next(
            (vars(k)["related_keys"] for k in cls.__mro__ if "related_keys" in vars(k)), None
        )
        _RELATED_KEYS[cls] = found if callable(found) else None
        return _RELATED_KEYS[cls]


def check_keys(keys: list[str]) -> None:
    for key in keys:
        if len(key) > MAX_KEY_LENGTH:
            raise ValueError(
                f"the key {shown(key, 60)} is {len(key)} characters long, over the "
                f"{MAX_KEY_LENGTH} a key may have (shorten the ids in it)"
            )


class Money(CanonicalModel):
    """An amount with its currency; never a float."""

    amount: Amount
    currency: Currency


def _not_negative(money: Money) -> Money:
    if money.amount < 0:
        raise ValueError(f"must not be negative, got {money.amount} {money.currency}")
    return money


NonNegativeMoney = Annotated[Money, AfterValidator(_not_negative)]


class Address(CanonicalModel):
    first_name: PersonName | None = None
    last_name: PersonName | None = None
    company: Name | None = None
    line1: Name | None = None
    line2: Name | None = None
    city: Label | None = None
    region: Label | None = None
    region_code: Code | None = None
    postal_code: PostalCode | None = None
    country_code: Code | None = None
    phone: Phone | None = None
