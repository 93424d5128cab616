"""The record API over HTTP: faults and the concurrency limit around each request, TBA
auth with nonce memory, the record routes (create, list, get, upsert by external id, patch,
delete, sublists) and the SuiteQL endpoint. ``RecordApi`` is a part of ``NetSuiteSimulator``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from connectors.netsuite import wire
from connectors.netsuite.auth import (
    AuthError,
    TbaCredentials,
    VerifiedRequest,
    verify_authorization,
)
from simulators.netsuite import suiteql
from simulators.netsuite.state import (
    Faults,
    RecordStore,
    SimError,
    deep_copy,
    is_sublist,
    missing,
    required,
)

if TYPE_CHECKING:
    from simulators.netsuite.returns import ReturnsDesk
    from simulators.netsuite.tables import ErpTables

INVALID_LOGIN_DETAIL = (
    "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at "
    "Setup > Users/Roles > User Management > View Login Audit Trail."
)
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_EID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_MAX_PAGE = 1000
_NONCE_MEMORY = 50_000


def json_response(status: int, body: Any, media_type: str = "application/json") -> Response:
    # floats only appear in control answers (fault settings); record data is Decimal
    return Response(wire.dumps(body, allow_float=True), status_code=status, media_type=media_type)


def error_response(err: SimError, headers: Mapping[str, str] | None = None) -> Response:
    body = wire.error_body(err.status, err.code, err.detail, path=err.path)
    response = json_response(err.status, body, wire.ERROR_CONTENT_TYPE)
    response.headers.update(headers or {})
    return response


class RecordApi(RecordStore):
    """The record service's HTTP side, over the record store."""

    credentials: TbaCredentials
    concurrency_limit: int
    max_clock_skew_seconds: float | None
    in_flight: int
    faults: Faults
    tables: ErpTables
    returns: ReturnsDesk
    _nonces: set[tuple[str, str, str, int]]
    _nonce_order: deque[tuple[str, str, str, int]]

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
                raise required("q")
            try:
                rows = self.tables.query(q)
            except suiteql.QueryError as exc:
                # NetSuite names the query parameter, not a path (captured live: see suiteql.py)
                body = wire.error_body(400, "INVALID_PARAMETER", str(exc))
                body["o:errorDetails"][0]["o:errorQueryParam"] = "q"
                return json_response(400, body, wire.ERROR_CONTENT_TYPE)
            body = suiteql.page(rows, limit, offset, base + wire.SUITEQL_API)
            return json_response(200, body, wire.COLLECTION_CONTENT_TYPE)
        except SimError as err:
            return error_response(err)

    # --- faults, limits, auth ------------------------------------------------------------
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
            return error_response(
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
            return error_response(
                SimError(503, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable.")
            )
        retry = f.take_rate_limit()
        if retry is not None:
            return error_response(
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
        return error_response(
            SimError(401, "INVALID_LOGIN", INVALID_LOGIN_DETAIL),
            {"www-authenticate": challenge},
        )

    # --- records -------------------------------------------------------------------------
    async def _handle(self, request: Request, base: str, segments: list[str]) -> Response:
        try:
            return await self._route(request, base, segments)
        except SimError as err:
            return error_response(err)

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
        elif len(segments) == 4 and segments[2] == "!transform" and method == "POST":
            replace = {
                s.strip().lower() for s in request.query_params.get("replace", "").split(",") if s
            }
            record = self.returns.transform(
                segments[0], segments[1], segments[3], await _read_body(request), replace
            )
            return _no_content({"Location": f"{base}/{record.type}/{record.id}"})
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
            raise missing()
        if method == "GET":
            expand = request.query_params.get("expandSubResources", "").lower() == "true"
            body = self._render(record, base, expand=expand)
            return json_response(200, body, wire.RECORD_CONTENT_TYPE)
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

    def _get_sublist(self, base: str, record_type: str, key: str, name: str) -> Response:
        record = self._find(record_type, key)
        if record is None or not is_sublist(record.fields.get(name)):
            raise missing()
        lines = record.fields[name]["items"]
        href = f"{base}/{record.type}/{record.id}/{name}"
        body = {"links": [{"rel": "self", "href": href}], "items": deep_copy(lines)}
        body["totalResults"] = len(lines)
        return json_response(200, body, wire.COLLECTION_CONTENT_TYPE)

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
        return json_response(200, body, wire.COLLECTION_CONTENT_TYPE)


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
