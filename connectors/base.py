"""The connector interface and the typed errors connectors raise.

A connector knows one external system and the canonical model, nothing else: no database
sessions, no queues, no business rules. The core hands it a canonical event plus what it
already knows (links to remote ids, resolved mappings) and gets back remote ids to remember
or one of the typed errors below, which decide what the delivery engine does next.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import httpx

from app.canonical.events import CanonicalEvent
from app.config import ConnectionConfig

# --- outbound errors: they steer retries --------------------------------------------------


class ConnectorError(Exception):
    """Base of every error a connector raises on purpose."""

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class TransientError(ConnectorError):
    """Worth retrying as is: timeouts, 5xx, connection failures. Counts as an attempt."""


class RateLimitedError(ConnectorError):
    """The remote asked us to slow down; wait ``retry_after`` seconds. Not an attempt."""

    def __init__(self, message: str, *, retry_after: float, detail: Any = None) -> None:
        super().__init__(message, detail=detail)
        self.retry_after = retry_after


class PermanentError(ConnectorError):
    """Retrying the same request cannot succeed; a person has to look (dead letter)."""


@dataclass(frozen=True)
class MappingNeed:
    """One mapping the delivery needs: ``kind`` (e.g. "sku") and our ``key``."""

    kind: str
    key: str


class HoldError(ConnectorError):
    """A person has to decide (e.g. an amendment to an ERP order that is already shipped).

    The delivery is held with this message as the reason until an operator approves (send
    again) or rejects it through ``/api/v1/approvals``. Not an attempt.
    """


class NeedsMappingError(ConnectorError):
    """The delivery waits (parked) until these mappings exist, then goes out by itself."""

    def __init__(self, missing: list[MappingNeed]) -> None:
        names = ", ".join(f"{m.kind} {m.key!r}" for m in missing)
        super().__init__(f"no mapping for {names}")
        self.missing = missing


# --- inbound errors: they become 401 / 400 / 422 ------------------------------------------


class SignatureError(Exception):
    """The webhook is not signed by whom it claims to be (HTTP 401)."""


class PayloadError(Exception):
    """The webhook body cannot be understood (HTTP 400 or 422); the message says why."""

    def __init__(self, message: str, *, status_code: int = 422) -> None:
        super().__init__(message)
        self.status_code = status_code


# --- data passed across the boundary ------------------------------------------------------


@dataclass
class ParsedWebhook:
    topic: str
    dedupe_key: str
    events: list[CanonicalEvent] = field(default_factory=list)


@dataclass(frozen=True)
class RemoteLink:
    """Our key of a business entity ↔ the remote system's id for it."""

    entity_type: str
    our_key: str
    remote_id: str


@dataclass
class DeliveryContext:
    # (entity_type, our_key) → remote id, for this destination connection
    links: dict[tuple[str, str], str] = field(default_factory=dict)
    # kind → our key → their key, resolved for what required_mappings() asked
    mappings: dict[str, dict[str, str]] = field(default_factory=dict)
    # decisions the core's rules made for this delivery; connectors obey, never decide:
    #   tax_source: "store" | "erp"   (orders: send the store's tax, or let the ERP compute)
    #   guest_customer_id: str        (orders: the shared web-guest account to book against)
    #   notify_customer: bool         (shipments: let the store e-mail the customer)
    directives: dict[str, Any] = field(default_factory=dict)

    def link(self, entity_type: str, our_key: str) -> str | None:
        return self.links.get((entity_type, our_key))


@dataclass(frozen=True)
class Finding:
    """Something an operator should know that is not a failure (reported, not retried).

    ``kind`` examples: tax_difference, negative_stock, refund_mismatch, stock_drift.
    """

    kind: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class DeliveryResult:
    links: list[RemoteLink] = field(default_factory=list)
    summary: str = ""
    findings: list[Finding] = field(default_factory=list)


@dataclass
class PollPage:
    """One page of changes read from a system that cannot (or did not) send webhooks.

    ``cursor`` is opaque to the core: stored after the page's events are committed and
    handed back on the next poll, so a restart resumes where it stopped.
    """

    events: list[CanonicalEvent]
    cursor: str | None
    has_more: bool = False


class Connector:
    """Base of every connector; a subclass implements the inbound and/or outbound half."""

    type_name: ClassVar[str]
    side: ClassVar[Literal["store", "erp"]] = "store"
    inbound_flows: ClassVar[frozenset[str]] = frozenset()
    outbound_flows: ClassVar[frozenset[str]] = frozenset()
    # Credential keys, checked by the config loader (check-config and serve alike): every
    # connection must have the required ones; the webhook ones only when it sends us webhooks
    # (it is a route's `from` for a flow it does not poll); any other key than these and the
    # optional ones is an error.
    required_credentials: ClassVar[frozenset[str]] = frozenset()
    webhook_credentials: ClassVar[frozenset[str]] = frozenset()
    optional_credentials: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: ConnectionConfig, http: httpx.AsyncClient) -> None:
        self.config = config
        self.http = http

    # inbound --------------------------------------------------------------------------
    def verify_signature(self, headers: Mapping[str, str], body: bytes) -> None:
        raise SignatureError(f"connection type {self.type_name} does not accept webhooks")

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ParsedWebhook:
        raise PayloadError(f"connection type {self.type_name} does not accept webhooks")

    # outbound -------------------------------------------------------------------------
    def required_mappings(self, event: CanonicalEvent) -> list[MappingNeed]:
        """The mappings ``deliver`` will need; the core resolves them or parks the delivery."""
        return []

    async def deliver(self, event: CanonicalEvent, ctx: DeliveryContext) -> DeliveryResult:
        raise PermanentError(f"connection type {self.type_name} cannot receive {event.type}")

    # polling (scheduled) --------------------------------------------------------------
    # Streams this connector can poll, e.g. {"inventory", "customers"}; empty: no polling.
    poll_streams: ClassVar[frozenset[str]] = frozenset()

    async def poll(self, stream: str, cursor: str | None, limit: int) -> PollPage:
        """Changes on ``stream`` after ``cursor`` (None: from the start), at most ``limit``."""
        raise PermanentError(f"connection type {self.type_name} cannot poll {stream}")

    # reconciliation (scheduled) -------------------------------------------------------
    async def fetch_availability(self, skus: list[str]) -> dict[tuple[str, str | None], Any]:
        """What a store shows as sellable now: (sku, location or None) → Decimal quantity."""
        raise PermanentError(f"connection type {self.type_name} cannot report stock levels")
