"""The ledger: how a member's yearly budget moves, whole.

A member's budget for a year (an Asia/Shanghai calendar year, `budget_year`) is one row,
`MemberBudget`: `held_fen`, `spent_fen`, the number of entries and the head of its hash
chain. The cap is the year's policy (budgets/policy.py: 60000 fen unless set), and
`held + spent <= cap` holds at every commit. Four moves change a budget, per fen of an
entry's amount (`MOVES`):

- `hold`: an order was placed for the member: held goes up, if it fits under the cap;
- `capture`: the order was paid: held becomes spent;
- `release`: the order was cancelled, expired or failed: held goes down;
- `refund`: money went back to the payer: spent goes down.

How a hold works. `hold` runs inside the caller's transaction (the one that creates the
order and reserves its stock), or in its own when called alone. The shares are merged per
member and sorted by member id. The members' budget rows for the year are created where
missing (`INSERT … ON CONFLICT DO NOTHING`), then read and locked in ascending member id:
`SELECT … FOR UPDATE` on PostgreSQL; on SQLite the shop's transactions are IMMEDIATE and
already hold the database's one write lock. No process-local lock is needed, so it holds
across server processes, and the fixed order keeps two orders from deadlocking. The cap is
read so that no cap change comes between the read and the commit (`cap_for_hold`: that is
how the audit knows which cap each hold met). With the rows locked, every member whose
`held + spent + share` would pass the cap is listed in one `cap_exceeded` refusal, and
nothing changes. Otherwise each share appends a ledger entry and moves its row in the
same transaction. The tables' CHECK constraints (non-negative figures, known kinds) back
this up. Capture, release and refund lock the same way (the rows must already exist);
capture and refund also keep the per-branch-year totals the targets report reads
(`UnionYearTotal`).

Entries are never updated or deleted. Each member-year's entries form a hash chain: an
entry's `hash` is sha256 over the previous hash and the entry (`entry_hash`, from
`GENESIS_HASH`), and the chain's head is kept on the budget row, so the row lock that
guards the balance also guards the chain. `budgets.verification.verify_ledger` walks every chain and replays it,
in one read snapshot: it must give exactly the balances.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

from budgets.policy import DEFAULT_CAP_FEN, cap_for_hold
from budgets.states import LedgerKind
from budgets.tables import LedgerEntry, Member, MemberBudget, UnionYearTotal
from common.clock import SHANGHAI, utcnow
from common.errors import DomainError
from common.sql import CtePart, fetch, for_update, is_postgres

GENESIS_HASH = "0" * 64


def budget_year(at: datetime) -> int:
    """The budget year of a moment: its calendar year in Asia/Shanghai."""
    if at.tzinfo is None:
        raise ValueError("budget_year needs an aware datetime")
    return at.astimezone(SHANGHAI).year


def current_year(now: datetime | None = None) -> int:
    """The budget year now (Asia/Shanghai)."""
    return budget_year(now or utcnow())


# --- holds, captures, releases, refunds -------------------------------------------

# kind -> (change to held, change to spent), per fen of the entry's amount
MOVES: dict[str, tuple[int, int]] = {
    LedgerKind.hold: (+1, 0),
    LedgerKind.capture: (-1, +1),
    LedgerKind.release: (-1, 0),
    LedgerKind.refund: (0, -1),
}


def entry_hash(prev_hash: str, member_id: int, year: int, order_id: int | None, kind: str, amount_fen: int, at: datetime) -> str:
    """sha256 over the previous hash and the entry's content (UTC time, microseconds)."""
    stamp = at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    text = f"{prev_hash}|{member_id}|{year}|{order_id if order_id is not None else ''}|{kind}|{amount_fen}|{stamp}"
    return hashlib.sha256(text.encode()).hexdigest()


def _normalise(shares: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge per member, drop zero amounts, sort by member id (the fixed lock order)."""
    merged: dict[int, int] = {}
    for member_id, amount in shares:
        if amount < 0:
            raise ValueError("share amounts are never negative")
        merged[member_id] = merged.get(member_id, 0) + amount
    return sorted((m, a) for m, a in merged.items() if a > 0)


async def _lock_budgets(member_ids: list[int], year: int, create: bool) -> dict[int, dict]:
    """The budget rows of these members for the year, locked in ascending member id.

    On PostgreSQL `SELECT … FOR UPDATE` in member order; on SQLite the IMMEDIATE
    transaction already holds the database's write lock."""
    if create:
        await ensure_budgets(member_ids, year)
    query = (
        MemberBudget.select()
        .where(MemberBudget.member.is_in(member_ids) & (MemberBudget.year == year))
        .order_by(MemberBudget.member)
    )
    rows = {r["member"]: r for r in await for_update(query, MemberBudget)}
    missing = [m for m in member_ids if m not in rows]
    if missing:
        if create:
            raise DomainError("not_found", f"no such member(s): {missing}", members=missing)
        raise DomainError("invalid_state", f"no budget for member(s) {missing} in {year}", members=missing)
    return rows


def _in(values: Sequence[int]) -> str:
    return ", ".join("{}" for _ in values)


async def ensure_budgets(member_ids: Sequence[int], year: int, *, union_id: int | None = None) -> None:
    """Make the members' budget rows for the year where missing, in one statement
    (`INSERT … SELECT … ON CONFLICT DO NOTHING`, ascending member id). With `union_id`,
    only for active members of that union: `lock_for_hold` then names the others."""
    ids = sorted(set(member_ids))
    if not ids:
        return
    where = f"m.id IN ({_in(ids)})"
    args: list[Any] = [year, GENESIS_HASH, *ids]
    if union_id is not None:
        where += ' AND m."union" = {} AND m.active'
        args.append(union_id)
    await MemberBudget.raw(
        'INSERT INTO budget_member_budget (member, "union", year, held_fen, spent_fen, entries, last_hash) '
        f'SELECT m.id, m."union", {{}}, 0, 0, 0, {{}} FROM budget_member m WHERE {where} ORDER BY m.id '
        "ON CONFLICT (member, year) DO NOTHING",
        *args,
    )


@dataclass
class Held:
    """The budget rows a hold locked (by member id) and the cap it met."""

    rows: dict[int, dict]
    cap: int
    year: int

    def check(self, shares: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """The shares normalised, if every member stays within the cap; else `cap_exceeded`
        naming every member who would go over."""
        items = _normalise(shares)
        over = [
            {
                "member_id": m,
                "cap_fen": self.cap,
                "spent_fen": self.rows[m]["spent_fen"],
                "held_fen": self.rows[m]["held_fen"],
                "requested_fen": a,
            }
            for m, a in items
            if self.rows[m]["held_fen"] + self.rows[m]["spent_fen"] + a > self.cap
        ]
        if over:
            raise DomainError("cap_exceeded", f"{len(over)} member(s) would go over the {self.year} cap of {self.cap} fen", members=over)
        return items


async def lock_for_hold(member_ids: Sequence[int], year: int, *, union_id: int) -> Held:
    """Inside a transaction, after `hold_gate()`: the budget rows of these members (who must
    be active members of `union_id`) for the year, made where missing and locked in
    ascending member id, with the year's cap. Refusals as placing an order names them:
    `not_found`, `forbidden` (another union's), `invalid_state` (inactive).

    PostgreSQL: one statement, `INSERT … SELECT … ORDER BY member ON CONFLICT DO UPDATE …
    RETURNING`: a missing row is made, an existing one is locked by an update that changes
    nothing, and either way the row returned is its latest committed version (what a
    `SELECT … FOR UPDATE` after the insert would read, one round trip sooner). SQLite:
    `ensure_budgets`, then the rows read (its IMMEDIATE transaction holds the write lock)."""
    ids = sorted(set(member_ids))
    if is_postgres(MemberBudget):
        rows = await fetch(
            MemberBudget,
            'INSERT INTO budget_member_budget (member, "union", year, held_fen, spent_fen, entries, last_hash) '
            f'SELECT m.id, m."union", {{}}, 0, 0, 0, {{}} FROM budget_member m WHERE m.id IN ({_in(ids)}) '
            'AND m."union" = {} AND m.active ORDER BY m.id '
            "ON CONFLICT (member, year) DO UPDATE SET member = excluded.member "
            f"RETURNING *, COALESCE((SELECT cap_fen FROM budget_cap_policy WHERE year = {{}}), {DEFAULT_CAP_FEN}) AS cap",
            year, GENESIS_HASH, *ids, union_id, year,
        )
        found = {r["member"]: dict(r) for r in rows}
    else:
        await ensure_budgets(ids, year, union_id=union_id)
        rows = await MemberBudget.raw(
            'SELECT b.*, m."union" AS member_union, m.active AS member_active, '
            f"COALESCE((SELECT cap_fen FROM budget_cap_policy WHERE year = {{}}), {DEFAULT_CAP_FEN}) AS cap "
            "FROM budget_member_budget b JOIN budget_member m ON m.id = b.member "
            f"WHERE b.year = {{}} AND b.member IN ({_in(ids)}) ORDER BY b.member",
            year, year, *ids,
        )
        found = {r["member"]: r for r in rows if r["member_union"] == union_id and r["member_active"]}
    if len(found) != len(ids):
        await _refuse_members(ids, union_id)
    return Held(rows=found, cap=rows[0]["cap"], year=year)


async def _refuse_members(member_ids: list[int], union_id: int) -> None:
    rows = await Member.select(Member.id, Member.union, Member.active).where(Member.id.is_in(member_ids))
    by_id = {r["id"]: r for r in rows}
    if missing := [m for m in member_ids if m not in by_id]:
        raise DomainError("not_found", f"no such member(s): {missing}", members=missing)
    if foreign := [m for m in member_ids if by_id[m]["union"] != union_id]:
        raise DomainError("forbidden", f"member(s) {foreign} are not of your branch", members=foreign)
    inactive = [m for m in member_ids if not by_id[m]["active"]]
    raise DomainError("invalid_state", f"member(s) {inactive} are inactive and get no new allocations", members=inactive)


@dataclass
class Moves:
    """What one move writes: the ledger entries, and each budget row's new figures and chain
    head (`[id, held_fen, spent_fen, entries, last_hash]`). `chain()` computes it; `write()`
    writes it (or the caller writes it together with its own rows, as placing an order does
    on PostgreSQL)."""

    entries: list[dict[str, Any]]
    budgets: list[list[Any]]


def chain(kind: LedgerKind, shares: list[tuple[int, int]], rows: dict[int, dict], year: int, order_id: int | None, at: datetime) -> Moves:
    """Each share's entry, hashed onto its member-year's chain, and the rows' new figures
    (the rows in `rows` are updated too, so that a second move in the same transaction chains on)."""
    held_sign, spent_sign = MOVES[kind]
    at = at.astimezone(timezone.utc)
    moves = Moves(entries=[], budgets=[])
    for member_id, amount in shares:
        row = rows[member_id]
        held = row["held_fen"] + held_sign * amount
        spent = row["spent_fen"] + spent_sign * amount
        if held < 0 or spent < 0:
            raise DomainError(
                "invalid_state",
                f"{kind} of {amount} fen does not fit member {member_id}'s budget (held {row['held_fen']}, spent {row['spent_fen']})",
            )
        digest = entry_hash(row["last_hash"], member_id, year, order_id, kind, amount, at)
        moves.entries.append(
            {"member": member_id, "year": year, "order_id": order_id, "kind": kind.value, "amount_fen": amount, "at": at,
             "prev_hash": row["last_hash"], "hash": digest}  # fmt: skip
        )
        row.update(held_fen=held, spent_fen=spent, entries=row["entries"] + 1, last_hash=digest)
        moves.budgets.append([row["id"], held, spent, row["entries"], digest])
    return moves


async def write(moves: Moves) -> None:
    """The entries in one INSERT, the budget rows in one UPDATE … FROM (VALUES …)."""
    if not moves.entries:
        return
    await LedgerEntry.insert(*[LedgerEntry(**e) for e in moves.entries])
    values = ", ".join("(CAST({} AS INTEGER), CAST({} AS BIGINT), CAST({} AS BIGINT), CAST({} AS INTEGER), CAST({} AS VARCHAR(64)))" for _ in moves.budgets)
    await MemberBudget.raw(
        "UPDATE budget_member_budget SET held_fen = v.column2, spent_fen = v.column3, entries = v.column4, last_hash = v.column5 "
        f"FROM (VALUES {values}) AS v WHERE budget_member_budget.id = v.column1",
        *[x for row in moves.budgets for x in row],
    )


def cte_parts(moves: Moves, *, after: str = "") -> list[CtePart]:
    """The same writes as `write(moves)`, as two parts of a caller's PostgreSQL `WITH`
    statement (placing an order writes its rows and these in one round trip); with
    `after`, the name of an earlier part, only if that part gave a row."""
    if not moves.entries:
        return []
    e = moves.entries
    columns = ("member", "year", "order_id", "kind", "amount_fen", "at", "prev_hash", "hash")
    types = ("integer", "integer", "integer", "varchar", "bigint", "timestamptz", "varchar", "varchar")
    arrays = tuple([x[c] for x in e] for c in columns)
    b = list(zip(*moves.budgets))
    written = f"EXISTS (SELECT 1 FROM {after})" if after else "true"
    # `b.id = ANY(ids)` bounds the budget rows read whatever the plan: a generic plan made
    # while the table was small joined the unnest with a scan of the whole primary key.
    return [
        CtePart(
            "ledger_rows",
            f"INSERT INTO budget_ledger ({', '.join(columns)}) SELECT * FROM unnest("
            + ", ".join(f"{{}}::{t}[]" for t in types) + f") AS u WHERE {written}",
            arrays,
        ),
        CtePart(
            "budget_rows",
            "UPDATE budget_member_budget b SET held_fen = u.held, spent_fen = u.spent, entries = u.entries, last_hash = u.hash "
            "FROM unnest({}::integer[], {}::bigint[], {}::bigint[], {}::integer[], {}::varchar[]) AS u(id, held, spent, entries, hash) "
            f"WHERE b.id = ANY({{}}::integer[]) AND b.id = u.id AND {written}",
            (*(list(col) for col in b), list(b[0])),
        ),
    ]


async def _append(kind: LedgerKind, shares: list[tuple[int, int]], rows: dict[int, dict], year: int, order_id: int | None, at: datetime) -> None:
    await write(chain(kind, shares, rows, year, order_id, at))


async def _add_to_totals(rows: dict[int, dict], shares: list[tuple[int, int]], year: int, sign: int, count_order: bool) -> None:
    """Keep per-branch-year spending current (the targets report reads these, never the ledger)."""
    per_union: dict[int, int] = {}
    for member_id, amount in shares:
        union_id = rows[member_id]["union"]
        per_union[union_id] = per_union.get(union_id, 0) + amount
    for union_id in sorted(per_union):
        await UnionYearTotal.insert(UnionYearTotal(union=union_id, year=year)).on_conflict(
            action="DO NOTHING", target=(UnionYearTotal.union, UnionYearTotal.year)
        )
        await UnionYearTotal.update(
            {
                UnionYearTotal.spent_fen: UnionYearTotal.spent_fen + sign * per_union[union_id],
                UnionYearTotal.orders: UnionYearTotal.orders + (1 if count_order else 0),
            }
        ).where((UnionYearTotal.union == union_id) & (UnionYearTotal.year == year))


async def hold(shares: Sequence[tuple[int, int]], *, year: int, order_id: int | None, at: datetime) -> None:
    """Hold each member's share of an order against their yearly cap.

    Runs inside the caller's transaction. Refuses with `cap_exceeded`, listing every
    member who would go over, and changes nothing."""
    items = _normalise(shares)
    if not items:
        return
    async with MemberBudget._meta.db.transaction():
        rows = await _lock_budgets([m for m, _ in items], year, create=True)
        cap = await cap_for_hold(year)
        over = [
            {
                "member_id": m,
                "cap_fen": cap,
                "spent_fen": rows[m]["spent_fen"],
                "held_fen": rows[m]["held_fen"],
                "requested_fen": a,
            }
            for m, a in items
            if rows[m]["held_fen"] + rows[m]["spent_fen"] + a > cap
        ]
        if over:
            raise DomainError(
                "cap_exceeded",
                f"{len(over)} member(s) would go over the {year} cap of {cap} fen",
                members=over,
            )
        await _append(LedgerKind.hold, items, rows, year, order_id, at)


async def capture(shares: Sequence[tuple[int, int]], *, year: int, order_id: int | None, at: datetime) -> None:
    """The order was paid: each held share becomes spent."""
    items = _normalise(shares)
    if not items:
        return
    async with MemberBudget._meta.db.transaction():
        rows = await _lock_budgets([m for m, _ in items], year, create=False)
        await _append(LedgerKind.capture, items, rows, year, order_id, at)
        await _add_to_totals(rows, items, year, +1, count_order=True)


async def release(shares: Sequence[tuple[int, int]], *, year: int, order_id: int | None, at: datetime) -> None:
    """The order was cancelled, expired or failed: each held share is let go."""
    items = _normalise(shares)
    if not items:
        return
    async with MemberBudget._meta.db.transaction():
        rows = await _lock_budgets([m for m, _ in items], year, create=False)
        await _append(LedgerKind.release, items, rows, year, order_id, at)


async def refund(shares: Sequence[tuple[int, int]], *, year: int, order_id: int | None, at: datetime) -> None:
    """Money went back to the payer: each share of it returns to the member's quota."""
    items = _normalise(shares)
    if not items:
        return
    async with MemberBudget._meta.db.transaction():
        rows = await _lock_budgets([m for m, _ in items], year, create=False)
        await _append(LedgerKind.refund, items, rows, year, order_id, at)
        await _add_to_totals(rows, items, year, -1, count_order=False)
