"""Stock per product and warehouse, as Tryton computes it.

``product.product`` has ``quantity`` computed for the locations in the context:
``{"locations": [warehouse], "with_childs": true}`` gives what the warehouse (its storage
and every location under it) holds today; with ``stock_assign`` the moves already assigned
to go out count as gone. Their difference is what is allocated to shipments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connectors.tryton import records as rec
from connectors.tryton.client import TrytonClient
from connectors.tryton.events import Level
from connectors.tryton.options import TrytonOptions
from connectors.tryton.wire import decimal_of
from kernel.errors import PermanentError


@dataclass(frozen=True)
class Warehouse:
    id: int
    location: str  # its code, the location id the gateway and its mappings use


class Stock:
    def __init__(self, client: TrytonClient, options: TrytonOptions) -> None:
        self.client = client
        self.options = options
        self._warehouses: list[Warehouse] | None = None

    async def warehouses(self) -> list[Warehouse]:
        if self._warehouses is None:
            domain: list[Any] = [("type", "=", "warehouse")]
            codes = self.options.stock_warehouses
            if codes:
                domain.append(("code", "in", codes))
            rows = await self.client.search_read(
                "stock.location", domain, ["id", "code"], order=[("id", "ASC")]
            )
            missing = sorted(set(codes) - {str(r.get("code")) for r in rows})
            if missing:
                raise PermanentError(
                    f"options.stock_warehouses names warehouse code(s) Tryton does not have: "
                    f"{', '.join(missing)}"
                )
            self._warehouses = [
                Warehouse(int(r["id"]), str(r.get("code") or r["id"])) for r in rows
            ]
        return self._warehouses

    async def levels(self, product_ids: Sequence[int]) -> list[Level]:
        """On hand and allocated per (product with a code, warehouse); services left out."""
        if not product_ids:
            return []
        products = await self.client.read(rec.PRODUCT, list(product_ids), ["code", "type"])
        goods = {
            int(p["id"]): str(p["code"])
            for p in products
            if p.get("code") and p.get("type") in ("goods", "assets")
        }
        if not goods:
            return []
        ids = sorted(goods)
        out: list[Level] = []
        for warehouse in await self.warehouses():
            where = {"locations": [warehouse.id], "with_childs": True}
            on_hand = await self._quantities(ids, where)
            after_assigned = await self._quantities(ids, {**where, "stock_assign": True})
            for product in ids:
                held = on_hand.get(product, Decimal(0))
                allocated = max(held - after_assigned.get(product, held), Decimal(0))
                out.append(Level(goods[product], warehouse.location, held, allocated))
        return out

    async def _quantities(self, ids: list[int], context: dict[str, Any]) -> dict[int, Decimal]:
        rows = await self.client.read(rec.PRODUCT, ids, ["quantity"], context=context)
        return {int(r["id"]): decimal_of(r.get("quantity")) or Decimal(0) for r in rows}

    async def product_ids(self, skus: Sequence[str]) -> list[int]:
        if not skus:
            return []
        return await self.client.search(rec.PRODUCT, [("code", "in", list(skus))])

    async def availability(self, skus: Sequence[str]) -> dict[tuple[str, str | None], Decimal]:
        """(sku, warehouse code) → on hand minus allocated, for reconciliation."""
        levels = await self.levels(await self.product_ids(skus))
        return {(lv.sku, lv.location): lv.on_hand - lv.allocated for lv in levels}


__all__ = ["Stock", "Warehouse"]
