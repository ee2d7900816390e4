"""The audit: members near (or over) their cap, the ledger's entries page by page, and the
ledger's verification — each over a subtree of the union tree (None: the whole shop).

A member is over the cap (`over_cap`) only when a hold took their held + spent above the
cap that hold was checked against (budgets/policy.py says which cap that was); a member
above a cap lowered later is `above_lowered_cap` instead, and was never over it."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, AsyncIterator

from piccolo.columns.combination import WhereRaw
from piccolo.query import OrderByRaw

from budgets.ledger import MOVES
from budgets.verification import LEDGER_COLUMNS, Verification, verify_ledger
from budgets.policy import CAP_IN_FORCE_SQL, cap_for_year
from budgets.states import LedgerKind
from budgets.tables import LedgerEntry, Member, MemberBudget
from budgets.unions import subtree_prefix
from common import sql
from common.clock import SHANGHAI
from common.sql import pages, read_snapshot

# a budget row's held + spent now
_USED_NOW = '"budget_member_budget"."spent_fen" + "budget_member_budget"."held_fen"'


async def _members_where(root_id: int | None, year: int, min_ratio: float) -> tuple[int, Any]:
    """The year's cap now, and the condition on budget rows of members at or above min_ratio of it."""
    cap = await cap_for_year(year)
    threshold = max(0, math.ceil(Decimal(str(min_ratio)) * cap))  # integer fen: no float near money
    where = (MemberBudget.year == year) & WhereRaw(_USED_NOW + " >= {}", threshold)
    if root_id is not None:
        where &= MemberBudget.union.path.like(await subtree_prefix(root_id) + "%")
    return cap, where


async def _members(cap: int, where: Any, year: int, limit: int, offset: int) -> list[dict]:
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
        .order_by(OrderByRaw(_USED_NOW), ascending=False)
        .order_by(MemberBudget.member)
        .limit(limit)
        .offset(offset)
    )
    over = await _taken_over_the_cap([r["member"] for r in rows], year)
    return [
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


async def audit_members(root_id: int | None, year: int, min_ratio: float, limit: int, offset: int) -> tuple[list[dict], int]:
    """Members in `root_id`'s subtree (None: all) whose (spent + held) / cap >= min_ratio in
    the year (the year's cap now), fullest first; (page, total). Each says whether a hold
    took them over the cap in force then (`over_cap`), or they are only above a cap that was
    lowered since (`above_lowered_cap`)."""
    cap, where = await _members_where(root_id, year, min_ratio)
    total = await MemberBudget.count().where(where)
    return await _members(cap, where, year, limit, offset), total


async def audit_member_batches(root_id: int | None, year: int, min_ratio: float) -> AsyncIterator[list[dict]]:
    """The whole list of `audit_members`, batch by batch, in one read snapshot (an export)."""
    async with read_snapshot(MemberBudget):
        cap, where = await _members_where(root_id, year, min_ratio)
        async for page in pages(lambda limit, offset: _members(cap, where, year, limit, offset)):
            yield page


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


async def _ledger_clauses(
    root_id: int | None, member_id: int | None, order_id: int | None, year: int | None, kind: str | None
) -> list[Any]:
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
    return clauses


def _ledger_query(clauses: list[Any], limit: int) -> Any:
    query = LedgerEntry.select(*LEDGER_COLUMNS).order_by(LedgerEntry.seq).limit(limit)
    for clause in clauses:
        query = query.where(clause)
    return query


def _ledger_item(r: dict) -> dict:
    return {
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
    clauses = await _ledger_clauses(root_id, member_id, order_id, year, kind)
    count = LedgerEntry.count()
    for clause in clauses:
        count = count.where(clause)
    rows = await _ledger_query(clauses, limit).offset(offset)
    return [_ledger_item(r) for r in rows], await count


async def ledger_batches(
    root_id: int | None,
    *,
    member_id: int | None = None,
    order_id: int | None = None,
    year: int | None = None,
    kind: str | None = None,
) -> AsyncIterator[list[dict]]:
    """All of `ledger_page`'s entries, batch by batch (keyset on seq), in one read snapshot (an export)."""
    clauses = await _ledger_clauses(root_id, member_id, order_id, year, kind)
    after = 0
    async with read_snapshot(LedgerEntry):
        while True:
            rows = await _ledger_query([*clauses, LedgerEntry.seq > after], sql.BATCH)
            if rows:
                yield [_ledger_item(r) for r in rows]
            if len(rows) < sql.BATCH:
                return
            after = rows[-1]["seq"]


async def find_members(root_id: int | None, text: str, limit: int = 20) -> list[dict]:
    """Members in `root_id`'s subtree (None: all) as people name them: the member number
    (whole, any case) or part of the name; exact numbers first. Each `{member_id, member_no,
    name, union_code}` (the auditor's ledger filter)."""
    text = text.strip()
    if not text:
        return []
    where = WhereRaw(
        'LOWER("budget_member"."member_no") = {} OR LOWER("budget_member"."name") LIKE {} ESCAPE \'!\'',
        text.lower(),
        sql.like_pattern(text),
    )
    query = Member.select(Member.id, Member.member_no, Member.name, Member.union.code).where(where)
    if root_id is not None:
        query = query.where(Member.union.path.like(await subtree_prefix(root_id) + "%"))
    rows = await query.order_by(Member.member_no).order_by(Member.id).limit(limit)
    found = [{"member_id": r["id"], "member_no": r["member_no"], "name": r["name"], "union_code": r["union.code"]} for r in rows]
    return sorted(found, key=lambda m: m["member_no"].lower() != text.lower())


async def verify_scope(root_id: int | None, year: int | None) -> Verification:
    """`verify_ledger` over `root_id`'s subtree (None: the whole ledger)."""
    prefix = await subtree_prefix(root_id) if root_id is not None else None
    return await verify_ledger(year=year, union_prefix=prefix)
