"""Money in: an order's payment arrived (a webhook or a confirmed transfer), so its
holds become spent; or it arrived too late (the order no longer holds anything), so it
is marked for an admin to refund."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from budgets import ledger
from shop.fulfilment import shipments
from shop.orders import lifecycle
from shop.orders.queries import shares_of
from shop.orders.states import OrderAction
from shop.orders.tables import Order

logger = logging.getLogger("shop.payments")


async def pay(
    order: dict[str, Any],
    action: OrderAction,
    now: datetime,
    *,
    actor_id: int | None = None,
    detail: str = "",
    payment_intent: str = "",
) -> None:
    """pending_payment -> paid inside the caller's transaction, the order row locked:
    every held share becomes spent (ledger `capture`) and its lines become one shipment per
    supplier."""
    values: dict[Any, Any] = {Order.paid_at: now}
    if payment_intent:
        values[Order.payment_intent] = payment_intent
    await lifecycle.transition(
        order["id"], action, at=now, actor_id=actor_id, detail=detail, values=values, locked=order
    )
    await ledger.capture(await shares_of(order["id"]), year=order["year"], order_id=order["id"], at=now)
    await shipments.open_for_order(order, now)
    logger.info("order %s paid (%s)", order["id"], order["provider"])


async def record_late_payment(
    order: dict[str, Any], now: datetime, *, actor_id: int | None = None, payment_intent: str = "", detail: str = ""
) -> None:
    """Money arrived for an order that no longer holds stock or quota: nothing is captured
    (the quota may be in use elsewhere); the order is marked `needs_refund`."""
    await lifecycle.transition(
        order["id"],
        OrderAction.late_payment,
        at=now,
        actor_id=actor_id,
        detail=detail,
        values={Order.needs_refund: True, Order.payment_intent: payment_intent or order["payment_intent"]},
        locked=order,
    )
    logger.error("order %s was paid after it was %s: marked needs_refund", order["id"], order["status"])
