"""Polling Tryton (it has no webhooks): each stream reads the records changed since a cursor.

Every stream drives on one model, ordered by ``(last_modified_at, id)`` — Tryton's
``coalesce(write_date, create_date)``, searchable and sortable since 7.0 — and resumes with
the keyset condition::

    last_modified_at > t OR (last_modified_at = t AND id > i)

so a page ends exactly after its last row and rows sharing a timestamp (everything one
Tryton transaction writes shares one) are neither lost nor repeated. Tryton stamps a row with
its transaction's *start*, so a long transaction can commit rows older than ones already
read: the last page of a run therefore steps the cursor back ``options.poll_overlap_seconds``
and the next run reads that window again (the core drops events that say nothing new).

The cursor is ``{"t": "<ISO timestamp, UTC>", "id": <id>}``, opaque to the core.

Streams:

- ``inventory``: stock moves changed (done, assigned, cancelled…) → for each product moved, an
  ``inventory.level_changed`` per warehouse: ``on_hand`` is Tryton's ``quantity`` in the
  warehouse today, ``allocated`` what assigned outgoing moves take from it
  (``quantity`` minus ``quantity`` with ``stock_assign``), so stock that moves without the product
  record changing is seen;
- ``shipments``: customer shipments (``stock.shipment.out``) in state ``done`` →
  ``shipment.created`` per order they ship (the order from the sale's reference), one package
  per Tryton package with its ``shipping_reference`` (module ``stock_package_shipping``), or
  one with the shipment's own reference;
- ``credit_notes``: posted customer invoices with a negative total (credit notes, e.g. from
  the *Credit* wizard) → ``credit_memo.created`` for the order of the sale they credit;
- ``customers``: parties → ``customer.upserted`` (not the company's own, nor carriers'; only
  those in ``options.customer_category`` when it is set).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from connectors.tryton import events as ev
from connectors.tryton import records as rec
from connectors.tryton.client import TrytonClient
from connectors.tryton.inventory import Stock
from connectors.tryton.options import TrytonOptions
from kernel.canonical.events import CanonicalEvent
from kernel.errors import PermanentError
from kernel.types import PollPage

STREAMS = frozenset({"inventory", "shipments", "credit_notes", "customers"})
ORDER = [("last_modified_at", "ASC"), ("id", "ASC")]
SHIPMENT = "stock.shipment.out"
INVOICE = "account.invoice"


@dataclass(frozen=True)
class Cursor:
    at: datetime  # naive UTC, as Tryton stores it
    id: int

    def encode(self) -> str:
        return json.dumps({"t": self.at.isoformat(), "id": self.id}, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        if not text:
            return None
        try:
            data = json.loads(text)
            at, ident = datetime.fromisoformat(str(data["t"])), int(data["id"])
        except (ValueError, TypeError, KeyError):
            raise PermanentError(
                f"poll cursor {text!r} was not written by the Tryton connector; reset the "
                "stream's cursor to start over"
            ) from None
        if at.tzinfo is not None:
            at = at.astimezone(UTC).replace(tzinfo=None)
        return cls(at, ident)

    def domain(self) -> list[Any]:
        return [
            "OR",
            ("last_modified_at", ">", self.at),
            [("last_modified_at", "=", self.at), ("id", ">", self.id)],
        ]


class Poller:
    def __init__(self, client: TrytonClient, options: TrytonOptions, source: str) -> None:
        self.client = client
        self.options = options
        self.source = source
        self.stock = Stock(client, options)
        self._excluded_parties: list[int] | None = None

    async def poll(self, stream: str, cursor: str | None, limit: int) -> PollPage:
        if stream not in STREAMS:
            raise PermanentError(
                f"Tryton cannot poll {stream!r}; streams: {', '.join(sorted(STREAMS))}"
            )
        after = Cursor.decode(cursor)
        model, domain, fields = await self._driving(stream)
        rows = await self.client.search_read(
            model,
            [*domain, *([after.domain()] if after else [])],
            ["id", "last_modified_at", *fields],
            limit=max(1, limit) + 1,
            order=ORDER,
        )
        more = len(rows) > max(1, limit)
        rows = rows[: max(1, limit)]
        if not rows:
            return PollPage(events=[], cursor=cursor, has_more=False)
        try:
            events = await self._events(stream, rows)
        except (ValidationError, ValueError) as exc:
            # stop here, naming the page, rather than skip it and move the cursor past it
            ids = f"{rows[0]['id']}…{rows[-1]['id']}"
            raise PermanentError(f"Tryton {model} {ids} cannot be mapped: {exc}") from None
        return PollPage(events=events, cursor=self._next(rows[-1], more).encode(), has_more=more)

    def _next(self, last: Mapping[str, Any], more: bool) -> Cursor:
        at = last.get("last_modified_at")
        if not isinstance(at, datetime):
            raise PermanentError("Tryton returned a row without last_modified_at")
        overlap = self.options.poll_overlap_seconds
        if more or not overlap:
            return Cursor(at, int(last["id"]))
        return Cursor(at - timedelta(seconds=overlap), 0)

    async def _driving(self, stream: str) -> tuple[str, list[Any], list[str]]:
        if stream == "inventory":
            return "stock.move", [("state", "!=", "staging")], ["product"]
        if stream == "shipments":
            return SHIPMENT, [("state", "=", "done")], []
        if stream == "credit_notes":
            return INVOICE, [("type", "=", "out"), ("state", "in", ["posted", "paid"])], []
        domain: list[Any] = [("id", "not in", await self._not_customers())]
        if self.options.customer_category:
            domain.append(("categories.name", "=", self.options.customer_category))
        return rec.PARTY, domain, []

    async def _events(self, stream: str, rows: list[dict[str, Any]]) -> list[CanonicalEvent]:
        now = datetime.now(UTC)
        if stream == "inventory":
            products = list(dict.fromkeys(int(r["product"]) for r in rows if r.get("product")))
            levels = await self.stock.levels(products)
            return [ev.level_event(self.source, level, now) for level in levels]
        if stream == "shipments":
            return await self._shipments(rows, now)
        if stream == "credit_notes":
            return await self._credit_notes(rows, now)
        return await self._customers(rows, now)

    # --- helpers -------------------------------------------------------------------------
    async def _order_keys(self, sale_line_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
        """sale.line id → (sale id, our order key), for sales whose reference is ours."""
        lines = await self.client.read(
            rec.SALE_LINE, sorted(set(sale_line_ids)), ["sale.reference"]
        )
        out: dict[int, tuple[int, str]] = {}
        for line in lines:
            sale = ev.related(line, "sale")
            key = rec.order_key_of(self.options, sale.get("reference"))
            if key is not None and sale.get("id"):
                out[int(line["id"])] = (int(sale["id"]), key)
        return out

    async def _not_customers(self) -> list[int]:
        """The company's own party and carriers' parties are not customers."""
        if self._excluded_parties is None:
            companies = await self.client.search_read("company.company", [], ["party"])
            try:
                carriers = await self.client.search_read("carrier", [], ["party"])
            except PermanentError:  # module carrier not activated
                carriers = []
            self._excluded_parties = sorted(
                {int(r["party"]) for r in [*companies, *carriers] if r.get("party")}
            )
        return self._excluded_parties

    # --- shipments -----------------------------------------------------------------------
    async def _shipments(self, rows: list[dict[str, Any]], now: datetime) -> list[CanonicalEvent]:
        optional = await self.client.has_fields(SHIPMENT, ["carrier", "shipping_reference"])
        fields = ["effective_date", "outgoing_moves", "last_modified_at"]
        fields += ["carrier.party.name"] if "carrier" in optional else []
        fields += ["shipping_reference"] if "shipping_reference" in optional else []
        shipments = await self.client.read(SHIPMENT, [int(r["id"]) for r in rows], fields)
        move_ids = [m for s in shipments for m in s.get("outgoing_moves") or []]
        packed = "package" in await self.client.has_fields("stock.move", ["package"])
        moves = await self.client.read(
            "stock.move",
            move_ids,
            ["shipment", "product.code", "quantity", "origin", *(["package"] if packed else [])],
        )
        keys = await self._order_keys(
            [i for m in moves if (i := ev.ref_id(m.get("origin"), rec.SALE_LINE))]
        )
        roots = await self._package_roots([int(m["package"]) for m in moves if m.get("package")])
        trackings = await self._trackings(sorted({r for r in roots.values()}))
        grouped: dict[int, dict[int, ev.ShipmentParts]] = {}
        for move in moves:
            shipment_id = ev.ref_id(move.get("shipment"), SHIPMENT)
            line = ev.ref_id(move.get("origin"), rec.SALE_LINE)
            sku = ev.related(move, "product").get("code")
            if shipment_id is None or line is None or line not in keys or not sku:
                continue  # not from one of our orders, or nothing to name it by
            sale, key = keys[line]
            parts = grouped.setdefault(shipment_id, {}).setdefault(sale, ev.ShipmentParts(key))
            package = roots.get(int(move["package"])) if move.get("package") else None
            parts.packages.setdefault(package, []).append(
                (str(sku), ev.quantity(move.get("quantity")))
            )
        events = []
        for shipment in shipments:
            per_sale = grouped.get(int(shipment["id"]), {})
            for sale, parts in sorted(per_sale.items()):
                external_id = (
                    str(shipment["id"]) if len(per_sale) == 1 else f"{shipment['id']}-{sale}"
                )
                events.append(
                    ev.shipment_event(
                        self.source, external_id, shipment, parts, trackings, self.options, now
                    )
                )
        return events

    async def _package_roots(self, package_ids: Sequence[int]) -> dict[int, int]:
        """package id → the outermost package it is in."""
        parents: dict[int, int | None] = {}
        todo = set(package_ids)
        while todo:
            rows = await self.client.read("stock.package", sorted(todo), ["parent"])
            todo = set()
            for row in rows:
                parent = int(row["parent"]) if row.get("parent") else None
                parents[int(row["id"])] = parent
                if parent is not None and parent not in parents:
                    todo.add(parent)
        roots = {}
        for package in package_ids:
            root, seen = package, set()
            while parents.get(root) is not None and root not in seen:
                seen.add(root)
                root = parents[root]  # type: ignore[assignment]
            roots[package] = root
        return roots

    async def _trackings(self, package_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        wanted = ["shipping_reference", "shipping_tracking_url"]
        present = await self.client.has_fields("stock.package", wanted) if package_ids else set()
        if not present:
            return {}
        rows = await self.client.read("stock.package", package_ids, sorted(present))
        return {int(r["id"]): r for r in rows}

    # --- credit notes --------------------------------------------------------------------
    async def _credit_notes(
        self, rows: list[dict[str, Any]], now: datetime
    ) -> list[CanonicalEvent]:
        invoices = await self.client.read(
            INVOICE,
            [int(r["id"]) for r in rows],
            ["total_amount", "currency.code", "invoice_date", "lines", "last_modified_at"],
        )
        credits = [i for i in invoices if (i.get("total_amount") or Decimal(0)) < 0]
        lines = await self.client.read(
            "account.invoice.line",
            [line for i in credits for line in i.get("lines") or []],
            ["invoice", "product.code", "quantity", "amount", "origin"],
        )
        credited = await self.client.read(
            "account.invoice.line",
            [i for ln in lines if (i := ev.ref_id(ln.get("origin"), "account.invoice.line"))],
            ["origin"],
        )
        sale_line_of = {int(c["id"]): ev.ref_id(c.get("origin"), rec.SALE_LINE) for c in credited}
        for line in lines:
            direct = ev.ref_id(line.get("origin"), rec.SALE_LINE)
            via = ev.ref_id(line.get("origin"), "account.invoice.line")
            line["_sale_line"] = direct or (sale_line_of.get(via) if via else None)
        keys = await self._order_keys([ln["_sale_line"] for ln in lines if ln["_sale_line"]])
        events = []
        for invoice in credits:
            mine = [ln for ln in lines if ln.get("invoice") == invoice["id"]]
            per_sale: dict[int, tuple[str, list[dict[str, Any]]]] = {}
            for line in mine:
                if line["_sale_line"] in keys:
                    sale, key = keys[line["_sale_line"]]
                    per_sale.setdefault(sale, (key, []))[1].append(line)
            for sale, (key, sale_lines) in sorted(per_sale.items()):
                if len(per_sale) == 1:
                    external_id, amount = str(invoice["id"]), invoice["total_amount"]
                else:  # one memo per order credited; taxes are not split between them
                    external_id = f"{invoice['id']}-{sale}"
                    amount = sum((ln.get("amount") or Decimal(0) for ln in sale_lines), Decimal(0))
                events.append(
                    ev.credit_memo_event(
                        self.source,
                        external_id,
                        invoice,
                        key,
                        amount,
                        sale_lines,
                        self.options,
                        now,
                    )
                )
        return events

    # --- customers -----------------------------------------------------------------------
    async def _customers(self, rows: list[dict[str, Any]], now: datetime) -> list[CanonicalEvent]:
        ids = [int(r["id"]) for r in rows]
        parties = await self.client.read(rec.PARTY, ids, ["name", "last_modified_at"])
        addresses = await self.client.search_read(
            rec.ADDRESS,
            [("party", "in", ids)],
            ["party", *rec.ADDRESS_FIELDS, "country.code", "subdivision.code"],
            order=[("sequence", "ASC"), ("id", "ASC")],
        )
        contacts = await self.client.search_read(
            rec.CONTACT,
            [("party", "in", ids), ("type", "in", ["email", "phone", "mobile"])],
            ["party", "type", "value"],
            order=[("sequence", "ASC"), ("id", "ASC")],
        )
        return [
            ev.customer_event(
                self.source,
                party,
                [a for a in addresses if a.get("party") == party["id"]],
                [c for c in contacts if c.get("party") == party["id"]],
                now,
            )
            for party in parties
        ]


__all__ = ["STREAMS", "Cursor", "Poller"]
