"""A NetSuite connection's ``options`` and ``credentials``, as the connector declares them
(``check-config`` validates both and names the YAML line of every problem).

Connection config:
- credentials: ``account_id``, ``consumer_key``, ``consumer_secret``, ``token_id``,
  ``token_secret`` (token-based auth, HMAC-SHA256);
- options (all optional): ``subsidiary_id`` (customer and order), ``location_id`` (order),
  ``discount_item_id`` (needed for orders with a discount), ``ship_method_id``,
  ``payment_gateway_field`` (a custom body field id, e.g. ``custbody_payment_gateway``),
  ``order_status`` (e.g. ``"B"`` for pending fulfilment), ``tax_engine`` (``suitetax``, the
  default: NetSuite computes tax, no line ``taxCode`` is sent; ``legacy``: mapped line
  ``taxCode``s are sent, see ``bodies``), ``send_exchange_rate`` (a real
  boolean, default false: only when the canonical rate is the rate NetSuite expects, see
  ``bodies.sales_order_body``),
  ``require_mappings`` (some of ``OPTIONAL_MAPPINGS``, see ``connector.py``),
  ``webhook_tolerance_seconds``,
  ``timezone`` (IANA name of the account's time zone, for naive dates; default UTC),
  ``base_currency`` (default USD), ``order_sources`` (connection ids whose orders NetSuite
  holds as ``<source>-<id>``, to read order keys back unambiguously), ``custom_fields``
  (see ``fields.FieldNames``; ``null`` switches one off; only the ones named are queried
  with SuiteQL), ``return_location_id``, ``fulfillment_status`` (``shipped``, the default,
  or ``packed``: the lowest item fulfillment status the store is sent; picked ones never
  are), ``stock_transaction_types`` (the SuiteQL transaction types whose changes make the
  ``inventory`` stream re-read the touched items' stock; default ``STOCK_TRANSACTION_TYPES``),
  ``concurrency_limit`` (requests in flight to the account, from every worker process and
  every connection to the same account together; default 5, a standard account without
  SuiteCloud Plus);
- credential ``webhook_secret`` for the user-event webhook: required when the connection is
  the ``from`` of a route whose flow it does not poll (the config loader checks it).
"""

from __future__ import annotations

from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.netsuite import inbound
from connectors.netsuite.queries import STOCK_TRANSACTION_TYPES
from kernel.contract import Secret

# concurrent requests a standard service tier account allows without SuiteCloud Plus
DEFAULT_CONCURRENCY_LIMIT = 5
OPTIONAL_MAPPINGS = ("payment_method", "shipping_method", "tax_code", "location")
InternalId = str  # written as a number or text in YAML; always text here


class NetSuiteCredentials(BaseModel):
    """Token-based auth (every call out), and the user-event script's signing secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account_id: Secret
    consumer_key: Secret
    consumer_secret: Secret
    token_id: Secret
    token_secret: Secret
    # only webhooks need it: a connection that only polls (or only receives) does without
    webhook_secret: Secret | None = None
    # while rotating it: the old one, still accepted on webhooks until you remove it
    previous_webhook_secret: Secret | None = None


class NetSuiteOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    subsidiary_id: InternalId | None = Field(
        default=None, description="subsidiary for new customers and orders"
    )
    location_id: InternalId | None = Field(default=None, description="location on sales orders")
    discount_item_id: InternalId | None = Field(
        default=None, description="the discount item that carries order discounts"
    )
    ship_method_id: InternalId | None = None
    payment_gateway_field: str | None = Field(
        default=None, description="a custom body field for the payment gateway's name"
    )
    order_status: str | None = Field(default=None, description="status new orders get, e.g. B")
    # REST takes taxes only with SuiteTax (NetSuite computes them); legacy: line taxCode
    tax_engine: Literal["suitetax", "legacy"] = "suitetax"
    # a real YAML boolean: the string "false" is a config error, not true
    send_exchange_rate: bool = Field(default=False, strict=True)
    require_mappings: tuple[
        Literal["payment_method", "shipping_method", "tax_code", "location"], ...
    ] = ()
    # finite, within a day's hour: NaN or infinity would accept a signature of any age
    webhook_tolerance_seconds: float = Field(
        default=inbound.DEFAULT_TOLERANCE_SECONDS,
        strict=True,
        ge=inbound.MIN_TOLERANCE_SECONDS,
        le=inbound.MAX_TOLERANCE_SECONDS,
        allow_inf_nan=False,
    )
    return_location_id: InternalId | None = None
    # the store hears of a fulfilment once it is this far: A picked, B packed, C shipped
    fulfillment_status: Literal["packed", "shipped"] = "shipped"
    stock_transaction_types: tuple[str, ...] = Field(default=STOCK_TRANSACTION_TYPES, min_length=1)
    # NetSuite governs concurrent requests per account (web services and RESTlets together):
    # the service tier's base (5 on a standard tier) + 10 per SuiteCloud Plus licence, minus
    # what the admin allocated to other integrations. Over it NetSuite answers 429.
    # https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_1525253248.html
    concurrency_limit: int = Field(default=DEFAULT_CONCURRENCY_LIMIT, ge=1, le=1000, strict=True)
    # reading records back
    timezone: str = Field(default="UTC", description="the account's time zone (IANA name)")
    base_currency: str = Field(default="USD", pattern=r"^[A-Za-z]{3}$")
    custom_fields: dict[str, str | None] = Field(default_factory=dict)
    order_sources: tuple[str, ...] = ()

    @field_validator(
        "subsidiary_id",
        "location_id",
        "discount_item_id",
        "ship_method_id",
        "return_location_id",
        mode="before",
    )
    @classmethod
    def _id_text(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return None if value == "" else value

    @field_validator("stock_transaction_types")
    @classmethod
    def _type_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for type_id in value:  # they go into SQL: letters only, like every type id
            if not type_id.isascii() or not type_id.isalpha():
                raise ValueError(f"{type_id!r} is not a SuiteQL transaction type (e.g. ItemShip)")
        return value

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA time zone (e.g. America/New_York)"
            ) from None
        return value

    @field_validator("custom_fields")
    @classmethod
    def _known_fields(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        from connectors.netsuite.fields import FieldNames

        FieldNames.from_mapping(value)  # unknown names are an error, not a silent default
        return value
