"""Approval before spending (工会审批): a branch's orders above its approval rule wait, with
stock and every member's share held, for the branch's approver, who approves (the payment
starts) or rejects (everything released); undecided orders expire. Two approvers, or an
approver and the expiry job, racing on one order: one outcome."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from shop.orders.cancellation import expire_due
from shop.orders.tables import Approval, Order
from tests.conftest import assert_problem, unique
from tests.fulfilment_world import actions, inbox
from tests.test_payments import (  # noqa: F401  (fixtures)
    budget,
    ledger_ok,
    place,
    stock,
    stripe_on,
    stripe_stub,
    world,
)

TEA = 10000  # fen a box


async def set_rule(world, above, union_id=None):
    return await world.admin.put(f"/api/admin/unions/{union_id or world.branch}/approval", json={"required_above_fen": above})


@pytest.fixture
async def approving(world, make_user):
    """The branch's orders above 150 yuan wait for its approver (`world.approver`)."""
    r = await set_rule(world, 15000)
    assert r.status_code == 200, r.text
    world.approver = await make_user("approver", union_id=world.branch)
    world.other_approver = await make_user("approver", union_id=world.other_branch)
    return world


def tea_order(world, boxes=2, members=None):
    return {"lines": [{"product_id": world.products["tea"], "quantity": boxes}], "members": members or world.members[:2]}


async def waiting_order(world, boxes=2, key="a-1", members=None):
    r = await place(world.buyer, tea_order(world, boxes, members), key)
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "pending_approval", order
    return order


async def test_the_rule_is_set_by_an_admin_per_branch_and_kept_with_its_history(world, make_user):
    r = await world.admin.get(f"/api/admin/unions/{world.branch}/approval")
    assert r.status_code == 200 and r.json()["required_above_fen"] is None and r.json()["history"] == []
    assert (await set_rule(world, 50000)).json()["required_above_fen"] == 50000
    body = (await set_rule(world, 0)).json()
    assert body["required_above_fen"] == 0 and body["code"] == "GZ-TH-001"
    assert [(h["previous_above_fen"], h["required_above_fen"]) for h in body["history"]] == [(None, 50000), (50000, 0)]
    assert body["history"][0]["actor"] is not None and body["history"][0]["at"]
    assert (await set_rule(world, 0)).json()["history"][-1]["required_above_fen"] == 0  # the same again: no new change
    assert len((await set_rule(world, 0)).json()["history"]) == 2
    # refusals change nothing
    assert_problem(await set_rule(world, 100, union_id=world.district), 409, "invalid_state")
    assert_problem(await set_rule(world, 100, union_id=999999), 404, "not_found")
    assert_problem(await set_rule(world, -1), 400, "validation_failed")
    assert_problem(await set_rule(world, "100"), 400, "validation_failed")
    assert_problem(await world.admin.put(f"/api/admin/unions/{world.branch}/approval", json={}), 400, "validation_failed")
    assert_problem(await world.buyer.put(f"/api/admin/unions/{world.branch}/approval", json={"required_above_fen": None}), 403, "forbidden")
    assert (await world.admin.get(f"/api/admin/unions/{world.branch}/approval")).json()["required_above_fen"] == 0
    assert (await set_rule(world, None)).json()["required_above_fen"] is None
    trail = (await world.admin.get("/api/audit/events", params={"action": "approval_rule_changed"})).json()
    assert [i["detail"] for i in trail["items"]] == ["0 -> none fen", "50000 -> 0 fen", "none -> 50000 fen"]
    assert trail["items"][0]["subject"] == "union GZ-TH-001" and trail["items"][0]["actor"]["role"] == "admin"
    assert (await world.auditor.get("/api/audit/events", params={"action": "approval_rule_changed"})).json()["total"] == 3
    # an approver is made for one branch
    r = await world.admin.post("/api/admin/users", json={"username": unique("ap"), "password": "password-123", "role": "approver", "union_id": world.district})
    assert_problem(r, 400, "validation_failed")
    r = await world.admin.post("/api/admin/users", json={"username": unique("ap"), "password": "password-123", "role": "approver"})
    assert_problem(r, 400, "validation_failed")


async def test_an_order_above_the_rule_holds_everything_and_waits(approving, stripe_on):
    world = approving
    before = await stock(world.products["tea"])
    small = await place(world.buyer, tea_order(world, 1), "small")  # 100 yuan: not above the rule
    assert small.status_code == 201 and small.json()["status"] == "pending_payment" and small.json()["payment"]["url"]
    sessions = len(stripe_on.sessions)
    order = await waiting_order(world, boxes=3)  # 300 yuan
    assert order["payment"]["reference"] == "" and order["payment"].get("url") is None and "bank" not in order["payment"]
    assert len(stripe_on.sessions) == sessions  # nothing to pay with yet
    assert await stock(world.products["tea"]) == before - 4
    assert await budget(world.members[0]) == (5000 + 15000, 0)
    deadline = datetime.fromisoformat(order["payment"]["expires_at"])
    assert timedelta(hours=71) < deadline - datetime.now(timezone.utc) <= timedelta(hours=72)
    assert await actions(world.buyer, order["id"]) == ["placed"]
    box = await inbox(world.approver)
    assert [n["kind"] for n in box["items"]] == ["approval_requested"] and box["items"][0]["order_id"] == order["id"]
    assert (await inbox(world.other_approver))["items"] == []
    r = await world.approver.get("/api/approvals", params={"status": "pending"})
    [item] = r.json()["items"]
    assert item["order_id"] == order["id"] and item["total_fen"] == 30000 and item["members"] == 2
    assert item["required_above_fen"] == 15000 and item["lines"] == [{"title": "毕节高山绿茶 250克", "quantity": 3, "amount_fen": 30000}]
    assert item["status"] == "pending" and item["order_status"] == "pending_approval" and item["deadline"]
    assert (await world.other_approver.get("/api/approvals")).json()["total"] == 0
    assert (await world.admin.get("/api/approvals")).json()["total"] == 1
    assert_problem(await world.approver.get("/api/approvals", params={"status": "lost"}), 400, "validation_failed")
    assert_problem(await world.buyer.get("/api/approvals"), 403, "forbidden")
    # the approver reads the order it decides; an approver of another branch does not
    assert (await world.approver.get(f"/api/orders/{order['id']}")).status_code == 200
    assert_problem(await world.other_approver.get(f"/api/orders/{order['id']}"), 403, "forbidden")
    # a replay of the same key answers the same waiting order
    again = await place(world.buyer, tea_order(world, 3), "a-1")
    assert again.status_code == 200 and again.json()["id"] == order["id"] and again.json()["status"] == "pending_approval"
    assert await ledger_ok()


async def test_approval_starts_the_payment_and_its_hold_time(app, approving, stripe_on):
    world = approving
    order = await waiting_order(world)
    now = datetime.now(timezone.utc) + timedelta(hours=5)
    app.state.clock = lambda: now
    try:
        r = await world.approver.post(f"/api/orders/{order['id']}/approve")
    finally:
        app.state.clock = lambda: datetime.now(timezone.utc)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "pending_payment" and body["payment"]["url"] and body["payment"]["reference"]
    expires = (await Order.select(Order.expires_at).where(Order.id == order["id"]).first())["expires_at"]
    assert abs((expires - now) - timedelta(minutes=app.state.settings.hold_minutes)) < timedelta(seconds=1)
    assert await actions(world.buyer, order["id"]) == ["placed", "approved"]
    [entry] = (await world.admin.get("/api/audit/events", params={"action": "approved"})).json()["items"]
    assert entry["subject"] == f"order {order['id']}" and entry["actor"]["username"] == world.approver.user["username"]
    assert [n["kind"] for n in (await inbox(world.buyer))["items"]] == ["approval_decided"]
    row = await Approval.select().where(Approval.order == order["id"]).first()
    assert row["status"] == "approved" and row["decided_by"] == world.approver.user["id"]
    # decided once
    assert_problem(await world.approver.post(f"/api/orders/{order['id']}/approve"), 409, "invalid_state")
    assert_problem(await world.approver.post(f"/api/orders/{order['id']}/reject", json={"reason": "晚了"}), 409, "invalid_state")
    assert await budget(world.members[0]) == (10000, 0)  # still held, now for payment
    assert await ledger_ok()


async def test_rejection_releases_everything_and_says_why(approving):
    world = approving
    stock_before = await stock(world.products["tea"])
    order = await waiting_order(world)
    r = await world.approver.post(f"/api/orders/{order['id']}/reject", json={"reason": "超出本季度预算"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert await stock(world.products["tea"]) == stock_before
    assert await budget(world.members[0]) == (0, 0) and await budget(world.members[1]) == (0, 0)
    events = (await world.buyer.get(f"/api/orders/{order['id']}/events")).json()
    assert [e["action"] for e in events] == ["placed", "rejected"] and events[1]["detail"] == "超出本季度预算"
    [note] = (await inbox(world.buyer))["items"]
    assert note["kind"] == "approval_decided" and "超出本季度预算" in note["title"]
    [item] = (await world.approver.get("/api/approvals", params={"status": "rejected"})).json()["items"]
    assert item["reason"] == "超出本季度预算" and item["decided_by"] == world.approver.user["username"] and item["deadline"] is None
    assert_problem(await world.approver.post(f"/api/orders/{order['id']}/approve"), 409, "invalid_state")
    assert await ledger_ok()


async def test_who_may_decide(approving):
    world = approving
    order = await waiting_order(world)
    assert_problem(await world.buyer.post(f"/api/orders/{order['id']}/approve"), 403, "forbidden")
    assert_problem(await world.admin.post(f"/api/orders/{order['id']}/approve"), 403, "forbidden")
    assert_problem(await world.auditor.post(f"/api/orders/{order['id']}/reject", json={"reason": "x"}), 403, "forbidden")
    assert_problem(await world.other_approver.post(f"/api/orders/{order['id']}/approve"), 403, "forbidden")
    assert_problem(await world.approver.post("/api/orders/999999/approve"), 404, "not_found")
    for bad in ({}, {"reason": ""}, {"reason": "   "}, {"reason": 5}, {"reason": "x" * 501}):
        assert_problem(await world.approver.post(f"/api/orders/{order['id']}/reject", json=bad), 400, "validation_failed")
    assert_problem(await world.approver.post("/api/orders", json=tea_order(world), headers={"Idempotency-Key": "ap"}), 403, "forbidden")
    assert (await order_status(order["id"])) == "pending_approval"


async def order_status(order_id: int) -> str:
    return (await Order.select(Order.status).where(Order.id == order_id).first())["status"]


async def test_the_buyer_may_withdraw_a_waiting_order(approving):
    world = approving
    order = await waiting_order(world)
    r = await world.buyer.post(f"/api/orders/{order['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert await budget(world.members[0]) == (0, 0)
    [item] = (await world.approver.get("/api/approvals")).json()["items"]
    assert item["status"] == "withdrawn" and item["decided_by"] == world.buyer.user["username"]
    assert_problem(await world.approver.post(f"/api/orders/{order['id']}/approve"), 409, "invalid_state")
    assert await ledger_ok()


async def test_the_cap_is_held_while_waiting(approving):
    world = approving
    member = world.members[:1]
    await waiting_order(world, boxes=5, members=member)  # 500 of the member's 600 yuan, waiting
    r = await place(world.buyer, tea_order(world, 2, member), "over")  # 200 more: over the cap
    body = assert_problem(r, 409, "cap_exceeded")
    assert body["members"][0]["member_id"] == member[0]
    assert (await place(world.buyer, tea_order(world, 1, member), "fits")).status_code == 201  # 100 more: exactly the cap
    assert await budget(member[0]) == (60000, 0)
    assert await ledger_ok()


async def test_undecided_orders_expire_and_release(app, approving):
    world = approving
    order = await waiting_order(world)
    assert await expire_due(datetime.now(timezone.utc) + timedelta(hours=71)) == 0
    assert await expire_due(datetime.now(timezone.utc) + timedelta(hours=73)) == 1
    assert await order_status(order["id"]) == "expired" and await budget(world.members[0]) == (0, 0)
    [item] = (await world.approver.get("/api/approvals")).json()["items"]
    assert item["status"] == "expired"
    assert "超时未审批" in (await inbox(world.buyer))["items"][0]["title"]
    # an approver past the deadline, before the job: the order expires then and there
    late = await waiting_order(world, key="a-2")
    app.state.clock = lambda: datetime.now(timezone.utc) + timedelta(hours=73)
    try:
        body = assert_problem(await world.approver.post(f"/api/orders/{late['id']}/approve"), 409, "invalid_state")
        assert body["order_status"] == "expired"
        assert_problem(await world.approver.post(f"/api/orders/{late['id']}/reject", json={"reason": "x"}), 409, "invalid_state")
    finally:
        app.state.clock = lambda: datetime.now(timezone.utc)
    assert await order_status(late["id"]) == "expired"
    assert await actions(world.buyer, late["id"]) == ["placed", "expired"]
    assert await ledger_ok()


async def test_two_approvers_racing_make_one_decision(approving, make_user):
    world = approving
    second = await make_user("approver", union_id=world.branch)
    approved = 0
    for round_ in range(4):
        order = await waiting_order(world, key=f"race-{round_}")
        calls = [world.approver.post(f"/api/orders/{order['id']}/approve"),
                 second.post(f"/api/orders/{order['id']}/reject", json={"reason": "不同意"})]
        if round_ % 2:
            calls.reverse()
        answers = await asyncio.gather(*calls)
        codes = sorted(a.status_code for a in answers)
        assert codes == [200, 409], [a.text for a in answers]
        events = await actions(world.buyer, order["id"])
        assert events in (["placed", "approved"], ["placed", "rejected"]), events
        status = await order_status(order["id"])
        assert status == ("pending_payment" if events[-1] == "approved" else "cancelled")
        approved += events[-1] == "approved"
        assert await budget(world.members[0]) == (10000 * approved, 0)  # a rejected order's share is released
        assert await Approval.count().where(Approval.status == "pending") == 0
    assert await ledger_ok()


async def test_expiry_racing_an_approval_has_one_outcome(app, approving):
    world = approving
    for round_ in range(4):
        order = await waiting_order(world, key=f"exp-{round_}")
        later = datetime.now(timezone.utc) + timedelta(hours=73)
        app.state.clock = lambda: later
        try:
            answer, expired = await asyncio.gather(world.approver.post(f"/api/orders/{order['id']}/approve"), expire_due(later))
        finally:
            app.state.clock = lambda: datetime.now(timezone.utc)
        assert_problem(answer, 409, "invalid_state")
        assert await order_status(order["id"]) == "expired"
        assert await actions(world.buyer, order["id"]) == ["placed", "expired"]
        assert expired in (0, 1)
    # and an approval in time against a job that finds nothing due: approved, nothing expired
    order = await waiting_order(world, key="in-time")
    answer, expired = await asyncio.gather(world.approver.post(f"/api/orders/{order['id']}/approve"), expire_due(datetime.now(timezone.utc)))
    assert answer.status_code == 200 and expired == 0
    assert await budget(world.members[0]) == (10000, 0)
    assert await ledger_ok()


async def test_the_member_sees_a_waiting_order_as_held(approving, client):
    world = approving
    order = await waiting_order(world, boxes=2)
    r = await world.buyer.post(f"/api/members/{world.members[0]}/link")
    assert r.status_code == 200, r.text
    token = r.json()["url"].rsplit("/", 1)[1]
    view = (await client.get(f"/api/member-view/{token}")).json()
    assert (view["held_fen"], view["spent_fen"], view["remaining_fen"]) == (10000, 0, 50000)
    [item] = view["items"]
    assert item["status"] == "pending_approval" and item["amount_fen"] == 10000 and item["products"] == ["毕节高山绿茶 250克"]
    assert set(item) == {"date", "products", "amount_fen", "refunded_fen", "status"}  # nothing of the order but this
    assert order["status"] == "pending_approval"


async def test_a_buyer_who_also_approves_never_decides_their_own_order(approving, client):
    """One person may buy and approve (a union chair who buys: `approves`); their own orders
    still wait for another approver."""
    from tests.conftest import login

    world = approving
    name = unique("chair")
    r = await world.admin.post("/api/admin/users", json={
        "username": name, "password": "password-123", "role": "buyer", "union_id": world.branch, "approves": True,
    })
    assert r.status_code == 201 and r.json()["approves"] is True, r.text
    for role, extra in (("auditor", {"union_id": world.district}), ("approver", {"union_id": world.branch}), ("admin", {})):
        r = await world.admin.post("/api/admin/users", json={
            "username": unique("x"), "password": "password-123", "role": role, "approves": True, **extra,
        })
        assert_problem(r, 400, "validation_failed")
    chair = await login(client, name, "password-123")
    assert (await chair.get("/api/me")).json()["approves"] is True
    own = (await place(chair, tea_order(world), "chair-1")).json()
    theirs = await waiting_order(world, key="buyer-1")
    assert own["status"] == "pending_approval"
    # told of both (an approver), sees both, decides the other buyer's only
    assert {n["order_id"] for n in (await inbox(chair))["items"] if n["kind"] == "approval_requested"} == {own["id"], theirs["id"]}
    assert (await chair.get("/api/approvals")).json()["total"] == 2
    body = assert_problem(await chair.post(f"/api/orders/{own['id']}/approve"), 403, "forbidden")
    assert "placed themselves" in body["detail"]
    assert_problem(await chair.post(f"/api/orders/{own['id']}/reject", json={"reason": "自己的"}), 403, "forbidden")
    assert await order_status(own["id"]) == "pending_approval"
    assert (await chair.post(f"/api/orders/{theirs['id']}/approve")).status_code == 200
    assert (await world.approver.post(f"/api/orders/{own['id']}/approve")).status_code == 200  # another approver may
    # a plain buyer neither lists nor decides
    assert_problem(await world.buyer.get("/api/approvals"), 403, "forbidden")
    assert await ledger_ok()
