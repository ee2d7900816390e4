"""Reports over orders: paid spending by paired region, and the distribution lists
(发放清单) of an order and of a branch-year. Each sums in the database and answers plain
rows; `api.py` shapes them as JSON, CSV or XLSX."""

from __future__ import annotations

from typing import Any, AsyncIterator

from budgets import unions
from budgets.states import Level
from budgets.tables import Union
from catalog.tables import Region
from common.clock import SHANGHAI
from common.sql import pages, read_snapshot
from shop.orders.states import OrderStatus
from shop.orders.tables import Allocation, OrderLine

SPENT_STATES = (OrderStatus.paid, OrderStatus.partially_refunded, OrderStatus.refunded)


async def regions_report(root_id: int | None, year: int) -> list[dict[str, Any]]:
    """Paid spending (minus refunds) by paired region, and within each by the buyer's
    city federation (the nearest federation above the branch).

    The database adds up the lines, per region and branch (an order belongs to one
    branch, so its distinct orders add up across branches); only those sums come back."""
    prefix = await unions.subtree_prefix(root_id) if root_id is not None else "/"
    states = ", ".join(f"'{state}'" for state in SPENT_STATES)
    sums = await OrderLine.raw(
        "SELECT l.region_code AS region, u.path AS path,"
        " SUM(l.unit_price_fen * (l.quantity - l.refunded_quantity)) AS spent_fen,"
        " COUNT(DISTINCT l.\"order\") AS orders"
        " FROM shop_order_line l"
        " JOIN shop_order o ON o.id = l.\"order\""
        " JOIN budget_union u ON u.id = o.branch"
        f" WHERE o.year = {{}} AND o.status IN ({states}) AND u.path LIKE {{}}"
        " GROUP BY l.region_code, u.path",
        year,
        prefix + "%",
    )
    federations = {u["id"]: u for u in await Union.select(Union.id, Union.code, Union.name).where(Union.level == Level.federation)}
    names = {r["code"]: r["name"] for r in await Region.select(Region.code, Region.name)}
    regions: dict[str, dict[str, Any]] = {}
    for row in sums:
        spent, orders = int(row["spent_fen"]), int(row["orders"])
        region = regions.setdefault(
            row["region"],
            {"region": row["region"], "region_name": names.get(row["region"], ""), "spent_fen": 0, "orders": 0, "by_federation": {}},
        )
        region["spent_fen"] += spent
        region["orders"] += orders
        path_ids = [int(p) for p in row["path"].strip("/").split("/") if p]
        federation_id = next((i for i in reversed(path_ids) if i in federations), None)
        if federation_id is not None:
            fed = region["by_federation"].setdefault(
                federation_id,
                {"union_id": federation_id, "code": federations[federation_id]["code"], "name": federations[federation_id]["name"], "spent_fen": 0, "orders": 0},
            )
            fed["spent_fen"] += spent
            fed["orders"] += orders
    out = sorted(regions.values(), key=lambda r: (-r["spent_fen"], r["region"]))
    for region in out:
        region["by_federation"] = sorted(region["by_federation"].values(), key=lambda f: (-f["spent_fen"], f["code"]))
    return out


async def order_distribution(order_id: int) -> list[dict[str, Any]]:
    return (await orders_distributions([order_id]))[order_id]


async def orders_distributions(order_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Each order's members and shares (`order_distribution`), for several orders in one query."""
    shares: dict[int, list[dict[str, Any]]] = {order_id: [] for order_id in order_ids}
    if not order_ids:
        return shares
    rows = await Allocation.select(
        Allocation.order, Allocation.member, Allocation.member.member_no, Allocation.member.name,
        Allocation.amount_fen, Allocation.refunded_fen,
    ).where(Allocation.order.is_in(sorted(set(order_ids)))).order_by(Allocation.id)
    for r in rows:
        shares[r["order"]].append({
            "member_id": r["member"],
            "member_no": r["member.member_no"],
            "name": r["member.name"],
            "amount_fen": r["amount_fen"],
            "refunded_fen": r["refunded_fen"],
        })
    return shares


async def _allocations(where: Any, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
    """Allocations of paid orders, one row per member and order, by branch, member, order."""
    query = (
        Allocation.select(
            Allocation.member,
            Allocation.member.member_no,
            Allocation.member.name,
            Allocation.member.union.code,
            Allocation.order,
            Allocation.order.status,
            Allocation.order.paid_at,
            Allocation.amount_fen,
            Allocation.refunded_fen,
        )
        .where(where)
        .order_by(Allocation.member.union.code)
        .order_by(Allocation.member.member_no)
        .order_by(Allocation.order)
        .order_by(Allocation.id)
    )
    if limit is not None:
        query = query.limit(limit).offset(offset)
    return [
        {
            "member_id": r["member"],
            "member_no": r["member.member_no"],
            "name": r["member.name"],
            "branch_code": r["member.union.code"],
            "order_id": r["order"],
            "status": r["order.status"],
            "paid_at": r["order.paid_at"].astimezone(SHANGHAI).isoformat() if r["order.paid_at"] else None,
            "amount_fen": r["amount_fen"],
            "refunded_fen": r["refunded_fen"],
        }
        for r in await query
    ]


async def _distribution_where(root_id: int | None, year: int) -> Any:
    where = (Allocation.order.year == year) & Allocation.order.status.is_in(list(SPENT_STATES))
    if root_id is not None:
        where &= Allocation.order.branch.path.like(await unions.subtree_prefix(root_id) + "%")
    return where


async def branch_distribution(root_id: int | None, year: int) -> list[dict[str, Any]]:
    """Per member: every paid order of the year allocated to them, with amounts."""
    members: dict[int, dict[str, Any]] = {}
    for r in await _allocations(await _distribution_where(root_id, year)):
        member = members.setdefault(
            r["member_id"],
            {key: r[key] for key in ("member_id", "member_no", "name", "branch_code")} | {"orders": [], "amount_fen": 0, "refunded_fen": 0},
        )
        member["orders"].append({key: r[key] for key in ("order_id", "status", "paid_at", "amount_fen", "refunded_fen")})
        member["amount_fen"] += r["amount_fen"]
        member["refunded_fen"] += r["refunded_fen"]
    return list(members.values())


async def distribution_batches(root_id: int | None, year: int) -> AsyncIterator[list[dict[str, Any]]]:
    """`branch_distribution` flat (a row per member and order), batch by batch, in one read snapshot (an export)."""
    async with read_snapshot(Allocation):
        where = await _distribution_where(root_id, year)
        async for page in pages(lambda limit, offset: _allocations(where, limit, offset)):
            yield page
