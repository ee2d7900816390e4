"""The year-end push (年末提醒): which members still have quota left this year, and how much,
per branch and rolled up the union tree. The quota must be used by 31 December.

A member counts when active (an inactive member gets no new allocations, so what is left
cannot be used) and `cap - spent - held > 0` (`remaining_fen` as the branch's budget page
computes it; a hold still counts as used). Set-based: one grouped query for the figures of
every branch of a subtree, one query for the members (an export: one per batch of whole
branches), whatever the number of members; the union tree is read once."""

from __future__ import annotations

from typing import Any, AsyncIterator

from budgets.checks import check_year
from budgets.policy import cap_for_year
from budgets.tables import Member, Union
from budgets.unions import subtree_prefix
from common import sql
from common.sql import read_snapshot

_USED = 'COALESCE(b."spent_fen", 0) + COALESCE(b."held_fen", 0)'
_FROM = (
    ' FROM "budget_member" m'
    ' JOIN "budget_union" u ON u."id" = m."union"'
    ' LEFT JOIN "budget_member_budget" b ON b."member" = m."id" AND b."year" = {}'
    f' WHERE m."active" = {{}} AND u."path" LIKE {{}} AND {_USED} < {{}}'
)


async def _scope(root_id: int | None, year: int) -> tuple[list[Any], int]:
    """The parameters of `_FROM` (year, active, path prefix, cap) and the year's cap."""
    check_year(year)
    cap = await cap_for_year(year)
    prefix = await subtree_prefix(root_id) if root_id is not None else "/"
    return [year, True, prefix + "%", cap], cap


async def branch_figures(root_id: int | None, year: int) -> dict[int, dict[str, int]]:
    """{branch id: {members_with_quota, remaining_fen}} for the branches of the subtree that
    have any member with quota left (one grouped query)."""
    params, cap = await _scope(root_id, year)
    rows = await Member.raw(
        f'SELECT m."union" AS union_id, COUNT(*) AS members, SUM({{}} - ({_USED})) AS remaining_fen{_FROM} GROUP BY m."union"',
        cap,
        *params,
    )
    return {r["union_id"]: {"members_with_quota": int(r["members"]), "remaining_fen": int(r["remaining_fen"])} for r in rows}


async def branch_summary(branch_id: int, year: int) -> dict[str, int]:
    """`{members_with_quota, remaining_fen}` of one branch (the buyer's December banner)."""
    return (await branch_figures(branch_id, year)).get(branch_id, {"members_with_quota": 0, "remaining_fen": 0})


async def _member_rows(params: list[Any], cap: int, branch_ids: list[int] | None = None) -> list[dict[str, Any]]:
    query = (
        f'SELECT m."union" AS union_id, u."code" AS branch_code, u."name" AS branch_name, m."member_no" AS member_no,'
        f' m."name" AS name, {{}} - ({_USED}) AS remaining_fen{_FROM}'
    )
    args = [cap, *params]
    if branch_ids is not None:
        query += ' AND m."union" IN (' + ", ".join("{}" for _ in branch_ids) + ")"
        args += branch_ids
    query += ' ORDER BY u."code", m."member_no", m."id"'
    return [{**r, "remaining_fen": int(r["remaining_fen"])} for r in await Member.raw(query, *args)]


async def members_with_quota(root_id: int | None, year: int) -> list[dict[str, Any]]:
    """Every member of the subtree with quota left: `{union_id, branch_code, branch_name,
    member_no, name, remaining_fen}` by branch code and member number."""
    params, cap = await _scope(root_id, year)
    return await _member_rows(params, cap)


_BRANCHES_A_QUERY = 500  # keeps the IN list well under both drivers' parameter limits


async def member_batches(root_id: int | None, year: int) -> AsyncIterator[list[dict[str, Any]]]:
    """`members_with_quota` batch by batch, in one read snapshot (an export). The branches'
    counts say which branches make a batch of about `common.sql.BATCH` members: each query
    reads whole branches through the members' (branch, member_no) index, never an OFFSET."""
    async with read_snapshot(Member):
        params, cap = await _scope(root_id, year)
        figures = await branch_figures(root_id, year)
        if not figures:
            return
        codes = await Union.select(Union.id, Union.code).where(Union.id.is_in(sorted(figures)))
        group: list[int] = []
        size = 0
        for row in sorted(codes, key=lambda r: r["code"]):
            group.append(row["id"])
            size += figures[row["id"]]["members_with_quota"]
            if size >= sql.BATCH or len(group) >= _BRANCHES_A_QUERY:
                yield await _member_rows(params, cap, group)
                group, size = [], 0
        if group:
            yield await _member_rows(params, cap, group)


async def unused_tree(root_id: int | None, year: int, *, with_members: bool = True) -> dict[str, Any]:
    """The union tree below `root_id` (every union when None), each node `{union_id, code,
    name, level, members_with_quota, remaining_fen, children}`, a parent's figures the sums
    of its children's; branch nodes also list `members: [{member_no, name, remaining_fen}]`
    (`with_members`). Several top-level unions are gathered under one node `全部`."""
    query = Union.select(Union.id, Union.code, Union.name, Union.level, Union.parent).order_by(Union.id)
    if root_id is not None:
        query = query.where(Union.path.like(await subtree_prefix(root_id) + "%"))
    unions = await query
    figures = await branch_figures(root_id, year)
    listed: dict[int, list[dict[str, Any]]] = {}
    if with_members:
        for row in await members_with_quota(root_id, year):
            listed.setdefault(row["union_id"], []).append({k: row[k] for k in ("member_no", "name", "remaining_fen")})
    nodes: dict[int, dict[str, Any]] = {}
    roots: list[dict[str, Any]] = []
    for u in unions:  # ids ascend: a parent is made before its children
        node = {
            "union_id": u["id"],
            "code": u["code"],
            "name": u["name"],
            "level": u["level"],
            **figures.get(u["id"], {"members_with_quota": 0, "remaining_fen": 0}),
            "children": [],
        }
        if with_members and u["level"] == "branch":
            node["members"] = listed.get(u["id"], [])
        nodes[u["id"]] = node
        parent = u["parent"]
        (nodes[parent]["children"] if parent in nodes and u["id"] != root_id else roots).append(node)

    def roll_up(node: dict[str, Any]) -> None:
        for child in node["children"]:
            roll_up(child)
            node["members_with_quota"] += child["members_with_quota"]
            node["remaining_fen"] += child["remaining_fen"]

    for node in roots:
        roll_up(node)
    if len(roots) == 1:
        return roots[0]
    return {
        "union_id": None,
        "code": None,
        "name": "全部",
        "level": "all",
        "members_with_quota": sum(n["members_with_quota"] for n in roots),
        "remaining_fen": sum(n["remaining_fen"] for n in roots),
        "children": roots,
    }
