"""An order's history (`GET /api/orders/{id}/events`): every change of an order writes
its event in the same transaction, by `shop/orders/lifecycle.py`, and a change that is
refused or rolled back leaves no event."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shop.orders import lifecycle
from shop.orders.cancellation import expire_due
from shop.orders.states import OrderAction, OrderStatus
from shop.orders.tables import Order, OrderEvent
from tests.conftest import assert_problem
from tests.test_payments import (  # noqa: F401  (fixtures)
    deliver,
    place,
    stripe_on,
    stripe_order,
    stripe_stub,
    world,
)


async def events(api, order_id: int) -> list[dict]:
    r = await api.get(f"/api/orders/{order_id}/events")
    assert r.status_code == 200, r.text
    return r.json()


def story(items: list[dict]) -> list[tuple[str, str | None]]:
    return [(e["action"], e["actor"]["username"] if e["actor"] else None) for e in items]


async def transfer_order(world, key="e-1", quantity=2):
    r = await place(world.buyer, {"lines": [{"product_id": world.products["tea"], "quantity": quantity}], "members": world.members[:2]}, key)
    assert r.status_code == 201, r.text
    return r.json()


async def test_placed_then_cancelled_by_the_buyer(world):
    order = await transfer_order(world)
    buyer = world.buyer.user["username"]
    first = await events(world.buyer, order["id"])
    assert story(first) == [("placed", buyer)]
    assert first[0]["actor"] == {"id": world.buyer.user["id"], "username": buyer, "role": "buyer"}
    assert datetime.fromisoformat(first[0]["at"]).tzinfo is not None
    r = await world.buyer.post(f"/api/orders/{order['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert story(await events(world.buyer, order["id"])) == [("placed", buyer), ("cancelled", buyer)]
    # a second cancel is refused and writes nothing
    assert_problem(await world.buyer.post(f"/api/orders/{order['id']}/cancel"), 409, "invalid_state")
    assert len(await events(world.buyer, order["id"])) == 2


async def test_transfer_confirmed_then_refunded_in_two_steps(world):
    order = await transfer_order(world, quantity=3)
    admin = world.admin
    r = await admin.post(f"/api/admin/orders/{order['id']}/confirm-transfer", json={"reference": order["payment"]["reference"]})
    assert r.status_code == 200 and r.json()["status"] == "paid"
    line = order["lines"][0]["id"]
    r = await admin.post(f"/api/orders/{order['id']}/refund", json={"lines": [{"line_id": line, "quantity": 1}]})
    assert r.status_code == 200 and r.json()["status"] == "partially_refunded"
    r = await admin.post(f"/api/orders/{order['id']}/refund", json={})
    assert r.status_code == 200 and r.json()["status"] == "refunded"
    items = await events(world.buyer, order["id"])
    admin_name = (await admin.get("/api/me")).json()["username"]
    assert story(items) == [
        ("placed", world.buyer.user["username"]),
        ("transfer_confirmed", admin_name),
        ("refunded", admin_name),
        ("refunded", admin_name),
    ]
    assert order["payment"]["reference"] in items[1]["detail"]
    assert "10000 fen" in items[2]["detail"] and "20000 fen" in items[3]["detail"]
    # oldest first
    assert [e["at"] for e in items] == sorted(e["at"] for e in items)


async def test_expiry_is_written_with_no_actor(world):
    order = await transfer_order(world)
    later = datetime.now(timezone.utc) + timedelta(days=31)
    assert await expire_due(later) == 1
    assert story(await events(world.admin, order["id"])) == [("placed", world.buyer.user["username"]), ("expired", None)]


async def test_webhooks_write_paid_and_late_payment_with_no_actor(client, world, stripe_on):
    paid = await stripe_order(world, key="w-1")
    assert (await deliver(client, stripe_on.event("checkout.session.completed", paid["payment"]["reference"]))).json()["outcome"] == "paid"
    assert story(await events(world.buyer, paid["id"]))[1:] == [("paid", None)]
    late = await stripe_order(world, members=world.members[3:5], key="w-2")
    ref = late["payment"]["reference"]
    await deliver(client, stripe_on.event("checkout.session.expired", ref))
    await deliver(client, stripe_on.event("checkout.session.completed", ref))
    r = await world.admin.post(f"/api/orders/{late['id']}/refund", json={})
    assert r.status_code == 200 and r.json()["status"] == "expired"
    admin_name = (await world.admin.get("/api/me")).json()["username"]
    assert story(await events(world.buyer, late["id"]))[1:] == [("expired", None), ("late_payment", None), ("refunded", admin_name)]


async def test_a_refused_order_leaves_no_event(world):
    """The `placed` event is written inside the placing transaction: when the holds refuse
    the order (over the cap), the rollback takes the event with it."""
    before = await OrderEvent.count()
    r = await place(world.buyer, {"lines": [{"product_id": world.products["tea"], "quantity": 7}], "members": world.members[:1]}, "cap")
    assert_problem(r, 409, "cap_exceeded")
    assert await OrderEvent.count() == before
    assert await Order.count() == 0


async def test_a_rolled_back_transition_leaves_no_event_and_no_change(world):
    order = await transfer_order(world)
    before = await OrderEvent.count()

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with Order._meta.db.transaction():
            moved = await lifecycle.transition(order["id"], OrderAction.cancelled, at=datetime.now(timezone.utc))
            assert moved["status"] == OrderStatus.cancelled
            raise Boom
    assert await OrderEvent.count() == before
    assert (await Order.select(Order.status).where(Order.id == order["id"]).first())["status"] == "pending_payment"


async def test_the_table_refuses_moves_that_do_not_fit(world):
    order = await transfer_order(world)
    now = datetime.now(timezone.utc)
    before = await OrderEvent.count()
    async with Order._meta.db.transaction():
        for action in (OrderAction.refunded, OrderAction.late_payment):
            with pytest.raises(Exception) as refused:
                await lifecycle.transition(order["id"], action, at=now)
            assert getattr(refused.value, "code", None) == "invalid_state"
    with pytest.raises(Exception) as missing:
        async with Order._meta.db.transaction():
            await lifecycle.transition(2_000_000_000, OrderAction.cancelled, at=now)
    assert getattr(missing.value, "code", None) == "not_found"
    assert await OrderEvent.count() == before
    assert lifecycle.allows("paid", OrderAction.refunded) and not lifecycle.allows("paid", OrderAction.cancelled)


async def test_events_are_read_in_the_orders_scope(world):
    order = await transfer_order(world)
    assert_problem(await world.other_buyer.get(f"/api/orders/{order['id']}/events"), 403, "forbidden")
    assert_problem(await world.other_supplier_user.get(f"/api/orders/{order['id']}/events"), 403, "forbidden")
    assert_problem(await world.buyer.get("/api/orders/999999/events"), 404, "not_found")
    for reader in (world.supplier_user, world.auditor, world.admin):
        assert [e["action"] for e in await events(reader, order["id"])] == ["placed"]
