"""A NetSuite REST record service simulator (ASGI) with fault injection.

It speaks the subset the connector uses, with NetSuite's auth, errors, paging and limits:

- TBA (OAuth 1.0a, HMAC-SHA256, realm unsigned) on every record call; a bad header gets 401,
  ``www-authenticate: OAuth realm=…, error="token_rejected", …`` and the INVALID_LOGIN body;
  a reused nonce is rejected like NetSuite does;
- ``…/services/rest/record/v1/{type}``: ``POST`` create (204 + ``Location``), ``GET`` list
  (``limit``/``offset``, ``links`` with ``rel`` next/last/self); ``…/{type}/{id|eid:x}``:
  ``GET`` (sublists as links unless ``expandSubResources=true``), ``PUT`` upsert by external
  id (204; creates or updates, internal ids stay stable), ``PATCH`` (204), ``DELETE``;
  ``…/{type}/{id}/{sublist}``;
- sublists are keyed by ``line``: on update a line with a known ``line`` is changed, other
  lines are appended, and ``?replace=item`` drops the lines the body does not mention;
- sales order validation: missing ``entity`` or line ``item`` → 400 FIELD_PARAM_REQD, an
  unknown customer or item id → 400 INVALID_KEY_OR_REF, no lines → 400 USER_ERROR;
- an account concurrency limit (default 5 in-flight requests, a developer account's limit):
  over it → 429 with the CONCURRENCY_LIMIT_EXCEEDED envelope.

The record API may sit under any path prefix (``base_url`` = ``http://host:port/ns`` works).

Control (no auth), over HTTP so tests in other processes can drive it, or from Python on
``NetSuiteSimulator``:

- ``GET /_sim/stats``: requests by ``"METHOD recordType"``, creates/updates by type,
  responses by status, ``max_in_flight``;
- ``GET /_sim/records/{type}``: every record with internal id, ``externalId`` and fields;
- ``POST /_sim/reset``: records back to the seed, stats and faults cleared;
- ``POST /_sim/seed``: ``{"items": ["1042", {"id": "959", "itemId": "SKU"}],
  "customers": [{"id": "20716", "externalId": "c-1", "lastName": "Doe"}]}``;
- ``GET|POST|DELETE /_sim/faults``: ``{"latency_seconds": 0.2,
  "outage": {"count": 3} | {"until_cleared": true},
  "rate_limit": {"count": 2, "retry_after": 1},
  "commit_then_timeout": {"count": 1, "delay_seconds": 30, "record": "salesOrder"}}``
  (POST sets what it names, DELETE clears all);
- ``GET|POST /_sim/config``: ``{"concurrency_limit": 5, "webhook_url": "http://gw/webhooks/erp",
  "webhook_secret": "…", "tax_rate": "0.1", "default_location": "1"}`` (the optional keys
  are answered once set);
- ``POST /_sim/stock`` ``{"item": "1042"|"SKU", "location": "1", "on_hand": 10, "on_order": 5,
  "expected_date": "2026-12-01", "reserved": 1, "damaged": 0, "quarantined": 0}``;
- ``POST /_sim/price`` ``{"item": …, "basePrice": "19.99", "cost": …, "priceLevels": [{"priceLevel",
  "minQuantity", "price"}], "custitem_…": …}``;
- ``POST /_sim/fulfil`` ``{"order": "<id>|eid:<eid>", "lines": {"1042": 2} (default: all open),
  "packages": [{"tracking": "1Z…", "weight": "1.5", "carrier": "ups"}], "ship_status": "C",
  "ship_method": …}`` → an itemFulfillment; the order becomes Partially Fulfilled or Pending
  Billing and on-hand drops;
- ``POST /_sim/credit_memo`` ``{"order"|"rma": id, "amount": "19.99", "lines": [{"item",
  "quantity", "amount"}], "restock": [{"item", "quantity", "disposition", "location"}]}``.

Beyond the record API: ``POST …/services/rest/query/v1/suiteql`` (``Prefer: transient``,
``limit``/``offset``) answers the connector's query shapes (``suiteql.py``); sales orders
commit stock per location and every change is posted, signed, to ``webhook_url`` like the
user-event script would (``erp.py``, ``webhooks.py``; failures in
``/_sim/stats`` → ``webhooks``). Records carry ``lastModifiedDate`` (whole seconds;
``NetSuiteSimulator.now`` is the clock), sales orders ``taxTotal`` (``tax_rate`` times
the line amounts).

Run alone: ``python -m simulators.netsuite.simulator --port 8101 --account-id 1234567 …``
(credentials default to ``NS_ACCOUNT_ID``, ``NS_CONSUMER_KEY``, ``NS_CONSUMER_SECRET``,
``NS_TOKEN_ID``, ``NS_TOKEN_SECRET``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.netsuite import wire
from connectors.netsuite.auth import (
    CREDENTIAL_KEYS,
    AuthError,
    TbaCredentials,
    VerifiedRequest,
    verify_authorization,
)
from simulators.faults import FaultControls, FaultCounters
from simulators.netsuite import suiteql
from simulators.netsuite.erp import ErpState, OpError
from simulators.netsuite.webhooks import WebhookEmitter

DEFAULT_ITEMS: tuple[str, ...] = ("1042", "959")
DEFAULT_CONCURRENCY_LIMIT = 5
ENV_VARS = {key: f"NS_{key.upper()}" for key in CREDENTIAL_KEYS}
INVALID_LOGIN_DETAIL = (
    "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at "
    "Setup > Users/Roles > User Management > View Login Audit Trail."
)
_KNOWN_TYPES = {
    "salesorder": "salesOrder",
    "customer": "customer",
    "inventoryitem": "inventoryItem",
    "itemfulfillment": "itemFulfillment",
    "creditmemo": "creditMemo",
    "returnauthorization": "returnAuthorization",
}
_RMA_STATUS = {
    "A": "Pending Approval",
    "B": "Pending Receipt",
    "C": "Cancelled",
    "D": "Partially Received",
    "E": "Pending Refund/Partially Received",
    "F": "Pending Refund",
    "G": "Refunded",
    "H": "Closed",
}
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_EID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_MAX_PAGE = 1000
_NONCE_MEMORY = 50_000


class SimError(Exception):
    """A NetSuite error response: status plus one ``o:errorDetails`` entry."""

    def __init__(self, status: int, code: str, detail: str, path: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.path = path


class ControlError(Exception):
    """A bad request to a ``/_sim`` endpoint."""


@dataclass
class Faults(FaultCounters):
    """The shared counters plus NetSuite's "commit, then answer too late"."""

    commit_timeout_remaining: int = 0
    commit_timeout_delay_seconds: float = 30.0
    commit_timeout_record: str | None = None  # lower-case record type; None: any write

    def snapshot(self) -> dict[str, Any]:
        return {
            **super().snapshot(),
            "commit_then_timeout": {
                "count": self.commit_timeout_remaining,
                "delay_seconds": self.commit_timeout_delay_seconds,
                "record": self.commit_timeout_record,
            },
        }


@dataclass
class Stats:
    requests: Counter[str] = field(default_factory=Counter)
    creates: Counter[str] = field(default_factory=Counter)
    updates: Counter[str] = field(default_factory=Counter)
    responses: Counter[str] = field(default_factory=Counter)
    max_in_flight: int = 0

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "creates": dict(self.creates),
            "updates": dict(self.updates),
            "responses": dict(self.responses),
            "max_in_flight": self.max_in_flight,
        }


@dataclass
class SimRecord:
    type: str
    id: str
    fields: dict[str, Any]
    next_line: int = 1
    created: datetime | None = None
    modified: datetime | None = None  # lastModifiedDate, whole seconds like NetSuite

    @property
    def external_id(self) -> str | None:
        value = self.fields.get("externalId")
        return str(value) if value is not None else None


def _is_sublist(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("items"), list)


def _ref_id(value: Any) -> str | None:
    if isinstance(value, Mapping) and value.get("id") not in (None, ""):
        return str(value["id"])
    return None


def _json_response(status: int, body: Any, media_type: str = "application/json") -> Response:
    # floats only appear in control answers (fault settings); record data is Decimal
    return Response(wire.dumps(body, allow_float=True), status_code=status, media_type=media_type)


def _error_response(err: SimError, headers: Mapping[str, str] | None = None) -> Response:
    body = wire.error_body(err.status, err.code, err.detail, path=err.path)
    response = _json_response(err.status, body, wire.ERROR_CONTENT_TYPE)
    response.headers.update(headers or {})
    return response


def _required(path: str) -> SimError:
    return SimError(400, "FIELD_PARAM_REQD", f"Please enter a value for [{path}]", path)


class NetSuiteSimulator(FaultControls[Faults]):
    """One NetSuite account: credentials, records, stats and faults, plus the ASGI app."""

    def __init__(
        self,
        credentials: TbaCredentials,
        *,
        items: Iterable[str | Mapping[str, Any]] | None = None,
        customers: Iterable[Mapping[str, Any]] = (),
        concurrency_limit: int = DEFAULT_CONCURRENCY_LIMIT,
        max_clock_skew_seconds: float | None = 300.0,
    ) -> None:
        self.credentials = credentials
        self.concurrency_limit = concurrency_limit
        self.max_clock_skew_seconds = max_clock_skew_seconds
        self._seed_items = list(DEFAULT_ITEMS if items is None else items)
        self._seed_customers = [dict(c) for c in customers]
        self.faults = Faults()
        self.stats = Stats()
        self.in_flight = 0
        self._type_names: dict[str, str] = dict(_KNOWN_TYPES)
        self._records: dict[str, dict[str, SimRecord]] = {}
        self._by_eid: dict[str, dict[str, str]] = {}
        self._next_id = 2000
        self._tran_seq = 1000
        self._taken_ids: set[str] = set()
        self._nonces: set[tuple[str, str, str, int]] = set()
        self._nonce_order: deque[tuple[str, str, str, int]] = deque()
        # the account clock; tests may pin it to make equal timestamps on purpose
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC).replace(microsecond=0)
        self.webhooks = WebhookEmitter()
        self.erp = ErpState(self)
        self.reset()
        self.app = self._build_app()

    # --- Python control API --------------------------------------------------------------
    def reset(self) -> None:
        """Records back to the constructor's seed; stats, faults and seen nonces cleared."""
        self._records.clear()
        self._by_eid.clear()
        self._taken_ids.clear()
        self._next_id = 2000
        self._tran_seq = 1000
        self.faults = Faults()
        self.stats = Stats()
        self._nonces.clear()
        self._nonce_order.clear()
        self.erp.reset()
        self.seed(items=self._seed_items, customers=self._seed_customers)

    def seed(
        self,
        *,
        items: Iterable[str | Mapping[str, Any]] = (),
        customers: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        """Add items (ids or field dicts with ``id``) and customers that exist from the start."""
        for item in items:
            values: dict[str, Any] = (
                {"id": str(item)} if isinstance(item, str | int) else dict(item)
            )
            locations: list[Mapping[str, Any]] = list(values.pop("locations", None) or [])
            record = self._seed_record("inventoryItem", values)
            for loc in locations:  # [{"location": "1", "quantityOnHand": 10, …}]
                row = self.erp.row(record.id, str(loc.get("location", "1")))
                row.on_hand = _qty(loc.get("quantityOnHand"))
                row.on_order = _qty(loc.get("quantityOnOrder"))
        for customer in customers:
            self._seed_record("customer", dict(customer))

    def commit_then_timeout(
        self, count: int = 1, delay_seconds: float = 30.0, record: str | None = None
    ) -> None:
        """The next ``count`` successful writes (of ``record``, or any) commit, then stall."""
        self.faults.commit_timeout_remaining = count
        self.faults.commit_timeout_delay_seconds = delay_seconds
        self.faults.commit_timeout_record = record.lower() if record else None

    def clear_faults(self) -> None:
        self.faults = Faults()

    def records(self, record_type: str) -> list[dict[str, Any]]:
        """Every record of a type, fully expanded, ordered by internal id."""
        store = self._records.get(record_type.lower(), {})
        return [self._render(r, None, expand=True) for r in self._sorted(store.values())]

    def record_by_eid(self, record_type: str, eid: str) -> dict[str, Any] | None:
        internal = self._by_eid.get(record_type.lower(), {}).get(eid)
        if internal is None:
            return None
        return self._render(self._records[record_type.lower()][internal], None, expand=True)

    def stats_snapshot(self) -> dict[str, Any]:
        """What ``/_sim/stats`` answers: counts by request, create, update and status."""
        return {
            **self.stats.snapshot(),
            "in_flight": self.in_flight,
            "webhooks": self.webhooks.stats.snapshot(),
        }

    # --- SuiteQL -------------------------------------------------------------------------
    async def _suiteql(self, request: Request, base: str, segments: list[str]) -> Response:
        try:
            if request.method != "POST":
                raise SimError(405, "INVALID_REQUEST", "SuiteQL queries are sent with POST.")
            if "transient" not in request.headers.get("prefer", "").lower():
                raise SimError(
                    400, "USER_ERROR", "Set the header Prefer: transient for SuiteQL queries."
                )
            limit = _int_param(request, "limit", _MAX_PAGE, 1, _MAX_PAGE)
            offset = _int_param(request, "offset", 0, 0, None)
            q = (await _read_body(request)).get("q")
            if not isinstance(q, str) or not q.strip():
                raise _required("q")
            try:
                rows = suiteql.run(q, self.erp)
            except suiteql.QueryError as exc:
                raise SimError(
                    400,
                    "INVALID_PARAMETER",
                    "Invalid search query. Detailed unprocessed description follows. "
                    f"Search error occurred: {exc}.",
                    "q",
                ) from None
            body = suiteql.page(rows, limit, offset, base + wire.SUITEQL_API)
            return _json_response(200, body, wire.COLLECTION_CONTENT_TYPE)
        except SimError as err:
            return _error_response(err)

    # --- store ---------------------------------------------------------------------------
    def _type_name(self, record_type: str) -> str:
        return self._type_names.setdefault(record_type.lower(), record_type)

    def _store(self, record_type: str) -> dict[str, SimRecord]:
        return self._records.setdefault(record_type.lower(), {})

    def _sorted(self, records: Iterable[SimRecord]) -> list[SimRecord]:
        return sorted(records, key=lambda r: (len(r.id), r.id))

    def _new_id(self) -> str:
        while str(self._next_id) in self._taken_ids:
            self._next_id += 1
        self._next_id += 1
        return str(self._next_id - 1)

    def _seed_record(self, record_type: str, values: dict[str, Any]) -> SimRecord:
        internal = str(values.pop("id", "")) or self._new_id()
        record = SimRecord(self._type_name(record_type), internal, {})
        self._apply(record, values, replace=frozenset())
        self._commit(record)
        return record

    def _new_transaction(self, record_type: str, fields: dict[str, Any]) -> SimRecord:
        """A record made by the account itself (fulfilment, credit memo): no validation."""
        record = SimRecord(self._type_name(record_type), self._new_id(), {})
        self._apply(record, {k: v for k, v in fields.items() if v is not None}, frozenset())
        self._commit(record)
        self.stats.creates[record.type] += 1
        return record

    def _status_of(self, record: SimRecord) -> dict[str, str]:
        if record.type.lower() == "salesorder":
            return _order_status(record.fields)
        code = str(record.fields.get("orderStatus") or "A")
        return {"id": code, "refName": _RMA_STATUS.get(code, code)}

    def _after_write(self, record: SimRecord, created: bool) -> None:
        """What NetSuite does after a save: commit stock, stamp, run the user-event script."""
        if record.type.lower() == "salesorder":
            self.erp.recommit(record)
        self.erp.touched(record, "create" if created else "edit")

    def _commit(self, record: SimRecord) -> None:
        if record.modified is None:
            record.created = record.modified = self.now()
        self._store(record.type)[record.id] = record
        self._taken_ids.add(record.id)
        if record.external_id:
            self._by_eid.setdefault(record.type.lower(), {})[record.external_id] = record.id

    def _find(self, record_type: str, key: str) -> SimRecord | None:
        store = self._store(record_type)
        if key.startswith("eid:"):
            internal = self._by_eid.get(record_type.lower(), {}).get(key[4:])
            return store.get(internal) if internal else None
        return store.get(key)

    def _item_exists(self, internal_id: str) -> bool:
        return any(
            internal_id in store for name, store in self._records.items() if name.endswith("item")
        )

    # --- record semantics ----------------------------------------------------------------
    def _apply(self, record: SimRecord, body: Mapping[str, Any], replace: frozenset[str]) -> None:
        """Merge a request body into a record: fields set, keyed sublists merged by ``line``."""
        for name, value in body.items():
            if name in ("links", "id"):
                continue
            if _is_sublist(value):
                record.fields[name] = {"items": self._merge_lines(record, name, value, replace)}
            else:
                record.fields[name] = value

    def _merge_lines(
        self, record: SimRecord, name: str, sublist: Mapping[str, Any], replace: frozenset[str]
    ) -> list[dict[str, Any]]:
        existing = record.fields.get(name, {}).get("items", []) if name in record.fields else []
        by_line = {str(line["line"]): dict(line) for line in existing}
        kept = [] if name.lower() in replace else [str(line["line"]) for line in existing]
        for incoming in sublist["items"]:
            if not isinstance(incoming, Mapping):
                raise SimError(400, "INVALID_CONTENT", f"Lines of [{name}] must be objects.")
            key = str(incoming.get("line", ""))
            if key in by_line:
                by_line[key].update({k: v for k, v in incoming.items() if k != "line"})
                if key not in kept:
                    kept.append(key)
                continue
            line = {"line": record.next_line, "isClosed": False}
            line.update({k: v for k, v in incoming.items() if k != "line"})
            record.next_line += 1
            by_line[str(line["line"])] = line
            kept.append(str(line["line"]))
        return [_normalize_line(by_line[k]) for k in kept]

    def _validate(self, record: SimRecord) -> None:
        if record.type.lower() == "salesorder":
            self._validate_sales_order(record.fields)

    def _validate_sales_order(self, fields: Mapping[str, Any]) -> None:
        entity = _ref_id(fields.get("entity"))
        if entity is None:
            raise _required("entity")
        if entity not in self._store("customer"):
            raise SimError(
                400, "INVALID_KEY_OR_REF", f"Invalid entity reference key {entity}.", "entity"
            )
        lines = fields.get("item", {}).get("items", []) if "item" in fields else []
        if not lines:
            raise SimError(
                400,
                "USER_ERROR",
                "You must enter at least one line item for this transaction.",
                "item",
            )
        for i, line in enumerate(lines):
            item = _ref_id(line.get("item"))
            if item is None:
                raise _required(f"item.items[{i}].item")
            if not self._item_exists(item):
                raise SimError(
                    400,
                    "INVALID_KEY_OR_REF",
                    f"Invalid item reference key {item}.",
                    f"item.items[{i}].item",
                )

    def _create(self, record_type: str, body: Mapping[str, Any], eid: str | None) -> SimRecord:
        record = SimRecord(self._type_name(record_type), "", {})
        self._apply(record, body, replace=frozenset())
        if eid is not None:
            record.fields["externalId"] = eid
        if record.external_id and self._find(record_type, f"eid:{record.external_id}"):
            raise SimError(
                400,
                "DUP_RCRD",
                f"A {record.type} with the external ID {record.external_id} already exists.",
                "externalId",
            )
        self._validate(record)
        record.id = self._new_id()
        if record.type.lower() == "salesorder":
            self._tran_seq += 1
            record.fields.setdefault("tranId", f"SO{self._tran_seq}")
            record.fields.setdefault("orderStatus", "A")
        if record.type.lower() == "returnauthorization":
            self._tran_seq += 1
            record.fields.setdefault("tranId", f"RMA{self._tran_seq}")
            record.fields.setdefault("orderStatus", "A")
        self._commit(record)
        self.stats.creates[record.type] += 1
        return record

    def _update(
        self, record: SimRecord, body: Mapping[str, Any], replace: frozenset[str]
    ) -> SimRecord:
        """Validate on a copy so a rejected update changes nothing, like a NetSuite save."""
        draft = SimRecord(record.type, record.id, _deep_copy(record.fields), record.next_line)
        self._apply(draft, body, replace)
        if record.external_id:
            draft.fields["externalId"] = record.external_id
        self._validate(draft)
        record.fields, record.next_line = draft.fields, draft.next_line
        self.stats.updates[record.type] += 1
        return record

    def _render(self, record: SimRecord, base: str | None, *, expand: bool) -> dict[str, Any]:
        """A record as GET returns it: ``links``, ``id``, fields, sublists expanded or linked."""
        self_href = f"{base}/{record.type}/{record.id}" if base else None
        out: dict[str, Any] = {"links": [{"rel": "self", "href": self_href}] if base else []}
        out["id"] = record.id
        for name, value in record.fields.items():
            if _is_sublist(value) and not expand:
                out[name] = {"links": [{"rel": "self", "href": f"{self_href}/{name}"}]}
            else:
                out[name] = _deep_copy(value)
        if record.type.lower() in ("salesorder", "returnauthorization"):
            out["status"] = self._status_of(record)
        if record.type.lower() == "salesorder":
            out["taxTotal"] = self.erp.tax_total(record.fields)
        if record.modified is not None:
            out["lastModifiedDate"] = record.modified.isoformat()
        return out

    # --- HTTP: the record API ------------------------------------------------------------
    def _build_app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        app = Starlette(routes=[Route("/{path:path}", self._dispatch, methods=methods)])
        app.state.simulator = self
        return app

    async def _dispatch(self, request: Request) -> Response:
        path = request.url.path
        if "/_sim/" in path + "/":
            return await self._control(request, path[path.index("/_sim") + len("/_sim") :])
        if path.endswith(wire.SUITEQL_API):
            prefix = path[: -len(wire.SUITEQL_API)]
            base = f"{request.url.scheme}://{request.headers.get('host', '')}{prefix}"
            response = await self._guarded(request, base, ["suiteql"], self._suiteql)
            self.stats.responses[str(response.status_code)] += 1
            return response
        prefix, marker, rest = path.partition(wire.RECORD_API)
        if not marker:
            return _error_response(SimError(404, "NONEXISTENT_ID", "Unknown resource."))
        base = f"{request.url.scheme}://{request.headers.get('host', '')}{prefix}{wire.RECORD_API}"
        segments = [unquote(s) for s in rest.strip("/").split("/") if s]
        response = await self._guarded(request, base, segments)
        self.stats.responses[str(response.status_code)] += 1
        return response

    async def _guarded(
        self,
        request: Request,
        base: str,
        segments: list[str],
        handler: Callable[[Request, str, list[str]], Awaitable[Response]] | None = None,
    ) -> Response:
        """Faults, the concurrency limit and auth around one record request."""
        record_type = self._type_name(segments[0]) if segments else "-"
        self.stats.requests[f"{request.method} {record_type}"] += 1
        refused = self._injected_refusal()
        if refused is not None:
            return refused
        if self.in_flight >= self.concurrency_limit:
            return _error_response(
                SimError(
                    429,
                    "CONCURRENCY_LIMIT_EXCEEDED",
                    "Concurrent request limit exceeded. Request blocked.",
                )
            )
        self.in_flight += 1
        self.stats.max_in_flight = max(self.stats.max_in_flight, self.in_flight)
        try:
            if self.faults.latency_seconds:
                await asyncio.sleep(self.faults.latency_seconds)
            denied = self._authenticate(request)
            if denied is not None:
                return denied
            response = await (handler or self._handle)(request, base, segments)
            await self._maybe_stall(request.method, record_type, response)
            return response
        finally:
            self.in_flight -= 1

    def _injected_refusal(self) -> Response | None:
        f = self.faults
        if f.take_outage():
            return _error_response(
                SimError(503, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable.")
            )
        retry = f.take_rate_limit()
        if retry is not None:
            return _error_response(
                SimError(429, "CONCURRENCY_LIMIT_EXCEEDED", "Request blocked: too many requests."),
                {"Retry-After": str(int(retry) if float(retry).is_integer() else retry)},
            )
        return None

    async def _maybe_stall(self, method: str, record_type: str, response: Response) -> None:
        """Commit-then-timeout: the write is already applied; now answer too late."""
        f = self.faults
        if f.commit_timeout_remaining <= 0 or method not in _WRITES or record_type == "suiteql":
            return  # a query writes nothing
        if not 200 <= response.status_code < 300:
            return
        if f.commit_timeout_record not in (None, record_type.lower()):
            return
        f.commit_timeout_remaining -= 1
        await asyncio.sleep(f.commit_timeout_delay_seconds)

    def _authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        try:
            verified = verify_authorization(
                request.method,
                self._signed_url(request),
                header,
                self._lookup_secrets,
                max_skew_seconds=self.max_clock_skew_seconds,
            )
            if verified.realm.upper() != self.credentials.realm:
                raise AuthError("wrong realm")
            self._remember_nonce(verified)
        except AuthError:
            return self._login_failed()
        return None

    def _signed_url(self, request: Request) -> str:
        raw = request.scope.get("raw_path") or request.url.path.encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        query = request.url.query
        host = request.headers.get("host", "")
        return f"{request.url.scheme}://{host}{path}" + (f"?{query}" if query else "")

    def _lookup_secrets(self, consumer_key: str, token_id: str) -> tuple[str, str] | None:
        c = self.credentials
        if consumer_key == c.consumer_key and token_id == c.token_id:
            return c.consumer_secret, c.token_secret
        return None

    def _remember_nonce(self, verified: VerifiedRequest) -> None:
        """NetSuite refuses a nonce + timestamp it has seen; so do we (bounded memory)."""
        key = (verified.consumer_key, verified.token_id, verified.nonce, verified.timestamp)
        if key in self._nonces:
            raise AuthError("nonce reused")
        self._nonces.add(key)
        self._nonce_order.append(key)
        if len(self._nonce_order) > _NONCE_MEMORY:
            self._nonces.discard(self._nonce_order.popleft())

    def _login_failed(self) -> Response:
        challenge = (
            f'OAuth realm="{self.credentials.realm}", error="token_rejected", '
            'error_description="Invalid login attempt."'
        )
        return _error_response(
            SimError(401, "INVALID_LOGIN", INVALID_LOGIN_DETAIL),
            {"www-authenticate": challenge},
        )

    async def _handle(self, request: Request, base: str, segments: list[str]) -> Response:
        try:
            return await self._route(request, base, segments)
        except SimError as err:
            return _error_response(err)

    async def _route(self, request: Request, base: str, segments: list[str]) -> Response:
        method = request.method
        if len(segments) == 1:
            if method == "GET":
                return self._list(request, base, segments[0])
            if method == "POST":
                record = self._create(segments[0], await _read_body(request), None)
                self._after_write(record, created=True)
                return _no_content({"Location": f"{base}/{record.type}/{record.id}"})
        elif len(segments) == 2:
            return await self._route_one(request, base, segments[0], segments[1])
        elif len(segments) == 3 and method == "GET":
            return self._get_sublist(base, *segments)
        raise SimError(405 if segments else 404, "INVALID_REQUEST", "Unsupported request.")

    async def _route_one(self, request: Request, base: str, record_type: str, key: str) -> Response:
        method = request.method
        replace = frozenset(
            s.strip().lower() for s in request.query_params.get("replace", "").split(",") if s
        )
        if method == "PUT":
            return await self._upsert(request, base, record_type, key, replace)
        record = self._find(record_type, key)
        if record is None:
            raise _missing()
        if method == "GET":
            expand = request.query_params.get("expandSubResources", "").lower() == "true"
            body = self._render(record, base, expand=expand)
            return _json_response(200, body, wire.RECORD_CONTENT_TYPE)
        if method == "PATCH":
            self._update(record, await _read_body(request), replace)
            self._after_write(record, created=False)
            return _no_content({"Location": f"{base}/{record.type}/{record.id}"})
        if method == "DELETE":
            self._delete(record)
            return _no_content({})
        raise SimError(405, "INVALID_REQUEST", "Unsupported request.")

    async def _upsert(
        self, request: Request, base: str, record_type: str, key: str, replace: frozenset[str]
    ) -> Response:
        if not key.startswith("eid:"):
            raise SimError(
                400, "INVALID_REQUEST", "Upsert requires an external ID in the URL (eid:…)."
            )
        eid = key[4:]
        if not eid or not set(eid) <= _EID_CHARS:
            raise SimError(
                400,
                "INVALID_ID",
                f"The external ID {eid!r} may only contain letters, numbers, '_' and '-'.",
            )
        body = await _read_body(request)
        record = self._find(record_type, key)
        created = record is None
        if record is None:
            record = self._create(record_type, body, eid)
        else:
            self._update(record, body, replace)
        self._after_write(record, created=created)
        return _no_content({"Location": f"{base}/{record.type}/{record.id}"})

    def _delete(self, record: SimRecord) -> None:
        del self._store(record.type)[record.id]
        if record.external_id:
            self._by_eid.get(record.type.lower(), {}).pop(record.external_id, None)

    def _get_sublist(self, base: str, record_type: str, key: str, name: str) -> Response:
        record = self._find(record_type, key)
        if record is None or not _is_sublist(record.fields.get(name)):
            raise _missing()
        lines = record.fields[name]["items"]
        href = f"{base}/{record.type}/{record.id}/{name}"
        body = {"links": [{"rel": "self", "href": href}], "items": _deep_copy(lines)}
        body["totalResults"] = len(lines)
        return _json_response(200, body, wire.COLLECTION_CONTENT_TYPE)

    def _list(self, request: Request, base: str, record_type: str) -> Response:
        limit = _int_param(request, "limit", _MAX_PAGE, 1, _MAX_PAGE)
        offset = _int_param(request, "offset", 0, 0, None)
        records = self._sorted(self._store(record_type).values())
        page = records[offset : offset + limit]
        href = f"{base}/{self._type_name(record_type)}"

        def link(rel: str, at: int) -> dict[str, str]:
            return {"rel": rel, "href": f"{href}?limit={limit}&offset={at}"}

        links = [link("first", 0)]
        if offset + limit < len(records):
            links.append(link("next", offset + limit))
        if offset > 0:
            links.append(link("prev", max(0, offset - limit)))
        last = max(0, (len(records) - 1) // limit * limit)
        links += [link("last", last), link("self", offset)]
        body = {
            "links": links,
            "count": len(page),
            "hasMore": offset + limit < len(records),
            "items": [
                {"links": [{"rel": "self", "href": f"{href}/{r.id}"}], "id": r.id} for r in page
            ],
            "offset": offset,
            "totalResults": len(records),
        }
        return _json_response(200, body, wire.COLLECTION_CONTENT_TYPE)

    # --- HTTP: control -------------------------------------------------------------------
    async def _control(self, request: Request, path: str) -> Response:
        try:
            result = await self._control_route(request, path.strip("/"))
        except ControlError as exc:
            return _json_response(400, {"error": str(exc)})
        if result is None:
            return _json_response(404, {"error": f"no simulator endpoint {path!r}"})
        return _json_response(200, result)

    async def _control_route(self, request: Request, path: str) -> Any:
        method = request.method
        if path == "stats" and method == "GET":
            return self.stats_snapshot()
        if path.startswith("records/") and method == "GET":
            record_type = path.split("/", 1)[1]
            items = self.records(record_type)
            return {"type": self._type_name(record_type), "count": len(items), "items": items}
        if path == "reset" and method == "POST":
            self.reset()
            return {"reset": True}
        if path == "seed" and method == "POST":
            body = await _control_body(request)
            try:
                self.seed(items=body.get("items", []), customers=body.get("customers", []))
            except (TypeError, ValueError, AttributeError) as exc:
                raise ControlError(f"bad seed: {exc}") from None
            return {"seeded": True}
        if path == "faults":
            return await self._control_faults(request)
        if path == "config":
            if method == "POST":
                self._set_config(await _control_body(request))
            return self._config_snapshot()
        if method == "POST" and path in ("stock", "fulfil", "credit_memo", "price"):
            return self._control_op(path, await _control_body(request))
        return None

    def _control_op(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``/_sim/stock|fulfil|credit_memo|price``: account-side changes, then the webhook."""
        try:
            if path == "stock":
                row = self.erp.set_stock(str(body["item"]), str(body.get("location", "1")), body)
                return {
                    "on_hand": row.on_hand,
                    "committed": row.committed,
                    "on_order": row.on_order,
                    "available": row.on_hand - row.committed,
                }
            if path == "fulfil":
                record = self.erp.fulfil(str(body["order"]), body)
            elif path == "credit_memo":
                record = self.erp.credit_memo(body)
            else:
                prices = {k: v for k, v in body.items() if k != "item"}
                record = self.erp.set_price(str(body["item"]), prices)
        except KeyError as exc:
            raise ControlError(f"missing {exc.args[0]!r}") from None
        except (OpError, SimError) as exc:
            raise ControlError(str(exc)) from None
        return self._render(record, None, expand=True)

    def _set_config(self, body: Mapping[str, Any]) -> None:
        if "concurrency_limit" in body:
            self.concurrency_limit = _positive_int(body["concurrency_limit"])
        if "webhook_url" in body:
            self.webhooks.url = body["webhook_url"] or None
        if "webhook_secret" in body:
            self.webhooks.secret = body["webhook_secret"] or None
        if "tax_rate" in body:
            self.erp.tax_rate = wire.loads(str(body["tax_rate"]))
        if "default_location" in body:
            self.erp.default_location = str(body["default_location"])

    def _config_snapshot(self) -> dict[str, Any]:
        """The settings; the optional ones appear once they differ from the default."""
        out: dict[str, Any] = {"concurrency_limit": self.concurrency_limit}
        if self.webhooks.url:
            out["webhook_url"] = self.webhooks.url
        if self.webhooks.secret:
            out["webhook_secret_set"] = True
        if self.erp.tax_rate:
            out["tax_rate"] = str(self.erp.tax_rate)
        if self.erp.default_location != "1":
            out["default_location"] = self.erp.default_location
        return out

    async def _control_faults(self, request: Request) -> dict[str, Any]:
        if request.method == "DELETE":
            self.clear_faults()
        elif request.method == "POST":
            self._set_faults(await _control_body(request))
        return self.faults.snapshot()

    def _set_faults(self, body: Mapping[str, Any]) -> None:
        try:
            self.set_common_faults(body)
            if "commit_then_timeout" in body:
                ct = body["commit_then_timeout"] or {}
                self.commit_then_timeout(
                    int(ct.get("count", 1)),
                    float(ct.get("delay_seconds", 30.0)),
                    ct.get("record"),
                )
        except (TypeError, ValueError, AttributeError) as exc:
            raise ControlError(f"bad fault settings: {exc}") from None


# --- helpers -------------------------------------------------------------------------------


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _normalize_line(line: dict[str, Any]) -> dict[str, Any]:
    """Accept ``isclosed`` (Oracle's example spelling) as ``isClosed``."""
    if "isclosed" in line:
        line["isClosed"] = bool(line.pop("isclosed"))
    return line


def _order_status(fields: Mapping[str, Any]) -> dict[str, str]:
    lines = fields.get("item", {}).get("items", []) if "item" in fields else []
    if lines and all(line.get("isClosed") for line in lines):
        return {"id": "H", "refName": "Closed"}
    open_lines = [ln for ln in lines if not ln.get("isClosed")]
    done = [(_qty(ln.get("quantityFulfilled")), _qty(ln.get("quantity"))) for ln in open_lines]
    if any(fulfilled for fulfilled, _ in done):
        if all(fulfilled >= ordered for fulfilled, ordered in done):
            return {"id": "F", "refName": "Pending Billing"}
        return {"id": "D", "refName": "Partially Fulfilled"}
    if fields.get("orderStatus") == "B":
        return {"id": "B", "refName": "Pending Fulfillment"}
    return {"id": "A", "refName": "Pending Approval"}


def _qty(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def _missing() -> SimError:
    return SimError(
        404,
        "NONEXISTENT_ID",
        "The record instance does not exist. Provide a valid record instance ID.",
    )


def _no_content(headers: Mapping[str, str]) -> Response:
    return Response(status_code=204, headers=dict(headers))


async def _read_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = wire.loads(raw) if raw else {}
    except ValueError:
        raise SimError(400, "INVALID_CONTENT", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise SimError(400, "INVALID_CONTENT", "The request body must be a JSON object.")
    return body


async def _control_body(request: Request) -> dict[str, Any]:
    try:
        body = wire.loads(await request.body() or b"{}")
    except ValueError:
        raise ControlError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise ControlError("the body must be a JSON object")
    return body


def _positive_int(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ControlError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise ControlError("must be at least 1")
    return number


def _int_param(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        bounds = f"between {low} and {high}" if high else f"at least {low}"
        raise SimError(
            400, "INVALID_PARAMETER", f"Invalid value for {name}: must be {bounds}.", name
        )
    return int(raw)


# --- construction and CLI --------------------------------------------------------------------


def credentials_from_env(env: Mapping[str, str] | None = None) -> TbaCredentials:
    """Credentials from ``NS_ACCOUNT_ID`` … ``NS_TOKEN_SECRET``."""
    source = os.environ if env is None else env
    values = {key: source.get(var, "") for key, var in ENV_VARS.items()}
    return TbaCredentials.from_mapping(values, where="environment (NS_* variables)")


def create_app(
    credentials: TbaCredentials | Mapping[str, str] | None = None,
    *,
    items: Iterable[str | Mapping[str, Any]] | None = None,
    customers: Iterable[Mapping[str, Any]] = (),
    concurrency_limit: int = DEFAULT_CONCURRENCY_LIMIT,
    max_clock_skew_seconds: float | None = 300.0,
) -> Starlette:
    """The simulator as an ASGI app; ``app.state.simulator`` is the NetSuiteSimulator.

    ``credentials`` default to the ``NS_*`` environment variables; ``items`` to 1042 and 959.
    """
    if credentials is None:
        creds = credentials_from_env()
    elif isinstance(credentials, TbaCredentials):
        creds = credentials
    else:
        creds = TbaCredentials.from_mapping(credentials)
    sim = NetSuiteSimulator(
        creds,
        items=items,
        customers=customers,
        concurrency_limit=concurrency_limit,
        max_clock_skew_seconds=max_clock_skew_seconds,
    )
    return sim.app


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.netsuite.simulator",
        description="NetSuite REST record service simulator with fault injection.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    for key, var in ENV_VARS.items():
        flag = "--" + key.replace("_", "-")
        parser.add_argument(flag, default=os.environ.get(var), help=f"default: ${var}")
    parser.add_argument(
        "--items",
        default=",".join(DEFAULT_ITEMS),
        help="comma-separated item internal ids that exist from the start",
    )
    parser.add_argument("--concurrency-limit", type=int, default=DEFAULT_CONCURRENCY_LIMIT)
    parser.add_argument("--log-level", default="warning")
    return parser


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    args = _parser().parse_args(argv)
    values = {key: getattr(args, key) or "" for key in CREDENTIAL_KEYS}
    try:
        creds = TbaCredentials.from_mapping(values, where="arguments/environment")
    except KeyError as exc:
        print(f"netsuite simulator: {exc.args[0]}", file=sys.stderr)
        raise SystemExit(2) from None
    items = [i.strip() for i in args.items.split(",") if i.strip()]
    app = create_app(creds, items=items, concurrency_limit=args.concurrency_limit)
    print(
        f"NetSuite simulator for account {creds.account_id} on http://{args.host}:{args.port} "
        f"(record API {wire.RECORD_API}, control /_sim/)",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)


if __name__ == "__main__":
    main()

__all__ = ["Faults", "NetSuiteSimulator", "create_app", "main"]
