"""A thin async client for NetSuite's REST record service (``/services/rest/record/v1``).

It signs every request with TBA, writes Decimals exactly, and turns every failure into one of
the typed errors of ``kernel.errors`` so the delivery engine knows whether to retry, wait
or ask a person:

- 429, and 400 with ``SSS_REQUEST_LIMIT_EXCEEDED`` / ``CONCURRENCY_LIMIT_EXCEEDED`` →
  RateLimitedError (``Retry-After`` honoured, a few seconds when absent);
- 5xx, 408, timeouts, connection failures → TransientError (the transport through
  ``connectors._kit.http.send``; NetSuite's own error envelope is read here);
- other 4xx (bad login, missing field, unknown reference…) → PermanentError quoting
  NetSuite's ``detail`` and ``o:errorCode`` so the operator knows what to fix.

Every call holds one of the account's concurrency slots while it is signed and sent
(``connectors._kit.concurrency``): NetSuite counts requests in flight per account, so the
limit (option ``concurrency_limit``) is shared by every connection to the account and, with
the core's limiter, every worker process. A call that gets no slot in time is a
RateLimitedError before anything is sent.

Messages never contain credentials: the only secret material is the Authorization header,
which is never echoed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from connectors._kit.concurrency import MemoryLimiter
from connectors._kit.http import send
from connectors._kit.retry_after import retry_after
from connectors.netsuite import wire
from connectors.netsuite.auth import TbaCredentials, sign_request
from connectors.netsuite.options import DEFAULT_CONCURRENCY_LIMIT
from kernel.contract import ConcurrencyLimiter
from kernel.errors import PermanentError, RateLimitedError, TransientError

DEFAULT_RETRY_AFTER_SECONDS = 5.0
RATE_LIMIT_CODES = frozenset(
    {"SSS_REQUEST_LIMIT_EXCEEDED", "CONCURRENCY_LIMIT_EXCEEDED", "WS_REQUEST_BLOCKED"}
)
_MAX_BODY_IN_MESSAGE = 300
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_RETRYABLE_4XX = frozenset({408})  # the server gave up waiting for us: try again
# how long a slot is held at most when neither we nor the shared client set a time limit
_UNBOUNDED_CALL_HOLD_SECONDS = 900.0  # NetSuite ends a REST request after 15 minutes


@dataclass(frozen=True)
class RecordRef:
    """One record addressed by internal id or, with ``eid=True``, by external id."""

    record: str
    key: str
    eid: bool = False

    @property
    def path(self) -> str:
        segment = f"eid:{self.key}" if self.eid else self.key
        return f"{self.record}/{quote(segment, safe=':')}"

    def __str__(self) -> str:
        return f"{self.record} {'eid:' if self.eid else ''}{self.key}"


def by_eid(record: str, external_id: str) -> RecordRef:
    return RecordRef(record, external_id, eid=True)


def by_id(record: str, internal_id: str) -> RecordRef:
    return RecordRef(record, internal_id)


class NetSuiteClient:
    """Record-service calls over the shared httpx client; one instance per connection."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        creds: TbaCredentials,
        *,
        timeout_seconds: float | None = None,
        limiter: ConcurrencyLimiter | None = None,
        concurrency_limit: int = DEFAULT_CONCURRENCY_LIMIT,
    ) -> None:
        self.http = http
        self.record_root = base_url.rstrip("/") + wire.RECORD_API
        self.suiteql_url = base_url.rstrip("/") + wire.SUITEQL_API
        self.creds = creds
        self.timeout_seconds = timeout_seconds
        # the account's slots: one key per account (the realm), whichever connection calls
        self.limiter: ConcurrencyLimiter = limiter or MemoryLimiter()
        self.concurrency_limit = concurrency_limit
        self.slot_key = f"netsuite:{creds.realm}"

    # --- operations -------------------------------------------------------------------
    async def upsert(
        self, ref: RecordRef, body: Mapping[str, Any], *, replace: Sequence[str] = ()
    ) -> str | None:
        """PUT by external id: creates or updates, so a retry never makes a second record.

        ``replace`` names sublists whose lines the body replaces; without it NetSuite appends
        the body's lines to the ones already there. Returns the internal id when NetSuite
        names the record in a ``Location`` header, else None (read it back by eid then).
        """
        if not ref.eid:
            raise ValueError("upsert needs a record addressed by external id")
        params = {"replace": ",".join(replace)} if replace else None
        response = await self.request("PUT", ref.path, ref, params=params, body=body)
        return _location_id(response)

    async def get(
        self, ref: RecordRef, *, expand_sub_resources: bool = False
    ) -> dict[str, Any] | None:
        """The record, or None if NetSuite says it does not exist."""
        params = {"expandSubResources": "true"} if expand_sub_resources else None
        response = await self.request("GET", ref.path, ref, params=params, missing_ok=True)
        if response is None:
            return None
        data = _json_or_none(response)
        if not isinstance(data, dict):
            raise PermanentError(f"NetSuite answered {ref} with a body that is not a record")
        return data

    async def patch(
        self,
        ref: RecordRef,
        body: Mapping[str, Any],
        *,
        replace: Sequence[str] = (),
        missing_ok: bool = False,
    ) -> bool:
        """PATCH: change only the fields (and keyed sublist lines) in ``body``.

        Returns False when ``missing_ok`` and NetSuite has no such record, else True.
        """
        params = {"replace": ",".join(replace)} if replace else None
        response = await self.request(
            "PATCH", ref.path, ref, params=params, body=body, missing_ok=missing_ok
        )
        return response is not None

    async def suiteql(self, q: str, limit: int, offset: int) -> dict[str, Any]:
        """One page of a SuiteQL query: ``{"items": [...], "hasMore": …, "totalResults": …}``.

        ``Prefer: transient`` is what NetSuite requires on the query service.
        """
        params = {"limit": str(limit), "offset": str(offset)}
        response = await self.request(
            "POST",
            "",
            "SuiteQL query",
            params=params,
            body={"q": q},
            url=self.suiteql_url,
            headers={"Prefer": "transient"},
        )
        data = _json_or_none(response) if response is not None else None
        if not isinstance(data, dict):
            raise PermanentError("NetSuite answered a SuiteQL query with a body that is not JSON")
        return data

    async def create(self, record: str, body: Mapping[str, Any]) -> str:
        """POST a new record; returns its internal id from the ``Location`` header."""
        response = await self.request("POST", record, record, body=body)
        internal_id = _location_id(response)
        if not internal_id:
            raise PermanentError(f"NetSuite created a {record} but sent no Location header")
        return internal_id

    # --- transport --------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        what: RecordRef | str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        missing_ok: bool = False,
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response | None:
        """One signed call; returns the 2xx response (None for a tolerated 404) or raises.

        ``path`` is under the record service unless ``url`` names another endpoint.
        """
        hold = self._deadline() or _UNBOUNDED_CALL_HOLD_SECONDS
        async with self.limiter.slot(self.slot_key, self.concurrency_limit, hold_seconds=hold):
            # signed once the slot is ours: a long wait must not age the TBA timestamp
            target = url or f"{self.record_root}/{path}"
            request = self._build(method, target, params, body, headers)
            response = await self._send(request, what)
        if response.is_success:
            return response
        if missing_ok and response.status_code == 404 and _is_netsuite_error(response):
            return None
        raise error_for(response, method, what)

    def _build(
        self,
        method: str,
        target: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        url = httpx.URL(target, params=params)
        headers = {
            **(extra_headers or {}),
            "Accept": "application/json",
            "Authorization": sign_request(method, str(url), self.creds),
        }
        content = None
        if body is not None:
            content = wire.dumps(body)
            headers["Content-Type"] = "application/json"
        if self.timeout_seconds is None:
            return self.http.build_request(method, url, headers=headers, content=content)
        return self.http.build_request(
            method, url, headers=headers, content=content, timeout=self.timeout_seconds
        )

    def _deadline(self) -> float | None:
        """Overall budget of one call: our timeout, else the shared client's read timeout."""
        if self.timeout_seconds is not None:
            return self.timeout_seconds
        return self.http.timeout.read

    async def _send(self, request: httpx.Request, what: RecordRef | str) -> httpx.Response:
        return await send(
            self.http,
            request,
            timeout=self._deadline(),
            describe=f"NetSuite ({request.method} {what})",
            check_status=False,  # error_for reads NetSuite's error envelope
            timeout_note=_timeout_note(request.method),
        )


# --- error mapping ----------------------------------------------------------------------


def _timeout_note(method: str) -> str:
    """What a timeout means for the record: the operator wonders whether it was written."""
    if method == "PUT":
        return (
            "; the write may have been applied, and the retry upserts by external id, "
            "so it cannot duplicate it"
        )
    return "; the write may have been applied" if method in _WRITES else ""


def _location_id(response: httpx.Response | None) -> str | None:
    """The internal id at the end of a ``Location`` header (…/salesOrder/1234)."""
    location = response.headers.get("location", "") if response is not None else ""
    internal_id = location.rstrip("/").rsplit("/", 1)[-1]
    return internal_id if internal_id.isdigit() else None


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return wire.loads(response.content)
    except ValueError:
        return None


def _is_netsuite_error(response: httpx.Response) -> bool:
    return bool(wire.error_details(_json_or_none(response)))


def describe_details(details: Sequence[Mapping[str, str]]) -> str:
    """``detail (CODE at path)`` for each entry, joined; what the operator reads first."""
    parts = []
    for d in details:
        code = d.get("o:errorCode", "")
        where = d.get("o:errorPath", "")
        suffix = f" ({code} at {where})" if code and where else (f" ({code})" if code else "")
        parts.append(f"{d.get('detail', '').strip()}{suffix}")
    return "; ".join(parts)


def _snippet(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:_MAX_BODY_IN_MESSAGE] + ("…" if len(text) > _MAX_BODY_IN_MESSAGE else "")


def error_for(
    response: httpx.Response, method: str, what: RecordRef | str
) -> PermanentError | TransientError | RateLimitedError:
    """The typed error for a non-2xx NetSuite response."""
    status = response.status_code
    body = _json_or_none(response)
    details = wire.error_details(body)
    codes = {d.get("o:errorCode", "") for d in details}
    explained = describe_details(details) if details else _snippet(response) or "no body"
    info = {"status": status, "body": body if details else _snippet(response)}
    if status == 429 or codes & RATE_LIMIT_CODES:
        wait = retry_after(response, default=DEFAULT_RETRY_AFTER_SECONDS)
        return RateLimitedError(
            f"NetSuite is throttling {method} {what} (HTTP {status}): {explained}",
            retry_after=wait,
            detail=info,
        )
    if status >= 500 or status in _RETRYABLE_4XX:
        return TransientError(
            f"NetSuite failed {method} {what} (HTTP {status}): {explained}", detail=info
        )
    if status in (401, 403):
        return PermanentError(
            f"NetSuite refused the login for {method} {what} (HTTP {status}): {explained}; "
            "check account_id, the consumer and token credentials and the role's permissions",
            detail=info,
        )
    if not details:
        return PermanentError(
            f"NetSuite answered HTTP {status} to {method} {what} without its error envelope "
            f"(is base_url right?): {explained}",
            detail=info,
        )
    return PermanentError(f"NetSuite rejected {what}: {explained}", detail=info)
