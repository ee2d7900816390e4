"""Who may see what: the one answer to "may this principal see this union / order".

admin: everything; auditor: its union and everything below it; buyer: its branch;
supplier: the orders holding its products (only its own lines of them)."""

from __future__ import annotations

from typing import Any

from budgets import service as budgets
from budgets.tables import Union
from common.errors import DomainError
from shop.auth.accounts import Principal
from shop.orders.tables import Order, OrderLine


async def order_filter(principal: Principal) -> Any | None:
    """A `where` clause for the orders the caller may see (None: all of them)."""
    if principal.role == "admin":
        return None
    if principal.role == "buyer":
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


async def union_root(principal: Principal, union_id: int | None) -> int | None:
    """The union whose subtree a report covers: the one asked for, if the caller may see
    it, else the caller's own (None: the whole shop, for an admin who asked for none)."""
    return await budgets.scope_root(principal, union_id)
