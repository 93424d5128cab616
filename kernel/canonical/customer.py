"""Canonical Customer (schema version 1) and the erase request of a data subject."""

from __future__ import annotations

import hashlib
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from kernel.canonical.common import (
    Address,
    CanonicalModel,
    Email,
    Id,
    Label,
    Moment,
    Name,
    NonNegativeMoney,
    PersonName,
    Phone,
    Source,
)

CUSTOMER_SCHEMA_VERSION: Literal[1] = 1


class Customer(CanonicalModel):
    schema_version: Literal[1] = CUSTOMER_SCHEMA_VERSION
    source: Source
    external_id: Id
    email: Email | None = None
    first_name: PersonName | None = None
    last_name: PersonName | None = None
    company: Name | None = None
    phone: Phone | None = None
    addresses: list[Address] = Field(default_factory=list)
    default_billing: int | None = Field(default=None, ge=0)  # index into addresses
    default_shipping: int | None = Field(default=None, ge=0)
    group: Label | None = None
    tax_exempt: bool = False
    tax_exemption_certificate: Name | None = None
    terms: Label | None = None  # payment terms, e.g. "Net 30"
    credit_limit: NonNegativeMoney | None = None
    accepts_marketing: bool = False
    updated_at: Moment

    @model_validator(mode="after")
    def _defaults_point_at_addresses(self) -> Customer:
        for name in ("default_billing", "default_shipping"):
            index = getattr(self, name)
            if index is not None and index >= len(self.addresses):
                raise ValueError(
                    f"{name}: {index} is not an index into addresses ({len(self.addresses)} given)"
                )
        return self

    @property
    def entity_key(self) -> str:
        return f"{self.source}:customer:{self.external_id}"

    def related_keys(self) -> list[str]:
        return [self.entity_key]


# A real address: something@label.label…, the last label a top-level domain of letters.
# ".com", "a@b" or "@example.com" name nobody (and would match far too much).
_EMAIL = re.compile(r"^[^@\s]+@(?:[^@\s.]+\.)+[A-Za-z][A-Za-z-]*[A-Za-z]$")
MIN_ERASURE_PHONE_DIGITS = 7  # fewer cannot be a reachable number (country code included)


class ErasureRequest(CanonicalModel):
    """A GDPR/CCPA erase request: propagate it and scrub the gateway's own copies.

    Each identifier given must really identify someone: a whole e-mail address, a phone
    number of at least 7 digits, a non-empty customer id; at least one of them is needed.
    The erasure matches these values exactly (normalized), never as substrings.
    """

    schema_version: Literal[1] = CUSTOMER_SCHEMA_VERSION
    source: Source
    customer_external_id: Id | None = None
    email: Email | None = None
    phone: Phone | None = None
    requested_at: Moment
    reason: Literal["gdpr", "ccpa", "other"] = "gdpr"

    @field_validator("customer_external_id", "email", "phone", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip() or None
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("email")
    @classmethod
    def _real_email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError(
                "not an e-mail address (name@domain.tld); an erase request names one person "
                "by their whole address"
            )
        return value

    @field_validator("phone")
    @classmethod
    def _real_phone(cls, value: str | None) -> str | None:
        if value is not None and len(re.sub(r"\D", "", value)) < MIN_ERASURE_PHONE_DIGITS:
            raise ValueError(
                f"not a phone number: at least {MIN_ERASURE_PHONE_DIGITS} digits are needed"
            )
        return value

    @model_validator(mode="after")
    def _names_someone(self) -> ErasureRequest:
        if not (self.customer_external_id or self.email or self.phone):
            raise ValueError(
                "an erase request needs customer_external_id, email or phone to say whom to erase"
            )
        return self

    @property
    def entity_key(self) -> str:
        if self.customer_external_id:
            return f"{self.source}:customer:{self.customer_external_id}"
        # no e-mail or phone in keys: keys end up in logs, outbox rows and findings
        who = (self.email or "").strip().lower() or re.sub(r"\D", "", self.phone or "")
        return f"{self.source}:customer:erasure-{hashlib.sha256(who.encode()).hexdigest()[:16]}"

    def related_keys(self) -> list[str]:
        return [self.entity_key]
