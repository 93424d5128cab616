"""Canonical Return (RMA), Refund and CreditMemo (schema version 1)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from app.canonical.common import CanonicalModel, Money, Quantity

RETURNS_SCHEMA_VERSION: Literal[1] = 1

Disposition = Literal["restock", "damaged", "scrap", "return_to_vendor"]


class ReturnLine(CanonicalModel):
    sku: str
    quantity: Quantity
    order_line_id: str | None = None
    reason: str | None = None
    disposition: Disposition | None = None  # decided when the goods are inspected


class Return(CanonicalModel):
    schema_version: Literal[1] = RETURNS_SCHEMA_VERSION
    source: str
    external_id: str
    order_key: str
    order_number: str | None = None
    rma_number: str | None = None
    status: Literal["requested", "authorized", "received", "closed", "rejected"] = "requested"
    lines: list[ReturnLine]
    requested_at: datetime
    note: str | None = None

    @property
    def entity_key(self) -> str:
        return f"{self.source}:return:{self.external_id}"

    def related_keys(self) -> list[str]:
        return [self.entity_key, self.order_key]


class MoneyLine(CanonicalModel):
    sku: str
    quantity: Quantity
    amount: Money


class Refund(CanonicalModel):
    """Money the store gave back to the customer's payment method."""

    schema_version: Literal[1] = RETURNS_SCHEMA_VERSION
    source: str
    external_id: str
    order_key: str
    return_key: str | None = None
    amount: Money
    method: str | None = None  # payment gateway / method refunded to
    lines: list[MoneyLine] = Field(default_factory=list)
    shipping: Money | None = None
    created_at: datetime

    @property
    def entity_key(self) -> str:
        return f"{self.source}:refund:{self.external_id}"

    def related_keys(self) -> list[str]:
        return [self.entity_key, self.order_key]


class CreditMemo(CanonicalModel):
    """The ERP's accounting side of a refund."""

    schema_version: Literal[1] = RETURNS_SCHEMA_VERSION
    source: str
    external_id: str
    order_key: str
    return_key: str | None = None
    rma_number: str | None = None
    amount: Money
    lines: list[MoneyLine] = Field(default_factory=list)
    restock: list[ReturnLine] = Field(default_factory=list)  # lines with their disposition
    created_at: datetime

    @property
    def entity_key(self) -> str:
        return f"{self.source}:credit_memo:{self.external_id}"

    def related_keys(self) -> list[str]:
        return [self.entity_key, self.order_key]
