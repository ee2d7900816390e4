"""Closing an unpaid order: the buyer cancels it, its approver rejects it, or its time runs
out (the periodic job and `shop expire-holds`). Either way its stock goes back and every
member's hold is released, in the transaction that moves the order (an order waiting for
approval has its approval row closed and its buyers told there too); once that has
committed, the provider is told, so that the way to pay (a Stripe Checkout Session) can
no longer be used."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from budgets import ledger
from catalog import stock
from common.errors import DomainError
from common.clock import local
from shop.auth.accounts import Principal
from shop.notifications import notify
from shop.notifications.kinds import Kind
from shop.orders import lifecycle
from shop.orders.queries import shares_of
from shop.orders.states import ApprovalStatus, OrderAction, OrderStatus
from shop.orders.tables import Approval, Order, OrderLine
from shop.payments import provider_named
from shop.payments.provider import PaymentProviderError
from shop.settings import Settings, get_settings

logger = logging.getLogger("shop.orders")


# what became of a waiting order's approval when it was closed, and what its buyers read
APPROVAL_ENDS = {
    OrderAction.rejected: (ApprovalStatus.rejected, "订单 {id} 未获审批通过：{reason}，额度和库存已释放"),
    OrderAction.cancelled: (ApprovalStatus.withdrawn, ""),
    OrderAction.expired: (ApprovalStatus.expired, "订单 {id} 超时未审批，已自动关闭，额度和库存已释放"),
}


async def close(
    order_id: int, action: OrderAction, now: datetime, *, reason: str = "", actor_id: int | None = None
) -> OrderStatus | None:
    """pending_approval | pending_payment -> cancelled | expired (`rejected`: by the approver):
    stock goes back, holds are released.

    Returns the status the order was closed from, or None (and changes nothing) when the
    order is no longer open to `action`, so that several workers may race to expire the
    same order safely."""
    async with Order._meta.db.transaction():
        order = await lifecycle.lock(order_id)
        if order is None or not lifecycle.allows(order["status"], action):
            return None
        await lifecycle.transition(
            order_id, action, at=now, actor_id=actor_id, detail=reason, values={Order.closed_at: now}, locked=order
        )
        if order["status"] == OrderStatus.pending_approval:
            await _end_approval(order, action, now, reason, actor_id)
        # the lock order: the order row, budget rows, then product rows
        await ledger.release(await shares_of(order_id), year=order["year"], order_id=order_id, at=now)
        lines = await OrderLine.select(OrderLine.product, OrderLine.quantity).where(OrderLine.order == order_id)
        await stock.release_stock(sorted((line["product"], line["quantity"]) for line in lines))
    logger.info("order %s %s%s", order_id, action, f" ({reason})" if reason else "")
    return OrderStatus(order["status"])


async def _end_approval(order: dict, action: OrderAction, now: datetime, reason: str, actor_id: int | None) -> None:
    outcome, told = APPROVAL_ENDS[action]
    await Approval.update(
        {Approval.status: outcome.value, Approval.decided_at: now, Approval.decided_by: actor_id, Approval.reason: reason}
    ).where((Approval.order == order["id"]) & (Approval.status == ApprovalStatus.pending))
    if told:
        title = told.format(id=order["id"], reason=reason)
        await notify.to_branch(order["branch"], Kind.approval_decided, title, at=now, order_id=order["id"])


async def stop_payment(order_id: int, settings: Settings) -> None:
    """After a close committed: the provider makes the order's way to pay unusable. If it
    cannot, a payment that still arrives is recorded as a late payment, to be refunded."""
    order = await Order.select().where(Order.id == order_id).first()
    try:
        await provider_named(order["provider"], settings).cancel(order)
    except PaymentProviderError as exc:
        logger.warning("order %s is closed but its payment could not be stopped: %s", order_id, exc)


async def cancel_order(order_id: int, principal: Principal, now: datetime, settings: Settings) -> None:
    """The buyer of the order's branch cancels it while it is unpaid."""
    order = await Order.select(Order.branch, Order.status).where(Order.id == order_id).first()
    if order is None:
        raise DomainError("not_found", f"order {order_id} does not exist")
    if order["branch"] != principal.union_id:
        raise DomainError("forbidden", "this order belongs to another branch")
    closed_from = await close(order_id, OrderAction.cancelled, now, actor_id=principal.id)
    if closed_from is None:
        current = await Order.select(Order.status).where(Order.id == order_id).first()
        raise lifecycle.refused(current, OrderAction.cancelled)
    if closed_from == OrderStatus.pending_payment:  # a waiting order has no way to pay yet
        await stop_payment(order_id, settings)


async def expire_due(now: datetime, batch: int = 200, settings: Settings | None = None) -> int:
    """Expire every unpaid order whose time has run out (its payment hold, or its wait for
    approval). Safe to run in several workers at once: each order is closed by exactly one
    of them."""
    settings = settings or get_settings()
    expired = 0
    while True:
        due = await Order.select(Order.id).where(
            Order.status.is_in(list(lifecycle.UNPAID)) & (Order.expires_at <= now)
        ).order_by(Order.expires_at).limit(batch)
        if not due:
            return expired
        for row in due:
            closed_from = await close(row["id"], OrderAction.expired, now, reason="hold ran out")
            if closed_from is not None:
                expired += 1
            if closed_from == OrderStatus.pending_payment:
                await stop_payment(row["id"], settings)
        if len(due) < batch:
            return expired


async def warn_ending_holds(now: datetime, within: timedelta = timedelta(hours=24), batch: int = 200) -> int:
    """Tell the branch's buyers, once per order, that an unpaid order's hold ends within a
    day. One `UPDATE … RETURNING` a batch sets the flag, and only the orders it set are told,
    in the same transaction: of several workers at once, each order is told by one."""
    told = 0
    due = (
        (Order.status == OrderStatus.pending_payment)
        & (Order.hold_warned == False)  # noqa: E712
        & (Order.expires_at > now)
        & (Order.expires_at <= now + within)
    )
    while True:
        async with Order._meta.db.transaction():
            flagged = await Order.update({Order.hold_warned: True}).where(
                Order.id.is_in(Order.select(Order.id).where(due).order_by(Order.expires_at).limit(batch)) & due
            ).returning(Order.id, Order.branch, Order.expires_at)
            for row in flagged:
                ends = local(row["expires_at"]).strftime("%m月%d日 %H:%M")
                await notify.to_branch(
                    row["branch"], Kind.hold_ending, f"订单 {row['id']} 尚未付款，将于 {ends} 自动关闭并释放额度",
                    at=now, order_id=row["id"],
                )
        told += len(flagged)
        if not flagged:
            return told
