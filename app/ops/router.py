"""Operator API under /api/v1: status, trace, replay, approvals, connections, mappings, rules.

Thin endpoints over one module per resource: ``events``, ``inbound_events``,
``deliveries``, ``connections`` and ``trace``. Every route needs an API key (viewer reads,
operator writes); the request's one transaction commits before the answer goes out, and
queueing that follows a write (replay, resume, release) runs only after that commit.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from app.api.deps import OperatorActor, PiiDep, RuntimeDep, SessionDep, ViewerDep
from app.api.params import UtcDateTime, id_path
from app.api.pii import mask_response
from app.approvals.router import router as approvals_router
from app.audit.router import router as audit_router
from app.audit.service import record_action
from app.errors import NotFound, Unprocessable
from app.flows.api import router as flows_router
from app.maintenance.router import router as maintenance_router
from app.mappings.router import router as mappings_router
from app.models import DeliveryStatus
from app.ops import connections, deliveries, events, inbound_events, search
from app.ops import trace as tracing
from app.ops.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from app.ops.quarantine import router as quarantine_router
from app.ops.queries import check_range
from app.ops.schemas import (
    BULK_REPLAY_CAP,
    BulkReplayOut,
    BulkReplayRequest,
    ConnectionOut,
    DeliveryDetail,
    DeliveryOut,
    DeliveryStatusName,
    EventDetail,
    EventOut,
    InboundDetail,
    InboundOut,
    ResumeOut,
    TraceOut,
)
from app.scheduling.router import router as jobs_router

router = APIRouter(
    dependencies=[ViewerDep],
    responses={
        401: {"description": "missing or unknown API key"},
        422: {"description": "invalid parameters; the message names the field"},
    },
)
router.include_router(mappings_router)
router.include_router(approvals_router)
router.include_router(flows_router)
router.include_router(jobs_router)
router.include_router(quarantine_router)
router.include_router(audit_router)
router.include_router(maintenance_router)

_FORBIDDEN: dict[int | str, dict[str, str]] = {403: {"description": "needs an operator key"}}
_NOT_FOUND: dict[int | str, dict[str, str]] = {404: {"description": "no such resource"}}
_NEWEST_FIRST = "Newest first; page with `cursor` = the previous page's `next_cursor`."
_MASKED = (
    " Viewer keys get personal data masked (e-mails, phones, names, addresses, IPs); "
    "operator and pii-reader keys see it as stored."
)

EventId = Annotated[int, id_path("canonical event id")]
InboundEventId = Annotated[int, id_path("inbound event id")]
DeliveryId = Annotated[int, id_path("delivery id")]
Since = Annotated[
    UtcDateTime | None,
    Query(
        description="ISO-8601, inclusive; no offset means UTC; years 2000 to 2100",
        openapi_examples={"UTC": {"value": "2026-12-01T00:00:00Z"}},
    ),
]
Until = Annotated[
    UtcDateTime | None,
    Query(
        description="ISO-8601, exclusive; no offset means UTC; years 2000 to 2100",
        openapi_examples={"with an offset": {"value": "2026-12-02T00:00:00+01:00"}},
    ),
]


# --- events -------------------------------------------------------------------------------


@router.get(
    "/events",
    tags=["events"],
    summary="List canonical events",
    description="Canonical events with the inbound event they came from (topic, dedupe key) "
    "and the id and status of each delivery planned for them. `since`/`until` bound "
    "`created_at` (since inclusive, until exclusive; no offset means UTC; 422 if since is "
    "after until). " + _NEWEST_FIRST + _MASKED,
)
async def list_events(
    session: SessionDep,
    pii: PiiDep,
    source: Annotated[str | None, Query(description="source connection id")] = None,
    entity_key: Annotated[str | None, Query(description="e.g. shop:order:1001")] = None,
    entity_type: Annotated[str | None, Query(description="e.g. order")] = None,
    event_type: Annotated[str | None, Query(description="e.g. order.created")] = None,
    since: Since = None,
    until: Until = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[EventOut]:
    check_range(since, until)
    where = events.EventFilter(source, entity_key, entity_type, event_type, since, until)
    page = await events.list_events(session, where, cursor, limit)
    return page if pii else mask_response(page)


@router.get(
    "/events/{event_id}",
    tags=["events"],
    summary="One canonical event",
    description="The event with its canonical payload, the raw inbound event it was parsed "
    "from (kept headers and body) and its deliveries." + _MASKED,
    responses=_NOT_FOUND,
)
async def get_event(event_id: EventId, session: SessionDep, pii: PiiDep) -> EventDetail:
    event = await events.get_event(session, event_id)
    return event if pii else mask_response(event)


@router.get(
    "/inbound-events",
    tags=["events"],
    summary="List inbound events (raw webhooks and polls)",
    description="What each source sent, deduplicated, with the canonical events parsed from "
    "it. `status` is accepted, ignored (stored but not routed), to_read (a thin webhook "
    "whose records a job reads), quarantined (signed, but the body could not be parsed: "
    "`/quarantine`) or duplicate (a replayed quarantine that was already stored). "
    + _NEWEST_FIRST
    + _MASKED,
)
async def list_inbound_events(
    session: SessionDep,
    pii: PiiDep,
    connection_id: str | None = None,
    topic: Annotated[str | None, Query(description="e.g. orders/create")] = None,
    status: Annotated[
        str | None,
        Query(description="accepted | ignored | to_read | quarantined | duplicate"),
    ] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[InboundOut]:
    where = inbound_events.InboundFilter(connection_id, topic, status)
    page = await inbound_events.list_inbound_events(session, where, cursor, limit)
    return page if pii else mask_response(page)


@router.get(
    "/inbound-events/{inbound_event_id}",
    tags=["events"],
    summary="One inbound event with its raw body",
    description="The body exactly as received (base64 if it is not UTF-8) and the headers "
    "that were kept; credentials are never stored and signature headers never shown. "
    "Viewer keys get the body with personal data masked (JSON written again; a body that "
    "is not JSON is replaced by a notice); operator and pii-reader keys get it as received.",
    responses=_NOT_FOUND,
)
async def get_inbound_event(
    inbound_event_id: InboundEventId, session: SessionDep, pii: PiiDep
) -> InboundDetail:
    inbound = await inbound_events.get_inbound_event(session, inbound_event_id)
    return inbound if pii else mask_response(inbound)


# --- deliveries ---------------------------------------------------------------------------


@router.get(
    "/deliveries",
    tags=["deliveries"],
    summary="List deliveries",
    description="The outbox: one delivery per event and destination. Filter by one or more "
    f"`status` ({', '.join(DeliveryStatus.ALL)}); `status=dead` is what needs a person, "
    "`status=parked` what waits for a mapping. `since`/`until` bound `created_at` (since "
    "inclusive, until exclusive; no offset means UTC; 422 if since is after until). "
    + _NEWEST_FIRST
    + _MASKED,
)
async def list_deliveries(
    session: SessionDep,
    pii: PiiDep,
    status: Annotated[
        list[DeliveryStatusName] | None,
        Query(
            description="repeat for several statuses",
            openapi_examples={
                "what needs a person": {"value": ["dead"]},
                "waiting": {"value": ["parked", "held"]},
            },
        ),
    ] = None,
    destination: Annotated[str | None, Query(description="destination connection id")] = None,
    source: Annotated[str | None, Query(description="source connection id")] = None,
    flow: Annotated[str | None, Query(description="e.g. orders")] = None,
    entity_key: Annotated[str | None, Query(description="e.g. shop:order:1001")] = None,
    event_type: Annotated[str | None, Query(description="e.g. order.created")] = None,
    since: Since = None,
    until: Until = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[DeliveryOut]:
    check_range(since, until)
    where = deliveries.DeliveryFilter(
        tuple(status or ()), destination, source, flow, entity_key, event_type, since, until
    )
    page = await deliveries.list_deliveries(session, where, cursor, limit)
    return page if pii else mask_response(page)


@router.post(
    "/deliveries/replay",
    tags=["deliveries"],
    summary="Replay deliveries by filter",
    description="**A dry run unless `dry_run: false`**: the answer lists what each matching "
    "delivery would become. Replayed deliveries go again oldest first with a fresh retry "
    "window. `status` or `ids` is required; pending and in-flight deliveries are never "
    "replayed, held ones wait for a decision (`/approvals`). Guarded changes pass their guard "
    "again: a price over the guard is held, not sent. `status: dead` never selects rejected "
    "deliveries; asking for `status: rejected` (or their ids) re-opens them as held. "
    f"At most {BULK_REPLAY_CAP} per call (`capped` says if more matched; call again).",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "examples": {
                        "look first": {"value": {"status": "dead", "dry_run": True}},
                        "then replay": {"value": {"status": "dead", "dry_run": False}},
                    }
                }
            }
        }
    },
    responses=_FORBIDDEN,
)
async def bulk_replay(
    request: BulkReplayRequest, session: SessionDep, rt: RuntimeDep, actor: OperatorActor
) -> BulkReplayOut:
    out = await deliveries.bulk_replay(session, rt, request)
    if not request.dry_run:
        asked = request.model_dump(mode="json", exclude={"dry_run"}, exclude_none=True)
        done = {"replayed": out.replayed, "held": out.held, "capped": out.capped}
        await record_action(session, actor, "delivery.replay", "deliveries", asked | done)
    return out


@router.get(
    "/deliveries/{delivery_id}",
    tags=["deliveries"],
    summary="One delivery with every attempt",
    description="Status, last error, the mappings a parked delivery waits for, and each "
    "attempt with its outcome and the redacted HTTP exchanges (credentials and signatures "
    "never shown)." + _MASKED,
    responses=_NOT_FOUND,
)
async def get_delivery(delivery_id: DeliveryId, session: SessionDep, pii: PiiDep) -> DeliveryDetail:
    delivery = await deliveries.get_delivery(session, delivery_id)
    return delivery if pii else mask_response(delivery)


@router.post(
    "/deliveries/{delivery_id}/replay",
    tags=["deliveries"],
    summary="Replay one delivery",
    description="Requeue a delivered, dead, parked or superseded delivery with a fresh retry "
    "window. Safe for delivered ones: every connector write is idempotent. A guarded change "
    "(a price) over its guard is held instead, and a rejected delivery is re-opened as held: "
    "both wait for a decision in `/approvals`. 409 if it is pending or in flight (already on "
    "its way) or held (decide it instead).",
    responses={
        **_NOT_FOUND,
        **_FORBIDDEN,
        409: {"description": "already on its way, or held for a decision"},
    },
)
async def replay_delivery(
    delivery_id: DeliveryId, session: SessionDep, rt: RuntimeDep, actor: OperatorActor
) -> DeliveryOut:
    out = await deliveries.replay_delivery(session, rt, delivery_id)
    await record_action(
        session, actor, "delivery.replay", f"delivery:{delivery_id}", {"status": out.status}
    )
    return out


# --- connections --------------------------------------------------------------------------

ConnectionId = Annotated[str, Path(description="connection id from the config")]


@router.get(
    "/connections",
    tags=["connections"],
    summary="List connections with their health",
    description="Every configured connection: routed flows, circuit breaker state, pause, "
    "queue depth by status and the last success and error. Never credentials. "
    "All connections fit one page. E-mail addresses in `last_error` are masked for viewer "
    "keys.",
)
async def list_connections(session: SessionDep, rt: RuntimeDep, pii: PiiDep) -> Page[ConnectionOut]:
    page = await connections.list_connections(session, rt)
    return page if pii else mask_response(page)


@router.get(
    "/connections/{connection_id}",
    tags=["connections"],
    summary="One connection with its health",
    description="As in the list: routed flows, breaker, pause, queue depth, last success "
    "and error. Never credentials. E-mail addresses in `last_error` are masked for "
    "viewer keys.",
    responses=_NOT_FOUND,
)
async def get_connection(
    connection_id: ConnectionId, session: SessionDep, rt: RuntimeDep, pii: PiiDep
) -> ConnectionOut:
    out = await connections.get_connection(session, rt, connection_id)
    return out if pii else mask_response(out)


@router.post(
    "/connections/{connection_id}/pause",
    tags=["connections"],
    summary="Pause deliveries to a connection",
    description="Deliveries to it stay pending (attempts untouched) until it is resumed; "
    "ones already in flight finish. Inbound webhooks are still accepted.",
    responses={**_NOT_FOUND, **_FORBIDDEN},
)
async def pause_connection(
    connection_id: ConnectionId, session: SessionDep, rt: RuntimeDep, actor: OperatorActor
) -> ConnectionOut:
    out = await connections.pause_connection(session, rt, connection_id)
    await record_action(session, actor, "connection.pause", f"connection:{connection_id}")
    return out


@router.post(
    "/connections/{connection_id}/resume",
    tags=["connections"],
    summary="Resume deliveries to a connection",
    description="Clears the pause and queues the pending deliveries again, oldest first.",
    responses={**_NOT_FOUND, **_FORBIDDEN},
)
async def resume_connection(
    connection_id: ConnectionId, session: SessionDep, rt: RuntimeDep, actor: OperatorActor
) -> ResumeOut:
    out = await connections.resume_connection(session, rt, connection_id)
    await record_action(
        session,
        actor,
        "connection.resume",
        f"connection:{connection_id}",
        {"requeued": out.requeued},
    )
    return out


# --- trace --------------------------------------------------------------------------------


async def connection_ids(rt: RuntimeDep) -> tuple[str, ...]:
    """The config's connection ids: where an order number, an id or an e-mail is looked up."""
    return tuple(c.id for c in rt.config.connections)


# a default, so the console can call these endpoints as functions without it
ConnectionIds = Annotated[tuple[str, ...], Depends(connection_ids)]
_SEARCH_EXAMPLES: dict[str, Any] = {
    "order number": {"value": "#1019"},
    "e-mail": {"value": "jane@example.com"},
    "NetSuite sales order id": {"value": "5521"},
    "SKU": {"value": "TSHIRT-RED-M"},
}
SearchQuery = Annotated[
    str,
    Query(
        min_length=1,
        max_length=search.MAX_QUERY_CHARS,
        description="an order number (#1019 or 1019), a customer's e-mail (operator and "
        "pii-reader keys), an ERP document's id (e.g. the NetSuite sales order id), a SKU, an "
        "id at the source, or an entity key",
        openapi_examples=_SEARCH_EXAMPLES,
    ),
]
_SEARCH_FORBIDDEN: dict[int | str, dict[str, str]] = {
    403: {"description": "an e-mail searched with a viewer key (it may not see personal data)"}
}


@router.get(
    "/search",
    tags=["trace"],
    summary="Find entities by order number, e-mail, ERP id or SKU",
    description="The entities `q` names, most specific first: an entity key, an order "
    "number (`#1019` or `1019`), an id at the source, an id another system gave it (the "
    "NetSuite sales order id, a customer's internal id), a customer's e-mail (any case; "
    "needs an operator or pii-reader key), a SKU (its product, prices, stock per location, "
    f"availability and the orders with a line of it). At most {search.MAX_MATCHES}, one "
    "page (`next_cursor` is null). Each item's `entity_key` opens its trace." + _MASKED,
    responses=_SEARCH_FORBIDDEN,
)
async def search_entities(
    session: SessionDep, pii: PiiDep, q: SearchQuery, sources: ConnectionIds = ()
) -> Page[search.Match]:
    found = await search.find(session, q, sources, may_see_pii=pii)
    page: Page[search.Match] = Page(items=found, next_cursor=None)
    return page if pii else mask_response(page)


@router.get(
    "/trace",
    tags=["trace"],
    summary="Trace one business entity across systems",
    description="Inbound events → canonical events → deliveries (status, attempts, last "
    "error) → the entity's ids in other systems, plus its customer's. Name the entity by "
    "`entity_key`, or by what you know with `q` (the same as `/search`): the trace is of the "
    "first match, and `matches` lists them all (an e-mail names the customer and each of "
    "its orders). 404 if nothing is known. Viewer keys get e-mail addresses masked (a guest "
    "customer's key holds one) and cannot search by e-mail (403).",
    responses={**_NOT_FOUND, **_SEARCH_FORBIDDEN},
)
async def trace(
    session: SessionDep,
    pii: PiiDep,
    entity_key: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=256,
            description="e.g. shop:order:1001",
            openapi_examples={"a store order": {"value": "shop:order:5001"}},
        ),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=search.MAX_QUERY_CHARS,
            description="what you know: #1019, an e-mail, an ERP id, a SKU (see /search)",
            openapi_examples=_SEARCH_EXAMPLES,
        ),
    ] = None,
    sources: ConnectionIds = (),
) -> TraceOut:
    if (entity_key is None) == (q is None):
        raise Unprocessable(
            "give either entity_key or q",
            hint="q takes an order number (#1019), an e-mail, an ERP document id or a SKU",
        )
    matches: list[search.Match] = []
    if q is not None:
        matches = await search.find(session, q, sources, may_see_pii=pii)
        if not matches:
            raise NotFound(
                f"nothing matches {q!r}",
                hint="try the order number with or without #, the customer's e-mail, the "
                "ERP's document id, a SKU, or an entity key like shop:order:1001",
            )
        entity_key = matches[0].entity_key
    assert entity_key is not None
    out = await tracing.trace_entity(session, entity_key)
    out.matches = matches
    return out if pii else mask_response(out)


@router.get(
    "/trace/{source}/{entity_type}/{external_id:path}",
    tags=["trace"],
    summary="Trace by source, entity type and external id",
    description="Same as `/trace?entity_key=<source>:<entity_type>:<external_id>`.",
    responses=_NOT_FOUND,
)
async def trace_by_parts(
    source: str, entity_type: str, external_id: str, session: SessionDep, pii: PiiDep
) -> TraceOut:
    key = tracing.entity_key_of(source, entity_type, external_id)
    out = await tracing.trace_entity(session, key)
    return out if pii else mask_response(out)
