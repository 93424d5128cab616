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
  over it → 429 with the CONCURRENCY_LIMIT_EXCEEDED envelope, as NetSuite's REST web
  services answer (RESTlets answer 400 SSS_REQUEST_LIMIT_EXCEEDED; the limit counts every
  request to the account, from any process: reference/erp-apis.md 1.9). ``max_in_flight``
  in the stats is the most requests it served at once: set the limit high to measure what
  a client sends, or to the account's to see it refuse.

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
  "quantity", "amount"}], "restock": [{"item", "quantity", "disposition", "location"}]}``;
- ``POST /_sim/ship_status`` ``{"fulfillment": id, "status": "A"|"B"|"C"}`` (picked, packed,
  shipped); ``POST /_sim/receive`` ``{"rma": id, "lines": {"1042": 1}, "location": "1"}``
  (an item receipt of the RMA); ``POST /_sim/rma_status`` ``{"rma": id, "status": "B"}``;
  ``POST /_sim/exchange`` ``{"rma": id, "lines": {"1042": 1}}`` (a sales order created from
  the RMA); ``POST /_sim/config`` ``{"custom_fields": {"transactionline":
  ["custcol_gw_disposition"]}}`` gives the account custom fields (none by default).

Beyond the record API: ``POST …/services/rest/query/v1/suiteql`` (``Prefer: transient``,
``limit``/``offset``) runs any query with SQLite over the account's tables (``suiteql.py``,
``schema.py``, ``tables.py``), and ``POST …/salesOrder/{id}/!transform/returnAuthorization``
makes an RMA (``returns.py``); sales orders
commit stock per location and every change is posted, signed, to ``webhook_url`` like the
user-event script would (``erp.py``, ``webhooks.py``; failures in
``/_sim/stats`` → ``webhooks``). Records carry ``lastModifiedDate`` (whole seconds;
``NetSuiteSimulator.now`` is the clock), sales orders ``taxTotal`` (``tax_rate`` times
the line amounts).

Run alone: ``python -m simulators.netsuite.simulator --port 8101 --account-id 1234567 …``
(credentials default to ``NS_ACCOUNT_ID``, ``NS_CONSUMER_KEY``, ``NS_CONSUMER_SECRET``,
``NS_TOKEN_ID``, ``NS_TOKEN_SECRET``). ``--query-cache`` keeps SuiteQL's tables from one query
to the next until a request writes (each query builds them otherwise, which takes seconds
for an account seeded with tens of thousands of items); a served simulator changes only
through its requests, so the answers are the same.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.netsuite import wire
from connectors.netsuite.auth import CREDENTIAL_KEYS, TbaCredentials
from simulators.netsuite.control import Controls
from simulators.netsuite.erp import ErpState
from simulators.netsuite.record_api import error_response
from simulators.netsuite.returns import ReturnsDesk
from simulators.netsuite.state import KNOWN_TYPES, Faults, SimError, SimRecord, Stats
from simulators.netsuite.tables import ErpTables
from simulators.netsuite.webhooks import WebhookEmitter
from simulators.serving import serve

DEFAULT_ITEMS: tuple[str, ...] = ("1042", "959")
DEFAULT_CONCURRENCY_LIMIT = 5
ENV_VARS = {key: f"NS_{key.upper()}" for key in CREDENTIAL_KEYS}


class NetSuiteSimulator(Controls):
    """One NetSuite account: credentials, records, stats and faults, plus the ASGI app.

    The parts: ``state.RecordStore`` (records and what a save does), ``record_api.RecordApi``
    (the record API and SuiteQL over HTTP), ``control.Controls`` (the Python and ``/_sim/``
    control); ``erp.ErpState`` is the business side (stock, fulfilments, credit memos).
    """

    def __init__(
        self,
        credentials: TbaCredentials,
        *,
        items: Iterable[str | Mapping[str, Any]] | None = None,
        customers: Iterable[Mapping[str, Any]] = (),
        concurrency_limit: int = DEFAULT_CONCURRENCY_LIMIT,
        max_clock_skew_seconds: float | None = 300.0,
        query_cache: bool = False,
    ) -> None:
        self.credentials = credentials
        self.concurrency_limit = concurrency_limit
        self.max_clock_skew_seconds = max_clock_skew_seconds
        self._seed_items = list(DEFAULT_ITEMS if items is None else items)
        self._seed_customers = [dict(c) for c in customers]
        self.faults = Faults()
        self.stats = Stats()
        self.in_flight = 0
        self._type_names: dict[str, str] = dict(KNOWN_TYPES)
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
        self.tables = ErpTables(self.erp, reuse=query_cache)
        self.returns = ReturnsDesk(self)
        self.reset()
        self.app = self._build_app()

    # --- HTTP: app and routing -----------------------------------------------------------
    def _build_app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        app = Starlette(routes=[Route("/{path:path}", self._dispatch, methods=methods)])
        app.state.simulator = self
        return app

    async def _dispatch(self, request: Request) -> Response:
        if request.method == "GET" or request.url.path.endswith(wire.SUITEQL_API):
            return await self._serve(request)  # reads
        self.tables.changed()  # a write: SuiteQL tables kept from before are stale…
        try:
            return await self._serve(request)
        finally:
            self.tables.changed()  # … and so are any built while it ran

    async def _serve(self, request: Request) -> Response:
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
            return error_response(SimError(404, "NONEXISTENT_ID", "Unknown resource."))
        base = f"{request.url.scheme}://{request.headers.get('host', '')}{prefix}{wire.RECORD_API}"
        segments = [unquote(s) for s in rest.strip("/").split("/") if s]
        response = await self._guarded(request, base, segments)
        self.stats.responses[str(response.status_code)] += 1
        return response


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
    query_cache: bool = False,
) -> Starlette:
    """The simulator as an ASGI app; ``app.state.simulator`` is the NetSuiteSimulator.

    ``credentials`` default to the ``NS_*`` environment variables; ``items`` to 1042 and 959.
    ``query_cache``: SuiteQL's tables are built once and kept until a request writes (only
    for a simulator whose every change comes through its HTTP API, never from Python).
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
        query_cache=query_cache,
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
    parser.add_argument(
        "--query-cache",
        action="store_true",
        help="build SuiteQL's tables once and keep them until a request writes (each query "
        "builds them otherwise: slow for a large seeded account)",
    )
    parser.add_argument("--log-level", default="warning")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    values = {key: getattr(args, key) or "" for key in CREDENTIAL_KEYS}
    try:
        creds = TbaCredentials.from_mapping(values, where="arguments/environment")
    except KeyError as exc:
        print(f"netsuite simulator: {exc.args[0]}", file=sys.stderr)
        raise SystemExit(2) from None
    items = [i.strip() for i in args.items.split(",") if i.strip()]
    app = create_app(
        creds,
        items=items,
        concurrency_limit=args.concurrency_limit,
        query_cache=args.query_cache,
    )
    print(
        f"NetSuite simulator for account {creds.account_id} on http://{args.host}:{args.port} "
        f"(record API {wire.RECORD_API}, control /_sim/)",
        flush=True,
    )
    serve(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)


if __name__ == "__main__":
    main()

__all__ = ["Faults", "NetSuiteSimulator", "SimError", "SimRecord", "create_app", "main"]
