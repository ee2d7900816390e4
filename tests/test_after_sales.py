"""After-sales (售后): a buyer asks for lines back; the supplier of every line (or an admin)
accepts, which refunds exactly as an admin refund does, or rejects with a reason. Every
refusal changes nothing; two requests racing for the last unit: one wins."""

from __future__ import annotations

import asyncio

from shop.fulfilment.tables import AfterSale, AfterSaleLine
from shop.notifications.tables import Notification
from tests.conftest import assert_problem
from tests.fulfilment_world import actions, inbox, order_of, paid_order
from tests.test_payments import (  # noqa: F401  (fixtures)
    budget,
    ledger_ok,
    paid_stripe_order,
    place,
    snapshot,
    stripe_on,
    stripe_stub,
    world,
)


def line_of(order: dict, product_id: int) -> int:
    [line] = [line["id"] for line in order["lines"] if line["product_id"] == product_id]
    return line


async def ask(world, order, lines, reason="两盒破损", api=None):
    return await (api or world.buyer).post(f"/api/orders/{order['id']}/after-sales", json={"lines": lines, "reason": reason})


async def nothing_written() -> tuple[int, int]:
    return await AfterSale.count(), await AfterSaleLine.count()


async def test_a_request_is_opened_and_the_supplier_hears_of_it(world):
    order = await paid_order(world, tea=3)
    tea = line_of(order, world.products["tea"])
    r = await ask(world, order, [{"line_id": tea, "quantity": 2}])
    assert r.status_code == 201, r.text
    sale = r.json()
    assert sale["status"] == "open" and sale["order_id"] == order["id"] and sale["amount_fen"] == 20000
    assert sale["lines"] == [{"line_id": tea, "quantity": 2}] and sale["reason"] == "两盒破损" and sale["created_at"]
    assert await actions(world.buyer, order["id"]) == ["placed", "transfer_confirmed", "after_sale_opened"]
    box = await inbox(world.supplier_user)
    assert [n["kind"] for n in box["items"]] == ["after_sale_opened", "order_to_ship"]
    assert [n["kind"] for n in (await inbox(world.other_supplier_user))["items"]] == ["order_to_ship"]  # not its lines
    # who sees it
    for api, seen in ((world.buyer, 1), (world.supplier_user, 1), (world.other_supplier_user, 0), (world.admin, 1),
                      (world.auditor, 1), (world.other_buyer, 0)):
        r = await api.get("/api/after-sales")
        assert r.status_code == 200 and r.json()["total"] == seen, (api, r.text)
    assert (await world.admin.get("/api/after-sales", params={"status": "rejected"})).json()["total"] == 0
    assert_problem(await world.admin.get("/api/after-sales", params={"status": "lost"}), 400, "validation_failed")


async def test_refusals_change_nothing(world):
    r = await place(world.buyer, {"lines": [{"product_id": world.products["tea"], "quantity": 1}], "members": world.members[:1]}, "unpaid")
    unpaid = r.json()
    order = await paid_order(world, tea=2)
    tea, lychee = line_of(order, world.products["tea"]), line_of(order, world.products["lychee"])
    before = await nothing_written()
    assert_problem(await ask(world, unpaid, [{"line_id": unpaid["lines"][0]["id"], "quantity": 1}]), 409, "invalid_state")
    assert_problem(await ask(world, order, [{"line_id": tea, "quantity": 1}], api=world.other_buyer), 403, "forbidden")
    assert_problem(await ask(world, order, [{"line_id": tea, "quantity": 1}], api=world.supplier_user), 403, "forbidden")
    assert_problem(await ask(world, order, [{"line_id": unpaid["lines"][0]["id"], "quantity": 1}]), 400, "validation_failed")
    assert_problem(await ask(world, order, [{"line_id": tea, "quantity": 1}, {"line_id": tea, "quantity": 1}]), 400, "validation_failed")
    body = assert_problem(await ask(world, order, [{"line_id": tea, "quantity": 3}]), 409, "invalid_state")
    assert body["lines"] == [{"line_id": tea, "requested": 3, "available": 2}]
    assert_problem(await ask(world, order, [{"line_id": tea, "quantity": 1}], reason="   "), 400, "validation_failed")
    assert_problem(await ask(world, order, [{"line_id": tea, "quantity": 0}]), 400, "validation_failed")
    assert_problem(await ask(world, order, []), 400, "validation_failed")
    assert_problem(await world.buyer.post("/api/orders/999999/after-sales", json={"lines": [{"line_id": tea, "quantity": 1}], "reason": "x"}), 404, "not_found")
    assert await nothing_written() == before
    # open requests count: one for both teas leaves none for a second
    assert (await ask(world, order, [{"line_id": tea, "quantity": 2}, {"line_id": lychee, "quantity": 1}])).status_code == 201
    assert_problem(await ask(world, order, [{"line_id": tea, "quantity": 1}]), 409, "invalid_state")
    assert await actions(world.buyer, order["id"]) == ["placed", "transfer_confirmed", "after_sale_opened"]


async def test_two_requests_racing_for_the_last_unit_one_wins(world):
    order = await paid_order(world, tea=3, lychee=0)
    tea = line_of(order, world.products["tea"])
    r = await world.admin.post(f"/api/orders/{order['id']}/refund", json={"lines": [{"line_id": tea, "quantity": 1}]})
    assert r.status_code == 200
    assert (await ask(world, order, [{"line_id": tea, "quantity": 1}])).status_code == 201
    # the last unit, asked for by six at once
    answers = await asyncio.gather(*[ask(world, order, [{"line_id": tea, "quantity": 1}], reason=f"第{i}次") for i in range(6)])
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [409] * 5, [a.text for a in answers]
    taken = sum(r["quantity"] for r in await AfterSaleLine.select(AfterSaleLine.quantity))
    assert taken == 2  # never more than the 2 units not refunded


async def test_the_supplier_accepts_and_the_quota_comes_back_pro_rata(world):
    order = await paid_order(world, tea=3, lychee=0, members=world.members[:3])  # 30000 fen, 10000 each
    tea = line_of(order, world.products["tea"])
    sale = (await ask(world, order, [{"line_id": tea, "quantity": 1}])).json()
    assert_problem(await world.other_supplier_user.post(f"/api/after-sales/{sale['id']}/accept"), 403, "forbidden")
    assert_problem(await world.buyer.post(f"/api/after-sales/{sale['id']}/accept"), 403, "forbidden")
    assert_problem(await world.auditor.post(f"/api/after-sales/{sale['id']}/accept"), 403, "forbidden")
    assert_problem(await world.supplier_user.post("/api/after-sales/999999/accept"), 404, "not_found")
    r = await world.supplier_user.post(f"/api/after-sales/{sale['id']}/accept")
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "refunded" and done["refund_id"] and done["decided_at"]
    now = await order_of(world.buyer, order["id"])
    assert now["status"] == "partially_refunded" and now["refunded_fen"] == 10000
    assert [a["refunded_fen"] for a in now["allocations"]] == [3334, 3333, 3333]
    assert [await budget(m) for m in world.members[:3]] == [(0, 10000 - 3334), (0, 10000 - 3333), (0, 10000 - 3333)]
    assert await actions(world.buyer, order["id"]) == ["placed", "transfer_confirmed", "after_sale_opened", "after_sale_accepted", "refunded"]
    [refund] = (await world.admin.get(f"/api/admin/orders/{order['id']}/refunds")).json()["items"]
    assert refund["id"] == done["refund_id"] and refund["status"] == "owed" and refund["lines"] == [{"line_id": tea, "quantity": 1}]
    box = await inbox(world.buyer)
    assert box["items"][0]["kind"] == "after_sale_decided" and "100.00 元" in box["items"][0]["title"]
    # decided: neither accepted again nor rejected
    assert_problem(await world.supplier_user.post(f"/api/after-sales/{sale['id']}/accept"), 409, "invalid_state")
    assert_problem(await world.supplier_user.post(f"/api/after-sales/{sale['id']}/reject", json={"reason": "晚了"}), 409, "invalid_state")
    assert len((await world.admin.get(f"/api/admin/orders/{order['id']}/refunds")).json()["items"]) == 1
    assert await ledger_ok()


async def test_a_request_over_two_suppliers_is_for_an_admin(world):
    order = await paid_order(world, tea=1, lychee=1)
    lines = [{"line_id": line["id"], "quantity": 1} for line in order["lines"]]
    sale = (await ask(world, order, lines)).json()
    for api in (world.supplier_user, world.other_supplier_user):
        assert_problem(await api.post(f"/api/after-sales/{sale['id']}/accept"), 403, "forbidden")
        assert_problem(await api.post(f"/api/after-sales/{sale['id']}/reject", json={"reason": "不同意"}), 403, "forbidden")
    r = await world.admin.post(f"/api/after-sales/{sale['id']}/accept")
    assert r.status_code == 200 and r.json()["status"] == "refunded"
    now = await order_of(world.buyer, order["id"])
    assert now["status"] == "refunded" and {s["status"] for s in now["shipments"]} == {"cancelled"}


async def test_the_supplier_rejects_with_a_reason(world):
    order = await paid_order(world, tea=2, lychee=0)
    tea = line_of(order, world.products["tea"])
    sale = (await ask(world, order, [{"line_id": tea, "quantity": 2}])).json()
    before = await snapshot()
    assert_problem(await world.supplier_user.post(f"/api/after-sales/{sale['id']}/reject", json={"reason": " "}), 400, "validation_failed")
    assert_problem(await world.supplier_user.post(f"/api/after-sales/{sale['id']}/reject", json={}), 400, "validation_failed")
    r = await world.supplier_user.post(f"/api/after-sales/{sale['id']}/reject", json={"reason": "签收时未验货，照片显示外包装完好"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected" and r.json()["decision_reason"].startswith("签收时未验货")
    assert await snapshot() == before  # no money, quota, stock or line moved
    assert_problem(await world.supplier_user.post(f"/api/after-sales/{sale['id']}/accept"), 409, "invalid_state")
    assert await actions(world.buyer, order["id"]) == ["placed", "transfer_confirmed", "after_sale_opened", "after_sale_rejected"]
    box = await inbox(world.buyer)
    assert box["items"][0]["kind"] == "after_sale_decided" and "未通过" in box["items"][0]["title"]
    # the units are free to ask for again
    assert (await ask(world, order, [{"line_id": tea, "quantity": 2}], reason="再次申请")).status_code == 201


async def test_accepting_refunds_through_stripe_and_survives_a_refusal(client, world, stripe_on):
    order = await paid_stripe_order(client, world, stripe_on)
    line = order["lines"][0]
    sale = (await ask(world, order, [{"line_id": line["id"], "quantity": 1}])).json()
    before = await snapshot()
    stripe_on.refuse_refunds = True
    body = assert_problem(await world.supplier_user.post(f"/api/after-sales/{sale['id']}/accept"), 503, "payment_unavailable")
    assert body["refund_status"] == "failed"
    assert await snapshot() == before
    row = await AfterSale.select().where(AfterSale.id == sale["id"]).first()
    assert row["status"] == "open" and row["decided_at"] is None  # undecided again: it may still be rejected or accepted
    stripe_on.refuse_refunds = False
    r = await world.supplier_user.post(f"/api/after-sales/{sale['id']}/accept")
    assert r.status_code == 200 and r.json()["status"] == "refunded", r.text
    keys = [c.headers["idempotency-key"] for c in stripe_on.calls("/v1/refunds")]
    assert keys == [f"order-{order['id']}-refund-1", f"order-{order['id']}-refund-2"]
    assert len(stripe_on.refunds) == 1 and next(iter(stripe_on.refunds.values()))["amount"] == line["unit_price_fen"]
    assert (await order_of(world.buyer, order["id"]))["refunded_fen"] == line["unit_price_fen"]
    assert await ledger_ok()


async def test_accepting_while_stripe_is_down_leaves_it_pending_then_completes(app, client, world, stripe_on):
    order = await paid_stripe_order(client, world, stripe_on)
    line = order["lines"][1]
    sale = (await ask(world, order, [{"line_id": line["id"], "quantity": 1}])).json()
    stripe_on.fail_with = 500
    body = assert_problem(await world.admin.post(f"/api/after-sales/{sale['id']}/accept"), 503, "payment_unavailable")
    assert body["refund_status"] == "pending"
    # being refunded: it can no longer be rejected, and its units stay taken
    assert_problem(await world.supplier_user.post(f"/api/after-sales/{sale['id']}/reject", json={"reason": "不"}), 409, "invalid_state")
    assert_problem(await ask(world, order, [{"line_id": line["id"], "quantity": 1}]), 409, "invalid_state")
    stripe_on.fail_with = None
    r, again = await asyncio.gather(
        world.admin.post(f"/api/after-sales/{sale['id']}/accept"), world.supplier_user.post(f"/api/after-sales/{sale['id']}/accept")
    )
    assert sorted([r.status_code, again.status_code])[0] == 200, (r.text, again.text)
    assert (await AfterSale.select(AfterSale.status).where(AfterSale.id == sale["id"]).first())["status"] == "refunded"
    assert len(stripe_on.refunds) == 1
    assert (await order_of(world.buyer, order["id"]))["refunded_fen"] == line["unit_price_fen"]
    assert (await actions(world.buyer, order["id"])).count("after_sale_accepted") == 1
    assert await Notification.count().where(Notification.kind == "after_sale_decided") == 1
    assert await ledger_ok()
