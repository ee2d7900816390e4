"""After payment: one shipment per supplier, shipped by its supplier, received by the
branch (or automatically, exactly once), cancelled when all its lines are refunded; the
order's events and the notifications tell of each step."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from shop.fulfilment.tables import Shipment
from shop.jobs import tick
from shop.notifications.tables import Notification
from shop.orders.tables import Order, OrderEvent
from tests.conftest import ROOT, assert_problem
from tests.fulfilment_world import actions, inbox, order_of, paid_order, shipment_of
from tests.test_payments import place, world  # noqa: F401  (fixtures)

SHIP = {"carrier": "顺丰速运", "tracking_no": "SF1234567890"}


async def test_a_paid_order_becomes_one_shipment_per_supplier(world):
    r = await place(world.buyer, {"lines": [{"product_id": world.products["tea"], "quantity": 1}], "members": world.members[:1]}, "unpaid")
    assert r.json()["shipments"] == []  # nothing to ship before payment
    order = await paid_order(world)
    assert sorted(s["supplier_id"] for s in order["shipments"]) == sorted([world.supplier, world.other_supplier])
    tea = shipment_of(order, world.supplier)
    lines = {line["product_id"]: line["id"] for line in order["lines"]}
    assert tea["line_ids"] == [lines[world.products["tea"]]] and tea["status"] == "awaiting_shipment"
    assert tea["supplier_name"] == "毕节农业合作社" and tea["carrier"] == "" and tea["shipped_at"] is None
    # the supplier sees only its own lines and its own shipment of the order
    seen = await order_of(world.supplier_user, order["id"])
    assert [s["id"] for s in seen["shipments"]] == [tea["id"]]
    # each supplier was told, once, and nobody else
    for api in (world.supplier_user, world.other_supplier_user):
        box = await inbox(api)
        assert box["unread"] == 1 and box["items"][0]["kind"] == "order_to_ship" and box["items"][0]["order_id"] == order["id"]
    assert (await inbox(world.buyer))["unread"] == 0


async def test_the_supplier_sees_whom_to_send_to_and_ships(world):
    await world.buyer.post("/api/branch/addresses", json={"name": "王主席", "phone": "020-38881234", "address": "广州市天河区体育西路1号"})
    await world.buyer.put("/api/branch/invoice-profile", json={"title": "广州市天河区某某公司工会委员会", "tax_no": "81440106MC1234567X"})
    order = await paid_order(world)
    r = await world.supplier_user.get("/api/supplier/shipments", params={"status": "awaiting_shipment"})
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    assert item["order_id"] == order["id"] and item["branch"] == {"id": world.branch, "code": "GZ-TH-001", "name": "GZ-TH-001工会"}
    assert item["delivery"] == {"name": "王主席", "phone": "020-38881234", "address": "广州市天河区体育西路1号"}
    assert item["invoice_to"] == {"title": "广州市天河区某某公司工会委员会", "tax_no": "81440106MC1234567X"}
    assert [(x["title"], x["quantity"], x["amount_fen"]) for x in item["lines"]] == [("毕节高山绿茶 250克", 2, 20000)]
    assert item["amount_fen"] == 20000 and item["invoice"] is None
    # another supplier's shipment: 403, and nothing changes
    assert_problem(await world.other_supplier_user.post(f"/api/supplier/shipments/{item['id']}/ship", json=SHIP), 403, "forbidden")
    r = await world.supplier_user.post(f"/api/supplier/shipments/{item['id']}/ship", json=SHIP)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "shipped" and r.json()["carrier"] == "顺丰速运" and r.json()["tracking_no"] == "SF1234567890"
    assert_problem(await world.supplier_user.post(f"/api/supplier/shipments/{item['id']}/ship", json=SHIP), 409, "invalid_state")
    assert (await world.supplier_user.get("/api/supplier/shipments", params={"status": "awaiting_shipment"})).json()["total"] == 0
    # the branch's buyers hear of it
    box = await inbox(world.buyer)
    assert [n["kind"] for n in box["items"]] == ["shipment_shipped"] and "SF1234567890" in box["items"][0]["title"]
    assert await actions(world.buyer, order["id"]) == ["placed", "transfer_confirmed", "shipped"]


async def test_bad_ship_requests_change_nothing(world):
    order = await paid_order(world)
    sid = shipment_of(order, world.supplier)["id"]
    url = f"/api/supplier/shipments/{sid}/ship"
    for body in ({}, {"carrier": "", "tracking_no": "SF1"}, {"carrier": "顺丰", "tracking_no": "SF 12 34"},
                 {"carrier": "顺丰", "tracking_no": "x" * 41}, {**SHIP, "extra": 1}, {"carrier": "   ", "tracking_no": "SF123456"}):
        assert_problem(await world.supplier_user.post(url, json=body), 400, "validation_failed")
    assert_problem(await world.supplier_user.post("/api/supplier/shipments/999999/ship", json=SHIP), 404, "not_found")
    assert_problem(await world.buyer.post(url, json=SHIP), 403, "forbidden")
    assert (await Shipment.select(Shipment.status).where(Shipment.id == sid).first())["status"] == "awaiting_shipment"
    assert await actions(world.buyer, order["id"]) == ["placed", "transfer_confirmed"]


async def test_the_buyer_confirms_receipt(world):
    order = await paid_order(world)
    tea, lychee = shipment_of(order, world.supplier), shipment_of(order, world.other_supplier)
    # not shipped yet: 409
    assert_problem(await world.buyer.post(f"/api/shipments/{tea['id']}/receive"), 409, "invalid_state")
    await world.supplier_user.post(f"/api/supplier/shipments/{tea['id']}/ship", json=SHIP)
    assert_problem(await world.other_buyer.post(f"/api/shipments/{tea['id']}/receive"), 403, "forbidden")
    assert_problem(await world.supplier_user.post(f"/api/shipments/{tea['id']}/receive"), 403, "forbidden")
    assert_problem(await world.buyer.post("/api/shipments/424242/receive"), 404, "not_found")
    r = await world.buyer.post(f"/api/shipments/{tea['id']}/receive")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == tea["id"] and r.json()["status"] == "received" and r.json()["received_at"]
    assert_problem(await world.buyer.post(f"/api/shipments/{tea['id']}/receive"), 409, "invalid_state")
    now = await order_of(world.buyer, order["id"])
    assert shipment_of(now, world.supplier)["status"] == "received" and shipment_of(now, world.supplier)["received_at"]
    assert shipment_of(now, world.other_supplier)["status"] == "awaiting_shipment"
    events = (await world.buyer.get(f"/api/orders/{order['id']}/events")).json()
    assert [e["action"] for e in events] == ["placed", "transfer_confirmed", "shipped", "received"]
    assert events[-1]["actor"]["id"] == world.buyer.user["id"] and str(tea["id"]) in events[-1]["detail"]
    assert lychee["status"] == "awaiting_shipment"


async def test_refunding_every_line_of_a_shipment_cancels_it(world):
    order = await paid_order(world, tea=2, lychee=1)
    lines = {line["product_id"]: line["id"] for line in order["lines"]}
    tea_line = lines[world.products["tea"]]
    r = await world.admin.post(f"/api/orders/{order['id']}/refund", json={"lines": [{"line_id": tea_line, "quantity": 1}]})
    assert r.status_code == 200
    assert shipment_of(r.json(), world.supplier)["status"] == "awaiting_shipment"  # one of two still to send
    [item] = (await world.supplier_user.get("/api/supplier/shipments")).json()["items"]
    assert item["amount_fen"] == 10000 and item["lines"][0]["refunded_quantity"] == 1
    r = await world.admin.post(f"/api/orders/{order['id']}/refund", json={"lines": [{"line_id": tea_line, "quantity": 1}]})
    assert shipment_of(r.json(), world.supplier)["status"] == "cancelled"
    assert shipment_of(r.json(), world.other_supplier)["status"] == "awaiting_shipment"
    assert_problem(await world.supplier_user.post(f"/api/supplier/shipments/{item['id']}/ship", json=SHIP), 409, "invalid_state")


async def test_auto_receive_happens_exactly_once(app, world):
    order = await paid_order(world)
    tea = shipment_of(order, world.supplier)
    lychee = shipment_of(order, world.other_supplier)
    sent = datetime.now(timezone.utc) - timedelta(days=10, minutes=5)
    app.state.clock = lambda: sent
    try:
        for api, shipment in ((world.supplier_user, tea), (world.other_supplier_user, lychee)):
            r = await api.post(f"/api/supplier/shipments/{shipment['id']}/ship", json=SHIP)
            assert r.status_code == 200, r.text
    finally:
        app.state.clock = lambda: datetime.now(timezone.utc)
    # one of them is received by its buyer first; the other is left to the job
    assert (await world.buyer.post(f"/api/shipments/{lychee['id']}/receive")).status_code == 200
    settings = app.state.settings
    # not yet due: nothing happens a minute before the tenth day ends
    assert (await tick(sent + timedelta(days=10) - timedelta(minutes=1), settings))["shipments_received"] == 0
    # three workers and two `shop tick` processes at once
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "shop.cli", "tick"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    now = datetime.now(timezone.utc)
    results = await asyncio.gather(*[tick(now, settings) for _ in range(3)])
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    by_cli = sum(int(out.split("'shipments_received': ")[1].split(",")[0].split("}")[0]) for out in outputs)
    assert sum(r["shipments_received"] for r in results) + by_cli == 1
    received = await OrderEvent.select(OrderEvent.actor, OrderEvent.detail).where(OrderEvent.action == "received").order_by(OrderEvent.id)
    assert len(received) == 2
    assert received[0]["actor"] == world.buyer.user["id"]
    assert received[1]["actor"] is None and "automatically after 10 days" in received[1]["detail"]
    row = await Shipment.select(Shipment.status, Shipment.received_at).where(Shipment.id == tea["id"]).first()
    assert row["status"] == "received" and row["received_at"] is not None
    # and again later: nothing more
    assert (await tick(now + timedelta(days=5), settings))["shipments_received"] == 0


async def test_the_days_to_auto_receive_come_from_the_settings(app, world):
    import msgspec

    order = await paid_order(world, lychee=0)
    sid = order["shipments"][0]["id"]
    await world.supplier_user.post(f"/api/supplier/shipments/{sid}/ship", json=SHIP)
    shipped = (await Shipment.select(Shipment.shipped_at).where(Shipment.id == sid).first())["shipped_at"]
    three = msgspec.structs.replace(app.state.settings, auto_receive_days=3)
    assert (await tick(shipped + timedelta(days=2), three))["shipments_received"] == 0
    assert (await tick(shipped + timedelta(days=3), three))["shipments_received"] == 1
    assert (await order_of(world.buyer, order["id"]))["shipments"][0]["status"] == "received"


async def test_buyers_are_told_once_that_a_hold_ends_within_a_day(app, world, make_user):
    colleague = await make_user("buyer", union_id=world.branch)
    app.state.clock = lambda: datetime.now(timezone.utc) - timedelta(days=29, hours=1)  # a 30-day transfer hold
    try:
        r = await place(world.buyer, {"lines": [{"product_id": world.products["tea"], "quantity": 1}], "members": world.members[:1]}, "old")
        fresh = await place(world.buyer, {"lines": [{"product_id": world.products["tea"], "quantity": 1}], "members": world.members[:1]}, "new")
    finally:
        app.state.clock = lambda: datetime.now(timezone.utc)
    assert r.status_code == 201 and fresh.status_code == 201
    # the second order's hold ends in three days: nothing to say of it yet
    await Order.update({Order.expires_at: datetime.now(timezone.utc) + timedelta(days=3)}).where(Order.id == fresh.json()["id"])
    now = datetime.now(timezone.utc)
    results = await asyncio.gather(*[tick(now, app.state.settings) for _ in range(3)])
    assert sum(x["holds_ending_told"] for x in results) == 1
    for api in (world.buyer, colleague):
        box = await inbox(api)
        assert [(n["kind"], n["order_id"]) for n in box["items"]] == [("hold_ending", r.json()["id"])]
        assert "尚未付款" in box["items"][0]["title"]
    assert (await tick(now + timedelta(hours=1), app.state.settings))["holds_ending_told"] == 0
    assert await Notification.count().where(Notification.kind == "hold_ending") == 2  # one per buyer
    assert (await inbox(world.other_buyer))["unread"] == 0
