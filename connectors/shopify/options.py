"""The Shopify connection's ``options`` and ``credentials``, as the connector declares them
(``check-config`` validates both, naming the YAML line of every problem)."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from connectors.shopify.admin import DEFAULT_API_VERSION
from connectors.shopify.subscriptions import TOPICS
from kernel.contract import Secret


class ShopifyCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # the app's client secret (or the signing secret shown in the admin for webhooks made
    # there): it verifies every webhook
    webhook_secret: Secret
    # while rotating it: the old one, still accepted on webhooks until you remove it
    previous_webhook_secret: Secret | None = None
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
    # the gateway's public base URL: webhook subscriptions point to
    # <public_url>/webhooks/<connection id>; set, the gateway checks them at start and every
    # webhook_check_interval_seconds and re-creates missing ones (``subscriptions``)
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    # the topics to keep subscribed (default: every topic the connector translates)
    webhook_topics: list[str] | None = None
    webhook_check_interval_seconds: float = Field(default=3600.0, ge=60)
    # backfill poll (``backfill``): each pass re-reads this much before the newest change
    # it read (repeats are dropped, gaps are not allowed); the first pass starts at
    # backfill_start (ISO 8601 with an offset), else when the poll is first run
    backfill_overlap_seconds: float = Field(default=120.0, ge=0, le=86_400)
    backfill_start: AwareDatetime | None = None

    @field_validator("webhook_topics")
    @classmethod
    def _known_topics(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        unknown = sorted(set(value) - set(TOPICS))
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)}: not a topic the connector translates ({', '.join(TOPICS)})"
            )
        return value

    @field_validator("location_id", mode="before")
    @classmethod
    def _id_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value
