"""The cap's history over HTTP: every change kept with who made it, lowering a cap names
the members already above it and takes nothing back, and the audit tells a member a hold
took over the cap from a member only above a cap lowered later."""

from __future__ import annotations

import importlib
from datetime import datetime

import pytest

from budgets import audit as budgets_audit, verification
from budgets import ledger
from budgets.tables import CapPolicy, CapPolicyChange, MemberBudget
from tests.conftest import assert_problem
from tests.test_web import as_user
from tests.world import build_world

YEAR = ledger.current_year()  # orders are placed now, so their budget year is this one
CARRY_OVER = importlib.import_module("budgets.piccolo_migrations.budgets_2026_11_25t19_06_58_057863")


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


async def audit(world, **params) -> dict[int, dict]:
    r = await world.admin.get("/api/audit/members", params={"year": YEAR, "min_ratio": 0, "limit": 200, **params})
    assert r.status_code == 200, r.text
    return {m["member_id"]: m for m in r.json()["items"]}


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
    assert (await verification.verify_ledger()).ok


async def test_the_audit_tells_a_lowered_cap_from_a_hold_over_the_cap(world):
    a, b, c = world.members[:3]
    await placed(world, a, 5, "a", pay=True)  # spent 50000 under the cap of 60000
    await placed(world, b, 1, "b")
    r = await world.admin.put(f"/api/admin/policy/{YEAR}", json={"cap_fen": 40000})
    assert [m["member_id"] for m in r.json()["affected"]] == [a]

    items = await audit(world)
    assert items[a] | {"cap_fen": 40000} == items[a]
    assert (items[a]["spent_fen"], items[a]["ratio"], items[a]["remaining_fen"]) == (50000, 1.25, 0)
    assert (items[a]["over_cap"], items[a]["above_lowered_cap"]) == (False, True)
    assert (items[b]["over_cap"], items[b]["above_lowered_cap"]) == (False, False)
    assert set(await audit(world, min_ratio=1)) == {a}
    await as_user(world.admin.client, world.auditor)  # the audit page says the same
    page = (await world.admin.client.get("/audit/members", params={"year": YEAR, "min_ratio": "0"})).text
    assert "额度已调低</span>" in page and "超额</span>" not in page

    # what a violation looks like: the policy row put back behind the history's back, so a
    # hold is checked against 60000 while the cap in force was 40000
    await CapPolicy.update({CapPolicy.cap_fen: 60000}).where(CapPolicy.year == YEAR)
    await placed(world, c, 5, "c")
    items = await audit(world)
    assert (items[c]["over_cap"], items[c]["above_lowered_cap"]) == (True, False)
    assert items[a]["over_cap"] is False
    assert await budgets_audit._taken_over_the_cap([a, b, c], YEAR, chunk=1) == {c}
    page = (await world.admin.client.get("/audit/members", params={"year": YEAR, "min_ratio": "0"})).text
    assert "超额</span>" in page
    # the same figures in the export
    r = await world.admin.get("/api/audit/members", params={"year": YEAR, "min_ratio": 0, "format": "csv"})
    text = r.content.decode("utf-8-sig")
    assert r.status_code == 200 and "下单时超额" in text and "高于调低后的额度" in text and "是" in text


async def test_a_cap_set_before_history_was_kept_judges_holds_as_before(world):
    a = world.members[0]
    await CapPolicy.insert(CapPolicy(year=YEAR, cap_fen=80000))  # as an older shop left it: no history
    await placed(world, a, 7, "a")  # held 70000 under 80000
    assert (await audit(world))[a]["over_cap"] is False

    await CARRY_OVER.carry_over_set_caps()  # the data migration
    await CARRY_OVER.carry_over_set_caps()  # a year with history gets nothing more
    history = (await world.admin.get(f"/api/admin/policy/{YEAR}")).json()["history"]
    assert [(h["previous_cap_fen"], h["cap_fen"], h["actor"]) for h in history] == [(None, 80000, None)]
    assert (await CapPolicyChange.select(CapPolicyChange.ledger_seq).first())["ledger_seq"] == 0
    assert (await audit(world))[a]["over_cap"] is False

    r = await world.admin.put(f"/api/admin/policy/{YEAR}", json={"cap_fen": 60000})
    assert r.json()["previous_cap_fen"] == 80000 and [m["member_id"] for m in r.json()["affected"]] == [a]
    assert ((await audit(world))[a]["over_cap"], (await audit(world))[a]["above_lowered_cap"]) == (False, True)


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
