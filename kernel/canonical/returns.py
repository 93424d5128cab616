"""Canonical Return (RMA), Refund and CreditMemo (schema version 1)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from kernel.canonical.common import (
    CanonicalModel,
    Id,
    Key,
    Label,
    Moment,
    Money,
    Name,
    NonNegativeMoney,
    Note,
    Quantity,
    SkuOrEmpty,
    Source,
)

RETURNS_SCHEMA_VERSION: Literal[1] = 1

Disposition = Literal["restock", "damaged", "scrap", "return_to_vendor"]


class ReturnLine(CanonicalModel):
    sku: SkuOrEmpty  # "" when the store's line has no SKU (order_line_id says which it is)
    quantity: Quantity
    order_line_id: Id | None = None
    reason: Note | None = None
    disposition: Disposition | None = None  # decided when the goods are inspected


class Return(CanonicalModel):
    schema_version: Literal[1] = RETURNS_SCHEMA_VERSION
    source: Source
    external_id: Id
    order_key: Key
    order_number: Label | None = None
    rma_number: Label | None = None
    status: Literal["requested", "authorized", "received", "closed", "rejected"] = "requested"
    lines: list[ReturnLine]
    requested_at: Moment
    note: Note | None = None

    @property
    def entity_key(self) -> str:
        return f"{self.source}:return:{self.external_id}"

    def related_keys(self) -> list[str]:
        return [self.entity_key, self.order_key]


class MoneyLine(CanonicalModel):
    sku: SkuOrEmpty
    quantity: Quantity
    amount: NonNegativeMoney


def _same_currency(amount: Money, parts: list[tuple[str, Money | None]]) -> None:
    for path, money in parts:
        if money is not None and money.currency != amount.currency:
            raise ValueError(
                f"{path}.currency: {money.currency} is not the currency of the amount "
                f"{amount.currency}"
            )


class Refund(CanonicalModel):
    """Money the store gave back to the customer's payment method."""

    schema_version: Literal[1] = RETURNS_SCHEMA_VERSION
    source: Source
    external_id: Id
    order_key: Key
    return_key: Key | None = None
    amount: NonNegativeMoney
    method: Name | None = None  # payment gateway / method refunded to
    lines: list[MoneyLine] = Field(default_factory=list)
    shipping: NonNegativeMoney | None = None
    created_at: Moment

    @model_validator(mode="after")
    def _one_currency(self) -> Refund:
        parts: list[tuple[str, Money | None]] = [
            (f"lines[{i}].amount", line.amount) for i, line in enumerate(self.lines)
        ]
        _same_currency(self.amount, [*parts, ("shipping", self.shipping)])
        return self

    @property
    def entity_key(self) -> str:
        return f"{self.source}:refund:{self.external_id}"

    def related_keys(self) -> list[str]:
        return [self.entity_key, self.order_key]


class CreditMemo(CanonicalModel):
    """The ERP's accounting side of a refund."""

    schema_version: Literal[1] = RETURNS_SCHEMA_VERSION
    source: Source
    external_id: Id
    order_key: Key
    return_key: Key | None = None
    rma_number: Label | None = None
    amount: NonNegativeMoney
    lines: list[MoneyLine] = Field(default_factory=list)
    restock: list[ReturnLine] = Field(default_factory=list)  # lines with their disposition
    created_at: Moment

    @model_validator(mode="after")
    def _one_currency(self) -> CreditMemo:
        _same_currency(
            self.amount, [(f"lines[{i}].amount", line.amount) for i, line in enumerate(self.lines)]
        )
        return self

    @property
    def entity_key(self) -> str:
        return f"{self.source}:credit_memo:{self.external_id}"

    def related_keys(self) -> list[str]:
        return [self.entity_key, self.order_key]
