"""Who may see what: the one answer to "may this principal see this union / order".

admin: everything; auditor: its union and everything below it; buyer and approver: its branch;
supplier: the orders holding its products (only its own lines of them)."""

from __future__ import annotations

from typing import Any

from budgets import unions
from budgets.tables import Union
from common.errors import DomainError
from shop.auth.accounts import Principal
from shop.orders.tables import Order, OrderLine


def branch_of(request: Any) -> int:
    """The caller's branch (a buyer's or an approver's); `forbidden` for an account without one."""
    union_id = getattr(request.user, "union_id", None)
    if union_id is None:
        raise DomainError("forbidden", "this account is not attached to a branch")
    return union_id


async def order_filter(principal: Principal) -> Any | None:
    """A `where` clause for the orders the caller may see (None: all of them)."""
    if principal.role == "admin":
        return None
    if principal.role in ("buyer", "approver"):
        return Order.branch == principal.union_id
    if principal.role == "auditor":
        union = await Union.select(Union.path).where(Union.id == principal.union_id).first()
        return Order.branch.path.like((union["path"] if union else "/none/") + "%")
    if principal.role == "supplier":
        return Order.id.is_in(OrderLine.select(OrderLine.order).where(OrderLine.supplier == principal.supplier_id))
    raise DomainError("forbidden", "this role sees no orders")


async def check_order(principal: Principal, order_id: int) -> None:
    """`not_found` if the order does not exist, `forbidden` if it is outside the caller's scope."""
    if not await Order.exists().where(Order.id == order_id):
        raise DomainError("not_found", f"order {order_id} does not exist")
    where = await order_filter(principal)
    if where is not None and not await Order.exists().where((Order.id == order_id) & where):
        raise DomainError("forbidden", "this order is outside your scope")


async def scope_root(principal: Principal, union_id: int | None) -> int | None:
    """The union whose subtree a report or an audit page covers: the caller's own scope,
    or `union_id` inside it. Admins may name any union (None: the whole shop); auditors
    and buyers only their subtree (a buyer's is its branch)."""
    if principal.role == "admin":
        if union_id is not None and await unions.get_union(union_id) is None:
            raise DomainError("not_found", f"union {union_id} does not exist")
        return union_id
    own = principal.union_id
    if union_id is None or union_id == own:
        return own
    if await unions.get_union(union_id) is None or not await unions.is_in_subtree(union_id, own):
        raise DomainError("forbidden", f"union {union_id} is outside your scope")
    return union_id
