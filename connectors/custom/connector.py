"""Generic storefront connector (``type: custom``) for shops built against the gateway.

Both directions speak Standard Webhooks (``connectors.custom.signing``) with one envelope:
``{"type": "<canonical event type>", "timestamp": "<ISO 8601>", "data": {<canonical payload>}}``
— the shop already talks the canonical model, so there is no mapping layer here.

Connection config:
- credentials: ``webhook_secret`` (required, ``whsec_<base64>``: the shop signs its webhooks
  with it), ``push_secret`` (optional, what the gateway signs its pushes with; defaults to
  ``webhook_secret``), ``previous_webhook_secret`` (optional, while rotating: the old
  ``webhook_secret``, still accepted on the shop's webhooks, never used to sign);
- options: ``timestamp_tolerance_seconds`` (default 300, 1 to 3600), ``push_url`` (default
  ``{base_url}/gateway/events``), ``stock_url`` (default ``{base_url}/gateway/stock``).

Inbound (``POST /webhooks/{connection_id}``): order.created/updated/cancelled,
customer.upserted/erase_requested, return.requested, refund.created. ``source`` is forced to
the connection id, so a shop can never write as another connection.

Outbound: any event of the inventory, products, shipments, returns and customers flows is
POSTed to ``push_url``; ``webhook-id`` is derived from the event so a retry carries the same id.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, cast

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from connectors._kit import signatures
from connectors._kit.headers import checked_header
from connectors._kit.http import StatusPolicy, send
from connectors.custom import signing
from kernel.canonical.common import MAX_KEY_LENGTH, Moment, shown
from kernel.canonical.events import EVENT_TYPES, CanonicalEvent, Payload, make_event
from kernel.canonical.order import Order
from kernel.canonical.validation import describe_errors, safe_text
from kernel.contract import ConnectionSettings, Connector, Secret
from kernel.errors import PayloadError, PermanentError
from kernel.types import DeliveryContext, DeliveryResult, ParsedWebhook, RemoteLink

WEBHOOK_SECRET = "webhook_secret"
PUSH_SECRET = "push_secret"
PUSH_PATH = "/gateway/events"
STOCK_PATH = "/gateway/stock"

# What a shop may send us: its own orders, customers, returns and refunds. Stock, prices,
# shipments and credit memos come from the ERP; a shop announcing them is a configuration bug.
INBOUND_EVENT_TYPES: tuple[str, ...] = (
    "order.created",
    "order.updated",
    "order.cancelled",
    "customer.upserted",
    "customer.erase_requested",
    "return.requested",
    "refund.created",
)
DEFAULT_RETRY_AFTER_SECONDS = 1.0
STOCK_SKUS_PER_REQUEST = 100  # keeps the query string far below common URL limits
_MAX_ERROR_TEXT = 500
# the replay window of inbound signatures: a second at least (clocks differ), an hour at most
MIN_TOLERANCE_SECONDS = 1.0
MAX_TOLERANCE_SECONDS = 3600.0
MAX_MESSAGE_ID_LENGTH = 1024  # the dedupe key (ingest stores one over 256 as its hash)
# 409: the shop already has this webhook-id (a retry after a lost answer): delivered
STATUS_POLICY = StatusPolicy(
    accept=frozenset({409}),
    credentials_hint=(
        f"the shop refused our signature, so make the connection's {PUSH_SECRET} (or "
        f"{WEBHOOK_SECRET}) the secret the shop verifies with"
    ),
    default_retry_after=DEFAULT_RETRY_AFTER_SECONDS,
)


class _Envelope(BaseModel):
    """The Standard Webhooks body; ``directives`` and other extras are allowed and ignored."""

    model_config = ConfigDict(extra="ignore")

    type: str
    timestamp: Moment
    data: dict[str, Any]


class CustomCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # whsec_<base64>: verifies the shop's webhooks, signs our pushes unless push_secret is set
    webhook_secret: Secret
    push_secret: Secret | None = None
    # while rotating webhook_secret: the old one, still accepted on the shop's webhooks
    # until you remove it (never used to sign)
    previous_webhook_secret: Secret | None = None

    @field_validator("webhook_secret", "push_secret", "previous_webhook_secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            signing.secret_key(value.get_secret_value())  # ValueError says what is wrong
        return value


class CustomOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # where pushes and stock questions go (default: <base_url>/gateway/events and /stock)
    push_url: str | None = Field(default=None, pattern=r"^https?://")
    stock_url: str | None = Field(default=None, pattern=r"^https?://")
    # the replay window of inbound signatures: finite, 1 to 3600 s (NaN or infinity would
    # accept a signature of any age)
    timestamp_tolerance_seconds: float = Field(
        default=signing.DEFAULT_TOLERANCE_SECONDS,
        strict=True,
        ge=MIN_TOLERANCE_SECONDS,
        le=MAX_TOLERANCE_SECONDS,
        allow_inf_nan=False,
    )


class CustomConnector(Connector):
    """A shop that speaks the canonical model over Standard Webhooks, in and out."""

    type_name = "custom"
    side = "store"
    Options = CustomOptions
    Credentials = CustomCredentials
    inbound_flows = frozenset({"orders", "customers", "returns"})
    outbound_flows = frozenset({"inventory", "products", "shipments", "returns", "customers"})
    stock_updates = "delta"  # every push carries an idempotency key and the change
    reads_stock = True
    sensitive_headers = frozenset({"webhook-signature"})
    # the protocol answers a body it cannot take with 400/422 listing what is wrong (the
    # shop's developer fixes it and sends again), so nothing is kept in quarantine
    unparseable = "refuse"

    def __init__(self, settings: ConnectionSettings, http: httpx.AsyncClient) -> None:
        super().__init__(settings, http)
        creds: CustomCredentials = settings.credentials
        options: CustomOptions = settings.options
        self._webhook_key = signing.secret_key(creds.webhook_secret.get_secret_value())
        self._verify_keys = [self._webhook_key]
        if creds.previous_webhook_secret is not None:
            previous = creds.previous_webhook_secret.get_secret_value()
            self._verify_keys.append(signing.secret_key(previous))
        self._push_key = (
            signing.secret_key(creds.push_secret.get_secret_value())
            if creds.push_secret is not None
            else self._webhook_key
        )
        self.tolerance_seconds = options.timestamp_tolerance_seconds
        base = settings.base_url.rstrip("/")
        self.push_url = options.push_url or base + PUSH_PATH
        self.stock_url = options.stock_url or base + STOCK_PATH
        self.clock = time.time  # replaceable in tests
        self._timeout: Any = settings.timeout_seconds

    # --- inbound ----------------------------------------------------------------------
    def verify_signature(self, headers: Mapping[str, str], body: bytes) -> None:
        now = self.clock()
        signatures.verify_with_any(
            self._verify_keys,
            lambda key: signing.verify(
                key, headers, body, tolerance_seconds=self.tolerance_seconds, now=now
            ),
        )

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ParsedWebhook:
        msg_id = _message_id(headers)
        envelope = _load_envelope(body)
        kind = EVENT_TYPES[envelope.type]
        data = {**envelope.data, "source": self.config.id}
        try:
            payload = kind.model.model_validate(data)
        except ValidationError as exc:
            raise PayloadError(
                f"invalid {envelope.type} payload: {describe_errors(exc, prefix='data')}"
            ) from None
        _check_own_keys(payload, self.config.id)
        _check_type_fits(envelope.type, payload)
        try:
            # the catalogue's model for this type is always one of the Payload members
            event = make_event(envelope.type, cast(Payload, payload), envelope.timestamp)
        except ValidationError as exc:  # e.g. a key that a rewritten order_key made too long
            raise PayloadError(
                f"invalid {envelope.type} event: {describe_errors(exc, prefix='data')}"
            ) from None
        return ParsedWebhook(topic=envelope.type, dedupe_key=msg_id, events=[event])

    # --- outbound ---------------------------------------------------------------------
    async def deliver(self, event: CanonicalEvent, ctx: DeliveryContext) -> DeliveryResult:
        if event.flow not in self.outbound_flows:
            raise PermanentError(
                f"connection {self.config.id!r} (custom) does not take {event.type} "
                f"(flow {event.flow}); route only {', '.join(sorted(self.outbound_flows))} to it"
            )
        msg_id = delivery_id(event)
        body = encode_envelope(event, ctx.directives)
        response = await self._send("POST", self.push_url, msg_id, body, what=event.type)
        shop_id = _shop_id(response)
        links = (
            [RemoteLink(event.entity_type, event.entity_key, shop_id)]
            if shop_id is not None
            else []
        )
        if response.status_code == 409:
            summary = f"shop already had {event.type} {msg_id} (409 duplicate)"
        else:
            summary = f"shop accepted {event.type} for {event.entity_key} as {msg_id}"
        if shop_id is not None:
            summary += f" (shop id {shop_id})"
        return DeliveryResult(links=links, summary=summary)

    async def fetch_availability(self, skus: list[str]) -> dict[tuple[str, str | None], Any]:
        """What the shop sells now, read from ``stock_url``: (sku, location) → Decimal."""
        wanted = list(dict.fromkeys(skus))
        out: dict[tuple[str, str | None], Any] = {}
        for start in range(0, len(wanted), STOCK_SKUS_PER_REQUEST):
            chunk = wanted[start : start + STOCK_SKUS_PER_REQUEST]
            url = httpx.URL(self.stock_url, params=[("sku", sku) for sku in chunk])
            response = await self._send(
                "GET", url, f"msg_{uuid.uuid4().hex}", b"", what="stock request"
            )
            out.update(_parse_stock(response, set(chunk)))
        return out

    async def _send(
        self, method: str, url: httpx.URL | str, msg_id: str, body: bytes, *, what: str
    ) -> httpx.Response:
        # Signed afresh on every attempt: the id stays, the timestamp is now (else the shop's
        # replay window would reject a retry made minutes later).
        headers = signing.sign_headers(self._push_key, msg_id, body, timestamp=int(self.clock()))
        if body:
            headers["content-type"] = "application/json"
        request = self.http.build_request(
            method, url, content=body, headers=headers, timeout=self._timeout
        )
        where = httpx.URL(url).copy_with(query=None)
        return await send(
            self.http,
            request,
            timeout=self._timeout,
            describe=f"the shop at {where} ({what})",
            policy=STATUS_POLICY,
        )


# --- inbound helpers ----------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _message_id(headers: Mapping[str, str]) -> str:
    """The ``webhook-id`` (the dedupe key): printable ASCII, at most 1024 characters."""
    msg_id = checked_header(headers, signing.ID_HEADER, limit=MAX_MESSAGE_ID_LENGTH)
    if not msg_id:
        raise PayloadError(f"missing {signing.ID_HEADER} header", status_code=400)
    return msg_id


def _load_envelope(body: bytes) -> _Envelope:
    try:
        # Decimal, not float: an amount must arrive exactly as the shop wrote it.
        raw = json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise PayloadError(
            f"body is not valid JSON: {safe_text(str(exc), 200)}", status_code=400
        ) from None
    if not isinstance(raw, dict):
        raise PayloadError(
            'body must be a JSON object {"type": …, "timestamp": …, "data": {…}}', status_code=400
        )
    event_type = raw.get("type")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        raise PayloadError(
            f"unknown event type {shown(event_type)}; known: {', '.join(EVENT_TYPES)} "
            f"(a shop sends {', '.join(INBOUND_EVENT_TYPES)})"
        )
    if event_type not in INBOUND_EVENT_TYPES:
        raise PayloadError(
            f"a shop cannot send {event_type}; accepted: {', '.join(INBOUND_EVENT_TYPES)}"
        )
    try:
        return _Envelope.model_validate(raw)
    except ValidationError as exc:
        raise PayloadError(f"invalid envelope: {describe_errors(exc)}") from None


def _check_type_fits(event_type: str, payload: Any) -> None:
    """An ``order.cancelled`` carries a cancelled order; a body saying otherwise is refused."""
    if (
        event_type == "order.cancelled"
        and isinstance(payload, Order)
        and payload.status != "cancelled"
        and payload.cancelled_at is None
    ):
        raise PayloadError(
            "data.status: an order.cancelled event carries a cancelled order "
            f"(status 'cancelled' or a cancelled_at), not one that is {payload.status!r}"
        )


def _check_own_keys(payload: Any, connection_id: str) -> None:
    """Returns and refunds point at orders/returns by our key; only this shop's may be named."""
    for field_name, entity in (("order_key", "order"), ("return_key", "return")):
        value = getattr(payload, field_name, None)
        if value is None:
            continue
        own = f"{connection_id}:{entity}:"
        if value and ":" not in value:
            # the shop's own id is fine: it becomes our key for that entity
            if len(own + value) > MAX_KEY_LENGTH:
                raise PayloadError(
                    f"data.{field_name}: {len(value)} characters is too long for an id; "
                    f"'{own}<id>' must fit {MAX_KEY_LENGTH} characters"
                )
            setattr(payload, field_name, own + value)
        elif not value.startswith(own) or len(value) == len(own):
            raise PayloadError(
                f"data.{field_name}: {value!r} is not one of this shop's {entity}s; send your "
                f"{entity} id, or '{own}<id>'"
            )


# --- outbound helpers ---------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def delivery_id(event: CanonicalEvent) -> str:
    """The ``webhook-id`` of one delivery: the same for every retry of the same event."""
    material = json.dumps(
        [event.type, event.entity_key, event.occurred_at.isoformat(), event.payload_json()],
        sort_keys=True,
        separators=(",", ":"),
        default=_json_default,
    )
    return "msg_" + hashlib.sha256(material.encode()).hexdigest()[:32]


def encode_envelope(event: CanonicalEvent, directives: Mapping[str, Any] | None = None) -> bytes:
    """The body the shop receives; ``directives`` (e.g. notify_customer) only when given."""
    envelope: dict[str, Any] = {
        "type": event.type,
        "timestamp": event.occurred_at.isoformat(),
        "data": event.payload_json(),
    }
    if directives:
        envelope["directives"] = dict(directives)
    return json.dumps(envelope, separators=(",", ":"), default=_json_default).encode()


def _shop_id(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("id"), str | int) and body["id"] != "":
        return str(body["id"])
    return None


def _parse_stock(response: httpx.Response, wanted: set[str]) -> dict[tuple[str, str | None], Any]:
    try:
        body = json.loads(response.content, parse_float=Decimal)
    except ValueError:
        raise PermanentError(
            f"shop stock answer is not JSON: {response.text[:_MAX_ERROR_TEXT]!r}"
        ) from None
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise PermanentError('shop stock answer lacks "items": expected {"items": [...]}')
    out: dict[tuple[str, str | None], Any] = {}
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("sku"), str):
            raise PermanentError(f"shop stock answer: {where} needs a string sku")
        location = item.get("location")
        if location is not None and not isinstance(location, str):
            raise PermanentError(f"shop stock answer: {where}.location must be a string or null")
        out_key = (item["sku"], location)
        if item["sku"] in wanted:
            out[out_key] = _quantity(item.get("available"), where)
    return out


def _quantity(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise PermanentError(f"shop stock answer: {where}.available must be a decimal string")
    try:
        quantity = Decimal(str(value))
    except InvalidOperation:
        raise PermanentError(
            f"shop stock answer: {where}.available {value!r} is not a number"
        ) from None
    if not quantity.is_finite():
        raise PermanentError(f"shop stock answer: {where}.available {value!r} is not finite")
    return quantity


__all__ = [
    "INBOUND_EVENT_TYPES",
    "CustomConnector",
    "delivery_id",
    "describe_errors",
    "encode_envelope",
]
