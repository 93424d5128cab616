"""Planning returns, refunds and credit memos: RMAs after their order, refund ↔ credit memo
reconciled by amount, restocking by disposition.
"""

from __future__ import annotations

import structlog

from app.flows.inventory.planning import availability_deliveries
from app.flows.inventory.state import stock_levels_for, upsert_stock_level
from app.flows.plan import PlanContext, Planned, all_of_order, as_is, latest
from app.flows.returns import rules as return_rules
from app.models import DeliveryStatus
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.order import Order
from kernel.canonical.returns import CreditMemo, Refund, Return

log = structlog.get_logger("gateway.flows")


async def plan_return(ctx: PlanContext, event: CanonicalEvent) -> list[Planned]:
    ret = event.payload_as(Return)
    order = await latest(ctx, ret.order_key, Order)
    problems: list[str] = []
    if order is not None:
        earlier = [
            r
            for r in await all_of_order(ctx, ret.order_key, "return", Return)
            if r.external_id != ret.external_id
        ]
        problems = return_rules.check_return(order, earlier, ret)
    held = "; ".join(problems) if problems else None
    return [
        as_is(
            route,
            event,
            depends_on=ret.order_key,  # the ERP needs the order before its RMA
            status=DeliveryStatus.HELD if held else DeliveryStatus.PENDING,
            held_reason=held,
        )
        for route in ctx.order_routes("returns", ret.order_key)
    ]


async def plan_money_back(ctx: PlanContext, event: CanonicalEvent) -> list[Planned]:
    """Refunds (store) and credit memos (ERP) are reconciled per order by amount."""
    payload = event.payload
    assert isinstance(payload, Refund | CreditMemo)
    memos = await all_of_order(ctx, payload.order_key, "credit_memo", CreditMemo)
    refunds = await all_of_order(ctx, payload.order_key, "refund", Refund)
    result = return_rules.reconcile_refund(memos, refunds, ctx.rules.returns)
    finding = return_rules.mismatch_finding(result, payload.order_key)
    if finding is not None:
        ctx.report(finding, entity_key=payload.order_key)
    planned: list[Planned] = []
    if isinstance(payload, CreditMemo):
        planned.extend(await _restock(ctx, payload))
        if refunds or not ctx.rules.returns.refund_from_credit_memo:
            # the store already gave money back (or the store refunds itself): the memo is
            # reconciled against it above, never paid out a second time
            log.info(
                "credit memo reconciled, not sent as a refund",
                order_key=payload.order_key,
                store_refunds=len(refunds),
            )
            return planned
    planned.extend(
        as_is(route, event, depends_on=payload.order_key)
        for route in ctx.order_routes("returns", payload.order_key)
    )
    return planned


async def _restock(ctx: PlanContext, memo: CreditMemo) -> list[Planned]:
    """Returned goods change what can be sold, by their disposition."""
    adjustments = return_rules.restock_adjustments(memo.restock, ctx.rules.returns)
    planned: list[Planned] = []
    for adjustment in adjustments:
        levels = (await stock_levels_for(ctx.session, memo.source, [adjustment.sku])).get(
            adjustment.sku, []
        )
        if not levels:
            continue  # the ERP will report the level; nothing known to adjust
        level = max(levels, key=lambda lv: lv.as_of)
        changed = level.model_copy(
            update={
                "on_hand": level.on_hand + adjustment.quantity,
                "damaged": level.damaged
                + (adjustment.quantity if adjustment.bucket == "damaged" else 0),
                "as_of": max(memo.created_at, level.as_of),
            }
        )
        await upsert_stock_level(ctx.session, changed, force=True)
        planned.extend(
            await availability_deliveries(ctx, memo.source, adjustment.sku, changed.as_of)
        )
    return planned
