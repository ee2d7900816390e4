"""Reading orders in the caller's scope (`shop/auth/scope.py`), shaped for the API and
the pages; an order's events, oldest first."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from shop.auth.accounts import Principal
from shop.auth.scope import check_order, order_filter
from shop.fulfilment.addresses import delivery_out
from shop.fulfilment.queries import briefs_for
from shop.orders.schemas import (
    ActorOut,
    AllocationOut,
    BankOut,
    EventOut,
    LineOut,
    OrderOut,
    PaymentOut,
)
from shop.orders.states import OrderStatus
from shop.orders.tables import Allocation, Order, OrderEvent, OrderLine
from shop.settings import get_settings


def iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat()


async def shares_of(order_id: int) -> list[tuple[int, int]]:
    """[(member id, fen)] of the order's allocations, as placed."""
    rows = await Allocation.select(Allocation.member, Allocation.amount_fen).where(Allocation.order == order_id)
    return [(r["member"], r["amount_fen"]) for r in rows]


async def list_orders(
    principal: Principal,
    *,
    status: str | None,
    year: int | None,
    limit: int,
    offset: int,
    provider: str | None = None,
    oldest_first: bool = False,
) -> tuple[list[OrderOut], int]:
    where = [w for w in [await order_filter(principal)] if w is not None]
    if status:
        where.append(Order.status == status)
    if year:
        where.append(Order.year == year)
    if provider:
        where.append(Order.provider == provider)
    query = Order.select(Order.id).order_by(Order.id, ascending=oldest_first)
    count = Order.count()
    for clause in where:
        query = query.where(clause)
        count = count.where(clause)
    ids = [r["id"] for r in await query.limit(limit).offset(offset)]
    return await orders_out(ids, principal), await count


async def get_order(order_id: int, principal: Principal) -> OrderOut:
    await check_order(principal, order_id)
    return (await orders_out([order_id], principal))[0]


async def list_needs_refund(limit: int, offset: int) -> tuple[list[OrderOut], int]:
    """Orders whose payment arrived after they were no longer held (admins refund them)."""
    where = Order.needs_refund == True  # noqa: E712
    ids = [r["id"] for r in await Order.select(Order.id).where(where).order_by(Order.id).limit(limit).offset(offset)]
    return await orders_out(ids), await Order.count().where(where)


async def list_events(order_id: int, principal: Principal) -> list[EventOut]:
    """The order's history, oldest first, for whoever may read the order."""
    await check_order(principal, order_id)
    rows = await OrderEvent.select(
        OrderEvent.at, OrderEvent.action, OrderEvent.detail, OrderEvent.actor, OrderEvent.actor.username, OrderEvent.actor.role
    ).where(OrderEvent.order == order_id).order_by(OrderEvent.id)
    return [
        EventOut(
            at=iso(r["at"]),
            actor=ActorOut(id=r["actor"], username=r["actor.username"], role=r["actor.role"]) if r["actor"] else None,
            action=r["action"],
            detail=r["detail"],
        )
        for r in rows
    ]


def _line(row: dict[str, Any]) -> LineOut:
    return LineOut(
        id=row["id"],
        product_id=row["product"],
        title=row["title"],
        quantity=row["quantity"],
        unit_price_fen=row["unit_price_fen"],
        amount_fen=row["amount_fen"],
        refunded_quantity=row["refunded_quantity"],
        supplier_id=row["supplier"],
        region=row["region_code"],
    )


async def orders_out(ids: list[int], principal: Principal | None = None) -> list[OrderOut]:
    """Shape orders for the caller; a supplier sees only its own lines and no members."""
    if not ids:
        return []
    supplier_view = principal is not None and principal.role == "supplier"
    orders = {r["id"]: r for r in await Order.select().where(Order.id.is_in(ids))}
    lines: dict[int, list[LineOut]] = {i: [] for i in ids}
    for row in await OrderLine.select().where(OrderLine.order.is_in(ids)).order_by(OrderLine.id):
        if not supplier_view or row["supplier"] == principal.supplier_id:  # type: ignore[union-attr]
            lines[row["order"]].append(_line(row))
    allocations: dict[int, list[AllocationOut]] = {i: [] for i in ids}
    if not supplier_view:
        for a in await Allocation.select().where(Allocation.order.is_in(ids)).order_by(Allocation.id):
            allocations[a["order"]].append(
                AllocationOut(member_id=a["member"], amount_fen=a["amount_fen"], refunded_fen=a["refunded_fen"])
            )
    shipments = await briefs_for(ids, principal.supplier_id if supplier_view else None)  # type: ignore[union-attr]
    return [_order_out(orders[i], lines[i], allocations[i], shipments[i], supplier_view) for i in ids]


def placed_out(order: dict[str, Any], lines: list[dict[str, Any]], shares: list[tuple[int, int]]) -> OrderOut:
    """A new order as its buyer sees it, from what the placing transaction wrote."""
    allocations = [AllocationOut(member_id=m, amount_fen=a) for m, a in shares]
    return _order_out(order, [_line(row) for row in lines], allocations, [], supplier_view=False)


def _order_out(o: dict[str, Any], lines: list[LineOut], allocations: list[AllocationOut], shipments: list, supplier_view: bool) -> OrderOut:
    settings = get_settings()
    bank = BankOut(bank_name=settings.bank_name, account_name=settings.bank_account_name, account_no=settings.bank_account_no)
    waiting = o["status"] == OrderStatus.pending_approval
    return OrderOut(
        id=o["id"],
        status=OrderStatus(o["status"]),
        branch_id=o["branch"],
        year=o["year"],
        total_fen=sum(line.amount_fen for line in lines) if supplier_view else o["total_fen"],
        refunded_fen=o["refunded_fen"],
        created_at=iso(o["created_at"]),
        lines=lines,
        allocations=allocations,
        payment=PaymentOut(  # waiting for approval: nothing to pay with yet, `expires_at` is the deadline to decide
            provider=o["provider"],
            reference="" if waiting else o["payment_reference"],
            expires_at=iso(o["expires_at"]),
            url=o["payment_url"] or None,
            bank=bank if o["provider"] == "transfer" and not supplier_view and not waiting else None,
        ),
        needs_refund=o["needs_refund"],
        delivery=delivery_out(o),
        shipments=shipments,
    )

