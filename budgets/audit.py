"""The audit: members near (or over) their cap, the ledger's entries page by page, and the
ledger's verification — each over a subtree of the union tree (None: the whole shop).

A member is over the cap (`over_cap`) only when a hold took their held + spent above the
cap that hold was checked against (budgets/policy.py says which cap that was); a member
above a cap lowered later is `above_lowered_cap` instead, and was never over it."""

from __future__ import annotations

import math
from decimal import Decimal

from piccolo.columns.combination import WhereRaw
from piccolo.query import OrderByRaw

from budgets.ledger import LEDGER_COLUMNS, MOVES, Verification, verify_ledger
from budgets.policy import CAP_IN_FORCE_SQL, cap_for_year
from budgets.states import LedgerKind
from budgets.tables import LedgerEntry, MemberBudget
from budgets.unions import subtree_prefix
from common.clock import SHANGHAI


async def audit_members(root_id: int | None, year: int, min_ratio: float, limit: int, offset: int) -> tuple[list[dict], int]:
    """Members in `root_id`'s subtree (None: all) whose (spent + held) / cap >= min_ratio in
    the year (the year's cap now), fullest first; (page, total). Each says whether a hold
    took them over the cap in force then (`over_cap`), or they are only above a cap that was
    lowered since (`above_lowered_cap`)."""
    cap = await cap_for_year(year)
    threshold = max(0, math.ceil(Decimal(str(min_ratio)) * cap))  # integer fen: no float near money
    used = '"budget_member_budget"."spent_fen" + "budget_member_budget"."held_fen"'
    where = (MemberBudget.year == year) & WhereRaw(used + " >= {}", threshold)
    if root_id is not None:
        where &= MemberBudget.union.path.like(await subtree_prefix(root_id) + "%")
    total = await MemberBudget.count().where(where)
    rows = await (
        MemberBudget.select(
            MemberBudget.member,
            MemberBudget.member.member_no,
            MemberBudget.member.name,
            MemberBudget.union,
            MemberBudget.union.code,
            MemberBudget.held_fen,
            MemberBudget.spent_fen,
        )
        .where(where)
        .order_by(OrderByRaw(used), ascending=False)
        .order_by(MemberBudget.member)
        .limit(limit)
        .offset(offset)
    )
    over = await _taken_over_the_cap([r["member"] for r in rows], year)
    items = [
        {
            "member_id": r["member"],
            "member_no": r["member.member_no"],
            "name": r["member.name"],
            "union_id": r["union"],
            "union_code": r["union.code"],
            "year": year,
            "cap_fen": cap,
            "spent_fen": r["spent_fen"],
            "held_fen": r["held_fen"],
            "remaining_fen": max(cap - r["spent_fen"] - r["held_fen"], 0),
            "ratio": round((r["spent_fen"] + r["held_fen"]) / cap, 6) if cap else None,
            "over_cap": r["member"] in over,
            "above_lowered_cap": r["spent_fen"] + r["held_fen"] > cap and r["member"] not in over,
        }
        for r in rows
    ]
    return items, total


# how much each kind of entry adds to held + spent, per fen
_USED = "CASE e.kind " + " ".join(f"WHEN '{kind}' THEN {h + s} * e.amount_fen" for kind, (h, s) in MOVES.items()) + " END"


async def _taken_over_the_cap(member_ids: list[int], year: int, chunk: int = 1000) -> set[int]:
    """Of these members, those whom a hold in the year took over the cap it was checked
    against: the ledger replayed in SQL, held + spent after each hold against its cap
    (`chunk` members a query: an export may ask about more than a query takes)."""
    over: set[int] = set()
    for start in range(0, len(member_ids), chunk):
        some = member_ids[start : start + chunk]
        rows = await LedgerEntry.raw(
            "SELECT DISTINCT t.member_id FROM ("
            f'SELECT e."member" AS member_id, e.kind, SUM({_USED}) OVER (PARTITION BY e."member" ORDER BY e.seq) AS used, '
            f"CASE WHEN e.kind = '{LedgerKind.hold}' THEN {CAP_IN_FORCE_SQL} END AS cap "
            f'FROM "{LedgerEntry._meta.tablename}" e WHERE e.year = {{}} AND e."member" IN ({", ".join("{}" for _ in some)})'
            f") t WHERE t.kind = '{LedgerKind.hold}' AND t.used > t.cap",
            year,
            *some,
        )
        over.update(r["member_id"] for r in rows)
    return over


async def ledger_page(
    root_id: int | None,
    *,
    member_id: int | None = None,
    order_id: int | None = None,
    year: int | None = None,
    kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict], int]:
    """The ledger's entries of members in `root_id`'s subtree (None: all), in the order they were written; (page, total)."""
    clauses = []
    if root_id is not None:
        clauses.append(LedgerEntry.member.union.path.like(await subtree_prefix(root_id) + "%"))
    if member_id is not None:
        clauses.append(LedgerEntry.member == member_id)
    if order_id is not None:
        clauses.append(LedgerEntry.order_id == order_id)
    if year is not None:
        clauses.append(LedgerEntry.year == year)
    if kind is not None:
        clauses.append(LedgerEntry.kind == kind)
    query = LedgerEntry.select(*LEDGER_COLUMNS).order_by(LedgerEntry.seq)
    count = LedgerEntry.count()
    for clause in clauses:
        query = query.where(clause)
        count = count.where(clause)
    rows = await query.limit(limit).offset(offset)
    items = [
        {
            "seq": r["seq"],
            "member_id": r["member"],
            "year": r["year"],
            "order_id": r["order_id"],
            "kind": r["kind"],
            "amount_fen": r["amount_fen"],
            "at": r["at"].astimezone(SHANGHAI).isoformat(),
            "prev_hash": r["prev_hash"],
            "hash": r["hash"],
        }
        for r in rows
    ]
    return items, await count


async def verify_scope(root_id: int | None, year: int | None) -> Verification:
    """`verify_ledger` over `root_id`'s subtree (None: the whole ledger)."""
    prefix = await subtree_prefix(root_id) if root_id is not None else None
    return await verify_ledger(year=year, union_prefix=prefix)
