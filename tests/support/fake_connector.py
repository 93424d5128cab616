"""One fake connector for engine tests, injected when the runtime is built
(``start_runtime(..., connectors={"erp": FakeConnector(...)})``, ``create_app(settings,
config, connectors)``, ``running_app(..., connectors=...)``), never patched in later.

It keeps the contract like a real connector: a connection id, a side, capabilities declared
per instance (what a real one declares on its class), and the base class's refusals for what
it was not declared to do. What it answers is scripted (``Script``, changeable during a test):

- deliveries: errors raised in turn (``deliver_errors``); while ``failing`` is set, every
  delivery fails with it (an outage, a store refusing writes); ``decide(event, ctx)``
  decides the rest one event at a time: raise to fail, return a ``DeliveryResult`` (links,
  findings, a summary), or None for the default answer, a link to remote id ``R-1``. It may
  be async, e.g. to make an HTTP call through the client given as ``http=`` so the engine
  captures the exchange;
- mappings: ``required_kinds`` it cannot deliver without (their keys from
  ``kernel.mappings``, like a real connector's ``required_mappings``), ``mapping_kinds`` it
  uses when they exist; ``mapping_errors`` make ``required_mappings`` crash in turn (a bug);
- webhooks: answers in turn (events, records to read later, a handshake); records it can
  read (``records``, ``read_errors``);
- polling: a change log per stream in ``poll_streams`` (``changes``), a page at a time, the
  cursor being the index of the next change; ``poll_errors`` fail polls in turn;
- stock: what it shows as available (``stock``), when declared ``reads_stock``; an ERP's
  own stock read back (``levels``, None: it cannot be read);
  ``stock_updates`` and ``sensitive_headers``/``sensitive_fields`` are declared as given;
- scheduled jobs it contributes (``jobs``).

Everything it is asked is recorded: ``calls`` (each delivery with its context and error;
``delivered``, ``contexts`` and ``accepted`` are views of it), ``received``, ``reads``,
``polls``, ``stock_asked`` and ``levels_asked``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import httpx

from kernel.canonical.events import CanonicalEvent
from kernel.canonical.inventory import InventoryLevel
from kernel.contract import (
    ConnectionSettings,
    Connector,
    ConnectorJob,
    InboundAnswer,
    RecordRef,
    Side,
    StockUpdates,
    WebhookRequest,
)
from kernel.errors import PermanentError, TransientError
from kernel.mappings import mapping_needs
from kernel.types import DeliveryContext, DeliveryResult, MappingNeed, PollPage, RemoteLink

Decision = Callable[
    [CanonicalEvent, DeliveryContext],
    DeliveryResult | Awaitable[DeliveryResult | None] | None,
]


@dataclass
class Script:
    # deliveries: errors in turn, then ``failing`` (while set), then ``decide``
    deliver_errors: list[Exception] = field(default_factory=list)
    failing: Exception | None = None
    decide: Decision | None = None
    mapping_errors: list[Exception] = field(default_factory=list)
    # the inbound seam
    answers: list[InboundAnswer] = field(default_factory=list)
    records: dict[tuple[str, str], list[CanonicalEvent]] = field(default_factory=dict)
    read_errors: list[Exception] = field(default_factory=list)
    # polling: stream → its change log; stock: (sku, location or None) → available
    changes: dict[str, list[CanonicalEvent]] = field(default_factory=dict)
    poll_errors: list[Exception] = field(default_factory=list)
    stock: dict[tuple[str, str | None], Decimal] = field(default_factory=dict)
    # an ERP's own stock (fetch_levels): sku → on hand at ``level_location``; None: unreadable
    levels: dict[str, Decimal] | None = None
    level_location: str = "1"
    jobs: list[ConnectorJob] = field(default_factory=list)


@dataclass
class Call:
    """One ``deliver`` call: what it got and the error it raised (None: it succeeded)."""

    event: CanonicalEvent
    ctx: DeliveryContext
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class FakeConnector(Connector):
    type_name = "fake"
    side = "erp"
    inbound_flows = frozenset({"orders", "customers", "inventory"})
    outbound_flows = frozenset({"orders", "customers", "inventory", "products"})

    def __init__(
        self,
        connection_id: str = "erp",
        script: Script | None = None,
        *,
        side: Side = "erp",
        required_kinds: Collection[str] = frozenset(),
        mapping_kinds: Collection[str] = frozenset(),
        poll_streams: Collection[str] = frozenset(),
        reads_stock: bool = False,
        stock_updates: StockUpdates = "none",
        sensitive_headers: Collection[str] = frozenset(),
        sensitive_fields: Collection[str] = frozenset(),
        http: httpx.AsyncClient | None = None,
    ) -> None:
        settings = ConnectionSettings(id=connection_id, type="fake", base_url="http://fake")
        super().__init__(settings, http)  # type: ignore[arg-type]  # None: it makes no calls
        self.script = script or Script()
        # what a real connector declares on its class, per instance (a store or an ERP...)
        self.side = side  # type: ignore[misc,assignment]
        # the mapping kinds it cannot deliver without, and those it uses when they exist
        self.required_kinds = frozenset(required_kinds)
        self.mapping_kinds = frozenset(mapping_kinds)  # type: ignore[misc]
        self.poll_streams = frozenset(poll_streams)  # type: ignore[misc]
        self.reads_stock = reads_stock  # type: ignore[misc]
        self.stock_updates = stock_updates  # type: ignore[misc]
        self.sensitive_headers = frozenset(sensitive_headers)  # type: ignore[misc]
        self.sensitive_fields = frozenset(sensitive_fields)  # type: ignore[misc]
        self.calls: list[Call] = []
        self.received: list[WebhookRequest] = []
        self.reads: list[RecordRef] = []
        self.polls: list[tuple[str, str | None]] = []
        self.stock_asked: list[list[str]] = []
        self.levels_asked: list[list[str]] = []

    # what was delivered -------------------------------------------------------------------
    @property
    def delivered(self) -> list[tuple[str, str]]:
        """(event type, entity key) of every delivery call, failed or not, in order."""
        return [(c.event.type, c.event.entity_key) for c in self.calls]

    @property
    def contexts(self) -> list[DeliveryContext]:
        """The context of every delivery call, in order."""
        return [c.ctx for c in self.calls]

    @property
    def accepted(self) -> list[str]:
        """Entity keys of the deliveries it took (no error), in order."""
        return [c.event.entity_key for c in self.calls if c.ok]

    # inbound ------------------------------------------------------------------------------
    async def receive(self, request: WebhookRequest) -> InboundAnswer:
        self.received.append(request)
        if not self.script.answers:
            raise PermanentError("the fake has no scripted webhook answer")
        return self.script.answers.pop(0)

    async def read(self, ref: RecordRef) -> list[CanonicalEvent]:
        self.reads.append(ref)
        if self.script.read_errors:
            raise self.script.read_errors.pop(0)
        return list(self.script.records.get((ref.kind, ref.id), []))

    # outbound -----------------------------------------------------------------------------
    def required_mappings(self, event: CanonicalEvent) -> list[MappingNeed]:
        if self.script.mapping_errors:
            raise self.script.mapping_errors.pop(0)
        return mapping_needs(event, self.required_kinds)

    async def deliver(self, event: CanonicalEvent, ctx: DeliveryContext) -> DeliveryResult:
        call = Call(event, ctx)
        try:
            return await self._answer(event, ctx)
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            self.calls.append(call)

    async def _answer(self, event: CanonicalEvent, ctx: DeliveryContext) -> DeliveryResult:
        # (a traceback of its own each time: a scripted error may be raised again and again)
        if self.script.deliver_errors:
            raise self.script.deliver_errors.pop(0).with_traceback(None)
        if self.script.failing is not None:
            raise self.script.failing.with_traceback(None)
        result = None
        if self.script.decide is not None:
            decided = self.script.decide(event, ctx)
            result = await decided if inspect.isawaitable(decided) else decided
        return result or DeliveryResult(
            links=[RemoteLink(event.entity_type, event.entity_key, "R-1")]
        )

    # polling, stock and scheduled work ----------------------------------------------------
    async def poll(self, stream: str, cursor: str | None, limit: int) -> PollPage:
        if stream not in self.poll_streams:
            return await super().poll(stream, cursor, limit)
        self.polls.append((stream, cursor))
        if self.script.poll_errors:
            raise self.script.poll_errors.pop(0)
        changes = self.script.changes.get(stream, [])
        start = int(cursor or 0)
        page = changes[start : start + limit]
        end = start + len(page)
        return PollPage(events=page, cursor=str(end), has_more=end < len(changes))

    async def fetch_availability(self, skus: list[str]) -> dict[tuple[str, str | None], Decimal]:
        if not self.reads_stock:
            await super().fetch_availability(skus)
        self.stock_asked.append(list(skus))
        return {key: value for key, value in self.script.stock.items() if key[0] in skus}

    async def fetch_levels(self, skus: list[str]) -> list[InventoryLevel]:
        self.levels_asked.append(sorted(skus))
        if self.script.levels is None:
            raise TransientError(f"{self.config.id} cannot be read (scripted)")
        now = datetime.now(UTC)
        return [
            InventoryLevel(
                source=self.config.id,
                sku=sku,
                location=self.script.level_location,
                on_hand=qty,
                as_of=now,
            )
            for sku, qty in self.script.levels.items()
            if sku in skus
        ]

    def jobs(self) -> list[ConnectorJob]:
        return list(self.script.jobs)


def job(
    name: str, interval: float, run: Callable[[str | None], Awaitable[str | None]]
) -> ConnectorJob:
    return ConnectorJob(name=name, interval_seconds=interval, run=run)


__all__ = ["Call", "FakeConnector", "Script", "job"]
