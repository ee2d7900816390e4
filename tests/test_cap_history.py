"""The cap's history over HTTP: every change kept with who made it, and lowering a cap
names the members already above it and takes nothing back."""

from __future__ import annotations

from datetime import datetime

import pytest

from budgets import ledger
from budgets.tables import CapPolicy, CapPolicyChange, MemberBudget
from tests.conftest import assert_problem
from tests.world import build_world

YEAR = ledger.current_year()  # orders are placed now, so their budget year is this one


@pytest.fixture
async def world(make_user, admin):
    return await build_world(make_user, admin)


async def place(world, member: int, teas: int, key: str):
    """An order of `teas` × 10000 fen for one member."""
    body = {"lines": [{"product_id": world.products["tea"], "quantity": teas}], "members": [member]}
    return await world.buyer.post("/api/orders", json=body, headers={"Idempotency-Key": key})


async def placed(world, member: int, teas: int, key: str, pay: bool = False) -> dict:
    r = await place(world, member, teas, key)
    assert r.status_code == 201, r.text
    order = r.json()
    if pay:
        r = await world.admin.post(
            f"/api/admin/orders/{order['id']}/confirm-transfer", json={"reference": order["payment"]["reference"]}
        )
        assert r.status_code == 200, r.text
    return order


async def budgets() -> list[tuple]:
    rows = await MemberBudget.select(MemberBudget.member, MemberBudget.year, MemberBudget.held_fen, MemberBudget.spent_fen)
    return sorted(tuple(r.values()) for r in rows)


async def test_every_change_is_kept_in_order_with_who_made_it(admin, make_user):
    me = (await admin.get("/api/me")).json()
    other = await make_user("admin")
    for api, cap in [(admin, 50000), (admin, 45000), (other, 70000)]:
        r = await api.put("/api/admin/policy/2030", json={"cap_fen": cap})
        assert r.status_code == 200, r.text
    body = (await admin.get("/api/admin/policy/2030")).json()
    assert body["year"] == 2030 and body["cap_fen"] == 70000
    history = body["history"]
    assert [(h["previous_cap_fen"], h["cap_fen"], h["actor"]) for h in history] == [
        (60000, 50000, {"id": me["id"]}),
        (50000, 45000, {"id": me["id"]}),
        (45000, 70000, {"id": other.user["id"]}),
    ]
    moments = [datetime.fromisoformat(h["at"]) for h in history]
    assert all(m.utcoffset() is not None for m in moments) and moments == sorted(moments)
    assert (await admin.get("/api/admin/policy/2031")).json() == {"year": 2031, "cap_fen": 60000, "history": []}


async def test_lowering_the_cap_names_the_members_above_it_and_takes_nothing_back(world):
    a, b, c, d, e = world.members
    await placed(world, a, 5, "a", pay=True)  # spent 50000
    await placed(world, b, 2, "b")  # held 20000
    await placed(world, c, 3, "c1", pay=True)
    await placed(world, c, 1, "c2")  # spent 30000 + held 10000
    await placed(world, d, 3, "d")  # held 30000: exactly the new cap, not above it
    before = await budgets()

    r = await world.admin.put(f"/api/admin/policy/{YEAR}", json={"cap_fen": 30000})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "year": YEAR,
        "cap_fen": 30000,
        "previous_cap_fen": 60000,
        "affected": [
            {"member_id": a, "spent_fen": 50000, "held_fen": 0},
            {"member_id": c, "spent_fen": 30000, "held_fen": 10000},
        ],
    }
    assert await budgets() == before  # nothing taken back
    # a new hold meets the lower cap; raising it again names no one
    assert_problem(await place(world, e, 4, "e"), 409, "cap_exceeded")
    r = await world.admin.put(f"/api/admin/policy/{YEAR}", json={"cap_fen": 60000})
    assert r.json()["affected"] == [] and r.json()["previous_cap_fen"] == 30000
    assert (await ledger.verify_ledger()).ok


async def test_bad_cap_changes_are_refused_and_change_nothing(world, make_user, anon):
    assert (await world.admin.put("/api/admin/policy/2030", json={"cap_fen": 50000})).status_code == 200
    expected = (await world.admin.get("/api/admin/policy/2030")).json()
    for body in (
        {"cap_fen": -1},
        {"cap_fen": -60000},
        {"cap_fen": 10_000_001},
        {"cap_fen": "40000"},
        {"cap_fen": 1, "at": "2030-01-01"},
    ):
        assert_problem(await world.admin.put("/api/admin/policy/2030", json=body), 400, "validation_failed")
    for year in ("1999", "2101", "-2030"):
        problem = assert_problem(
            await world.admin.put(f"/api/admin/policy/{year}", json={"cap_fen": 1}), 400, "validation_failed"
        )
        assert problem["errors"][0]["field"] == "year"
    for api in (world.buyer, world.auditor, world.supplier_user):
        assert_problem(await api.put("/api/admin/policy/2030", json={"cap_fen": 1}), 403, "forbidden")
        assert_problem(await api.get("/api/admin/policy/2030"), 403, "forbidden")
    assert_problem(await anon.put("/api/admin/policy/2030", json={"cap_fen": 1}), 401, "unauthenticated")
    assert (await world.admin.get("/api/admin/policy/2030")).json() == expected
    assert await CapPolicyChange.count() == 1 and await CapPolicy.count() == 1
