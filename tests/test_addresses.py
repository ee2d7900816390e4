"""A branch's delivery addresses and invoice profile, the copy an order keeps, and the
notifications inbox (including a supplier hearing of a review decision)."""

from __future__ import annotations

import asyncio

import pytest

from shop.fulfilment.tables import DeliveryAddress
from shop.orders.tables import Order
from tests.conftest import assert_problem
from tests.fulfilment_world import inbox, order_of, paid_order
from tests.test_payments import place, snapshot, world  # noqa: F401  (fixtures)

HQ = {"name": "王主席", "phone": "13800138000", "address": "广州市天河区体育西路1号工会办公室"}
STORE = {"name": "李干事", "phone": "020-38881234", "address": "广州市天河区天河北路2号仓库"}


async def addresses(api) -> list[dict]:
    r = await api.get("/api/branch/addresses")
    assert r.status_code == 200, r.text
    assert r.json()["total"] == len(r.json()["items"])
    return r.json()["items"]


async def test_the_first_address_is_the_default_and_there_is_only_one(world):
    r = await world.buyer.post("/api/branch/addresses", json=HQ)
    assert r.status_code == 201 and r.json()["is_default"] is True, r.text
    hq = r.json()
    store = (await world.buyer.post("/api/branch/addresses", json=STORE)).json()
    assert store["is_default"] is False
    r = await world.buyer.patch(f"/api/branch/addresses/{store['id']}", json={"is_default": True})
    assert r.status_code == 200 and r.json()["is_default"] is True
    assert [(a["id"], a["is_default"]) for a in await addresses(world.buyer)] == [(store["id"], True), (hq["id"], False)]
    # a default cannot just be switched off: another one is made the default instead
    assert_problem(await world.buyer.patch(f"/api/branch/addresses/{store['id']}", json={"is_default": False}), 409, "invalid_state")
    third = (await world.buyer.post("/api/branch/addresses", json={**HQ, "name": "赵会计", "is_default": True})).json()
    assert [a["id"] for a in await addresses(world.buyer) if a["is_default"]] == [third["id"]]
    # deleting the default makes the oldest left the default
    assert (await world.buyer.delete(f"/api/branch/addresses/{third['id']}")).status_code == 204
    assert [a["id"] for a in await addresses(world.buyer) if a["is_default"]] == [hq["id"]]
    r = await world.buyer.patch(f"/api/branch/addresses/{hq['id']}", json={"phone": "0668-2881234", "name": "王芳"})
    assert r.json()["phone"] == "0668-2881234" and r.json()["name"] == "王芳" and r.json()["address"] == HQ["address"]


async def test_two_defaults_made_at_once_leave_one(world):
    await world.buyer.post("/api/branch/addresses", json=HQ)
    answers = await asyncio.gather(*[world.buyer.post("/api/branch/addresses", json={**STORE, "name": f"收货人{i}", "is_default": True}) for i in range(4)])
    assert all(a.status_code in (201, 409) for a in answers), [a.text for a in answers]
    assert await DeliveryAddress.count().where((DeliveryAddress.branch == world.branch) & (DeliveryAddress.is_default == True)) == 1  # noqa: E712


@pytest.mark.parametrize("phone", ["12345", "1380013800", "12800138000", "138001380001", "电话", "20-12345678", "+1 415 555 0100"])
async def test_a_phone_number_that_is_not_one_is_refused(world, phone):
    assert_problem(await world.buyer.post("/api/branch/addresses", json={**HQ, "phone": phone}), 400, "validation_failed")
    assert await DeliveryAddress.count() == 0


@pytest.mark.parametrize("phone", ["138 0013 8000", "+86 138-0013-8000", "(020) 3888 1234", "0755-88886666转801", "400-820-8820"])
async def test_phone_numbers_as_people_write_them(world, phone):
    r = await world.buyer.post("/api/branch/addresses", json={**HQ, "phone": phone})
    assert r.status_code == 201 and r.json()["phone"] == phone, r.text


async def test_bad_address_requests(world):
    hq = (await world.buyer.post("/api/branch/addresses", json=HQ)).json()
    for body in ({**HQ, "name": ""}, {**HQ, "address": "  "}, {**HQ, "address": "x" * 201}, {"name": "王"}, {**HQ, "city": "广州"},
                 {**HQ, "name": "王\n主席"}):
        assert_problem(await world.buyer.post("/api/branch/addresses", json=body), 400, "validation_failed")
    assert_problem(await world.buyer.patch(f"/api/branch/addresses/{hq['id']}", json={"phone": "123"}), 400, "validation_failed")
    # another branch's address: 403; a missing one: 404
    assert_problem(await world.other_buyer.patch(f"/api/branch/addresses/{hq['id']}", json={"name": "x"}), 403, "forbidden")
    assert_problem(await world.other_buyer.delete(f"/api/branch/addresses/{hq['id']}"), 403, "forbidden")
    assert_problem(await world.buyer.delete("/api/branch/addresses/99999"), 404, "not_found")
    assert await world.other_buyer.get("/api/branch/addresses") and await addresses(world.other_buyer) == []
    for api in (world.supplier_user, world.auditor, world.admin):
        assert_problem(await api.get("/api/branch/addresses"), 403, "forbidden")
    assert await addresses(world.buyer) == [{**hq}]


async def test_an_order_keeps_a_copy_of_its_address(world):
    body = {"lines": [{"product_id": world.products["tea"], "quantity": 1}], "members": world.members[:1]}
    r = await place(world.buyer, body, "no-address")
    assert r.status_code == 201 and r.json()["delivery"] is None
    hq = (await world.buyer.post("/api/branch/addresses", json=HQ)).json()
    store = (await world.buyer.post("/api/branch/addresses", json=STORE)).json()
    by_default = (await place(world.buyer, body, "default")).json()
    assert by_default["delivery"] == {"name": HQ["name"], "phone": HQ["phone"], "address": HQ["address"]}
    chosen = (await place(world.buyer, {**body, "address_id": store["id"]}, "chosen")).json()
    assert chosen["delivery"]["address"] == STORE["address"]
    # later edits and deletions do not change what the orders say
    await world.buyer.patch(f"/api/branch/addresses/{hq['id']}", json={"address": "已搬迁"})
    await world.buyer.delete(f"/api/branch/addresses/{store['id']}")
    assert (await order_of(world.buyer, by_default["id"]))["delivery"]["address"] == HQ["address"]
    assert (await order_of(world.buyer, chosen["id"]))["delivery"]["address"] == STORE["address"]


async def test_an_address_that_is_not_the_branchs_places_nothing(world):
    theirs = (await world.other_buyer.post("/api/branch/addresses", json=HQ)).json()
    body = {"lines": [{"product_id": world.products["tea"], "quantity": 1}], "members": world.members[:1]}
    before = await snapshot()
    assert_problem(await place(world.buyer, {**body, "address_id": theirs["id"]}, "theirs"), 403, "forbidden")
    assert_problem(await place(world.buyer, {**body, "address_id": 987654}, "missing"), 404, "not_found")
    assert_problem(await place(world.buyer, {**body, "address_id": 0}, "zero"), 400, "validation_failed")
    assert await snapshot() == before and await Order.count() == 0


async def test_the_invoice_profile_is_copied_onto_shipments(world):
    r = await world.buyer.get("/api/branch/invoice-profile")
    assert r.status_code == 200 and r.json() is None
    for body in ({"title": "工会", "tax_no": "123"}, {"title": "", "tax_no": "81440106MC1234567X"}, {"title": "工会"},
                 {"title": "工会", "tax_no": "81440106MC12345-7X"}):
        assert_problem(await world.buyer.put("/api/branch/invoice-profile", json=body), 400, "validation_failed")
    r = await world.buyer.put("/api/branch/invoice-profile", json={"title": "某某公司工会委员会", "tax_no": "81440106mc1234567x"})
    assert r.status_code == 200 and r.json() == {"title": "某某公司工会委员会", "tax_no": "81440106MC1234567X"}
    first = await paid_order(world, key="one", lychee=0)
    await world.buyer.put("/api/branch/invoice-profile", json={"title": "改名后的工会委员会", "tax_no": "81440106MC7654321Y"})
    second = await paid_order(world, key="two", lychee=0)
    items = {s["order_id"]: s["invoice_to"] for s in (await world.supplier_user.get("/api/supplier/shipments")).json()["items"]}
    assert items[first["id"]]["title"] == "某某公司工会委员会" and items[second["id"]]["title"] == "改名后的工会委员会"
    assert (await world.other_buyer.get("/api/branch/invoice-profile")).json() is None
    assert_problem(await world.supplier_user.put("/api/branch/invoice-profile", json={"title": "x", "tax_no": "81440106MC1234567X"}), 403, "forbidden")


async def test_notifications_are_read_and_marked_read(world, make_user):
    await paid_order(world, key="a", lychee=0)
    await paid_order(world, key="b", lychee=0)
    box = await inbox(world.supplier_user)
    assert box["unread"] == 2 and [n["read"] for n in box["items"]] == [False, False]
    newest, oldest = box["items"]
    assert newest["id"] > oldest["id"] and newest["at"] >= oldest["at"]
    # someone else's notification, or one that does not exist: 404, nothing marked
    other = (await inbox(world.other_supplier_user))
    assert other["items"] == []
    await paid_order(world, key="c", tea=0, lychee=1)
    theirs = (await inbox(world.other_supplier_user))["items"][0]["id"]
    assert_problem(await world.supplier_user.post("/api/notifications/read", json={"ids": [oldest["id"], theirs]}), 404, "not_found")
    assert_problem(await world.supplier_user.post("/api/notifications/read", json={"ids": []}), 400, "validation_failed")
    assert (await inbox(world.supplier_user))["unread"] == 2
    assert (await world.supplier_user.post("/api/notifications/read", json={"ids": [oldest["id"]]})).status_code == 204
    box = await inbox(world.supplier_user)
    assert box["unread"] == 1 and [n["read"] for n in box["items"]] == [False, True]
    assert [n["id"] for n in (await inbox(world.supplier_user, unread="true"))["items"]] == [newest["id"]]
    assert (await world.supplier_user.post("/api/notifications/read", json={})).status_code == 204
    assert (await inbox(world.supplier_user))["unread"] == 0
    assert (await inbox(world.other_supplier_user))["unread"] == 1  # untouched
    # every role has an inbox; without a login there is none
    for api in (world.admin, world.auditor, world.buyer):
        assert (await api.get("/api/notifications")).status_code == 200


async def test_a_supplier_hears_of_review_decisions(world):
    draft = world.products["draft"]
    assert (await world.supplier_user.post(f"/api/supplier/products/{draft}/submit")).status_code == 200
    r = await world.admin.post(f"/api/admin/products/{draft}/reject", json={"reason": "图片与描述不符"})
    assert r.status_code == 200, r.text
    await world.supplier_user.post(f"/api/supplier/products/{draft}/submit")
    assert (await world.admin.post(f"/api/admin/products/{draft}/approve")).status_code == 200
    titles = [n["title"] for n in (await inbox(world.supplier_user))["items"] if n["kind"] == "review_decided"]
    assert titles == ["商品「赫章核桃 1斤」审核通过，已上架", "商品「赫章核桃 1斤」审核未通过：图片与描述不符"]
    assert (await inbox(world.other_supplier_user))["items"] == []
