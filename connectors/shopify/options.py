"""The Shopify connection's ``options``, validated once with messages that name the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connectors.shopify.admin import DEFAULT_API_VERSION


class ShopifyOptions(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    api_version: str = Field(default=DEFAULT_API_VERSION, pattern=r"^(\d{4}-\d{2}|unstable)$")
    # the store location for inventory (and restocks) when an event names none
    location_id: str | None = None
    # a real YAML boolean: the string "false" is a config error, not true
    notify_customer_default: bool = Field(default=False, strict=True)
    # the shop currency; a price list in another currency is reported, not written
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    # customers: a tag "<prefix><name>" is the customer group (inbound and outbound)
    group_tag_prefix: str = "group:"
    # our carrier name → the company name Shopify recognises (e.g. {"ups_ground": "UPS"})
    carrier_names: dict[str, str] = Field(default_factory=dict)

    @field_validator("location_id", mode="before")
    @classmethod
    def _id_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def load_options(connection_id: str, raw: Mapping[str, Any]) -> ShopifyOptions:
    try:
        return ShopifyOptions.model_validate(dict(raw))
    except ValidationError as exc:
        problems = "; ".join(
            f"options.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise ValueError(f"connection {connection_id!r} (shopify): {problems}") from None
