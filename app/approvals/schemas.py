"""Request and response shapes of /api/v1/approvals."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.api.params import BodyId, SafeStr

BULK_DECISION_CAP = 500
NOTE_MAX = 1000

Outcome = Literal["approved", "rejected", "reopened"]


class HeldPrice(BaseModel):
    """One price of a held price.changed that tripped the guard."""

    kind: str = Field(
        description="base, sale, break, group, group_break, customer (or "
        "effective: planned before prices were guarded one by one)"
    )
    key: str = Field(
        description="which one: the sale's start, the break's minimum quantity, the group, "
        "group@quantity, the customer key; empty for the base price"
    )
    old: str | None = Field(description="its last accepted value (decimal string)")
    new: str = Field(description="the value that would go out (decimal string)")
    change_percent: str | None = Field(
        description="signed, one decimal; null for a change from zero"
    )


class ApprovalOut(BaseModel):
    """A held delivery with what a person needs to judge it."""

    id: int
    flow: str
    event_type: str
    source: str
    destination: str
    entity_key: str
    status: str = Field(description="always held in this list")
    held_reason: str | None = Field(description="why it waits for a person")
    created_at: datetime
    previous_price: str | None = Field(
        default=None,
        description="price.changed: the last price accepted for the destination (decimal string)",
    )
    effective_price: str | None = Field(
        default=None, description="price.changed: the price that would go out (decimal string)"
    )
    held_prices: list[HeldPrice] = Field(
        default_factory=list,
        description="price.changed: the prices that tripped the guard, each against its own "
        "last accepted value",
    )


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: SafeStr | None = Field(
        default=None,
        max_length=NOTE_MAX,
        description="why; kept with the delivery (and in last_error when rejecting)",
    )


class DecisionOut(BaseModel):
    id: int
    decision: Outcome
    status: str = Field(
        description="pending after an approval, rejected after a rejection, held after a re-open"
    )
    note: str | None
    decided_by: str = Field(description="the role of the API key that decided")
    decided_at: datetime
    price_baseline: str | None = Field(
        default=None,
        description="price.changed approvals: the effective price approved; every price the "
        "delivery carries is now its guard baseline",
    )
    queued: list[int] = Field(
        default_factory=list,
        description="deliveries queued by the decision: the approved one, or after a "
        "rejection the ones that waited behind it",
    )


class BulkDecisionRequest(BaseModel):
    """Which held deliveries to decide: `ids` or at least one filter (all given must match)."""

    model_config = ConfigDict(extra="forbid")

    ids: list[BodyId] | None = Field(default=None, max_length=BULK_DECISION_CAP)
    destination: SafeStr | None = None
    flow: SafeStr | None = None
    event_type: SafeStr | None = None
    entity_key: SafeStr | None = None
    note: SafeStr | None = Field(default=None, max_length=NOTE_MAX)
    dry_run: bool = Field(default=False, description="only report what would be decided")

    @model_validator(mode="after")
    def _bounded(self) -> BulkDecisionRequest:
        filters = (self.destination, self.flow, self.event_type, self.entity_key)
        if not self.ids and all(f is None for f in filters):
            raise ValueError(
                "give ids or a filter (destination, flow, event_type, entity_key), "
                "so a decision never sweeps every held delivery"
            )
        return self


class BulkDecisionOut(BaseModel):
    decision: Outcome
    decided: list[int] = Field(description="ids decided (with dry_run: that would be)")
    count: int
    dry_run: bool
    capped: bool = Field(
        description=f"more than {BULK_DECISION_CAP} matched; call again for the rest"
    )
    cap: int = BULK_DECISION_CAP
    skipped: list[int] = Field(
        default_factory=list,
        description="requested ids not decided: unknown, filtered out, or not held",
    )
    queued: list[int] = Field(
        default_factory=list,
        description="deliveries queued: the approved ones, or those that waited behind the "
        "rejected ones",
    )
