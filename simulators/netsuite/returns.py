"""Returns in the simulated account, the way NetSuite does them:

- an RMA is made by transforming its sales order (``POST …/salesOrder/{id}/!transform/
  returnAuthorization``; Oracle, "Transforming Records": the new record takes its data from
  the order, the body may set fields and lines, ``replace=item`` makes the body's lines the
  only ones; success is 204 with a ``Location``). The RMA's ``createdfrom`` is the order;
- receiving the goods is an item receipt (ItemRcpt) created from the RMA: stock comes back
  and the RMA moves to Partially Received (D) / Pending Refund (F);
- an exchange is a new sales order created from the RMA (its ``createdfrom`` is the RMA),
  carrying the replacement goods.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from simulators.netsuite.erp import OpError, dec, ref_id, sublist_lines
from simulators.netsuite.state import SimError, SimRecord, missing

if TYPE_CHECKING:
    from simulators.netsuite.simulator import NetSuiteSimulator

_COPIED = ("entity", "currency", "location", "subsidiary", "shippingAddress", "billingAddress")


class ReturnsDesk:
    """The return side of one simulated account."""

    def __init__(self, sim: NetSuiteSimulator) -> None:
        self.sim = sim

    # --- REST: transform ---------------------------------------------------------------
    def transform(
        self, from_type: str, key: str, to_type: str, body: Mapping[str, Any], replace: set[str]
    ) -> SimRecord:
        if (from_type.lower(), to_type.lower()) != ("salesorder", "returnauthorization"):
            raise SimError(
                400,
                "INVALID_REQUEST",
                f"The simulator transforms salesOrder to returnAuthorization, not "
                f"{from_type} to {to_type}.",
            )
        order = self.sim._find("salesOrder", key)
        if order is None:
            raise missing()
        ordered: dict[str, Decimal] = {}
        for line in sublist_lines(order):
            item = ref_id(line.get("item"))
            if item:
                ordered[item] = ordered.get(item, Decimal(0)) + dec(line.get("quantity", 0), "q")
        values: dict[str, Any] = {k: order.fields[k] for k in _COPIED if k in order.fields}
        values["createdFrom"] = {"id": order.id}
        lines = (
            (body.get("item") or {}).get("items") if isinstance(body.get("item"), Mapping) else None
        )
        if lines is None or "item" not in replace:
            copied = [
                {"item": ln["item"], "quantity": ln.get("quantity"), "rate": ln.get("rate")}
                for ln in sublist_lines(order)
            ]
            lines = copied + list(lines or [])
        for i, line in enumerate(lines):
            item = ref_id(line.get("item")) if isinstance(line, Mapping) else None
            if item is None or item not in ordered:
                raise SimError(
                    400,
                    "USER_ERROR",
                    f"Item {item} is not on sales order {order.fields.get('tranId')}.",
                    f"item.items[{i}].item",
                )
            if dec(line.get("quantity", 0), "quantity") > ordered[item]:
                raise SimError(
                    400,
                    "USER_ERROR",
                    "You cannot return more items than were ordered on the sales order.",
                    f"item.items[{i}].quantity",
                )
        values.update({k: v for k, v in body.items() if k != "item"})
        values["item"] = {"items": [dict(line) for line in lines]}
        record = self.sim._create("returnAuthorization", values, body.get("externalId"))
        self.sim._after_write(record, created=True)
        return record

    # --- account-side actions (control) -------------------------------------------------
    def receive(self, rma_key: str, spec: Mapping[str, Any]) -> SimRecord:
        """Goods back in the warehouse: an item receipt of the RMA (all open, or ``lines``)."""
        rma = self._rma(rma_key)
        erp = self.sim.erp
        wanted = {
            erp.item(str(k)).id: dec(v, "quantity") for k, v in (spec.get("lines") or {}).items()
        }
        location = str(spec.get("location") or erp.default_location)
        received: list[dict[str, Any]] = []
        for line in sublist_lines(rma):
            item = ref_id(line.get("item"))
            if item is None:
                continue
            open_qty = dec(line.get("quantity", 0), "q") - dec(line.get("quantityReceived", 0), "q")
            qty = min(open_qty, wanted.get(item, open_qty)) if spec.get("lines") else open_qty
            if item not in wanted and spec.get("lines"):
                continue
            if qty <= 0:
                continue
            line["quantityReceived"] = dec(line.get("quantityReceived", 0), "q") + qty
            erp.row(item, location).on_hand += qty
            received.append(
                {
                    "item": {"id": item},
                    "quantity": qty,
                    "location": {"id": location},
                    "inventoryAffecting": True,
                }
            )
        if not received:
            raise OpError(f"returnAuthorization {rma.id} has nothing left to receive")
        receipt = erp.stock_transaction("itemReceipt", "IR", received, createdFrom={"id": rma.id})
        done = all(
            dec(ln.get("quantityReceived", 0), "q") >= dec(ln.get("quantity", 0), "q")
            for ln in sublist_lines(rma)
        )
        rma.fields["orderStatus"] = "F" if done else "D"  # Pending Refund / Partially Received
        erp.touched(rma)
        return receipt

    def set_status(self, rma_key: str, status: str) -> SimRecord:
        """Approve (B), cancel (C), close (H)…: an edit of the RMA."""
        if status not in "ABCDEFGH" or len(status) != 1:
            raise OpError("an RMA status is one letter from A to H")
        rma = self._rma(rma_key)
        rma.fields["orderStatus"] = status
        self.sim.erp.touched(rma)
        return rma

    def exchange(self, rma_key: str, spec: Mapping[str, Any]) -> SimRecord:
        """The replacement of an exchange: a sales order created from the RMA."""
        rma = self._rma(rma_key)
        erp = self.sim.erp
        lines = [
            {"item": {"id": erp.item(str(k)).id}, "quantity": dec(v, "quantity"), "rate": 0}
            for k, v in (spec.get("lines") or {}).items()
        ]
        if not lines:
            raise OpError("an exchange needs lines: {item: quantity}")
        self.sim._tran_seq += 1
        order = self.sim._new_transaction(
            "salesOrder",
            {
                "tranId": f"SO{self.sim._tran_seq}",
                "tranDate": erp.now().date().isoformat(),
                "entity": rma.fields.get("entity"),
                "createdFrom": {"id": rma.id},
                "orderStatus": "B",
                "item": {"items": lines},
            },
        )
        erp.recommit(order)
        erp.touched(order, "create")
        return order

    def _rma(self, key: str) -> SimRecord:
        record = self.sim._find("returnAuthorization", key)
        if record is None:
            raise OpError(f"no returnAuthorization {key!r}")
        return record


__all__ = ["ReturnsDesk"]
