"""``options`` and ``credentials`` of a Tryton connection, as pydantic models.

Unknown keys are refused (``extra="forbid"``), so a typo in the YAML is an error that names
the key instead of a setting silently ignored.
"""

from __future__ import annotations

from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kernel.canonical.validation import describe_errors
from kernel.contract import Secret

SaleState = Literal["draft", "quotation", "confirmed", "processing"]
SALE_STATES: tuple[str, ...] = ("draft", "quotation", "confirmed", "processing")


class TrytonOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    database: str = Field(
        min_length=1,
        pattern=r"^[^/\s]+$",
        description="the Tryton database name; JSON-RPC goes to <base_url>/<database>/rpc/",
    )
    company_id: int | None = Field(
        default=None, ge=1, description="company to work in (default: the user's company)"
    )
    warehouse: str | None = Field(
        default=None,
        description="code of the warehouse sales ship from (default: Tryton's default)",
    )
    stock_warehouses: list[str] = Field(
        default_factory=list,
        description="codes of the warehouses whose stock is reported (default: every one)",
    )
    reference_prefix: str = Field(
        default="", description="put before <source>-<order id> in sale.reference"
    )
    party_code_prefix: str = Field(
        default="", description="put before <source>-<customer id> in party.code"
    )
    customer_category: str | None = Field(
        default=None,
        description="party category given to the parties the gateway creates; when set, the "
        "customers stream reads only parties in it",
    )
    shipping_product_code: str | None = Field(
        default=None, description="code of the service product that carries shipping charges"
    )
    discount_product_code: str | None = Field(
        default=None, description="code of the service product that carries order discounts"
    )
    sale_state: SaleState = Field(
        default="confirmed",
        description="how far a new sale is taken: draft, quotation, confirmed or processing "
        "(confirmed + process, for servers whose sales wait for a worker to process them)",
    )
    require_sku_mappings: bool = Field(
        default=False,
        description="every SKU needs a mapping (mappings.sku.<connection>: SKU → Tryton "
        "product code) before an order is sent; off: SKUs are Tryton product codes",
    )
    order_sources: list[str] = Field(
        default_factory=list,
        description="connection ids whose orders this Tryton holds (set when ids contain '-', "
        "so sale references read back unambiguously)",
    )
    timezone: str = Field(
        default="UTC", description="IANA zone of the company, for Tryton's dates (no time)"
    )
    poll_overlap_seconds: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="each poll run ends by stepping its cursor back this far, so changes "
        "committed late by a long Tryton transaction are still read (repeats are dropped)",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name, e.g. Europe/Paris)"
            ) from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def parse(cls, connection_id: str, options: dict[str, Any]) -> TrytonOptions:
        """The options, or a ValueError naming the connection and every bad key."""
        try:
            return cls.model_validate(options)
        except ValidationError as exc:
            raise ValueError(
                f"connection {connection_id!r} (tryton) options: "
                f"{describe_errors(exc, prefix='options')}"
            ) from None


class TrytonCredentials(BaseModel):
    """Session login: a Tryton user's login and password."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str = Field(min_length=1)
    password: Secret


__all__ = [
    "SALE_STATES",
    "SaleState",
    "TrytonCredentials",
    "TrytonOptions",
]
