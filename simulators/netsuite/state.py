"""The simulated account's state: its records and what a save does to them, stats, faults.

``RecordStore`` (a part of ``NetSuiteSimulator``) keeps records by type and internal id,
with an index of external ids; it merges request bodies into records (keyed sublists by
``line``), validates sales orders, creates and updates records the way a NetSuite save
does, and renders them as GET returns them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from simulators.faults import FaultCounters

if TYPE_CHECKING:
    from simulators.netsuite.erp import ErpState

KNOWN_TYPES = {
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


class SimError(Exception):
    """A NetSuite error response: status plus one ``o:errorDetails`` entry."""

    def __init__(self, status: int, code: str, detail: str, path: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.path = path


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


def is_sublist(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("items"), list)


def ref_id(value: Any) -> str | None:
    if isinstance(value, Mapping) and value.get("id") not in (None, ""):
        return str(value["id"])
    return None


def required(path: str) -> SimError:
    return SimError(400, "FIELD_PARAM_REQD", f"Please enter a value for [{path}]", path)


class RecordStore:
    """Records by type and internal id, and the record semantics of a save."""

    stats: Stats
    erp: ErpState
    now: Callable[[], datetime]
    _type_names: dict[str, str]
    _records: dict[str, dict[str, SimRecord]]
    _by_eid: dict[str, dict[str, str]]
    _next_id: int
    _tran_seq: int
    _taken_ids: set[str]

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

    def _delete(self, record: SimRecord) -> None:
        del self._store(record.type)[record.id]
        if record.external_id:
            self._by_eid.get(record.type.lower(), {}).pop(record.external_id, None)

    # --- record semantics ----------------------------------------------------------------
    def _apply(self, record: SimRecord, body: Mapping[str, Any], replace: frozenset[str]) -> None:
        """Merge a request body into a record: fields set, keyed sublists merged by ``line``."""
        for name, value in body.items():
            if name in ("links", "id"):
                continue
            if is_sublist(value):
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
        entity = ref_id(fields.get("entity"))
        if entity is None:
            raise required("entity")
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
            item = ref_id(line.get("item"))
            if item is None:
                raise required(f"item.items[{i}].item")
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
        draft = SimRecord(record.type, record.id, deep_copy(record.fields), record.next_line)
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
            if is_sublist(value) and not expand:
                out[name] = {"links": [{"rel": "self", "href": f"{self_href}/{name}"}]}
            else:
                out[name] = deep_copy(value)
        if record.type.lower() in ("salesorder", "returnauthorization"):
            out["status"] = self._status_of(record)
        if record.type.lower() == "salesorder":
            out["taxTotal"] = self.erp.tax_total(record.fields)
        if record.modified is not None:
            out["lastModifiedDate"] = record.modified.isoformat()
        return out


def deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [deep_copy(v) for v in value]
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
    done = [(qty(ln.get("quantityFulfilled")), qty(ln.get("quantity"))) for ln in open_lines]
    if any(fulfilled for fulfilled, _ in done):
        if all(fulfilled >= ordered for fulfilled, ordered in done):
            return {"id": "F", "refName": "Pending Billing"}
        return {"id": "D", "refName": "Partially Fulfilled"}
    if fields.get("orderStatus") == "B":
        return {"id": "B", "refName": "Pending Fulfillment"}
    return {"id": "A", "refName": "Pending Approval"}


def qty(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def missing() -> SimError:
    return SimError(
        404,
        "NONEXISTENT_ID",
        "The record instance does not exist. Provide a valid record instance ID.",
    )
