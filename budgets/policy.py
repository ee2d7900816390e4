"""The cap policy: the per-member cap of each year (60000 fen unless set) and its history.

`CapPolicy` holds a year's cap now; `CapPolicyChange` keeps every change of it (who, when,
from what to what), written in the same transaction. Lowering a cap takes nothing back:
`set_cap` names the members already above the new cap, and the audit tells them apart
from members a hold took over the cap.

Which cap a hold was checked against. A hold reads the year's cap (`cap_for_hold`) with
cap changes shut out until it commits: on SQLite every writing transaction is IMMEDIATE
and holds the database's one write lock; on PostgreSQL a hold takes the cap gate, a
transaction's advisory lock (`CAP_GATE_KEY`), shared, and a change takes it exclusive (holds
never wait for each other; a change waits for the holds in flight, and new holds wait for
it). Being a function, the shared gate can be taken inside a statement that reads other
things (placing an order takes it in its first statement, `HOLD_GATE_SQL`). A change records the ledger's
last `seq` once it holds that lock, so the holds it came after are exactly those with a
`seq` at or below its `ledger_seq`, whatever the clocks of the processes said. The audit
finds each hold's cap that way (`CAP_IN_FORCE_SQL`): the year's latest change before the
entry; before the year's first change, the cap that change replaced; a year without
changes, its policy row; else the default."""

from __future__ import annotations

from datetime import datetime

from piccolo.columns.combination import WhereRaw

from budgets.checks import check_amount, check_year
from budgets.tables import CapPolicy, CapPolicyChange, LedgerEntry, MemberBudget
from common.sql import is_postgres

DEFAULT_CAP_FEN = 60_000  # 600 yuan a member a year (不超过600元/人/年)
CAP_MAX_FEN = 10_000_000

# PostgreSQL's advisory lock key of the cap gate: a fixed number the shop uses for nothing else
CAP_GATE_KEY = 6_002_026_600
HOLD_GATE_SQL = f"pg_advisory_xact_lock_shared({CAP_GATE_KEY})"  # a void value; held until the commit

_CHANGES = CapPolicyChange._meta.tablename
_POLICY = CapPolicy._meta.tablename

# The cap a ledger entry `e` (columns e.year, e.seq) was checked against, in SQL.
CAP_IN_FORCE_SQL = (
    "COALESCE("
    f'(SELECT c.cap_fen FROM "{_CHANGES}" c WHERE c.year = e.year AND c.ledger_seq < e.seq ORDER BY c.id DESC LIMIT 1), '
    f'(SELECT c.previous_cap_fen FROM "{_CHANGES}" c WHERE c.year = e.year ORDER BY c.id LIMIT 1), '
    f'(SELECT p.cap_fen FROM "{_POLICY}" p WHERE p.year = e.year), '
    f"{DEFAULT_CAP_FEN})"
)


async def cap_for_year(year: int) -> int:
    """The per-member cap of a year now: the policy row, else 60000 fen."""
    row = await CapPolicy.select(CapPolicy.cap_fen).where(CapPolicy.year == year).first()
    return row["cap_fen"] if row else DEFAULT_CAP_FEN


async def hold_gate() -> None:
    """Inside a hold's transaction, before the cap is read: no cap change can come between
    the read and the commit (PostgreSQL: the cap gate shared, which `set_cap` takes
    exclusive; SQLite: the IMMEDIATE transaction already keeps every writer out). It must
    come in an earlier statement than the one reading the cap, so that the read sees a
    change committed while the gate was waited for."""
    if is_postgres(CapPolicyChange):
        await CapPolicyChange.raw(f"SELECT {HOLD_GATE_SQL}")


async def cap_for_hold(year: int) -> int:
    """The cap a hold checks against, read behind `hold_gate()`."""
    await hold_gate()
    return await cap_for_year(year)


def _change(row: dict) -> dict:
    return {
        "id": row["id"],
        "year": row["year"],
        "previous_cap_fen": row["previous_cap_fen"],
        "cap_fen": row["cap_fen"],
        "at": row["at"],
        "actor_id": row["actor_id"],
    }


async def get_policy(year: int) -> dict:
    """`{year, cap_fen, default, history}`: `default` is true when no policy row sets that
    year's cap; `history` is every change of it, oldest first: `{id, year, previous_cap_fen,
    cap_fen, at, actor_id}` (`at` an aware datetime, `actor_id` the shop user's id or None)."""
    check_year(year)
    row = await CapPolicy.select(CapPolicy.cap_fen).where(CapPolicy.year == year).first()
    changes = await CapPolicyChange.select().where(CapPolicyChange.year == year).order_by(CapPolicyChange.id)
    return {
        "year": year,
        "cap_fen": row["cap_fen"] if row else DEFAULT_CAP_FEN,
        "default": row is None,
        "history": [_change(c) for c in changes],
    }


async def cap_changes(*, year: int | None = None, limit: int = 50, offset: int = 0) -> tuple[list[dict], int]:
    """Cap changes for an admin trail, newest first, of one year or all: (page, total);
    each `{id, year, previous_cap_fen, cap_fen, at, actor_id}` as in `get_policy`."""
    query = CapPolicyChange.select().order_by(CapPolicyChange.id, ascending=False)
    count = CapPolicyChange.count()
    if year is not None:
        check_year(year)
        query = query.where(CapPolicyChange.year == year)
        count = count.where(CapPolicyChange.year == year)
    return [_change(c) for c in await query.limit(limit).offset(offset)], await count


async def set_cap(year: int, cap_fen: int, *, actor_id: int | None, at: datetime) -> dict:
    """Set the per-member cap of a year and record the change, in one transaction.

    Nothing already held or spent changes: a lower cap only blocks new holds. Answers
    `{year, cap_fen, previous_cap_fen, at, actor_id, affected}`, `affected` being the members
    whose held + spent that year is above the new cap, `[{member_id, spent_fen, held_fen}]`
    by member id. `actor_id` is who made the change (the shop's user id), `at` when."""
    check_year(year)
    check_amount(cap_fen, "cap_fen", CAP_MAX_FEN)
    if at.tzinfo is None:
        raise ValueError("set_cap needs an aware datetime")
    async with CapPolicy._meta.db.transaction():
        if is_postgres(CapPolicyChange):  # wait for the holds in flight, keep new ones out
            await CapPolicyChange.raw(f"SELECT pg_advisory_xact_lock({CAP_GATE_KEY})")
        previous = await cap_for_year(year)
        last = await LedgerEntry.select(LedgerEntry.seq).order_by(LedgerEntry.seq, ascending=False).first()
        await CapPolicy.insert(CapPolicy(year=year, cap_fen=cap_fen)).on_conflict(
            target=CapPolicy.year, action="DO UPDATE", values=[CapPolicy.cap_fen]
        )
        await CapPolicyChange.insert(
            CapPolicyChange(
                year=year,
                cap_fen=cap_fen,
                previous_cap_fen=previous,
                at=at,
                actor_id=actor_id,
                ledger_seq=last["seq"] if last else 0,
            )
        )
        used = '"budget_member_budget"."spent_fen" + "budget_member_budget"."held_fen"'
        affected = await (
            MemberBudget.select(MemberBudget.member.as_alias("member_id"), MemberBudget.spent_fen, MemberBudget.held_fen)
            .where((MemberBudget.year == year) & WhereRaw(used + " > {}", cap_fen))
            .order_by(MemberBudget.member)
        )
    return {"year": year, "cap_fen": cap_fen, "previous_cap_fen": previous, "at": at, "actor_id": actor_id, "affected": affected}
