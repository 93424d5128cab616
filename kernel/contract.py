"""The connector contract: what a connector declares and what the core calls.

A connector knows one external system and the canonical model, nothing else: no database
sessions, no queues, no business rules. It declares, on its class:

- ``type_name`` (the ``type:`` in the config) and ``side`` ("store" or "erp"; required: who
  owns which customer fields and whose orders are tracked against stock depends on it);
- ``Options`` and ``Credentials``: pydantic models with ``extra="forbid"``; ``check-config``
  validates a connection's ``options:`` and ``credentials:`` with them (the YAML line in every
  error), and the connector receives the validated instances;
- its capabilities: the flows it takes in (``inbound_flows``) and sends out
  (``outbound_flows``), the streams it can poll, whether stock goes out as idempotent deltas
  or only absolute levels (``stock_updates``), whether it can read stock back
  (``reads_stock``);
- its secrets as they appear on the wire (``sensitive_headers``, ``sensitive_fields``): the
  core redacts them from every stored attempt.

The core hands it a canonical event plus what it already knows (links to remote ids,
resolved mappings, the rules' directives) and gets back remote ids to remember or one of the
typed errors of ``kernel.errors``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from kernel.canonical.events import CanonicalEvent
from kernel.canonical.inventory import InventoryLevel
from kernel.errors import PayloadError, PermanentError, SignatureError
from kernel.mappings import MAPPING_KINDS
from kernel.types import (
    DeliveryContext,
    DeliveryResult,
    Finding,
    MappingNeed,
    ParsedWebhook,
    PollPage,
)

Side = Literal["store", "erp"]
StockUpdates = Literal["delta", "absolute", "none"]
FLOWS: tuple[str, ...] = ("orders", "inventory", "products", "customers", "shipments", "returns")


# A credential in a Credentials model: never empty, never shown (repr, logs, the API).
Secret = Annotated[SecretStr, Field(min_length=1)]


class NoOptions(BaseModel):
    """A connector without options: any key is a mistake."""

    model_config = ConfigDict(extra="forbid")


class NoCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class ConnectionSettings:
    """One configured connection as its connector sees it: validated options and secrets."""

    id: str
    type: str
    base_url: str
    options: Any = field(default_factory=NoOptions)  # an instance of the connector's Options
    credentials: Any = field(default_factory=NoCredentials)  # ... of its Credentials
    # one HTTP call's time limit, from the connection's delivery policy
    timeout_seconds: float = 30.0
    # the store the connection's OAuth tokens live in (``connectors._kit.oauth2``): the
    # core's database-backed one, shared by every process; None (tests, check-config) means
    # the connector keeps them in a ``MemoryTokenStore`` of its own
    tokens: TokenStore | None = field(default=None, repr=False, compare=False)
    # caps the calls in flight to a remote system that counts them (NetSuite: per account),
    # across every process: the core's shares slots through Redis, or in this process when
    # embedded; None (tests, check-config) means the connector uses the kit's in-process one
    limiter: ConcurrencyLimiter | None = field(default=None, repr=False, compare=False)

    def secret(self, name: str) -> str:
        """The credential ``name`` as text; KeyError names the connection when it is unset."""
        value = getattr(self.credentials, name, None)
        if value is None:
            raise KeyError(f"connection {self.id!r} has no credential {name!r}")
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


# --- the inbound seam ----------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookRequest:
    """A webhook as it arrived: headers (any case), the raw body, the query string."""

    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordRef:
    """A record to read from the source later (thin webhooks carry only an id)."""

    kind: str  # e.g. "order", "product"
    id: str
    version: str | None = None  # what the notification says changed, for the dedupe


@dataclass
class ReadLater:
    """Store and acknowledge the notification now; a job reads these records through the
    source's breaker and rate limit and records their events (``Connector.read``)."""

    topic: str
    dedupe_key: str
    refs: list[RecordRef]


@dataclass(frozen=True)
class Handshake:
    """Answer the sender as is (a subscription's validation token); nothing is stored."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"


InboundAnswer = ParsedWebhook | ReadLater | Handshake


@dataclass(frozen=True)
class JobReport:
    """What a job run returns when it has something to tell: its next state and the findings
    an operator should see (e.g. a webhook subscription it could not re-create, and what to
    do); the core records them like any other finding."""

    state: str | None
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True)
class ConnectorJob:
    """Scheduled work a connector contributes (subscription renewal, token refresh).

    ``run`` gets the state the job returned last time (None at first) and returns the next
    (or a ``JobReport`` with it); the core stores it (it survives restarts) and runs the
    job every ``interval_seconds``, and once as soon as a worker starts when
    ``run_at_start`` (a check that must not wait an interval after a deploy).
    """

    name: str
    interval_seconds: float
    run: Callable[[str | None], Awaitable[str | JobReport | None]]
    run_at_start: bool = False


# --- ports the core provides ----------------------------------------------------------------


class TokenStore(Protocol):
    """Where OAuth tokens live between calls and processes (``connectors._kit.oauth2``).

    ``key`` names one token (e.g. ``"<connection id>:oauth2"``). ``save`` keeps the whole
    token (access token, expiry, a rotated refresh token); ``lock`` serialises refreshes of
    one key across every process sharing the store, so a rotating refresh token is spent
    once. The core provides a database-backed store; ``connectors._kit.oauth2.MemoryTokenStore``
    serves tests and the embedded (single-process) mode.
    """

    async def load(self, key: str) -> dict[str, Any] | None: ...

    async def save(self, key: str, token: dict[str, Any]) -> None: ...

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        """``async with store.lock(key):`` — held while one process refreshes ``key``."""
        ...


class ConcurrencyLimiter(Protocol):
    """Slots for calls in flight to a remote system that limits them (``connectors._kit.
    concurrency``).

    ``async with limiter.slot(key, limit, hold_seconds=…):`` holds one of ``limit`` slots
    named ``key`` (e.g. ``"netsuite:<account>"``: two connections to one account share it)
    for one call. Waiters are served in arrival order, across processes too, for at most the
    limiter's own bound (the core keeps it well inside a delivery's lease); then it raises
    RateLimitedError, which is not an attempt: the delivery comes back a moment later.
    ``hold_seconds``: the most the call may take; a holder that dies (kill -9) gives its slot
    back after that. The core provides one shared through Redis by every worker process, or
    in-process when embedded; ``connectors._kit.concurrency.MemoryLimiter`` serves tests and
    connectors used without the core.
    """

    def slot(
        self, key: str, limit: int, *, hold_seconds: float
    ) -> AbstractAsyncContextManager[None]: ...


# --- the connector -------------------------------------------------------------------------


class Connector:
    """Base of every connector; a subclass implements the inbound and/or outbound half."""

    type_name: ClassVar[str]
    side: ClassVar[Side]
    Options: ClassVar[type[BaseModel]] = NoOptions
    Credentials: ClassVar[type[BaseModel]] = NoCredentials
    # credentials only needed to receive webhooks (required when a route comes from this
    # connection for a flow it does not poll)
    webhook_credentials: ClassVar[frozenset[str]] = frozenset()
    inbound_flows: ClassVar[frozenset[str]] = frozenset()
    outbound_flows: ClassVar[frozenset[str]] = frozenset()
    # the event types ``deliver`` takes, when it takes only some of its outbound flows' events
    # (an ERP that books RMAs but not the store's refunds); None: all of them. The core makes
    # no delivery of another type to it, instead of one that can only die.
    outbound_events: ClassVar[frozenset[str] | None] = None
    # Streams this connector can poll, e.g. {"inventory", "customers"}; empty: no polling.
    poll_streams: ClassVar[frozenset[str]] = frozenset()
    stock_updates: ClassVar[StockUpdates] = "none"
    reads_stock: ClassVar[bool] = False
    sensitive_headers: ClassVar[frozenset[str]] = frozenset()
    sensitive_fields: ClassVar[frozenset[str]] = frozenset()
    # mapping kinds ``deliver`` uses when a mapping exists (kernel.mappings): the core looks
    # them up before each attempt and hands over what it finds; a missing one parks nothing
    # (what it cannot do without goes in ``required_mappings``)
    mapping_kinds: ClassVar[frozenset[str]] = frozenset()
    # a webhook whose signature is valid but whose body the parser cannot handle (a
    # PayloadError with ``signed``, or a parser crash): "quarantine" keeps it, answers 200 (so
    # a sender that retries and then unsubscribes, like Shopify, stops) and lets an operator
    # replay it after a fix; "refuse" answers 400/422 and stores nothing, for senders that
    # show the error to a developer and send again (the custom-shop protocol)
    unparseable: ClassVar[Literal["quarantine", "refuse"]] = "quarantine"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("abstract", False):
            return
        problems = []
        if not isinstance(cls.__dict__.get("type_name", getattr(cls, "type_name", None)), str):
            problems.append("type_name (the config's `type:`)")
        if getattr(cls, "side", None) not in ("store", "erp"):
            problems.append('side ("store" or "erp")')
        for name in ("Options", "Credentials"):
            model = getattr(cls, name)
            if model.model_config.get("extra") != "forbid":
                problems.append(f'{name} with model_config extra="forbid"')
        unknown = (cls.inbound_flows | cls.outbound_flows) - set(FLOWS)
        if unknown:
            problems.append(f"flows among {', '.join(FLOWS)} (not {', '.join(sorted(unknown))})")
        if cls.mapping_kinds - set(MAPPING_KINDS):
            problems.append(f"mapping_kinds among {', '.join(MAPPING_KINDS)}")
        if problems:
            raise TypeError(f"connector {cls.__name__} must declare " + "; ".join(problems))

    def __init__(self, settings: ConnectionSettings, http: httpx.AsyncClient) -> None:
        self.config = settings
        self.http = http

    @classmethod
    def option_warnings(cls, options: Any) -> list[str]:
        """What real traffic will need that these options leave out (check-config warns)."""
        return []

    def redact_exchange(self, exchange: dict[str, Any]) -> dict[str, Any]:
        """One recorded HTTP exchange before it is stored, after the generic redaction and
        the declared ``sensitive_headers``/``sensitive_fields``: hide what only this system
        knows is a secret (a session id in an unnamed place). Return it (changed or not)."""
        return exchange

    # inbound ----------------------------------------------------------------------------
    async def receive(self, request: WebhookRequest) -> InboundAnswer:
        """A webhook → events, records to read later, or a handshake answer.

        Raises SignatureError (401) or PayloadError (400/422). The default verifies and
        parses with the two synchronous hooks below, which most connectors implement. What
        fails after the signature is verified is marked ``signed`` (the core keeps the body
        in quarantine, see ``unparseable``); a parser that crashes is reported the same way,
        so a body a later version can read is not lost.
        """
        self.verify_signature(request.headers, request.body)
        return self._parse_signed(request)

    async def reparse(self, request: WebhookRequest) -> InboundAnswer:
        """A quarantined webhook parsed again with today's code (an operator's replay).

        Its signature was verified when it arrived; the stored headers no longer carry it,
        so only the parse runs. Connectors whose ``receive`` does more override this too.
        """
        return self._parse_signed(request)

    def _parse_signed(self, request: WebhookRequest) -> InboundAnswer:
        try:
            return self.parse_webhook(request.headers, request.body)
        except PayloadError as exc:
            exc.signed = True
            raise
        except Exception as exc:  # a parser bug must not lose a signed body
            raise PayloadError(
                f"the parser failed on this body ({type(exc).__name__}: {exc}); "
                "a gateway bug: keep the body and replay it after the fix",
                signed=True,
            ) from exc

    def resent_topic(self, headers: Mapping[str, str]) -> str | None:
        """The topic a webhook names in its headers, read before its body is parsed; None
        (the default) when only the body says, or the headers are not sane.

        With it, the core answers a body it stored lately under the same topic (a re-send
        under a new webhook id) after ``verify_signature`` alone, without parsing it again.
        Implement it only when ``verify_signature`` is all that authenticates a webhook and
        the topic it returns is the one ``parse_webhook`` gives the same request.
        """
        return None

    def verify_signature(self, headers: Mapping[str, str], body: bytes) -> None:
        """The request is authentic (and carries the headers its sender always sends); a
        PayloadError from here is refused, never kept."""
        raise SignatureError(f"connection type {self.type_name} does not accept webhooks")

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ParsedWebhook:
        raise PayloadError(f"connection type {self.type_name} does not accept webhooks")

    async def read(self, ref: RecordRef) -> list[CanonicalEvent]:
        """The events of a record a thin webhook named (``ReadLater``)."""
        raise PermanentError(f"connection type {self.type_name} cannot read {ref.kind} records")

    # outbound ---------------------------------------------------------------------------
    def required_mappings(self, event: CanonicalEvent) -> list[MappingNeed]:
        """The mappings ``deliver`` will need; the core resolves them or parks the delivery."""
        return []

    async def deliver(self, event: CanonicalEvent, ctx: DeliveryContext) -> DeliveryResult:
        raise PermanentError(f"connection type {self.type_name} cannot receive {event.type}")

    # polling and scheduled work ---------------------------------------------------------
    async def poll(self, stream: str, cursor: str | None, limit: int) -> PollPage:
        """Changes on ``stream`` after ``cursor`` (None: from the start), at most ``limit``."""
        raise PermanentError(f"connection type {self.type_name} cannot poll {stream}")

    def jobs(self) -> list[ConnectorJob]:
        """Scheduled work of this connection (subscription renewal, token refresh)."""
        return []

    # reconciliation (scheduled) ---------------------------------------------------------
    async def fetch_availability(self, skus: list[str]) -> dict[tuple[str, str | None], Any]:
        """What a store shows as sellable now: (sku, location or None) → Decimal quantity."""
        raise PermanentError(f"connection type {self.type_name} cannot report stock levels")

    async def fetch_levels(self, skus: list[str]) -> list[InventoryLevel]:
        """What an ERP holds now for these SKUs, per location, read from the ERP itself:
        reconciliation compares the store with this, never with the gateway's own copy."""
        raise PermanentError(f"connection type {self.type_name} cannot read its stock levels")
