"""Approval before spending as pages: the approver's list (each member's share beside what
they have left), approving and rejecting with a reason, the refusals on the page; the buyer's
order page while it waits; the admin's page of approval rules."""

from __future__ import annotations

import pytest

from budgets.tables import Union
from shop.orders.tables import Order
from tests.test_web import as_user, post_form, text_of
from tests.world import build_world


@pytest.fixture
async def world(make_user, admin):
    w = await build_world(make_user, admin)
    r = await admin.put(f"/api/admin/unions/{w.branch}/approval", json={"required_above_fen": 15000})
    assert r.status_code == 200, r.text
    w.approver = await make_user("approver", union_id=w.branch)
    w.other_approver = await make_user("approver", union_id=w.other_branch)
    return w


async def waiting(w, key="p-1", boxes=2):
    r = await w.buyer.post(
        "/api/orders",
        json={"lines": [{"product_id": w.products["tea"], "quantity": boxes}], "members": w.members[:2]},
        headers={"Idempotency-Key": key},
    )
    assert r.status_code == 201 and r.json()["status"] == "pending_approval", r.text
    return r.json()


async def status(order_id):
    return (await Order.select(Order.status).where(Order.id == order_id).first())["status"]


async def test_the_approver_sees_shares_and_approves(client, world):
    order = await waiting(world)
    await as_user(client, world.approver)
    home = await client.get("/", follow_redirects=True)
    assert home.url.path == "/approvals"
    text = text_of(home.text)
    assert f"订单 #{order['id']}" in text and "待审批" in text and "¥200.00" in text
    assert "毕节高山绿茶 250克 × 2" in text and "超过 ¥150.00 的订单需审批" in text
    assert "职工A0" in text and "A0000" in text and "¥100.00" in text and "¥500.00" in text  # share; 600 − 100 left
    r = await post_form(client, f"/approvals/{order['id']}/approve")
    assert r.status_code == 303 and r.headers["location"] == "/approvals?ok=approved"
    assert await status(order["id"]) == "pending_payment"
    page = text_of((await client.get("/approvals?status=approved")).text)
    assert f"订单 #{order['id']}" in page and "已通过" in page and world.approver.user["username"] in page
    # again: said on the page, nothing changes
    r = await post_form(client, f"/approvals/{order['id']}/approve")
    assert r.status_code == 409 and "不能审批通过" in text_of(r.text)
    # the order's page (the approver may read it) now shows the way to pay, the timeline the approval
    detail = text_of((await client.get(f"/orders/{order['id']}")).text)
    assert "待付款" in detail and "审批通过" in detail


async def test_rejecting_needs_a_reason_and_the_buyer_sees_it(client, world):
    order = await waiting(world)
    await as_user(client, world.approver)
    r = await post_form(client, f"/approvals/{order['id']}/reject", {"reason": "   "})
    assert r.status_code == 400 and "请写明驳回原因" in text_of(r.text)
    assert await status(order["id"]) == "pending_approval"
    r = await post_form(client, f"/approvals/{order['id']}/reject", {"reason": "本季度预算已用完"})
    assert r.status_code == 303 and await status(order["id"]) == "cancelled"
    await as_user(client, world.buyer)
    detail = text_of((await client.get(f"/orders/{order['id']}")).text)
    assert "已取消" in detail and "审批驳回" in detail and "本季度预算已用完" in detail
    assert "本季度预算已用完" in text_of((await client.get("/notifications")).text)


async def test_the_buyer_waits_and_may_withdraw(client, world):
    order = await waiting(world)
    await as_user(client, world.buyer)
    page = await client.get(f"/orders/{order['id']}")
    text = text_of(page.text)
    assert "等待工会审批" in text and "待审批" in text and "转账附言" not in text and "取消订单" in text
    r = await post_form(client, f"/orders/{order['id']}/cancel")
    assert r.status_code == 303 and await status(order["id"]) == "cancelled"


async def test_who_reaches_the_pages(client, world):
    order = await waiting(world)
    await as_user(client, world.other_approver)
    assert f"订单 #{order['id']}" not in text_of((await client.get("/approvals")).text)
    r = await post_form(client, f"/approvals/{order['id']}/approve")
    assert r.status_code == 403 and await status(order["id"]) == "pending_approval"
    assert (await client.get(f"/orders/{order['id']}")).status_code == 403
    await as_user(client, world.buyer)
    assert (await client.get("/approvals")).status_code == 403
    assert (await post_form(client, f"/approvals/{order['id']}/approve")).status_code == 403
    assert (await client.get("/admin/approval")).status_code == 403
    assert await status(order["id"]) == "pending_approval"


async def test_the_admin_sets_rules_on_a_page(client, world):
    await as_user(client, world.approver)
    assert (await client.get("/admin/approval")).status_code == 403
    client.cookies.clear()
    from tests.test_pages_staff import as_admin

    await as_admin(client)
    page = text_of((await client.get("/admin/approval")).text)
    assert "GZ-TH-001" in page and "超过 ¥150.00" in page
    for form, message in (
        ({"code": "NOPE", "mode": "all"}, "请填写基层工会代码"),
        ({"code": "mm-001", "mode": "above", "amount": "45,00"}, "逗号只能用来分隔千位"),
        ({"code": "mm-001", "mode": "sometimes"}, "请选择审批方式"),
        ({"code": "GZ-TH", "mode": "all"}, "基层工会"),
    ):
        r = await post_form(client, "/admin/approval", form)
        assert r.status_code in (400, 409) and message in text_of(r.text), (form, text_of(r.text)[:400])
    assert (await Union.select(Union.approval_above_fen).where(Union.id == world.other_branch).first())["approval_above_fen"] is None
    r = await post_form(client, "/admin/approval", {"code": "mm-001", "mode": "above", "amount": "¥1,234.50"})
    assert r.status_code == 303
    assert (await Union.select(Union.approval_above_fen).where(Union.id == world.other_branch).first())["approval_above_fen"] == 123450
    r = await post_form(client, "/admin/approval", {"code": "GZ-TH-001", "mode": "none"})
    assert r.status_code == 303
    page = text_of((await client.get("/admin/approval")).text)
    assert "MM-001" in page and "超过 ¥1,234.50" in page and "GZ-TH-001" not in page


async def test_a_buyer_who_approves_has_both_pages(client, world, make_user):
    r = await world.admin.post("/api/admin/users", json={
        "username": "chair1", "password": "password-123", "role": "buyer", "union_id": world.branch, "approves": True,
    })
    assert r.status_code == 201, r.text
    order = await waiting(world)
    r = await page_login_as(client, "chair1")
    page = await client.get("/shop")
    assert '<a href="/approvals"' in page.text and '<a href="/shop"' in page.text
    assert f"订单 #{order['id']}" in text_of((await client.get("/approvals")).text)
    assert (await post_form(client, f"/approvals/{order['id']}/approve")).status_code == 303
    assert await status(order["id"]) == "pending_payment"
    await as_user(client, world.buyer)  # a plain buyer has no approvals in its navigation
    assert '<a href="/approvals"' not in (await client.get("/shop")).text


async def page_login_as(client, username):
    from tests.test_web import page_login

    r = await page_login(client, username)
    assert r.status_code == 303, r.text
    return r
