"""Shared building blocks of canonical entities: money and addresses."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator

# Decimals travel as JSON strings so no system along the way turns them into floats.
Amount = Annotated[Decimal, PlainSerializer(lambda d: str(d), return_type=str, when_used="json")]
Quantity = Annotated[Decimal, PlainSerializer(lambda d: str(d), return_type=str, when_used="json")]


class CanonicalModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Money(CanonicalModel):
    """An amount with its currency; never a float."""

    amount: Amount
    currency: str = Field(pattern=r"^[A-Z]{3}$")

    @field_validator("amount", mode="before")
    @classmethod
    def _no_floats(cls, value: object) -> object:
        if isinstance(value, float):
            # floats have already lost precision; go through repr to keep what was written
            return Decimal(repr(value))
        return value


class Address(CanonicalModel):
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    region_code: str | None = None
    postal_code: str | None = None
    country_code: str | None = None
    phone: str | None = None
