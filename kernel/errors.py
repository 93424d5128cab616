"""The typed errors a connector raises on purpose: they decide what happens next.

Outbound (delivery): transient → retried within the retry window; rate-limited → waits
``retry_after``, not an attempt; permanent → dead letter with the remote message; hold → a
person decides; needs-mapping → parked until the mapping exists. Inbound: a bad signature
is 401, a body that cannot be understood 400/422. Any error may carry the remote links made
before it failed (a two-step write that failed half way must not redo the first half).
"""

from __future__ import annotations

from typing import Any

from kernel.types import MappingNeed, RemoteLink

# --- outbound errors: they steer retries --------------------------------------------------


class ConnectorError(Exception):
    """Base of every error a connector raises on purpose."""

    def __init__(
        self, message: str, *, detail: Any = None, links: list[RemoteLink] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        # remote ids made before the failure: the core remembers them even so
        self.links = list(links or [])


class TransientError(ConnectorError):
    """Worth retrying as is: timeouts, 5xx, connection failures. Counts as an attempt."""


class RateLimitedError(ConnectorError):
    """The remote asked us to slow down; wait ``retry_after`` seconds. Not an attempt."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        detail: Any = None,
        links: list[RemoteLink] | None = None,
    ) -> None:
        super().__init__(message, detail=detail, links=links)
        self.retry_after = retry_after


class PermanentError(ConnectorError):
    """Retrying the same request cannot succeed; a person has to look (dead letter)."""


class HoldError(ConnectorError):
    """A person has to decide (e.g. an amendment to an ERP order that is already shipped).

    The delivery is held with this message as the reason until an operator approves (send
    again) or rejects it through ``/api/v1/approvals``. Not an attempt.
    """


# what a missing mapping of these kinds means, for the parked reason an operator reads
_MAPPING_HINTS = {
    "non_sku_item": "a line without a SKU (gift card, tip, custom item) is booked on the ERP "
    "item mapped for its kind: map the kind, or 'default' for every kind, to an ERP item "
    "(PUT /api/v1/mappings/non_sku_item/<connection>)",
}


class NeedsMappingError(ConnectorError):
    """The delivery waits (parked) until these mappings exist, then goes out by itself."""

    def __init__(
        self,
        missing: list[MappingNeed],
        *,
        links: list[RemoteLink] | None = None,
        message: str | None = None,
    ) -> None:
        names = ", ".join(f"{m.kind} {m.key!r}" for m in missing)
        hints = "; ".join(
            dict.fromkeys(_MAPPING_HINTS[m.kind] for m in missing if m.kind in _MAPPING_HINTS)
        )
        default = f"no mapping for {names}" + (f" ({hints})" if hints else "")
        # ``message``: what the operator must decide, when "no mapping for …" does not say it
        super().__init__(message or default, links=links)
        self.missing = missing


# --- inbound errors: they become 401 / 400 / 422 ------------------------------------------


class SignatureError(Exception):
    """The webhook is not signed by whom it claims to be (HTTP 401)."""


class PayloadError(Exception):
    """The webhook body cannot be understood (HTTP 400 or 422); the message says why.

    ``topic`` and ``dedupe_key``: what the connector knew of the delivery before its body
    failed (read from headers), so a kept body is recognised when the sender sends it again.
    ``signed``: the signature was verified before the body failed (``Connector.receive``
    sets it); the core then keeps the body in quarantine instead of refusing it, unless the
    connector's ``unparseable`` says "refuse".
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 422,
        topic: str | None = None,
        dedupe_key: str | None = None,
        signed: bool = False,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.topic = topic
        self.dedupe_key = dedupe_key
        self.signed = signed
