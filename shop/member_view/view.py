"""What a member sees through their link (`/m/{token}`, `GET /api/member-view/{token}`): this
year's cap, spent, held and remaining (the same figures the buyer's budget page shows,
`budgets.members.member_budget`), and each order allocated to them that counts against the
quota: paid ones (with what was refunded of them) and unpaid ones still holding quota.
Nothing about other members, prices or orders' other lines."""

from __future__ import annotations

from typing import Any

from budgets import members, unions
from common.clock import SHANGHAI
from shop.orders.states import OrderStatus
from shop.orders.tables import Allocation, OrderLine

# the orders a member's quota shows: paid (refunds or not) and those still holding quota
# (waiting for payment, or for the branch's approval)
COUNTED = (
    OrderStatus.paid, OrderStatus.partially_refunded, OrderStatus.refunded, OrderStatus.pending_payment,
    OrderStatus.pending_approval,
)


async def allocations(member_id: int, year: int) -> list[dict[str, Any]]:
    """The member's allocations of the year's counted orders, oldest first: `{date,
    products, amount_fen, refunded_fen, status}`; `date` is the day paid (or placed, while
    unpaid) in Shanghai, `products` the titles of the order's lines."""
    rows = await (
        Allocation.select(
            Allocation.order,
            Allocation.order.status,
            Allocation.order.created_at,
            Allocation.order.paid_at,
            Allocation.amount_fen,
            Allocation.refunded_fen,
        )
        .where(
            (Allocation.member == member_id)
            & (Allocation.order.year == year)
            & Allocation.order.status.is_in([s.value for s in COUNTED])
        )
        .order_by(Allocation.order.created_at)
        .order_by(Allocation.id)
    )
    titles: dict[int, list[str]] = {}
    if rows:
        lines = await OrderLine.select(OrderLine.order, OrderLine.title).where(
            OrderLine.order.is_in(sorted({r["order"] for r in rows}))
        ).order_by(OrderLine.id)
        for line in lines:
            titles.setdefault(line["order"], []).append(line["title"])
    return [
        {
            "date": (r["order.paid_at"] or r["order.created_at"]).astimezone(SHANGHAI).date().isoformat(),
            "products": titles.get(r["order"], []),
            "amount_fen": r["amount_fen"],
            "refunded_fen": r["refunded_fen"],
            "status": r["order.status"],
        }
        for r in rows
    ]


async def member_view(member_id: int, year: int) -> dict[str, Any] | None:
    """`{year, member: {member_no, name}, branch, cap_fen, spent_fen, held_fen, remaining_fen,
    items}`, or None when the member is gone."""
    budget = await members.member_budget(member_id, year)
    if budget is None:
        return None
    branch = await unions.get_union(budget["union_id"])
    return {
        "year": year,
        "member": {"member_no": budget["member_no"], "name": budget["name"]},
        "branch": branch["name"] if branch else "",
        "cap_fen": budget["cap_fen"],
        "spent_fen": budget["spent_fen"],
        "held_fen": budget["held_fen"],
        "remaining_fen": budget["remaining_fen"],
        "items": await allocations(member_id, year),
    }
