"""Approval before spending (工会审批): an order above its branch's approval rule
(`budgets/approval_rules.py`) is placed `pending_approval` — stock and every member's share
held at once, so the cap can never be raced while it waits — and nothing is paid until the
branch's approver decides:

- `approve()`: pending_approval -> pending_payment; the payment hold time starts now and,
  once that has committed, the payment is started (as placing starts it);
- `reject()`: pending_approval -> cancelled, everything released (`cancellation.close`);
- no decision within `APPROVAL_HOURS`: the expiry job closes it (`cancellation.expire_due`).

Every decision locks the order row and checks its state (`lifecycle.transition`), so of two
approvers, or an approver and the expiry job, exactly one decides. An approver decides only
its own branch's orders and never an order it placed itself: a buyer may also approve
(`approves`, a union chair who buys), and then decides the others' orders, not its own.
Each step writes the order's event, closes the `Approval` row and tells the other side."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from common.clock import local
from common.errors import DomainError
from shop.auth.accounts import Principal
from shop.auth.tables import Role
from shop.db import after_commit
from shop.notifications import notify
from shop.notifications.kinds import Kind
from shop.notifications.notify import yuan
from shop.orders import cancellation, lifecycle, queries
from shop.orders.schemas import OrderOut
from shop.orders.states import ApprovalStatus, OrderAction, OrderStatus
from shop.orders.tables import Allocation, Approval, Order, OrderLine
from shop.payments import provider_named
from shop.settings import Settings


async def request(order: dict[str, Any], required_above_fen: int, now: datetime) -> None:
    """Inside the placing transaction: the order's approval row, and its branch's approvers told."""
    await Approval.insert(
        Approval(order=order["id"], branch=order["branch"], required_above_fen=required_above_fen, requested_at=now)
    )
    ends = local(order["expires_at"]).strftime("%m月%d日 %H:%M")
    await notify.to_approvers(
        order["branch"], Kind.approval_requested,
        f"订单 {order['id']}（{yuan(order['total_fen'])}）待审批，请在 {ends} 前决定", at=now, order_id=order["id"],
    )


async def _decidable(order_id: int, principal: Principal) -> dict[str, Any]:
    """The order (unlocked) if `principal` may decide it: `not_found`, or `forbidden` for
    another branch's order or one the approver placed."""
    order = await Order.select(Order.id, Order.branch, Order.created_by).where(Order.id == order_id).first()
    if order is None:
        raise DomainError("not_found", f"order {order_id} does not exist")
    if not principal.may_approve or order["branch"] != principal.union_id:
        raise DomainError("forbidden", "only an approver of the order's branch decides it")
    if order["created_by"] == principal.id:
        raise DomainError("forbidden", "nobody approves an order they placed themselves")
    return order


def _late(order: dict[str, Any], now: datetime) -> bool:
    return order["status"] == OrderStatus.pending_approval and order["expires_at"] <= now


async def _expire_late(order_id: int, now: datetime) -> DomainError:
    """Past its deadline an order is not decided but expired, here and now (one outcome,
    whoever comes first: the expiry job or this decision)."""
    await cancellation.close(order_id, OrderAction.expired, now, reason="approval time ran out")
    return DomainError(
        "invalid_state", f"order {order_id}'s time for approval ran out; it has expired", order_status=OrderStatus.expired.value
    )


async def approve(order_id: int, principal: Principal, now: datetime, settings: Settings) -> OrderOut:
    """pending_approval -> pending_payment, then the payment starts (after the commit)."""
    await _decidable(order_id, principal)
    async with Order._meta.db.transaction():
        order = await lifecycle.lock(order_id)
        late = _late(order, now)
        if not late:
            provider = provider_named(order["provider"], settings)
            expires = now + provider.hold_time()
            await lifecycle.transition(
                order_id, OrderAction.approved, at=now, actor_id=principal.id, locked=order,
                values={Order.expires_at: expires, Order.hold_warned: False},
            )
            await _decide(order_id, ApprovalStatus.approved, principal.id, now)
            ends = local(expires).strftime("%m月%d日 %H:%M")
            await notify.to_branch(
                order["branch"], Kind.approval_decided, f"订单 {order_id} 已审批通过，请在 {ends} 前付款", at=now, order_id=order_id
            )
    if late:
        raise await _expire_late(order_id, now)

    async def pay() -> OrderOut:
        from shop.orders.placement import start_payment  # placing imports this module

        await start_payment(order_id, provider, now)
        return await queries.get_order(order_id, principal)

    return await after_commit(pay)


async def reject(order_id: int, principal: Principal, reason: str, now: datetime) -> OrderOut:
    """pending_approval -> cancelled: stock and every share released, the buyers told why."""
    await _decidable(order_id, principal)
    reason = reason.strip()
    if not reason:
        raise DomainError("validation_failed", "say why the order is rejected", errors=[{"field": "reason", "message": "required"}])
    current = await Order.select(Order.status, Order.expires_at).where(Order.id == order_id).first()
    if _late(current, now):
        raise await _expire_late(order_id, now)
    if await cancellation.close(order_id, OrderAction.rejected, now, reason=reason[:500], actor_id=principal.id) is None:
        current = await Order.select(Order.status).where(Order.id == order_id).first()
        raise lifecycle.refused(current, OrderAction.rejected)
    return await queries.get_order(order_id, principal)


async def _decide(order_id: int, status: ApprovalStatus, actor_id: int, now: datetime) -> None:
    await Approval.update({Approval.status: status.value, Approval.decided_at: now, Approval.decided_by: actor_id}).where(
        (Approval.order == order_id) & (Approval.status == ApprovalStatus.pending)
    )


async def list_approvals(
    principal: Principal, *, status: ApprovalStatus | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """The approvals of the approver's branch (an admin: every branch's), newest first:
    `{order_id, branch_id, status, order_status, total_fen, members, required_above_fen,
    requested_at, deadline, decided_at, decided_by, reason, placed_by, lines}`."""
    where = [] if principal.role == Role.admin else [Approval.branch == principal.union_id]
    if status is not None:
        where.append(Approval.status == status)
    query = Approval.select(
        Approval.order, Approval.branch, Approval.status, Approval.required_above_fen, Approval.requested_at,
        Approval.decided_at, Approval.decided_by.username, Approval.reason,
        Approval.order.status, Approval.order.total_fen, Approval.order.expires_at, Approval.order.created_by.username,
    )
    count = Approval.count()
    for clause in where:
        query, count = query.where(clause), count.where(clause)
    rows = await query.order_by(Approval.id, ascending=False).limit(limit).offset(offset)
    ids = [r["order"] for r in rows]
    lines: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    members: dict[int, int] = {}
    if ids:
        for line in await OrderLine.select(OrderLine.order, OrderLine.title, OrderLine.quantity, OrderLine.amount_fen).where(
            OrderLine.order.is_in(ids)
        ).order_by(OrderLine.id):
            lines[line["order"]].append({"title": line["title"], "quantity": line["quantity"], "amount_fen": line["amount_fen"]})
        for a in await Allocation.select(Allocation.order).where(Allocation.order.is_in(ids)):
            members[a["order"]] = members.get(a["order"], 0) + 1
    items = [
        {
            "order_id": r["order"],
            "branch_id": r["branch"],
            "status": r["status"],
            "order_status": r["order.status"],
            "total_fen": r["order.total_fen"],
            "members": members.get(r["order"], 0),
            "required_above_fen": r["required_above_fen"],
            "requested_at": _utc(r["requested_at"]),
            "deadline": _utc(r["order.expires_at"]) if r["status"] == ApprovalStatus.pending else None,
            "decided_at": _utc(r["decided_at"]) if r["decided_at"] else None,
            "decided_by": r["decided_by.username"],
            "reason": r["reason"],
            "placed_by": r["order.created_by.username"],
            "lines": lines[r["order"]],
        }
        for r in rows
    ]
    return items, await count


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc)
