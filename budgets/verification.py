"""Verifying the ledger: every member-year's hash chain is intact and replays to the balances
on its budget row (`verify_ledger`), read in one snapshot and streamed, so memory stays flat
however long the ledger. What the moves write is in `budgets.ledger`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from budgets.ledger import GENESIS_HASH, MOVES, entry_hash
from budgets.tables import LedgerEntry, MemberBudget
from common.sql import read_snapshot


@dataclass
class Verification:
    """What `verify_ledger` found: `ok` is false after any problem; the first `max_problems` are kept."""

    ok: bool = True
    entries: int = 0
    member_years: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)
    max_problems: int = 1000

    def problem(self, **item: Any) -> None:
        self.ok = False
        if len(self.problems) < self.max_problems:
            self.problems.append(item)


# what a ledger entry is, as verify_ledger and the audit read it
LEDGER_COLUMNS = (
    LedgerEntry.seq,
    LedgerEntry.member,
    LedgerEntry.year,
    LedgerEntry.order_id,
    LedgerEntry.kind,
    LedgerEntry.amount_fen,
    LedgerEntry.at,
    LedgerEntry.prev_hash,
    LedgerEntry.hash,
)
_BUDGET_COLUMNS = (
    MemberBudget.id,
    MemberBudget.member,
    MemberBudget.year,
    MemberBudget.held_fen,
    MemberBudget.spent_fen,
    MemberBudget.entries,
    MemberBudget.last_hash,
)


async def _stream(query_for_after, key, batch: int) -> AsyncIterator[dict]:
    """Keyset pagination: memory stays flat however long the table."""
    after = None
    while True:
        rows = await query_for_after(after).limit(batch)
        for row in rows:
            yield row
        if len(rows) < batch:
            return
        after = key(rows[-1])


def _after(table, after: tuple | None, year: int | None, union_prefix: str | None, tiebreak):
    """WHERE (member, year, tiebreak) > after, plus the filters."""
    columns = LEDGER_COLUMNS if table is LedgerEntry else _BUDGET_COLUMNS
    query = table.select(*columns).order_by(table.member, table.year, tiebreak)
    where = []
    if year is not None:
        where.append(table.year == year)
    if union_prefix is not None:
        where.append(table.member.union.path.like(union_prefix + "%"))
    if after is not None:
        m, y, t = after
        where.append(table.member >= m)  # an index range to start from; the OR below only filters
        where.append(
            (table.member > m)
            | ((table.member == m) & (table.year > y))
            | ((table.member == m) & (table.year == y) & (tiebreak > t))
        )
    for clause in where:
        query = query.where(clause)
    return query


async def verify_ledger(year: int | None = None, union_prefix: str | None = None, batch: int = 5000) -> Verification:
    """Walk every member-year's chain in order and replay it against the budget rows.

    Streams both tables in (member, year) order and merges them, so memory does not
    grow with the ledger, all in one read snapshot (`read_snapshot`), so the batches of
    both tables show the same moment. `union_prefix` limits it to a subtree (Union.path prefix)."""
    async with read_snapshot(LedgerEntry):  # an order committing meanwhile is wholly in or out
        return await _verify(year, union_prefix, batch)


async def _verify(year: int | None, union_prefix: str | None, batch: int) -> Verification:
    result = Verification()
    entries = _stream(
        lambda after: _after(LedgerEntry, after, year, union_prefix, LedgerEntry.seq),
        lambda r: (r["member"], r["year"], r["seq"]),
        batch,
    )
    budgets = _stream(
        lambda after: _after(MemberBudget, after, year, union_prefix, MemberBudget.id),
        lambda r: (r["member"], r["year"], r["id"]),
        batch,
    )
    entry = await anext(entries, None)
    async for budget in budgets:
        key = (budget["member"], budget["year"])
        while entry is not None and (entry["member"], entry["year"]) < key:
            result.problem(member_id=entry["member"], year=entry["year"], seq=entry["seq"], problem="entry without a budget row")
            result.entries += 1
            entry = await anext(entries, None)
        result.member_years += 1
        held = spent = count = 0
        prev = GENESIS_HASH
        while entry is not None and (entry["member"], entry["year"]) == key:
            result.entries += 1
            count += 1
            seq = entry["seq"]
            if entry["prev_hash"] != prev:
                result.problem(member_id=key[0], year=key[1], seq=seq, problem="chain broken: prev_hash does not match the entry before")
            expected = entry_hash(entry["prev_hash"], entry["member"], entry["year"], entry["order_id"], entry["kind"], entry["amount_fen"], entry["at"])
            if entry["hash"] != expected:
                result.problem(member_id=key[0], year=key[1], seq=seq, problem="hash does not match the entry's content")
            held_sign, spent_sign = MOVES.get(entry["kind"], (0, 0))
            held += held_sign * entry["amount_fen"]
            spent += spent_sign * entry["amount_fen"]
            if held < 0 or spent < 0:
                result.problem(member_id=key[0], year=key[1], seq=seq, problem="replay goes below zero")
            prev = entry["hash"]
            entry = await anext(entries, None)
        if (held, spent) != (budget["held_fen"], budget["spent_fen"]):
            result.problem(
                member_id=key[0],
                year=key[1],
                problem="replay does not give the balance",
                replayed_held_fen=held,
                replayed_spent_fen=spent,
                held_fen=budget["held_fen"],
                spent_fen=budget["spent_fen"],
            )
        if prev != budget["last_hash"] or count != budget["entries"]:
            result.problem(member_id=key[0], year=key[1], problem="chain head or entry count does not match the budget row")
    while entry is not None:
        result.entries += 1
        result.problem(member_id=entry["member"], year=entry["year"], seq=entry["seq"], problem="entry without a budget row")
        entry = await anext(entries, None)
    return result
