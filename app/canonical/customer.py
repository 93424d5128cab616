"""Canonical Customer (schema version 1) and the erase request of a data subject."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from app.canonical.common import Address, CanonicalModel, Money

CUSTOMER_SCHEMA_VERSION: Literal[1] = 1


class Customer(CanonicalModel):
    schema_version: Literal[1] = CUSTOMER_SCHEMA_VERSION
    source: str
    external_id: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    phone: str | None = None
    addresses: list[Address] = Field(default_factory=list)
    default_billing: int | None = None  # index into addresses
    default_shipping: int | None = None
    group: str | None = None
    tax_exempt: bool = False
    tax_exemption_certificate: str | None = None
    terms: str | None = None  # payment terms, e.g. "Net 30"
    credit_limit: Money | None = None
    accepts_marketing: bool = False
    updated_at: datetime

    @property
    def entity_key(self) -> str:
        return f"{self.source}:customer:{self.external_id}"

    def related_keys(self) -> list[str]:
        return [self.entity_key]


class ErasureRequest(CanonicalModel):
    """A GDPR/CCPA erase request: propagate it and scrub the gateway's own copies."""

    schema_version: Literal[1] = CUSTOMER_SCHEMA_VERSION
    source: str
    customer_external_id: str | None = None
    email: str | None = None
    phone: str | None = None
    requested_at: datetime
    reason: Literal["gdpr", "ccpa", "other"] = "gdpr"

    @property
    def entity_key(self) -> str:
        who = self.customer_external_id or f"email:{(self.email or '').strip().lower()}"
        return f"{self.source}:customer:{who}"

    def related_keys(self) -> list[str]:
        return [self.entity_key]
