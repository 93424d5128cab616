"""Values that cross the boundary between the core and a connector."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kernel.canonical.events import CanonicalEvent


@dataclass(frozen=True)
class MappingNeed:
    """One mapping the delivery needs: ``kind`` (e.g. "sku") and our ``key``."""

    kind: str
    key: str


@dataclass(frozen=True)
class RemoteLink:
    """Our key of a business entity ↔ the remote system's id for it."""

    entity_type: str
    our_key: str
    remote_id: str


@dataclass(frozen=True)
class Finding:
    """Something an operator should know that is not a failure (reported, not retried).

    ``kind`` examples: tax_difference, negative_stock, refund_mismatch, stock_drift.
    """

    kind: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class DeliveryContext:
    # (entity_type, our_key) → remote id, for this destination connection
    links: dict[tuple[str, str], str] = field(default_factory=dict)
    # kind → our key → their key, resolved for what required_mappings() asked
    mappings: dict[str, dict[str, str]] = field(default_factory=dict)
    # decisions the core's rules made for this delivery; connectors obey, never decide
    # (their shapes per flow: kernel.directives)
    directives: dict[str, Any] = field(default_factory=dict)

    def link(self, entity_type: str, our_key: str) -> str | None:
        return self.links.get((entity_type, our_key))


@dataclass
class DeliveryResult:
    links: list[RemoteLink] = field(default_factory=list)
    summary: str = ""
    findings: list[Finding] = field(default_factory=list)


@dataclass
class ParsedWebhook:
    topic: str
    dedupe_key: str
    events: list[CanonicalEvent] = field(default_factory=list)


@dataclass(frozen=True)
class Unparsed:
    """A record a poll read but could not parse. The core keeps it in quarantine like a
    webhook (``inbound_events``, status ``quarantined``); an operator's replay hands
    ``headers`` and ``body`` to ``Connector.reparse``, so they must say what it is (e.g. the
    topic header a webhook of the same record would carry)."""

    topic: str
    dedupe_key: str  # the same version read again is the same row
    body: bytes
    error: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class PollPage:
    """One page of changes read from a system that cannot (or did not) send webhooks.

    ``cursor`` is opaque to the core: stored after the page's events are committed and
    handed back on the next poll, so a restart resumes where it stopped. ``unparsed``: what
    the page held that could not be parsed, kept in quarantine (never a reason to stop).
    """

    events: list[CanonicalEvent]
    cursor: str | None
    has_more: bool = False
    unparsed: list[Unparsed] = field(default_factory=list)
