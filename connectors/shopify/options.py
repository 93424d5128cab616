"""The Shopify connection's ``options`` and ``credentials``, as the connector declares them
(``check-config`` validates both, naming the YAML line of every problem)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.shopify.admin import DEFAULT_API_VERSION
from kernel.contract import Secret


class ShopifyCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # the app's client secret (or the signing secret shown in the admin for webhooks made
    # there): it verifies every webhook
    webhook_secret: Secret
    # the Admin API access token (X-Shopify-Access-Token): every call out needs it
    access_token: Secret


class ShopifyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

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
