"""/api/v1 rules, findings and event schemas.

Rules: the config file's ``rules:`` with run-time overrides on top (``app.flows.rules``).
Each section gets its own ``PUT /rules/<section>`` so OpenAPI shows that section's fields;
an override is validated together with the rules in force before anything is stored.
Findings: what operators should see that is not a failure. Schemas: the canonical events.

No ``from __future__ import annotations`` here: the per-section routes are built in a loop
and FastAPI must see their body models as real objects, not names to resolve later.
"""

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, cast

import sqlalchemy as sa
from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.api.deps import OperatorActor, OperatorDep, PiiDep, RuntimeDep, SessionDep
from app.api.pii import mask_response
from app.audit.service import record_action
from app.errors import NotFound, Unprocessable
from app.flows.rules import (
    SECTIONS,
    RulesConfig,
    RulesError,
    clear_override,
    effective_rules,
    set_override,
)
from app.models import Finding, RuleOverride
from app.ops.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, decode_cursor, page_of
from app.ops.queries import as_utc
from app.runtime import Runtime
from kernel.canonical.events import event_json_schemas

router = APIRouter()

_FORBIDDEN: dict[int | str, dict[str, str]] = {403: {"description": "needs an operator key"}}
_UNKNOWN_SECTION: dict[int | str, dict[str, str]] = {
    404: {"description": "unknown rules section; the message lists the known ones"}
}


# --- rules: shapes ------------------------------------------------------------------------


class OverrideOut(BaseModel):
    section: str
    fields: list[str] = Field(description="fields set through the API; the rest is the config's")
    updated_at: datetime
    updated_by: str | None = Field(description="role of the API key that set it")


class RulesOut(BaseModel):
    rules: RulesConfig = Field(description="the rules in force, every section")
    overridden: list[str] = Field(description="sections with run-time overrides")
    overrides: list[OverrideOut]


class RuleSectionOut(BaseModel):
    section: str
    rules: dict[str, Any] = Field(
        description="the section's rules in force; GET /rules shows each section's schema"
    )
    overridden: bool
    override: OverrideOut | None = Field(description="what the API changed, if anything")


# --- rules: queries -----------------------------------------------------------------------


def _unknown_section(section: str) -> NotFound:
    return NotFound(f"no rules section {section!r}", hint=f"known sections: {', '.join(SECTIONS)}")


def _section_or_404(section: str) -> str:
    if section not in SECTIONS:
        raise _unknown_section(section)
    return section


def _override_out(row: RuleOverride) -> OverrideOut:
    return OverrideOut(
        section=row.flow,
        fields=sorted(row.rules),
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


async def _overrides(session: AsyncSession) -> dict[str, OverrideOut]:
    rows = (
        await session.execute(sa.select(RuleOverride).order_by(col(RuleOverride.flow)))
    ).scalars()
    # an override of a section a newer version no longer has is ignored by the rules too
    return {row.flow: _override_out(row) for row in rows if row.flow in SECTIONS}


async def _in_force(session: AsyncSession, rt: Runtime) -> RulesConfig:
    try:
        return await effective_rules(session, rt.config.rules)
    except RulesError as exc:  # a stored override no longer fits a changed config file
        raise Unprocessable(
            f"the rules in force do not validate: {exc}",
            hint="fix the config file, or DELETE /api/v1/rules/{section} to drop the override",
        ) from None


async def _section_out(session: AsyncSession, rt: Runtime, section: str) -> RuleSectionOut:
    rules = await _in_force(session, rt)
    override = (await _overrides(session)).get(section)
    return RuleSectionOut(
        section=section,
        rules=getattr(rules, section).model_dump(mode="json"),
        overridden=override is not None,
        override=override,
    )


# --- rules: endpoints ---------------------------------------------------------------------


@router.get(
    "/rules",
    tags=["rules"],
    summary="The business rules in force",
    description="The config file's `rules:` with the run-time overrides on top, every "
    "section, and which sections are overridden. Each section's fields are in this "
    "response's schema.",
)
async def get_rules(session: SessionDep, rt: RuntimeDep) -> RulesOut:
    rules = await _in_force(session, rt)
    overrides = await _overrides(session)
    return RulesOut(rules=rules, overridden=sorted(overrides), overrides=list(overrides.values()))


@router.get(
    "/rules/{section}",
    tags=["rules"],
    summary="One section of the rules in force",
    description=f"Sections: {', '.join(SECTIONS)}.",
    responses=_UNKNOWN_SECTION,
)
async def get_rule_section(section: str, session: SessionDep, rt: RuntimeDep) -> RuleSectionOut:
    return await _section_out(session, rt, _section_or_404(section))


async def _put_section(
    session: AsyncSession, rt: Runtime, section: str, values: dict[str, Any], who: str
) -> RuleSectionOut:
    if not values:
        raise Unprocessable(
            f"give at least one field of rules.{section} to change",
            hint=f"GET /api/v1/rules/{section} shows the fields and their values",
        )
    try:
        await set_override(session, rt.config.rules, section, values, who)
    except RulesError as exc:
        raise Unprocessable(
            str(exc), hint="nothing was stored; fix the named field and send it again"
        ) from None
    return await _section_out(session, rt, section)


def _patch_model(section: str, model: type[BaseModel]) -> type[BaseModel]:
    """The section's fields, all optional: a PUT sends only the fields it changes."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        optional = copy.copy(info)  # keeps type, constraints and description
        optional.default = None
        optional.default_factory = None
        fields[name] = (info.annotation, optional)
    patch: type[BaseModel] = create_model(
        f"{model.__name__}Change",
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"Fields of rules.{section} to change; the others keep their values.",
        **fields,
    )
    return patch


def _add_section_put(section: str, model: type[BaseModel]) -> None:
    patch = _patch_model(section, model)

    async def put_section(
        body: Annotated[patch, Body()],  # type: ignore[valid-type]
        session: SessionDep,
        rt: RuntimeDep,
        actor: OperatorActor,
    ) -> RuleSectionOut:
        values = cast(BaseModel, body).model_dump(mode="json", exclude_unset=True)
        out = await _put_section(session, rt, section, values, actor.role)
        await record_action(session, actor, "rules.change", f"rules:{section}", values)
        return out

    router.add_api_route(
        f"/rules/{section}",
        put_section,
        methods=["PUT"],
        tags=["rules"],
        summary=f"Change rules.{section}",
        description=f"Only the fields sent change; they are validated with the rest of the "
        f"rules in force (422 names the field) and win over the config file until "
        f"DELETE /rules/{section}. Every process applies them from its next transaction.",
        responses=_FORBIDDEN,
        operation_id=f"put_rules_{section}",
    )


for _section, _field in RulesConfig.model_fields.items():
    assert isinstance(_field.annotation, type) and issubclass(_field.annotation, BaseModel)
    _add_section_put(_section, _field.annotation)


@router.put(
    "/rules/{section}",
    tags=["rules"],
    summary="Change an unknown section (always 404)",
    include_in_schema=False,
    dependencies=[OperatorDep],
)
async def put_unknown_section(section: str) -> RuleSectionOut:
    # every known section has its own route above, so only unknown ones land here
    raise _unknown_section(section)


@router.delete(
    "/rules/{section}",
    tags=["rules"],
    summary="Drop the overrides of a section",
    description="The section goes back to the config file's values.",
    responses={**_UNKNOWN_SECTION, **_FORBIDDEN},
)
async def delete_rule_section(
    section: str, session: SessionDep, rt: RuntimeDep, actor: OperatorActor
) -> RuleSectionOut:
    await clear_override(session, _section_or_404(section))
    out = await _section_out(session, rt, section)
    await record_action(session, actor, "rules.reset", f"rules:{section}")
    return out


# --- findings -----------------------------------------------------------------------------


class FindingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str = Field(description="e.g. tax_difference, stock_drift, price_adjusted")
    connection_id: str | None
    entity_key: str | None
    delivery_id: int | None
    message: str
    data: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class FindingFilter:
    kind: str | None = None
    entity_key: str | None = None
    connection_id: str | None = None
    since: datetime | None = None

    def apply(self, stmt: Any) -> Any:
        for column, value in (
            (Finding.kind, self.kind),
            (Finding.entity_key, self.entity_key),
            (Finding.connection_id, self.connection_id),
        ):
            if value is not None:
                stmt = stmt.where(col(column) == value)
        if self.since is not None:
            stmt = stmt.where(col(Finding.created_at) >= as_utc(self.since))
        return stmt


async def list_findings(
    session: AsyncSession, where: FindingFilter, cursor: str | None, limit: int
) -> Page[FindingOut]:
    stmt = where.apply(sa.select(Finding))
    after = decode_cursor(cursor, int)
    if after is not None:
        stmt = stmt.where(col(Finding.id) < after)
    stmt = stmt.order_by(col(Finding.id).desc()).limit(limit + 1)
    rows, next_cursor = page_of(list((await session.execute(stmt)).scalars()), limit, _id_of)
    return Page(items=[FindingOut.model_validate(r) for r in rows], next_cursor=next_cursor)


def _id_of(finding: Finding) -> int:
    return int(finding.id or 0)


@router.get(
    "/findings",
    tags=["findings"],
    summary="List findings",
    description="What operators should see that is not a failure: tax or refund differences, "
    "negative ERP stock, stock drift, duplicate customers linked, MAP clamps. `since` bounds "
    "`created_at` (inclusive; no offset means UTC). Newest first; page with `cursor` = the "
    "previous page's `next_cursor`.",
)
async def get_findings(
    session: SessionDep,
    may_see_pii: PiiDep,
    kind: Annotated[str | None, Query(description="e.g. tax_difference")] = None,
    entity_key: Annotated[str | None, Query(description="e.g. shop:order:1001")] = None,
    connection_id: Annotated[str | None, Query(description="connection id")] = None,
    since: datetime | None = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[FindingOut]:
    where = FindingFilter(kind, entity_key, connection_id, since)
    page = await list_findings(session, where, cursor, limit)
    if may_see_pii:
        return page
    # a finding's data can name a customer (a duplicate linked, a tax difference on an order)
    return Page(items=[mask_response(f) for f in page.items], next_cursor=page.next_cursor)


# --- event schemas ------------------------------------------------------------------------


class EventSchemaOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    event_type: str = Field(description="e.g. order.created")
    entity: str
    flow: str
    description: str
    json_schema: dict[str, Any] = Field(
        alias="schema", description="JSON Schema of the event's payload"
    )


def _schemas() -> dict[str, EventSchemaOut]:
    return {
        name: EventSchemaOut(
            event_type=name,
            entity=kind["entity"],
            flow=kind["flow"],
            description=kind["description"],
            json_schema=kind["schema"],
        )
        for name, kind in event_json_schemas().items()
    }


@router.get(
    "/schemas",
    tags=["schemas"],
    summary="JSON Schemas of the canonical events",
    description="Every canonical event type with its entity, flow, description and the JSON "
    "Schema of its payload: what a custom connector parses into. All fit one page.",
)
async def list_schemas() -> Page[EventSchemaOut]:
    return Page(items=list(_schemas().values()), next_cursor=None)


@router.get(
    "/schemas/{event_type}",
    tags=["schemas"],
    summary="JSON Schema of one canonical event type",
    description="The payload a canonical event of this type carries (what a custom "
    "connector or a custom shop sends), with its entity and flow.",
    responses={404: {"description": "unknown event type; the message lists the known ones"}},
)
async def get_schema(
    event_type: Annotated[str, Path(description="e.g. price.changed")],
) -> EventSchemaOut:
    schemas = _schemas()
    found = schemas.get(event_type)
    if found is None:
        raise NotFound(
            f"no event type {event_type!r}; known: {', '.join(schemas)}",
            hint="GET /api/v1/schemas lists every type with its schema",
        )
    return found
