"""Consumption-support targets (消费帮扶目标) and the report of each union's spending
against its target, as one tree over the union tree."""

from __future__ import annotations

from piccolo.query.functions.aggregate import Count

from budgets.checks import check_amount, check_year
from budgets.policy import cap_for_year
from budgets.tables import Member, Target, Union, UnionYearTotal
from budgets.unions import subtree_prefix, union_by_code
from common.errors import DomainError

TARGET_MAX_FEN = 10**13


async def set_target(union_id: int, year: int, target_fen: int) -> dict:
    """Set a union's consumption-support target (消费帮扶目标) for a year (upsert)."""
    check_year(year)
    check_amount(target_fen, "target_fen", TARGET_MAX_FEN)
    async with Target._meta.db.transaction():
        if not await Union.exists().where(Union.id == union_id):
            raise DomainError("not_found", f"union {union_id} does not exist")
        await Target.insert(Target(union=union_id, year=year, target_fen=target_fen)).on_conflict(
            target=(Target.union, Target.year), action="DO UPDATE", values=[Target.target_fen]
        )
    return {"union_id": union_id, "year": year, "target_fen": target_fen}


async def target_for(union_id: int, year: int) -> int | None:
    """The union's target for the year, or None when none is set."""
    row = await Target.select(Target.target_fen).where((Target.union == union_id) & (Target.year == year)).first()
    return row["target_fen"] if row else None


async def ensure_target(union_code: str, year: int, target_fen: int) -> None:
    """Set a target unless one is already set (for `shop seed`; an admin's later change is kept)."""
    check_year(year)
    check_amount(target_fen, "target_fen", TARGET_MAX_FEN)
    union = await union_by_code(union_code)
    if union is None:
        raise DomainError("not_found", f"union {union_code!r} does not exist")
    async with Target._meta.db.transaction():
        await Target.insert(Target(union=union["id"], year=year, target_fen=target_fen)).on_conflict(
            target=(Target.union, Target.year), action="DO NOTHING"
        )


# --- the targets report -------------------------------------------------------------


async def _subtree_rows(root_id: int | None) -> list[dict]:
    query = Union.select(Union.id, Union.code, Union.name, Union.level, Union.parent, Union.path).order_by(Union.id)
    if root_id is not None:
        query = query.where(Union.path.like(await subtree_prefix(root_id) + "%"))
    return await query


async def targets_report(root_id: int | None, year: int) -> list[dict]:
    """The union tree below `root_id` (every top-level union when None) with, at each node,
    members, cap capacity, spent (paid minus refunded) and the target; a parent's figures
    are exactly its own plus the sums of its children's.

    Reads only per-union tables (members, per-branch-year totals, targets): never the
    orders or the ledger, so its cost follows the number of unions, not of purchases."""
    unions = await _subtree_rows(root_id)
    if not unions:
        return []
    prefix = await subtree_prefix(root_id) if root_id is not None else "/"
    in_tree = Member.union.path.like(prefix + "%")
    members = {
        r["union"]: r["count"]
        for r in await Member.select(Member.union, Count()).where(in_tree & (Member.active == True)).group_by(Member.union)  # noqa: E712
    }
    spent = {
        r["union"]: r["spent_fen"]
        for r in await UnionYearTotal.select(UnionYearTotal.union, UnionYearTotal.spent_fen).where(
            UnionYearTotal.union.path.like(prefix + "%") & (UnionYearTotal.year == year)
        )
    }
    targets = {
        r["union"]: r["target_fen"]
        for r in await Target.select(Target.union, Target.target_fen).where(
            Target.union.path.like(prefix + "%") & (Target.year == year)
        )
    }
    cap = await cap_for_year(year)
    nodes = {
        u["id"]: {
            "union_id": u["id"],
            "code": u["code"],
            "name": u["name"],
            "level": u["level"],
            "members": members.get(u["id"], 0),
            "spent_fen": spent.get(u["id"], 0),
            "target_fen": targets.get(u["id"]),
            "children": [],
        }
        for u in unions
    }
    roots = []
    for u in unions:  # ids ascend, and a parent is made before its children
        parent = u["parent"]
        (nodes[parent]["children"] if parent in nodes and u["id"] != root_id else roots).append(nodes[u["id"]])

    def roll_up(node: dict) -> None:
        for child in node["children"]:
            roll_up(child)
            node["members"] += child["members"]
            node["spent_fen"] += child["spent_fen"]
        node["cap_capacity_fen"] = node["members"] * cap
        target = node["target_fen"]
        node["progress"] = round(node["spent_fen"] / target, 6) if target else None

    for node in roots:
        roll_up(node)
    return roots


async def targets_tree(root_id: int | None, year: int) -> dict:
    """The targets report as one tree: the root union's node, or, for the whole shop
    with several top-level unions, a node for all of them (`union_id` null)."""
    roots = await targets_report(root_id, year)
    if len(roots) == 1:
        return roots[0]
    cap = await cap_for_year(year)
    members = sum(n["members"] for n in roots)
    spent = sum(n["spent_fen"] for n in roots)
    return {
        "union_id": None,
        "code": None,
        "name": "全部",
        "level": "all",
        "members": members,
        "spent_fen": spent,
        "target_fen": None,
        "children": roots,
        "cap_capacity_fen": members * cap,
        "progress": None,
    }
