"""Control of the simulator (no auth): from Python on ``NetSuiteSimulator`` and over HTTP
under ``/_sim/`` (stats, records, reset, seed, faults, config, and the account-side changes
stock, price, fulfil and credit_memo). ``Controls`` is a part of ``NetSuiteSimulator``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from connectors.netsuite import wire
from simulators.faults import FaultControls
from simulators.netsuite.erp import OpError
from simulators.netsuite.record_api import RecordApi, json_response
from simulators.netsuite.returns import ReturnsDesk
from simulators.netsuite.state import Faults, SimError, Stats, qty
from simulators.netsuite.webhooks import WebhookEmitter

_OPS = frozenset(
    {"stock", "fulfil", "credit_memo", "price", "ship_status", "receive", "rma_status", "exchange"}
)


class ControlError(Exception):
    """A bad request to a ``/_sim`` endpoint."""


class Controls(RecordApi, FaultControls[Faults]):
    """What tests and the demo drive: the Python methods and the ``/_sim/`` endpoints."""

    webhooks: WebhookEmitter
    returns: ReturnsDesk
    _seed_items: list[str | Mapping[str, Any]]
    _seed_customers: list[dict[str, Any]]
    _nonce_order: deque[tuple[str, str, str, int]]

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
                row.on_hand = qty(loc.get("quantityOnHand"))
                row.on_order = qty(loc.get("quantityOnOrder"))
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

    # --- HTTP: control -------------------------------------------------------------------
    async def _control(self, request: Request, path: str) -> Response:
        try:
            result = await self._control_route(request, path.strip("/"))
        except ControlError as exc:
            return json_response(400, {"error": str(exc)})
        if result is None:
            return json_response(404, {"error": f"no simulator endpoint {path!r}"})
        return json_response(200, result)

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
        if method == "POST" and path in _OPS:
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
            elif path == "ship_status":
                record = self.erp.set_ship_status(str(body["fulfillment"]), str(body["status"]))
            elif path == "receive":
                record = self.returns.receive(str(body["rma"]), body)
            elif path == "rma_status":
                record = self.returns.set_status(str(body["rma"]), str(body["status"]))
            elif path == "exchange":
                record = self.returns.exchange(str(body["rma"]), body)
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
        if "custom_fields" in body:  # {"transactionline": ["custcol_…"], …}
            fields = body["custom_fields"] or {}
            if not isinstance(fields, dict):
                raise ControlError("custom_fields must map a SuiteQL table to field ids")
            self.erp.custom_columns = {str(t): [str(c) for c in cs] for t, cs in fields.items()}

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
        if self.erp.custom_columns:
            out["custom_fields"] = self.erp.custom_columns
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
