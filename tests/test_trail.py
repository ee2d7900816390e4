"""The admin's trail (`GET /api/audit/events`): who did each admin action, newest first,
an auditor only its subtree's, a buyer none."""

from __future__ import annotations

from tests.conftest import assert_problem
from tests.test_payments import place, world  # noqa: F401  (fixture)


async def trail(api, **params):
    r = await api.get("/api/audit/events", params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def test_confirmations_refunds_and_new_accounts_are_in_the_trail(world):
    admin = world.admin
    me = (await admin.get("/api/me")).json()
    r = await place(world.buyer, {"lines": [{"product_id": world.products["tea"], "quantity": 2}], "members": world.members[:2]}, "t-1")
    order = r.json()
    await admin.post(f"/api/admin/orders/{order['id']}/confirm-transfer", json={"reference": order["payment"]["reference"]})
    await admin.post(f"/api/orders/{order['id']}/refund", json={"lines": [{"line_id": order["lines"][0]["id"], "quantity": 1}]})
    body = await trail(admin)
    actions = [(i["action"], i["subject"]) for i in body["items"]]
    # newest first: the refund, the confirmation, then the accounts the world made
    assert actions[:2] == [("refunded", f"order {order['id']}"), ("transfer_confirmed", f"order {order['id']}")]
    assert all(i["actor"] == {"id": me["id"], "username": me["username"], "role": "admin"} for i in body["items"])
    created = [i for i in body["items"] if i["action"] == "user_created"]
    assert {i["subject"] for i in created} >= {f"user {world.buyer.user['username']}", f"user {world.auditor.user['username']}"}
    assert body["total"] == len(body["items"]) == 2 + len(created)
    # the buyer's own placing is not an admin action
    assert not [i for i in body["items"] if i["action"] == "placed"]
    only = await trail(admin, action="refunded")
    assert [i["action"] for i in only["items"]] == ["refunded"] and only["total"] == 1
    page = await trail(admin, limit=1, offset=1)
    assert [i["action"] for i in page["items"]] == ["transfer_confirmed"] and page["total"] == body["total"]
    r = await admin.get("/api/audit/events", params={"format": "csv"})
    assert r.status_code == 200 and "确认转账到账" in r.text and me["username"] in r.text  # the action in words


async def test_auditors_see_their_subtree_and_buyers_nothing(world):
    admin = world.admin
    mine = (await place(world.buyer, {"lines": [{"product_id": world.products["tea"], "quantity": 1}], "members": world.members[:1]}, "a")).json()
    other = (await place(world.other_buyer, {"lines": [{"product_id": world.products["lychee"], "quantity": 1}], "members": world.other_members[:1]}, "b")).json()
    for o in (mine, other):
        r = await admin.post(f"/api/admin/orders/{o['id']}/confirm-transfer", json={"reference": o["payment"]["reference"]})
        assert r.status_code == 200, r.text
    seen = await trail(world.auditor)  # an auditor of the district above world.branch
    subjects = {i["subject"] for i in seen["items"]}
    assert f"order {mine['id']}" in subjects and f"order {other['id']}" not in subjects
    assert f"user {world.buyer.user['username']}" in subjects and f"user {world.other_buyer.user['username']}" not in subjects
    assert_problem(await world.buyer.get("/api/audit/events"), 403, "forbidden")
    assert_problem(await world.supplier_user.get("/api/audit/events"), 403, "forbidden")
    assert_problem(await admin.get("/api/audit/events", params={"action": "DROP TABLE"}), 400, "validation_failed")


async def test_reviews_are_in_the_admins_trail_not_the_auditors(world):
    product = world.products["draft"]
    r = await world.supplier_user.post(f"/api/supplier/products/{product}/submit")
    assert r.status_code == 200, r.text
    r = await world.admin.post(f"/api/admin/products/{product}/reject", json={"reason": "图片不清晰"})
    assert r.status_code == 200, r.text
    body = await trail(world.admin, action="product_rejected")
    [item] = body["items"]
    assert item["subject"].startswith(f"product {product} ") and item["detail"] == "图片不清晰"
    assert item["actor"]["role"] == "admin"
    assert not (await trail(world.admin, action="product_submitted"))["items"]  # the supplier's own step
    assert not (await trail(world.auditor, action="product_rejected"))["items"]


async def test_cap_changes_are_in_every_trail(world):
    r = await world.admin.put("/api/admin/policy/2031", json={"cap_fen": 50000})
    assert r.status_code == 200, r.text
    r = await world.admin.put("/api/admin/policy/2031", json={"cap_fen": 45000})
    assert r.status_code == 200, r.text
    for reader in (world.admin, world.auditor):
        items = (await trail(reader, action="cap_changed"))["items"]
        assert [(i["subject"], i["detail"]) for i in items] == [
            ("policy 2031", "50000 -> 45000 fen"),
            ("policy 2031", "60000 -> 50000 fen"),
        ]
        assert all(i["actor"]["role"] == "admin" for i in items)
