"""The ledger itself (budgets/ledger.py): holds, captures, releases, refunds, the hash
chain and its verification, on the real database (the HTTP paths are covered by the
orders tests)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budgets import ledger, policy, verification
from budgets.tables import (
    CapPolicy,
    LedgerEntry,
    Member,
    MemberBudget,
    Union,
    UnionYearTotal,
)
from common.errors import DomainError

AT = datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)


async def make_branch_with_members(n: int, code: str = "B1") -> tuple[int, list[int]]:
    fed = Union(code=f"F{code}", name="联合会", level="federation", path="")
    await fed.save()
    branch = Union(code=code, name="基层工会", level="branch", parent=fed.id, path="")
    await branch.save()
    await Union.update({Union.path: f"/{fed.id}/"}).where(Union.id == fed.id)
    await Union.update({Union.path: f"/{fed.id}/{branch.id}/"}).where(Union.id == branch.id)
    ids = []
    for i in range(n):
        m = Member(union=branch.id, member_no=f"M{i:04d}", name=f"会员{i}")
        await m.save()
        ids.append(m.id)
    return branch.id, ids


async def balances(member_id: int, year: int = 2026) -> tuple[int, int]:
    row = await MemberBudget.select().where((MemberBudget.member == member_id) & (MemberBudget.year == year)).first()
    return (row["held_fen"], row["spent_fen"]) if row else (0, 0)


def test_budget_year_is_shanghai_calendar_year():
    assert ledger.budget_year(datetime(2025, 12, 31, 15, 59, tzinfo=timezone.utc)) == 2025
    assert ledger.budget_year(datetime(2025, 12, 31, 16, 0, tzinfo=timezone.utc)) == 2026
    with pytest.raises(ValueError):
        ledger.budget_year(datetime(2025, 12, 31, 16, 0))


async def test_hold_capture_refund_release_and_verify(app):
    branch, (a, b) = await make_branch_with_members(2)
    async with Member._meta.db.transaction():
        await ledger.hold([(a, 30000), (b, 20000)], year=2026, order_id=1, at=AT)
    assert await balances(a) == (30000, 0)
    await ledger.capture([(a, 30000), (b, 20000)], year=2026, order_id=1, at=AT)
    assert await balances(a) == (0, 30000) and await balances(b) == (0, 20000)
    await ledger.refund([(a, 1000)], year=2026, order_id=1, at=AT)
    assert await balances(a) == (0, 29000)
    await ledger.hold([(b, 40000)], year=2026, order_id=2, at=AT)
    await ledger.release([(b, 40000)], year=2026, order_id=2, at=AT)
    assert await balances(b) == (0, 20000)
    total = await UnionYearTotal.select().where(UnionYearTotal.union == branch).first()
    assert total["spent_fen"] == 49000 and total["orders"] == 1
    kinds = [r["kind"] for r in await LedgerEntry.select(LedgerEntry.kind).where(LedgerEntry.member == b).order_by(LedgerEntry.seq)]
    assert kinds == ["hold", "capture", "hold", "release"]
    result = await verification.verify_ledger()
    assert result.ok, result.problems
    assert result.entries == 7 and result.member_years == 2


async def test_cap_exceeded_lists_every_member_and_changes_nothing(app):
    _, (a, b, c) = await make_branch_with_members(3)
    await ledger.hold([(a, 50000)], year=2026, order_id=1, at=AT)
    await CapPolicy.insert(CapPolicy(year=2026, cap_fen=55000))
    with pytest.raises(DomainError) as err:
        await ledger.hold([(c, 10000), (a, 10000), (b, 56000)], year=2026, order_id=2, at=AT)
    assert err.value.code == "cap_exceeded"
    assert err.value.extra["members"] == [
        {"member_id": a, "cap_fen": 55000, "spent_fen": 0, "held_fen": 50000, "requested_fen": 10000},
        {"member_id": b, "cap_fen": 55000, "spent_fen": 0, "held_fen": 0, "requested_fen": 56000},
    ]
    assert await balances(a) == (50000, 0) and await balances(c) == (0, 0)
    assert await LedgerEntry.count() == 1
    # exactly up to the cap is allowed
    await ledger.hold([(a, 5000)], year=2026, order_id=3, at=AT)
    assert await balances(a) == (55000, 0)


async def test_moves_that_do_not_fit_are_refused(app):
    _, (a,) = await make_branch_with_members(1)
    await ledger.hold([(a, 100)], year=2026, order_id=1, at=AT)
    for move in (ledger.capture, ledger.release):
        with pytest.raises(DomainError) as err:
            await move([(a, 101)], year=2026, order_id=1, at=AT)
        assert err.value.code == "invalid_state"
    with pytest.raises(DomainError):
        await ledger.refund([(a, 1)], year=2026, order_id=1, at=AT)
    with pytest.raises(DomainError) as err:  # no budget row for another year
        await ledger.capture([(a, 1)], year=2025, order_id=1, at=AT)
    assert await balances(a) == (100, 0)
    assert (await verification.verify_ledger()).ok


async def test_unknown_member_is_refused(app):
    with pytest.raises(DomainError) as err:
        await ledger.hold([(987654, 100)], year=2026, order_id=1, at=AT)
    assert err.value.code == "not_found"
    assert await MemberBudget.count() == 0


async def test_verify_finds_tampering(app):
    _, (a, b) = await make_branch_with_members(2)
    for i in range(3):
        await ledger.hold([(a, 1000), (b, 1000)], year=2026, order_id=i + 1, at=AT + timedelta(minutes=i))
    assert (await verification.verify_ledger(batch=2)).ok
    second = await LedgerEntry.select().where(LedgerEntry.member == a).order_by(LedgerEntry.seq).offset(1).first()
    # someone edits an amount behind the ledger's back
    await LedgerEntry.update({LedgerEntry.amount_fen: 900}).where(LedgerEntry.seq == second["seq"])
    result = await verification.verify_ledger(batch=2)
    assert not result.ok
    problems = {(p["member_id"], p["problem"]) for p in result.problems}
    assert (a, "hash does not match the entry's content") in problems
    assert (a, "replay does not give the balance") in problems
    assert all(p["member_id"] == a for p in result.problems)
    # a balance changed without a ledger entry
    await LedgerEntry.update({LedgerEntry.amount_fen: 1000}).where(LedgerEntry.seq == second["seq"])
    await MemberBudget.update({MemberBudget.held_fen: 0}).where(MemberBudget.member == b)
    result = await verification.verify_ledger()
    assert [(p["member_id"], p["problem"]) for p in result.problems] == [(b, "replay does not give the balance")]


# --- property: random sequences keep every invariant ---------------------------------

operations = st.lists(
    st.tuples(
        st.sampled_from(["hold", "capture", "release", "refund", "cap"]),
        st.integers(min_value=0, max_value=2),  # which member
        st.integers(min_value=1, max_value=40000),  # amount or new cap
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=operations)
async def test_random_sequences_keep_the_invariants(app, ops):
    await MemberBudget.raw("DELETE FROM budget_ledger")
    await MemberBudget.delete(force=True)
    await UnionYearTotal.delete(force=True)
    await CapPolicy.delete(force=True)
    await Member.delete(force=True)
    await Union.update({Union.parent: None}, force=True)
    await Union.delete(force=True)
    _, members = await make_branch_with_members(3)
    model = {m: [0, 0] for m in members}  # held, spent
    cap = policy.DEFAULT_CAP_FEN
    for step, (op, who, amount) in enumerate(ops):
        m = members[who]
        held, spent = model[m]
        if op == "cap":
            cap = amount * 2
            await CapPolicy.delete(force=True)
            await CapPolicy.insert(CapPolicy(year=2026, cap_fen=cap))
            continue
        fits = {
            "hold": held + spent + amount <= cap,
            "capture": held >= amount,
            "release": held >= amount,
            "refund": spent >= amount,
        }[op]
        try:
            async with Member._meta.db.transaction():
                await getattr(ledger, op)([(m, amount)], year=2026, order_id=step, at=AT)
        except DomainError as err:
            assert not fits, (op, amount, held, spent, cap, err.code)
            assert err.code == ("cap_exceeded" if op == "hold" else "invalid_state")
        else:
            assert fits, (op, amount, held, spent, cap)
            dh, ds = ledger.MOVES[op]
            model[m] = [held + dh * amount, spent + ds * amount]
        for member in members:
            assert list(await balances(member)) == model[member]
            h, s = model[member]
            assert h >= 0 and s >= 0
        # held + spent never passes the cap in force when it was placed (holds are checked)
        result = await verification.verify_ledger()
        assert result.ok, result.problems
    total = await UnionYearTotal.select(UnionYearTotal.spent_fen).first()
    assert (total["spent_fen"] if total else 0) == sum(s for _, s in model.values())
