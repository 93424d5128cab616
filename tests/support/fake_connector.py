"""One fake connector for engine tests, injected when the runtime is built
(``start_runtime(..., connectors={"erp": FakeConnector(...)})``), never patched in later.

It keeps the contract like a real one (side, options, credentials, capabilities) and is
scripted: errors to raise in turn, webhook answers (events, records to read later, a
handshake), records it can read, jobs it contributes. Everything it was asked is recorded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from kernel.canonical.events import CanonicalEvent
from kernel.contract import (
    ConnectionSettings,
    Connector,
    ConnectorJob,
    InboundAnswer,
    RecordRef,
    Side,
    WebhookRequest,
)
from kernel.errors import PermanentError
from kernel.mappings import mapping_needs
from kernel.types import DeliveryContext, DeliveryResult, MappingNeed, RemoteLink


@dataclass
class Script:
    deliver_errors: list[Exception] = field(default_factory=list)
    answers: list[InboundAnswer] = field(default_factory=list)
    records: dict[tuple[str, str], list[CanonicalEvent]] = field(default_factory=dict)
    read_errors: list[Exception] = field(default_factory=list)
    jobs: list[ConnectorJob] = field(default_factory=list)


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
        required_kinds: frozenset[str] = frozenset(),
        mapping_kinds: frozenset[str] = frozenset(),
    ) -> None:
        settings = ConnectionSettings(id=connection_id, type="fake", base_url="http://fake")
        super().__init__(settings, http=None)  # type: ignore[arg-type]
        self.script = script or Script()
        self.side = side  # type: ignore[misc,assignment]  # a store or an ERP, as needed
        # the mapping kinds it cannot deliver without, and those it uses when they exist
        self.required_kinds = required_kinds
        self.mapping_kinds = mapping_kinds  # type: ignore[misc]
        self.delivered: list[tuple[str, str]] = []
        self.contexts: list[DeliveryContext] = []
        self.received: list[WebhookRequest] = []
        self.reads: list[RecordRef] = []

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

    def required_mappings(self, event: CanonicalEvent) -> list[MappingNeed]:
        return mapping_needs(event, self.required_kinds)

    async def deliver(self, event: CanonicalEvent, ctx: DeliveryContext) -> DeliveryResult:
        self.delivered.append((event.type, event.entity_key))
        self.contexts.append(ctx)
        if self.script.deliver_errors:
            raise self.script.deliver_errors.pop(0)
        return DeliveryResult(links=[RemoteLink(event.entity_type, event.entity_key, "R-1")])

    def jobs(self) -> list[ConnectorJob]:
        return list(self.script.jobs)


def job(
    name: str, interval: float, run: Callable[[str | None], Awaitable[str | None]]
) -> ConnectorJob:
    return ConnectorJob(name=name, interval_seconds=interval, run=run)


__all__ = ["FakeConnector", "Script", "job"]
