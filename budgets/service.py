"""Budgets domain logic: plain async functions over explicit arguments, no HTTP.

The money rules live here, whole: a member's budget for a year is one row
(`held_fen`, `spent_fen`); `held + spent <= cap` at every commit. Every change
appends a ledger entry in the same transaction, and each member-year's entries
form a sha256 hash chain whose head is kept on the budget row, so the row lock
that guards the balance also guards the chain.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, AsyncIterator, Iterable, Sequence
from zoneinfo import ZoneInfo

from common.errors import DomainError

from piccolo.columns.combination import WhereRaw
from piccolo.engine.postgres import PostgresEngine
from piccolo.query import OrderByRaw
from piccolo.query.functions.aggregate import Count

from budgets.states import LedgerKind, Level
from budgets.tables import (
    CapPolicy,
    LedgerEntry,
    Member,
    MemberBudget,
    Target,
    Union,
    UnionYearTotal,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_CAP_FEN = 60_000  # 600 yuan a member a year (不超过600元/人/年)
GENESIS_HASH = "0" * 64


BudgetError = DomainError  # bridge while the package is split


def budget_year(at: datetime) -> int:
    """The budget year of a moment: its calendar year in Asia/Shanghai."""
    if at.tzinfo is None:
        raise ValueError("budget_year needs an aware datetime")
    return at.astimezone(SHANGHAI).year


async def cap_for_year(year: int) -> int:
    """The per-member cap of a year: the policy row, else 60000 fen."""
    row = await CapPolicy.select(CapPolicy.cap_fen).where(CapPolicy.year == year).first()
    return row["cap_fen"] if row else DEFAULT_CAP_FEN


# --- holds, captures, releases, refunds -------------------------------------------

# kind -> (change to held, change to spent), per fen of the entry's amount
MOVES: dict[str, tuple[int, int]] = {
    LedgerKind.HOLD: (+1, 0),
    LedgerKind.CAPTURE: (-1, +1),
    LedgerKind.RELEASE: (-1, 0),
    LedgerKind.REFUND: (0, -1),
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
        members = await Member.select(Member.id, Member.union).where(Member.id.is_in(member_ids))
        if len(members) != len(member_ids):
            missing = sorted(set(member_ids) - {m["id"] for m in members})
            raise BudgetError("not_found", f"no such member(s): {missing}", members=missing)
        await MemberBudget.insert(
            *[
                MemberBudget(member=m["id"], union=m["union"], year=year, last_hash=GENESIS_HASH)
                for m in sorted(members, key=lambda r: r["id"])
            ]
        ).on_conflict(action="DO NOTHING", target=(MemberBudget.member, MemberBudget.year))
    query = (
        MemberBudget.select()
        .where(MemberBudget.member.is_in(member_ids) & (MemberBudget.year == year))
        .order_by(MemberBudget.member)
    )
    if isinstance(MemberBudget._meta.db, PostgresEngine):
        query = query.lock_rows("UPDATE")
    rows = {r["member"]: r for r in await query}
    missing = [m for m in member_ids if m not in rows]
    if missing:
        raise BudgetError("invalid_state", f"no budget for member(s) {missing} in {year}", members=missing)
    return rows


async def _append(kind: LedgerKind, shares: list[tuple[int, int]], rows: dict[int, dict], year: int, order_id: int | None, at: datetime) -> None:
    held_sign, spent_sign = MOVES[kind]
    at = at.astimezone(timezone.utc)
    entries = []
    for member_id, amount in shares:
        row = rows[member_id]
        held = row["held_fen"] + held_sign * amount
        spent = row["spent_fen"] + spent_sign * amount
        if held < 0 or spent < 0:
            raise BudgetError(
                "invalid_state",
                f"{kind} of {amount} fen does not fit member {member_id}'s budget (held {row['held_fen']}, spent {row['spent_fen']})",
            )
        digest = entry_hash(row["last_hash"], member_id, year, order_id, kind, amount, at)
        entries.append(
            LedgerEntry(
                member=member_id,
                year=year,
                order_id=order_id,
                kind=kind,
                amount_fen=amount,
                at=at,
                prev_hash=row["last_hash"],
                hash=digest,
            )
        )
        await MemberBudget.update(
            {
                MemberBudget.held_fen: held,
                MemberBudget.spent_fen: spent,
                MemberBudget.entries: row["entries"] + 1,
                MemberBudget.last_hash: digest,
            }
        ).where(MemberBudget.id == row["id"])
        row.update(held_fen=held, spent_fen=spent, entries=row["entries"] + 1, last_hash=digest)
    await LedgerEntry.insert(*entries)  # one statement; each member-year gets one entry a call


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
        cap = await cap_for_year(year)
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
            raise BudgetError(
                "cap_exceeded",
                f"{len(over)} member(s) would go over the {year} cap of {cap} fen",
                members=over,
            )
        await _append(LedgerKind.HOLD, items, rows, year, order_id, at)


async def capture(shares: Sequence[tuple[int, int]], *, year: int, order_id: int | None, at: datetime) -> None:
    """The order was paid: each held share becomes spent."""
    items = _normalise(shares)
    if not items:
        return
    async with MemberBudget._meta.db.transaction():
        rows = await _lock_budgets([m for m, _ in items], year, create=False)
        await _append(LedgerKind.CAPTURE, items, rows, year, order_id, at)
        await _add_to_totals(rows, items, year, +1, count_order=True)


async def release(shares: Sequence[tuple[int, int]], *, year: int, order_id: int | None, at: datetime) -> None:
    """The order was cancelled, expired or failed: each held share is let go."""
    items = _normalise(shares)
    if not items:
        return
    async with MemberBudget._meta.db.transaction():
        rows = await _lock_budgets([m for m, _ in items], year, create=False)
        await _append(LedgerKind.RELEASE, items, rows, year, order_id, at)


async def refund(shares: Sequence[tuple[int, int]], *, year: int, order_id: int | None, at: datetime) -> None:
    """Money went back to the payer: each share of it returns to the member's quota."""
    items = _normalise(shares)
    if not items:
        return
    async with MemberBudget._meta.db.transaction():
        rows = await _lock_budgets([m for m, _ in items], year, create=False)
        await _append(LedgerKind.REFUND, items, rows, year, order_id, at)
        await _add_to_totals(rows, items, year, -1, count_order=False)


# --- verification: the chain is intact and the ledger replays to the balances -----


@dataclass
class Verification:
    ok: bool = True
    entries: int = 0
    member_years: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)
    max_problems: int = 1000

    def problem(self, **item: Any) -> None:
        self.ok = False
        if len(self.problems) < self.max_problems:
            self.problems.append(item)


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
    query = table.select(*_columns(table)).order_by(table.member, table.year, tiebreak)
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


def _columns(table):
    if table is LedgerEntry:
        return (
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
    return (MemberBudget.id, MemberBudget.member, MemberBudget.year, MemberBudget.held_fen, MemberBudget.spent_fen, MemberBudget.entries, MemberBudget.last_hash)


async def verify_ledger(year: int | None = None, union_prefix: str | None = None, batch: int = 5000) -> Verification:
    """Walk every member-year's chain in order and replay it against the budget rows.

    Streams both tables in (member, year) order and merges them, so memory does not
    grow with the ledger. `union_prefix` limits it to a subtree (Union.path prefix)."""
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


# --- unions, members, policy, targets ---

YEAR_MIN, YEAR_MAX = 2000, 2100
CAP_MAX_FEN = 10_000_000
TARGET_MAX_FEN = 10**13
UNION_NAME_MAX = 100
MEMBER_NAME_MAX = 50
IMPORT_MAX_ROWS = 20_000
_INSERT_BATCH = 500  # rows per INSERT: keeps well under both drivers' parameter limits
_PATH_MAX = 255  # Union.path's length

UNION_CODE_RE = re.compile(r"[A-Z0-9-]{1,32}")
MEMBER_NO_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

# level -> the levels its parent may have (None: no parent)
PARENT_LEVELS: dict[str, tuple[str | None, ...]] = {
    Level.FEDERATION: (None, Level.FEDERATION),
    Level.DISTRICT: (Level.FEDERATION,),
    Level.BRANCH: (Level.DISTRICT, Level.FEDERATION),
}

_UNION_COLUMNS = (Union.id, Union.code, Union.name, Union.level, Union.parent, Union.path)
_MEMBER_COLUMNS = (Member.id, Member.union, Member.member_no, Member.name, Member.active)


def current_year(now: datetime | None = None) -> int:
    """The budget year now (Asia/Shanghai)."""
    return budget_year(now or datetime.now(timezone.utc))


def invalid(field: str, message: str) -> BudgetError:
    """A `validation_failed` refusal naming one field."""
    return BudgetError("validation_failed", f"{field}: {message}", errors=[{"field": field, "message": message}])


def check_year(year: int, field: str = "year") -> int:
    if isinstance(year, bool) or not isinstance(year, int) or not YEAR_MIN <= year <= YEAR_MAX:
        raise invalid(field, f"must be a year from {YEAR_MIN} to {YEAR_MAX}")
    return year


def _check_amount(value: int, field: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise invalid(field, f"must be a whole number of fen from 0 to {maximum}")
    return value


def _text_problem(text: str, limit: int) -> str | None:
    """What is wrong with an already stripped name, if anything."""
    if not text:
        return "must not be empty"
    if len(text) > limit:
        return f"must be at most {limit} characters"
    if _CONTROL_RE.search(text):
        return "must not contain control characters"
    return None


def _clean_text(value: str, field: str, limit: int) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if problem := _text_problem(text, limit):
        raise invalid(field, problem)
    return text


def _member_no_problem(member_no: str) -> str | None:
    if not member_no:
        return "member_no is empty"
    if not MEMBER_NO_RE.fullmatch(member_no):
        return f"member_no {member_no!r} must be 1 to 32 letters, digits, '_' or '-'"
    return None


def _is_unique_violation(exc: BaseException) -> bool:
    """Piccolo does not wrap driver errors; budgets imports nothing of the shop's."""
    try:
        import asyncpg

        if isinstance(exc, asyncpg.UniqueViolationError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)


# --- the union tree ---------------------------------------------------------


def _union(row: dict) -> dict:
    return {
        "id": row["id"],
        "code": row["code"],
        "name": row["name"],
        "level": row["level"],
        "parent_id": row["parent"],
        "path": row["path"],
    }


async def get_union(union_id: int) -> dict | None:
    """`{id, code, name, level, parent_id, path}` or None."""
    row = await Union.select(*_UNION_COLUMNS).where(Union.id == union_id).first()
    return _union(row) if row else None


async def union_by_code(code: str) -> dict | None:
    """`{id, code, name, level, parent_id, path}` or None."""
    row = await Union.select(*_UNION_COLUMNS).where(Union.code == code).first()
    return _union(row) if row else None


async def union_children(union_id: int) -> list[int]:
    rows = await Union.select(Union.id).where(Union.parent == union_id).order_by(Union.id)
    return [r["id"] for r in rows]


async def union_detail(union_id: int) -> dict:
    """The union with its children's ids; `not_found` if there is none."""
    union = await get_union(union_id)
    if union is None:
        raise BudgetError("not_found", f"union {union_id} does not exist")
    return {**union, "children": await union_children(union_id)}


async def list_unions(
    *, parent_id: int | None = None, level: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[dict], int]:
    """Unions by id, optionally the children of one union and/or of one level; (page, total)."""
    clauses = []
    if parent_id is not None:
        clauses.append(Union.parent == parent_id)
    if level is not None:
        clauses.append(Union.level == level)
    query = Union.select(*_UNION_COLUMNS).order_by(Union.id).limit(limit).offset(offset)
    count = Union.count()
    for clause in clauses:
        query = query.where(clause)
        count = count.where(clause)
    return [_union(r) for r in await query], await count


async def create_union(code: str, name: str, level: str, parent_code: str | None = None) -> dict:
    """Add a union under `parent_code` and set its materialised path, in one transaction.

    A federation has no parent or a federation parent; a district's parent is a
    federation; a branch's parent is a district or a federation; a branch has no
    children. An unknown `parent_code` is `not_found`; a taken `code` is `conflict`."""
    if not isinstance(code, str) or not UNION_CODE_RE.fullmatch(code):
        raise invalid("code", "must be 1 to 32 capital letters, digits or '-'")
    name = _clean_text(name, "name", UNION_NAME_MAX)
    if level not in tuple(Level):
        raise invalid("level", f"must be one of {', '.join(Level)}")
    async with Union._meta.db.transaction():
        parent = None
        if parent_code is not None:
            parent = await union_by_code(parent_code)
            if parent is None:
                raise BudgetError("not_found", f"parent union {parent_code!r} does not exist")
        parent_level = parent["level"] if parent else None
        if parent_level not in PARENT_LEVELS[level]:
            if parent_level == Level.BRANCH:
                message = "a branch (基层工会) has no child unions"
            elif parent is None:
                message = f"a {level} needs a parent ({' or '.join(str(p) for p in PARENT_LEVELS[level])})"
            else:
                allowed = " or ".join(p or "none" for p in PARENT_LEVELS[level])
                message = f"a {level}'s parent must be a {allowed}, not a {parent_level}"
            raise invalid("parent_code", message)
        if await Union.exists().where(Union.code == code):
            raise BudgetError("conflict", f"union code {code!r} is taken")
        try:
            inserted = await Union.insert(
                Union(code=code, name=name, level=level, parent=parent["id"] if parent else None, path="")
            ).returning(Union.id)
        except Exception as exc:
            if _is_unique_violation(exc):
                raise BudgetError("conflict", f"union code {code!r} is taken") from exc
            raise
        union_id = inserted[0]["id"]
        path = f"{parent['path'] if parent else '/'}{union_id}/"
        if len(path) > _PATH_MAX:
            raise invalid("parent_code", "the union tree is too deep there")
        await Union.update({Union.path: path}).where(Union.id == union_id)
    return {"id": union_id, "code": code, "name": name, "level": level, "parent_id": parent["id"] if parent else None, "path": path}


async def ensure_union(code: str, name: str, level: str, parent_code: str | None = None) -> int:
    """The id of the union with `code`, created if missing (for `shop seed`; an existing one is left as it is)."""
    existing = await union_by_code(code)
    if existing is not None:
        return existing["id"]
    try:
        return (await create_union(code, name, level, parent_code))["id"]
    except BudgetError as exc:
        if exc.code != "conflict":  # created at the same moment elsewhere
            raise
    existing = await union_by_code(code)
    assert existing is not None
    return existing["id"]


async def subtree_prefix(union_id: int) -> str:
    """The union's materialised path: `Union.path.like(prefix + "%")` (or, through a
    foreign key, `Member.union.path.like(...)`) selects it and everything below it."""
    row = await Union.select(Union.path).where(Union.id == union_id).first()
    if row is None:
        raise BudgetError("not_found", f"union {union_id} does not exist")
    return row["path"]


async def is_in_subtree(union_id: int, ancestor_id: int) -> bool:
    """Whether `ancestor_id` is `union_id` itself or one of its ancestors (False if either is unknown)."""
    row = await Union.select(Union.path).where(Union.id == union_id).first()
    return row is not None and f"/{int(ancestor_id)}/" in row["path"]


# --- the cap policy and targets ---------------------------------------------


async def get_policy(year: int) -> dict:
    """`{year, cap_fen, default}`: `default` is true when no policy row sets that year's cap."""
    check_year(year)
    row = await CapPolicy.select(CapPolicy.cap_fen).where(CapPolicy.year == year).first()
    return {"year": year, "cap_fen": row["cap_fen"] if row else DEFAULT_CAP_FEN, "default": row is None}


async def set_cap(year: int, cap_fen: int) -> dict:
    """Set the per-member cap of a year (upsert). A lower cap only blocks new holds:
    nothing already held or spent changes."""
    check_year(year)
    _check_amount(cap_fen, "cap_fen", CAP_MAX_FEN)
    async with CapPolicy._meta.db.transaction():
        await CapPolicy.insert(CapPolicy(year=year, cap_fen=cap_fen)).on_conflict(
            target=CapPolicy.year, action="DO UPDATE", values=[CapPolicy.cap_fen]
        )
    return {"year": year, "cap_fen": cap_fen}


async def set_target(union_id: int, year: int, target_fen: int) -> dict:
    """Set a union's consumption-support target (消费帮扶目标) for a year (upsert)."""
    check_year(year)
    _check_amount(target_fen, "target_fen", TARGET_MAX_FEN)
    async with Target._meta.db.transaction():
        if not await Union.exists().where(Union.id == union_id):
            raise BudgetError("not_found", f"union {union_id} does not exist")
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
    _check_amount(target_fen, "target_fen", TARGET_MAX_FEN)
    union = await union_by_code(union_code)
    if union is None:
        raise BudgetError("not_found", f"union {union_code!r} does not exist")
    async with Target._meta.db.transaction():
        await Target.insert(Target(union=union["id"], year=year, target_fen=target_fen)).on_conflict(
            target=(Target.union, Target.year), action="DO NOTHING"
        )


# --- members ----------------------------------------------------------------


def _member(row: dict) -> dict:
    return {
        "id": row["id"],
        "union_id": row["union"],
        "member_no": row["member_no"],
        "name": row["name"],
        "active": bool(row["active"]),
    }


async def require_branch(union_id: int) -> dict:
    """The union, which must exist (`not_found`) and be a branch (`invalid_state`): only branches have members."""
    union = await get_union(union_id)
    if union is None:
        raise BudgetError("not_found", f"union {union_id} does not exist")
    if union["level"] != Level.BRANCH:
        raise BudgetError("invalid_state", f"union {union['code']} is a {union['level']}; only a branch (基层工会) has members")
    return union


async def get_member(member_id: int) -> dict | None:
    """`{id, union_id, member_no, name, active}` or None."""
    row = await Member.select(*_MEMBER_COLUMNS).where(Member.id == member_id).first()
    return _member(row) if row else None


def _like_pattern(text: str) -> str:
    """A case-insensitive substring pattern for `LIKE … ESCAPE '!'` (the same on both databases)."""
    escaped = text.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


async def list_members(
    union_id: int, *, active: bool | None = None, q: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[dict], int]:
    """A branch's members ordered by member_no; `q` matches part of member_no or name. (page, total)"""
    clauses = [Member.union == union_id]
    if active is not None:
        clauses.append(Member.active == active)
    if q is not None and q.strip():
        pattern = _like_pattern(q.strip())
        clauses.append(
            WhereRaw("""(LOWER("member_no") LIKE {} ESCAPE '!' OR LOWER("name") LIKE {} ESCAPE '!')""", pattern, pattern)
        )
    query = Member.select(*_MEMBER_COLUMNS).order_by(Member.member_no, Member.id).limit(limit).offset(offset)
    count = Member.count()
    for clause in clauses:
        query = query.where(clause)
        count = count.where(clause)
    return [_member(r) for r in await query], await count


async def create_member(union_id: int, member_no: str, name: str) -> dict:
    """Add an active member to a branch; `member_no` is unique in the branch (`conflict`)."""
    member_no = member_no.strip() if isinstance(member_no, str) else ""
    if problem := _member_no_problem(member_no):
        raise invalid("member_no", problem)
    name = _clean_text(name, "name", MEMBER_NAME_MAX)
    async with Member._meta.db.transaction():
        await require_branch(union_id)
        if await Member.exists().where((Member.union == union_id) & (Member.member_no == member_no)):
            raise BudgetError("conflict", f"member_no {member_no!r} is already in this branch")
        try:
            inserted = await Member.insert(
                Member(union=union_id, member_no=member_no, name=name, active=True)
            ).returning(Member.id)
        except Exception as exc:
            if _is_unique_violation(exc):
                raise BudgetError("conflict", f"member_no {member_no!r} is already in this branch") from exc
            raise
    return {"id": inserted[0]["id"], "union_id": union_id, "member_no": member_no, "name": name, "active": True}


async def update_member(member_id: int, *, branch_id: int, name: str | None = None, active: bool | None = None) -> dict:
    """Rename and/or (de)activate a member of `branch_id` (the caller's branch).

    None leaves a field as it is. Another branch's member is `forbidden`; an
    inactive member keeps what was spent but gets no new allocations."""
    if name is None and active is None:
        raise invalid("body", "give name and/or active")
    changes: dict = {}
    if name is not None:
        changes[Member.name] = _clean_text(name, "name", MEMBER_NAME_MAX)
    if active is not None:
        changes[Member.active] = bool(active)
    async with Member._meta.db.transaction():
        member = await get_member(member_id)
        if member is None:
            raise BudgetError("not_found", f"member {member_id} does not exist")
        if member["union_id"] != branch_id:
            raise BudgetError("forbidden", f"member {member_id} belongs to another branch")
        await Member.update(changes).where(Member.id == member_id)
    if name is not None:
        member["name"] = changes[Member.name]
    if active is not None:
        member["active"] = bool(active)
    return member


async def ensure_member(union_id: int, member_no: str, name: str) -> int:
    """The id of the branch's member with `member_no`, created if missing (for `shop seed`;
    an existing one is left as it is)."""
    member_no = member_no.strip()
    if problem := _member_no_problem(member_no):
        raise invalid("member_no", problem)
    name = _clean_text(name, "name", MEMBER_NAME_MAX)
    async with Member._meta.db.transaction():
        await require_branch(union_id)
        await Member.insert(Member(union=union_id, member_no=member_no, name=name, active=True)).on_conflict(
            target=(Member.union, Member.member_no), action="DO NOTHING"
        )
        row = await Member.select(Member.id).where((Member.union == union_id) & (Member.member_no == member_no)).first()
    return row["id"]


# --- importing members from CSV ---------------------------------------------

CSV_HEADER = ("member_no", "name")
_HEADER_HINT = "a header row must be exactly member_no,name"


def _line_error(line: int, message: str) -> dict:
    return {"line": line, "message": message}


def parse_member_csv(data: bytes, max_rows: int = IMPORT_MAX_ROWS) -> tuple[list[tuple[int, str, str]], list[dict]]:
    """Read a members file: `([(line, member_no, name)], errors)`, errors as `[{line, message}]`.

    UTF-8 with or without a BOM (Excel's "CSV UTF-8"), LF or CRLF line ends, an
    optional header row which, when present, is exactly `member_no,name`.
    Blank lines (and rows whose every cell is blank, as Excel writes them) are
    skipped wherever they are. Cells are stripped of surrounding spaces. Line
    numbers are the file's own, from 1; a row is numbered by the line it starts
    on. Every bad line is reported."""
    if not data.strip(b" \t\r\n\xef\xbb\xbf"):
        return [], [_line_error(1, "the file is empty")]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        errors = []
        for number, raw in enumerate(data.split(b"\n"), start=1):
            try:
                raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                errors.append(_line_error(number, "not UTF-8 text: save the file as 'CSV UTF-8'"))
        return [], errors
    rows: list[tuple[int, str, str]] = []
    errors: list[dict] = []
    seen: dict[str, int] = {}
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    first_row = True
    data_rows = 0
    line_end = 0  # the last line the reader has consumed
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(_line_error(line_end + 1, f"not valid CSV: {exc}"))
            break
        line, line_end = line_end + 1, reader.line_num
        stripped = [cell.strip() for cell in cells]
        if not any(stripped):
            continue  # a blank line
        is_first_row, first_row = first_row, False
        if is_first_row and any(cell.lower() in CSV_HEADER for cell in stripped):
            if tuple(stripped) != CSV_HEADER:
                errors.append(_line_error(line, _HEADER_HINT))
            continue
        data_rows += 1
        if data_rows > max_rows:
            errors.append(_line_error(line, f"more than {max_rows} members in one file"))
            break
        if len(cells) != 2:
            errors.append(_line_error(line, f"expected 2 columns (member_no,name), found {len(cells)}"))
            continue
        member_no, name = stripped
        problems = []
        if problem := _member_no_problem(member_no):
            problems.append(problem)
        elif member_no in seen:
            problems.append(f"member_no {member_no!r} already appears on line {seen[member_no]}")
        else:
            seen[member_no] = line
        if problem := _text_problem(name, MEMBER_NAME_MAX):
            problems.append(f"name {problem}")
        if problems:
            if is_first_row and _member_no_problem(member_no):  # perhaps a header in other words
                problems.append(_HEADER_HINT)
            errors.append(_line_error(line, "; ".join(problems)))
        else:
            rows.append((line, member_no, name))
    if not rows and not errors:
        errors.append(_line_error(1, "the file has no members"))
    return rows, errors


async def import_members(union_id: int, data: bytes) -> dict:
    """Create or update a branch's members from a CSV file, all or nothing.

    A new member_no is created (active); an existing one gets the file's name and
    is made active again (the file is the branch's roster). Members missing from
    the file are left alone. Any bad line: `validation_failed` listing every one
    as `errors: [{line, message}]`, and nothing changes.
    → `{created, updated, unchanged, errors: []}`."""
    await require_branch(union_id)
    rows, errors = parse_member_csv(data)
    if errors:
        raise BudgetError(
            "validation_failed",
            f"{len(errors)} line(s) of the file are wrong; nothing was imported",
            errors=errors,
        )
    created = updated = unchanged = 0
    async with Member._meta.db.transaction():
        existing = {
            r["member_no"]: r
            for r in await Member.select(Member.id, Member.member_no, Member.name, Member.active).where(Member.union == union_id)
        }
        new: list[Member] = []
        for _, member_no, name in rows:
            row = existing.get(member_no)
            if row is None:
                new.append(Member(union=union_id, member_no=member_no, name=name, active=True))
            elif row["name"] == name and row["active"]:
                unchanged += 1
            else:
                await Member.update({Member.name: name, Member.active: True}).where(Member.id == row["id"])
                updated += 1
        try:
            for start in range(0, len(new), _INSERT_BATCH):
                await Member.insert(*new[start : start + _INSERT_BATCH])
        except Exception as exc:
            if _is_unique_violation(exc):
                raise BudgetError("conflict", "the branch's members changed during the import; nothing was imported, try again") from exc
            raise
        created = len(new)
    return {"created": created, "updated": updated, "unchanged": unchanged, "errors": []}


# --- a branch's budget ------------------------------------------------------


async def branch_budget(union_id: int, year: int) -> dict:
    """`{union_id, year, cap_fen, members: [{member_id, member_no, name, active, spent_fen,
    held_fen, remaining_fen}]}` by member_no: every active member, and inactive ones
    with something spent or held that year. A member without a budget row has
    spent and held nothing; `remaining_fen = max(cap - spent - held, 0)`."""
    check_year(year)
    await require_branch(union_id)
    cap = await cap_for_year(year)
    members = await Member.select(*_MEMBER_COLUMNS).where(Member.union == union_id).order_by(Member.member_no, Member.id)
    budgets = {
        r["member"]: r
        for r in await MemberBudget.select(MemberBudget.member, MemberBudget.held_fen, MemberBudget.spent_fen).where(
            (MemberBudget.member.union == union_id) & (MemberBudget.year == year)
        )
    }
    items = []
    for m in members:
        budget = budgets.get(m["id"])
        spent = budget["spent_fen"] if budget else 0
        held = budget["held_fen"] if budget else 0
        if not m["active"] and not spent and not held:
            continue
        items.append(
            {
                "member_id": m["id"],
                "member_no": m["member_no"],
                "name": m["name"],
                "active": bool(m["active"]),
                "spent_fen": spent,
                "held_fen": held,
                "remaining_fen": max(cap - spent - held, 0),
            }
        )
    return {"union_id": union_id, "year": year, "cap_fen": cap, "members": items}


# --- reports and audit -------------------------------------------------------------


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


async def audit_members(root_id: int | None, year: int, min_ratio: float, limit: int, offset: int) -> tuple[list[dict], int]:
    """Members whose (spent + held) / cap >= min_ratio in the year, fullest first."""
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
        }
        for r in rows
    ]
    return items, total


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
    """The ledger's entries in the caller's subtree, in the order they were written."""
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
    query = LedgerEntry.select(*_columns(LedgerEntry)).order_by(LedgerEntry.seq)
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
    """verify_ledger over the caller's subtree."""
    prefix = await subtree_prefix(root_id) if root_id is not None else None
    return await verify_ledger(year=year, union_prefix=prefix)
