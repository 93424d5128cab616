"""The business rules in force: the config file's ``rules:`` with run-time overrides on top.

Each section (orders, inventory, pricing, customers, shipments, returns) is a pydantic model
owned by its flow module. Operators change a section through ``PUT /api/v1/rules/{section}``;
the override is stored in ``rule_overrides`` and read on every planning transaction, so every
process (API and workers) applies the same rules without a restart.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.dbutil import upsert
from app.flows.customers.rules import CustomerRules
from app.flows.inventory.rules import InventoryRules
from app.flows.orders.rules import OrderRules
from app.flows.products.rules import PricingRules
from app.flows.returns.rules import ReturnRules
from app.flows.shipments.rules import ShipmentRules
from app.models import RuleOverride, utcnow


class RulesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    orders: OrderRules = Field(default_factory=OrderRules)
    inventory: InventoryRules = Field(default_factory=InventoryRules)
    pricing: PricingRules = Field(default_factory=PricingRules)
    customers: CustomerRules = Field(default_factory=CustomerRules)
    shipments: ShipmentRules = Field(default_factory=ShipmentRules)
    returns: ReturnRules = Field(default_factory=ReturnRules)


SECTIONS: tuple[str, ...] = tuple(RulesConfig.model_fields)


class RulesError(ValueError):
    """Rules that do not validate; the message names the section and field."""


def parse_rules(data: dict[str, Any]) -> RulesConfig:
    try:
        return RulesConfig.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"rules.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        ]
        raise RulesError("; ".join(problems)) from None


# Core columns, built once: every planning transaction reads them (no ORM objects needed)
_OVERRIDES = sa.select(
    RuleOverride.__table__.c.flow,  # type: ignore[attr-defined]
    RuleOverride.__table__.c.rules,  # type: ignore[attr-defined]
)


async def effective_rules(session: AsyncSession, base: dict[str, Any]) -> RulesConfig:
    """The config's rules with each overridden section's fields replaced."""
    rows = await session.execute(_OVERRIDES)
    return rules_with_overrides(base, [(str(flow), dict(rules)) for flow, rules in rows])


def rules_with_overrides(
    base: dict[str, Any], overrides: list[tuple[str, dict[str, Any]]]
) -> RulesConfig:
    """The config's rules with these stored overrides (section, fields) on top.

    Validated once per distinct input: every webhook plans with the rules, and validating
    them cost more than reading the overrides. The cached model is shared: never change it.
    """
    key = orjson.dumps([base, sorted(overrides)], option=orjson.OPT_SORT_KEYS, default=str)
    cached = _MERGED.get(key)
    if cached is not None:
        return cached
    merged: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for flow, rules in overrides:
        section = dict(merged.get(flow) or {})
        section.update(rules)
        merged[flow] = section
    parsed = parse_rules(merged)
    if len(_MERGED) >= _MERGED_MAX:
        _MERGED.clear()
    _MERGED[key] = parsed
    return parsed


# the config's rules and the overrides, as JSON → the merged rules
_MERGED: dict[bytes, RulesConfig] = {}
_MERGED_MAX = 64


async def set_override(
    session: AsyncSession, base: dict[str, Any], section: str, values: dict[str, Any], who: str
) -> RulesConfig:
    """Validate and store an override of one section; returns the rules now in force."""
    if section not in SECTIONS:
        raise RulesError(f"unknown rules section {section!r}; known: {', '.join(SECTIONS)}")
    current = await effective_rules(session, base)
    candidate = current.model_dump(mode="json")
    candidate[section] = {**candidate[section], **values}
    rules = parse_rules(candidate)  # refuse before storing anything
    existing = await session.get(RuleOverride, section)
    stored = {**(existing.rules if existing else {}), **values}
    await upsert(
        session,
        RuleOverride,
        {"flow": section, "rules": stored, "updated_at": utcnow(), "updated_by": who},
        key=["flow"],
    )
    return rules


async def clear_override(session: AsyncSession, section: str) -> None:
    await session.execute(sa.delete(RuleOverride).where(col(RuleOverride.flow) == section))
