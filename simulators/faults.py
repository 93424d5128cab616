"""Fault counters shared by the simulators: latency, outage and rate limit on demand."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar


@dataclass
class FaultCounters:
    """Injected misbehaviour; counters go down as requests consume them."""

    latency_seconds: float = 0.0
    outage_remaining: int = 0
    outage_until_cleared: bool = False
    rate_limit_remaining: int = 0
    rate_limit_retry_after: float = 1.0

    def take_outage(self) -> bool:
        """True if this request should see the outage (and count it)."""
        if self.outage_until_cleared or self.outage_remaining > 0:
            self.outage_remaining = max(0, self.outage_remaining - 1)
            return True
        return False

    def take_rate_limit(self) -> float | None:
        """Retry-After seconds if this request should be throttled, else None."""
        if self.rate_limit_remaining > 0:
            self.rate_limit_remaining -= 1
            return self.rate_limit_retry_after
        return None

    def snapshot(self) -> dict[str, Any]:
        return {
            "latency_seconds": self.latency_seconds,
            "outage": {"count": self.outage_remaining, "until_cleared": self.outage_until_cleared},
            "rate_limit": {
                "count": self.rate_limit_remaining,
                "retry_after": self.rate_limit_retry_after,
            },
        }


F = TypeVar("F", bound=FaultCounters)


class FaultControls(Generic[F]):
    """The simulators' fault-injection methods, over their ``faults`` counters."""

    faults: F

    def set_latency(self, seconds: float) -> None:
        self.faults.latency_seconds = max(0.0, seconds)

    def outage(self, count: int | None = None) -> None:
        """503 for the next ``count`` requests, or until cleared when None."""
        self.faults.outage_until_cleared = count is None
        self.faults.outage_remaining = 0 if count is None else count

    def rate_limit(self, count: int, retry_after: float = 1.0) -> None:
        """429 with ``Retry-After`` for the next ``count`` requests."""
        self.faults.rate_limit_remaining = count
        self.faults.rate_limit_retry_after = retry_after

    def set_common_faults(self, body: Mapping[str, Any]) -> None:
        """Apply the faults every simulator knows from a control body (``/_sim/faults``):
        ``latency_seconds``, ``outage`` {count | until_cleared}, ``rate_limit`` {count,
        retry_after}. Bad values raise KeyError/TypeError/ValueError for the caller to report."""
        if "latency_seconds" in body:
            self.set_latency(float(body["latency_seconds"]))
        if "outage" in body:
            outage = body["outage"] or {}
            self.outage(None if outage.get("until_cleared") else int(outage.get("count", 0)))
        if "rate_limit" in body:
            rl = body["rate_limit"] or {}
            self.rate_limit(int(rl.get("count", 0)), float(rl.get("retry_after", 1.0)))
