"""Paying for orders: Stripe Checkout (through a local stand-in for Stripe's API, driven
by the real `stripe` library), signed webhooks, bank transfers confirmed by an admin, and
refunds pro rata to the members' allocations. After each story the order's status,
the members' budgets, the stock and the ledger's verification are checked."""

from __future__ import annotations

import asyncio
import json
import random
import time
from datetime import datetime, timedelta, timezone

import httpx
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from budgets import ledger, verification
from budgets.tables import LedgerEntry, MemberBudget
from catalog.tables import Product
from shop.orders.refunds import pro_rata
from shop.orders.tables import Allocation, Order, OrderLine, Refund
from shop.payments.tables import PaymentEvent
from tests.conftest import assert_problem
from tests.server import free_port, running_server
from tests.stripe_stub import API_KEY, WEBHOOK_SECRET, StripeStub, sign
from tests.world import build_world

WEBHOOK = "/api/payments/stripe/webhook"


@pytest.fixture(scope="session")
def stripe_stub():
    stub = StripeStub().start()
    yield stub
    stub.stop()


@pytest.fixture
async def world(make_user, admin):
    return await build_world(make_user, admin)


def use_settings(app, **changes):
    app.state.settings = msgspec.structs.replace(app.state.settings, **changes)


@pytest.fixture
def stripe_on(app, stripe_stub):
    """The app pays with Stripe (the stub) for this test; settings come back afterwards."""
    original = app.state.settings
    stripe_stub.reset()
    use_settings(app, stripe_api_key=API_KEY, stripe_api_base=stripe_stub.url, stripe_webhook_secret=WEBHOOK_SECRET)
    yield stripe_stub
    app.state.settings = original
    stripe_stub.reset()


# --- helpers --------------------------------------------------------------------------


async def stock(product_id: int) -> int:
    return (await Product.select(Product.stock).where(Product.id == product_id).first())["stock"]


async def budget(member_id: int) -> tuple[int, int]:
    """(held, spent) this year."""
    year = ledger.budget_year(datetime.now(timezone.utc))
    row = await MemberBudget.select().where((MemberBudget.member == member_id) & (MemberBudget.year == year)).first()
    return (row["held_fen"], row["spent_fen"]) if row else (0, 0)


async def snapshot():
    """Everything a payment or refund touches."""
    return (
        [tuple(r.values()) for r in await Order.select(Order.id, Order.status, Order.refunded_fen, Order.needs_refund, Order.paid_at).order_by(Order.id)],
        [tuple(r.values()) for r in await OrderLine.select(OrderLine.id, OrderLine.refunded_quantity).order_by(OrderLine.id)],
        [tuple(r.values()) for r in await Allocation.select(Allocation.id, Allocation.refunded_fen).order_by(Allocation.id)],
        await LedgerEntry.count(),
        [tuple(r.values()) for r in await MemberBudget.select(MemberBudget.member, MemberBudget.held_fen, MemberBudget.spent_fen).order_by(MemberBudget.id)],
        [tuple(r.values()) for r in await Product.select(Product.id, Product.stock).order_by(Product.id)],
    )


async def ledger_ok():
    result = await verification.verify_ledger()
    assert result.ok, result.problems
    return True


async def place(api, body, key="k-1"):
    return await api.post("/api/orders", json=body, headers={"Idempotency-Key": key})


async def order_of(api, order_id):
    r = await api.get(f"/api/orders/{order_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def deliver(client, event: dict | str | bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None, signature: str | None = None):
    """POST a webhook signed as Stripe signs it (over the exact bytes sent)."""
    payload = event if isinstance(event, (str, bytes)) else json.dumps(event, ensure_ascii=False)
    text = payload.decode() if isinstance(payload, bytes) else payload
    headers = {"content-type": "application/json"}
    headers["Stripe-Signature"] = signature if signature is not None else sign(text, secret, timestamp)
    return await client.post(WEBHOOK, content=payload.encode() if isinstance(payload, str) else payload, headers=headers)


async def stripe_order(world, members=None, lines=None, key="s-1"):
    body = {
        "lines": lines or [{"product_id": world.products["tea"], "quantity": 2}, {"product_id": world.products["rice"], "quantity": 1}],
        "members": members or world.members[:3],
    }
    r = await place(world.buyer, body, key=key)
    assert r.status_code == 201, r.text
    return r.json()


async def paid_stripe_order(client, world, stub, **kw):
    order = await stripe_order(world, **kw)
    r = await deliver(client, stub.event("checkout.session.completed", order["payment"]["reference"]))
    assert r.status_code == 200 and r.json()["outcome"] == "paid", r.text
    return order


# --- Stripe Checkout ------------------------------------------------------------------


async def test_order_gets_a_checkout_session(world, stripe_on):
    before = time.time()
    order = await stripe_order(world)
    assert order["payment"]["provider"] == "stripe"
    session = stripe_on.sessions[order["payment"]["reference"]]
    assert order["payment"]["url"] == session["url"]
    [call] = stripe_on.calls("/v1/checkout/sessions")
    assert call.headers["idempotency-key"] == f"order-{order['id']}-checkout"
    assert call.headers["authorization"] == f"Bearer {API_KEY}"
    p = call.params
    assert p["mode"] == "payment" and p["currency"] == "cny"
    assert p["client_reference_id"] == str(order["id"]) and p["metadata"] == {"order_id": str(order["id"])}
    assert p["line_items"] == [
        {"price_data": {"currency": "cny", "unit_amount": "10000", "product_data": {"name": "毕节高山绿茶 250克"}}, "quantity": "2"},
        {"price_data": {"currency": "cny", "unit_amount": "2501", "product_data": {"name": "威宁苦荞米 5斤"}}, "quantity": "1"},
    ]
    # the hold's end: 60 minutes by default, the same instant on the order and the session
    expires = datetime.fromisoformat(order["payment"]["expires_at"])
    assert int(p["expires_at"]) == int(expires.timestamp())
    assert before + 3600 - 5 <= int(p["expires_at"]) <= time.time() + 3600
    assert p["success_url"].endswith(f"/orders/{order['id']}?paid=1") and p["cancel_url"].endswith(f"/orders/{order['id']}?cancelled=1")
    assert order["status"] == "pending_payment" and session["amount_total"] == order["total_fen"] == 22501


async def test_hold_time_is_clamped_to_what_stripe_allows(app, world, stripe_on):
    use_settings(app, hold_minutes=5)
    order = await stripe_order(world, key="short")
    left = datetime.fromisoformat(order["payment"]["expires_at"]) - datetime.now(timezone.utc)
    assert timedelta(minutes=30) < left <= timedelta(minutes=31)
    use_settings(app, hold_minutes=60 * 48)
    order = await stripe_order(world, key="long", members=world.members[3:5])
    left = datetime.fromisoformat(order["payment"]["expires_at"]) - datetime.now(timezone.utc)
    assert timedelta(hours=23, minutes=59) < left <= timedelta(hours=24)
    assert len(stripe_on.calls("/v1/checkout/sessions")) == 2  # the stub took both (it checks the range)


@pytest.mark.parametrize("outage", ["http_500", "connection_refused"])
async def test_stripe_down_at_checkout_cancels_the_order(app, world, stripe_on, outage):
    before = await snapshot()
    if outage == "http_500":
        stripe_on.fail_with = 500
    else:
        use_settings(app, stripe_api_base=f"http://127.0.0.1:{free_port()}")
    r = await place(world.buyer, {"lines": [{"product_id": world.products["tea"], "quantity": 3}], "members": world.members[:2]})
    assert_problem(r, 503, "payment_unavailable")
    [order] = await Order.select().order_by(Order.id)
    assert order["status"] == "cancelled"
    assert await stock(world.products["tea"]) == 100
    assert await budget(world.members[0]) == (0, 0) and await budget(world.members[1]) == (0, 0)
    kinds = sorted(e["kind"] for e in await LedgerEntry.select(LedgerEntry.kind))
    assert kinds == ["hold", "hold", "release", "release"]
    assert (await snapshot())[5] == before[5]
    assert await ledger_ok()


# --- webhooks ---------------------------------------------------------------------------


async def test_completed_and_paid_captures_the_holds(client, world, stripe_on):
    order = await stripe_order(world)
    shares = {a["member_id"]: a["amount_fen"] for a in order["allocations"]}
    assert shares == {world.members[0]: 7501, world.members[1]: 7500, world.members[2]: 7500}
    event = stripe_on.event("checkout.session.completed", order["payment"]["reference"])
    r = await deliver(client, event)
    assert r.status_code == 200 and r.json() == {"received": True, "outcome": "paid"}
    detail = await order_of(world.buyer, order["id"])
    assert detail["status"] == "paid"
    for member, share in shares.items():
        assert await budget(member) == (0, share)
    assert await stock(world.products["tea"]) == 98 and await stock(world.products["rice"]) == 4
    row = await Order.select(Order.paid_at, Order.payment_intent).where(Order.id == order["id"]).first()
    assert row["paid_at"] is not None and row["payment_intent"] == event["data"]["object"]["payment_intent"]
    assert await LedgerEntry.count().where(LedgerEntry.kind == "capture") == 3
    assert [(e["event_id"], e["order_id"], e["outcome"]) for e in await PaymentEvent.select()] == [(event["id"], order["id"], "paid")]
    assert await ledger_ok()


async def test_async_payment_completed_unpaid_then_succeeded(client, world, stripe_on):
    order = await stripe_order(world)
    ref = order["payment"]["reference"]
    r = await deliver(client, stripe_on.event("checkout.session.completed", ref, payment_status="unpaid"))
    assert r.status_code == 200 and r.json()["outcome"] == "awaiting_payment"
    assert (await order_of(world.buyer, order["id"]))["status"] == "pending_payment"
    assert await budget(world.members[0]) == (7501, 0)
    r = await deliver(client, stripe_on.event("checkout.session.async_payment_succeeded", ref))
    assert r.status_code == 200 and r.json()["outcome"] == "paid"
    assert (await order_of(world.buyer, order["id"]))["status"] == "paid"
    assert await budget(world.members[0]) == (0, 7501)
    assert await ledger_ok()


@pytest.mark.parametrize("event_type", ["checkout.session.async_payment_failed", "checkout.session.expired"])
async def test_failed_or_expired_session_expires_the_order(client, world, stripe_on, event_type):
    order = await stripe_order(world)
    ref = order["payment"]["reference"]
    if event_type == "checkout.session.async_payment_failed":
        r = await deliver(client, stripe_on.event("checkout.session.completed", ref, payment_status="unpaid"))
        assert r.json()["outcome"] == "awaiting_payment"
    r = await deliver(client, stripe_on.event(event_type, ref))
    assert r.status_code == 200 and r.json()["outcome"] == "expired"
    assert (await order_of(world.buyer, order["id"]))["status"] == "expired"
    assert await stock(world.products["tea"]) == 100 and await stock(world.products["rice"]) == 5
    for member in world.members[:3]:
        assert await budget(member) == (0, 0)
    assert await ledger_ok()


async def test_the_same_event_twice_changes_nothing_the_second_time(client, world, stripe_on):
    order = await stripe_order(world)
    event = stripe_on.event("checkout.session.completed", order["payment"]["reference"])
    assert (await deliver(client, event)).json()["outcome"] == "paid"
    after_first = await snapshot()
    r = await deliver(client, event)
    assert r.status_code == 200 and r.json()["outcome"] == "duplicate"
    assert await snapshot() == after_first
    assert await PaymentEvent.count() == 1
    # and a burst of the same delivery at once: still handled exactly once
    second = await stripe_order(world, members=world.members[3:5], key="s-2")
    event = stripe_on.event("checkout.session.completed", second["payment"]["reference"])
    outcomes = [r.json()["outcome"] for r in await asyncio.gather(*[deliver(client, event) for _ in range(5)])]
    assert sorted(outcomes) == ["duplicate"] * 4 + ["paid"]
    assert await LedgerEntry.count().where((LedgerEntry.kind == "capture") & (LedgerEntry.order_id == second["id"])) == 2
    assert await ledger_ok()


async def test_another_event_for_a_paid_order_changes_nothing(client, world, stripe_on):
    order = await paid_stripe_order(client, world, stripe_on)
    before = await snapshot()
    for type_ in ("checkout.session.completed", "checkout.session.async_payment_succeeded", "checkout.session.async_payment_failed"):
        r = await deliver(client, stripe_on.event(type_, order["payment"]["reference"]))
        assert r.status_code == 200 and r.json()["outcome"] == "ignored: order is paid"
    assert await snapshot() == before
    assert await PaymentEvent.count() == 4
    assert await ledger_ok()


async def test_completed_then_expired_stays_paid(client, world, stripe_on):
    order = await paid_stripe_order(client, world, stripe_on)
    before = await snapshot()
    r = await deliver(client, stripe_on.event("checkout.session.expired", order["payment"]["reference"]))
    assert r.status_code == 200 and r.json()["outcome"] == "ignored: order is paid"
    assert await snapshot() == before
    assert (await order_of(world.buyer, order["id"]))["status"] == "paid"


async def test_expired_then_completed_marks_needs_refund_and_admin_refunds_it(client, world, stripe_on):
    order = await stripe_order(world)
    ref = order["payment"]["reference"]
    assert (await deliver(client, stripe_on.event("checkout.session.expired", ref))).json()["outcome"] == "expired"
    before = await snapshot()
    late = stripe_on.event("checkout.session.completed", ref)
    r = await deliver(client, late)
    assert r.status_code == 200 and r.json()["outcome"] == "late_payment"
    detail = await order_of(world.admin, order["id"])
    assert detail["status"] == "expired" and detail["needs_refund"] is True
    after = await snapshot()
    assert after[1:] == before[1:]  # no capture, no stock, no budget change
    assert await LedgerEntry.count().where(LedgerEntry.kind == "capture") == 0
    for member in world.members[:3]:
        assert await budget(member) == (0, 0)
    listed = (await world.admin.get("/api/admin/orders/needs-refund")).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == order["id"]
    assert_problem(await world.buyer.get("/api/admin/orders/needs-refund"), 403, "forbidden")
    # the admin gives the money back, whole; the quota was never spent, so budgets stay
    assert_problem(
        await world.admin.post(f"/api/orders/{order['id']}/refund", json={"lines": [{"line_id": order["lines"][0]["id"], "quantity": 1}]}),
        400,
        "validation_failed",
    )
    r = await world.admin.post(f"/api/orders/{order['id']}/refund", json={})
    assert r.status_code == 200, r.text
    assert r.json()["needs_refund"] is False and r.json()["status"] == "expired"
    [call] = stripe_on.calls("/v1/refunds")
    assert call.params["payment_intent"] == late["data"]["object"]["payment_intent"]
    assert call.params["amount"] == str(order["total_fen"])
    assert call.headers["idempotency-key"] == f"order-{order['id']}-refund-1"
    refunds = (await world.admin.get(f"/api/admin/orders/{order['id']}/refunds")).json()["items"]
    assert [(x["kind"], x["status"], x["amount_fen"]) for x in refunds] == [("late_payment", "succeeded", 22501)]
    assert (await world.admin.get("/api/admin/orders/needs-refund")).json()["total"] == 0
    for member in world.members[:3]:
        assert await budget(member) == (0, 0)
    assert_problem(await world.admin.post(f"/api/orders/{order['id']}/refund", json={}), 409, "invalid_state")
    assert await ledger_ok()


async def test_events_for_unknown_orders_and_other_types_are_recorded_and_ignored(client, world, stripe_on):
    order = await stripe_order(world)
    event = stripe_on.event("checkout.session.completed", order["payment"]["reference"])
    event["data"]["object"]["metadata"] = {"order_id": "424242"}
    event["data"]["object"]["client_reference_id"] = "424242"
    before = await snapshot()
    r = await deliver(client, event)
    assert r.status_code == 200 and r.json()["outcome"] == "unknown_order"
    other = {"id": "evt_other", "object": "event", "type": "customer.created", "data": {"object": {"id": "cus_1", "object": "customer"}}}
    r = await deliver(client, other)
    assert r.status_code == 200 and r.json()["outcome"] == "ignored"
    assert await snapshot() == before
    assert await PaymentEvent.count() == 2


@pytest.mark.parametrize(
    "case",
    ["wrong_secret", "tampered_body", "no_header", "garbage_header", "stale_timestamp", "future_but_unsigned", "no_secret_configured"],
)
async def test_bad_signatures_change_nothing(app, client, world, stripe_on, case):
    order = await stripe_order(world)
    event = stripe_on.event("checkout.session.completed", order["payment"]["reference"])
    payload = json.dumps(event)
    before = await snapshot()
    if case == "wrong_secret":
        r = await deliver(client, payload, secret="whsec_someone_else")
    elif case == "tampered_body":
        r = await deliver(client, payload.replace('"paid"', '"paid" '), signature=sign(payload))
    elif case == "no_header":
        r = await client.post(WEBHOOK, content=payload, headers={"content-type": "application/json"})
    elif case == "garbage_header":
        r = await deliver(client, payload, signature="t=abc,v1=zzz")
    elif case == "stale_timestamp":
        r = await deliver(client, payload, timestamp=int(time.time()) - 301)
    elif case == "future_but_unsigned":
        r = await deliver(client, payload, signature=f"t={int(time.time())},v0=" + "0" * 64)
    else:
        use_settings(app, stripe_webhook_secret="")
        r = await deliver(client, payload)
    assert_problem(r, 400, "bad_signature")
    assert await snapshot() == before and await PaymentEvent.count() == 0
    assert (await order_of(world.buyer, order["id"]))["status"] == "pending_payment"


async def test_a_signature_within_five_minutes_is_accepted(client, world, stripe_on):
    order = await stripe_order(world)
    r = await deliver(client, stripe_on.event("checkout.session.completed", order["payment"]["reference"]), timestamp=int(time.time()) - 240)
    assert r.status_code == 200 and r.json()["outcome"] == "paid"


@pytest.mark.parametrize(
    "payload",
    [
        "{not json",
        "[]",
        json.dumps({"object": "event", "type": "checkout.session.completed", "data": {"object": {}}}),  # no id
        json.dumps({"id": "evt_1", "object": "event", "type": "checkout.session.completed"}),  # no data
        json.dumps({"id": "evt_2", "object": "event", "type": "checkout.session.completed", "data": {"object": {"metadata": "x"}}}),
    ],
)
async def test_malformed_but_signed_payloads_are_refused(client, world, stripe_on, payload):
    await stripe_order(world)
    before = await snapshot()
    r = await deliver(client, payload)
    assert_problem(r, 400, "validation_failed")
    assert await snapshot() == before and await PaymentEvent.count() == 0


# --- bank transfer ----------------------------------------------------------------------


async def test_confirm_transfer(client, world, stripe_on, app):
    # a Stripe order cannot be confirmed as a transfer
    s_order = await stripe_order(world, members=world.members[3:5], key="by-card")
    app.state.settings = msgspec.structs.replace(app.state.settings, stripe_api_key="")
    r = await place(world.buyer, {"lines": [{"product_id": world.products["tea"], "quantity": 1}], "members": world.members[:3]}, key="by-bank")
    order = r.json()
    assert order["payment"]["provider"] == "transfer"
    url = f"/api/admin/orders/{order['id']}/confirm-transfer"
    reference = order["payment"]["reference"]
    before = await snapshot()
    body = assert_problem(await world.admin.post(url, json={"reference": "XFBF99999999"}), 400, "validation_failed")
    assert body["errors"][0]["field"] == "reference"
    assert_problem(await world.admin.post(url, json={"reference": reference, "amount": 1}), 400, "validation_failed")
    assert_problem(await world.buyer.post(url, json={"reference": reference}), 403, "forbidden")
    assert_problem(await world.admin.post("/api/admin/orders/424242/confirm-transfer", json={"reference": reference}), 404, "not_found")
    assert_problem(
        await world.admin.post(f"/api/admin/orders/{s_order['id']}/confirm-transfer", json={"reference": s_order["payment"]["reference"]}),
        409,
        "invalid_state",
    )
    assert await snapshot() == before
    r = await world.admin.post(url, json={"reference": f" {reference.lower()} "})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "paid"
    assert [await budget(m) for m in world.members[:3]] == [(0, 3334), (0, 3333), (0, 3333)]
    assert await stock(world.products["tea"]) == 100 - 1 - 2
    after = await snapshot()
    assert_problem(await world.admin.post(url, json={"reference": reference}), 409, "invalid_state")
    assert await snapshot() == after
    # a transfer for a cancelled order is still recorded: a late payment, to refund; no quota taken
    r = await place(world.buyer, {"lines": [{"product_id": world.products["rice"], "quantity": 1}], "members": world.members[:1]}, key="gone")
    gone = r.json()
    await world.buyer.post(f"/api/orders/{gone['id']}/cancel")
    before = await snapshot()
    r = await world.admin.post(f"/api/admin/orders/{gone['id']}/confirm-transfer", json={"reference": gone["payment"]["reference"]})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["needs_refund"]) == ("cancelled", True)
    after = await snapshot()
    assert after[1:] == before[1:]  # no capture, no stock, no budget change
    listed = (await world.admin.get("/api/admin/orders/needs-refund")).json()
    assert [o["id"] for o in listed["items"]] == [gone["id"]]
    # recorded once: the same confirmation again is refused and changes nothing
    assert_problem(await world.admin.post(f"/api/admin/orders/{gone['id']}/confirm-transfer", json={"reference": gone["payment"]["reference"]}), 409, "invalid_state")
    assert await snapshot() == after
    # the admin refunds it whole; the money is owed back to the branch, the quota never moved
    r = await world.admin.post(f"/api/orders/{gone['id']}/refund", json={})
    assert r.status_code == 200 and r.json()["needs_refund"] is False and r.json()["status"] == "cancelled"
    refunds = (await world.admin.get(f"/api/admin/orders/{gone['id']}/refunds")).json()["items"]
    assert [(x["kind"], x["status"], x["amount_fen"]) for x in refunds] == [("late_payment", "owed", 2501)]
    assert await budget(world.members[0]) == (0, 3334)
    assert await ledger_ok()


# --- refunds ------------------------------------------------------------------------------


async def paid_transfer_order(world, body, key="t-1"):
    r = await place(world.buyer, body, key=key)
    assert r.status_code == 201, r.text
    order = r.json()
    r = await world.admin.post(f"/api/admin/orders/{order['id']}/confirm-transfer", json={"reference": order["payment"]["reference"]})
    assert r.status_code == 200, r.text
    return r.json()


async def test_partial_and_full_refunds_go_back_pro_rata(world):
    a, b, c = world.members[:3]
    tea, rice = world.products["tea"], world.products["rice"]
    order = await paid_transfer_order(
        world,
        {
            "lines": [{"product_id": tea, "quantity": 1}, {"product_id": rice, "quantity": 2}],
            "allocations": [{"member_id": a, "amount_fen": 7001}, {"member_id": b, "amount_fen": 5000}, {"member_id": c, "amount_fen": 3001}],
        },
    )
    tea_line, rice_line = (l["id"] for l in order["lines"])
    url = f"/api/orders/{order['id']}/refund"
    assert [await budget(m) for m in (a, b, c)] == [(0, 7001), (0, 5000), (0, 3001)]
    # one bag of rice, 2501 fen over 7001/5000/3001 left: 1167.1, 833.6, 500.3 -> 1167, 834, 500
    r = await world.admin.post(url, json={"lines": [{"line_id": rice_line, "quantity": 1}]})
    assert r.status_code == 200, r.text
    o = r.json()
    assert o["status"] == "partially_refunded" and o["refunded_fen"] == 2501
    assert [(x["member_id"], x["refunded_fen"]) for x in o["allocations"]] == [(a, 1167), (b, 834), (c, 500)]
    assert [l["refunded_quantity"] for l in o["lines"]] == [0, 1]
    assert [await budget(m) for m in (a, b, c)] == [(0, 7001 - 1167), (0, 5000 - 834), (0, 3001 - 500)]
    # the tea, 10000 fen over 5834/4166/2501 left: 4666.8, 3332.5, 2000.6 -> 4667, 3332, 2001
    r = await world.admin.post(url, json={"lines": [{"line_id": tea_line, "quantity": 1}]})
    o = r.json()
    assert [(x["member_id"], x["refunded_fen"]) for x in o["allocations"]] == [(a, 1167 + 4667), (b, 834 + 3332), (c, 500 + 2001)]
    assert o["refunded_fen"] == 12501 and o["status"] == "partially_refunded"
    # more than is left on a line, and a line of another order, change nothing
    before = await snapshot()
    body = assert_problem(await world.admin.post(url, json={"lines": [{"line_id": rice_line, "quantity": 2}]}), 409, "invalid_state")
    assert body["lines"] == [{"line_id": rice_line, "requested": 2, "refundable": 1}]
    assert_problem(await world.admin.post(url, json={"lines": [{"line_id": tea_line, "quantity": 1}]}), 409, "invalid_state")
    other = await paid_transfer_order(world, {"lines": [{"product_id": tea, "quantity": 1}], "members": world.members[3:4]}, key="t-2")
    before = await snapshot()
    body = assert_problem(await world.admin.post(url, json={"lines": [{"line_id": other["lines"][0]["id"], "quantity": 1}]}), 400, "validation_failed")
    assert body["errors"][0]["field"] == "lines[0].line_id"
    assert_problem(await world.admin.post(url, json={"lines": [{"line_id": rice_line, "quantity": 1}, {"line_id": rice_line, "quantity": 1}]}), 400, "validation_failed")
    assert_problem(await world.admin.post(url, json={"lines": [{"line_id": rice_line, "quantity": 0}]}), 400, "validation_failed")
    assert_problem(await world.admin.post(url, json={"lines": []}), 400, "validation_failed")
    assert await snapshot() == before
    # everything left: exactly what each allocation still has
    r = await world.admin.post(url, json={})
    o = r.json()
    assert o["status"] == "refunded" and o["refunded_fen"] == o["total_fen"] == 15002
    assert [(x["member_id"], x["refunded_fen"]) for x in o["allocations"]] == [(a, 7001), (b, 5000), (c, 3001)]
    assert [await budget(m) for m in (a, b, c)] == [(0, 0), (0, 0), (0, 0)]
    # stock is not returned: the goods were delivered
    assert await stock(tea) == 100 - 2 and await stock(rice) == 5 - 2
    refunds = (await world.admin.get(f"/api/admin/orders/{order['id']}/refunds")).json()["items"]
    assert [(x["seq"], x["status"], x["amount_fen"]) for x in refunds] == [(1, "owed", 2501), (2, "owed", 10000), (3, "owed", 2501)]
    assert refunds[2]["shares"] == [{"member_id": a, "amount_fen": 1167}, {"member_id": b, "amount_fen": 834}, {"member_id": c, "amount_fen": 500}]
    assert sum(s["amount_fen"] for x in refunds for s in x["shares"]) == 15002
    entries = await LedgerEntry.select(LedgerEntry.member, LedgerEntry.amount_fen).where((LedgerEntry.kind == "refund") & (LedgerEntry.order_id == order["id"]))
    assert sum(e["amount_fen"] for e in entries) == 15002 and len(entries) == 9
    assert_problem(await world.admin.post(url, json={}), 409, "invalid_state")
    assert await ledger_ok()


async def test_refund_refusals(world, make_user):
    unpaid = (await place(world.buyer, {"lines": [{"product_id": world.products["tea"], "quantity": 1}], "members": world.members[:1]})).json()
    before = await snapshot()
    assert_problem(await world.admin.post(f"/api/orders/{unpaid['id']}/refund", json={}), 409, "invalid_state")
    assert_problem(await world.admin.post("/api/orders/424242/refund", json={}), 404, "not_found")
    paid = await paid_transfer_order(world, {"lines": [{"product_id": world.products["rice"], "quantity": 1}], "members": world.members[1:2]}, key="p")
    before = await snapshot()
    for api in (world.buyer, world.auditor, world.supplier_user):
        assert_problem(await api.post(f"/api/orders/{paid['id']}/refund", json={}), 403, "forbidden")
    assert_problem(await world.admin.post(f"/api/orders/{paid['id']}/refund", json={"everything": True}), 400, "validation_failed")
    assert await snapshot() == before and await Refund.count() == 0


async def test_stripe_refund_goes_through_the_refund_api(client, world, stripe_on):
    order = await paid_stripe_order(client, world, stripe_on)
    pi = (await Order.select(Order.payment_intent).where(Order.id == order["id"]).first())["payment_intent"]
    r = await world.admin.post(f"/api/orders/{order['id']}/refund", json={"lines": [{"line_id": order["lines"][0]["id"], "quantity": 1}]})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "partially_refunded" and r.json()["refunded_fen"] == 10000
    [call] = stripe_on.calls("/v1/refunds")
    assert call.params["payment_intent"] == pi and call.params["amount"] == "10000"
    assert call.headers["idempotency-key"] == f"order-{order['id']}-refund-1"
    # 10000 over 7501/7500/7500: 3333.6, 3333.1, 3333.1 -> 3334, 3333, 3333
    assert [x["refunded_fen"] for x in r.json()["allocations"]] == [3334, 3333, 3333]
    assert [await budget(m) for m in world.members[:3]] == [(0, 7501 - 3334), (0, 7500 - 3333), (0, 7500 - 3333)]
    [refund] = (await world.admin.get(f"/api/admin/orders/{order['id']}/refunds")).json()["items"]
    assert refund["status"] == "succeeded" and refund["provider_reference"] in stripe_on.refunds
    r = await world.admin.post(f"/api/orders/{order['id']}/refund", json={})
    assert r.json()["status"] == "refunded"
    assert stripe_on.calls("/v1/refunds")[1].headers["idempotency-key"] == f"order-{order['id']}-refund-2"
    assert stripe_on.payment_intents[pi]["refunded"] == order["total_fen"]
    assert await ledger_ok()


async def test_stripe_refusing_a_refund_changes_nothing(client, world, stripe_on):
    order = await paid_stripe_order(client, world, stripe_on)
    url = f"/api/orders/{order['id']}/refund"
    before = await snapshot()
    stripe_on.refuse_refunds = True
    body = assert_problem(await world.admin.post(url, json={}), 503, "payment_unavailable")
    assert body["refund_status"] == "failed"
    assert await snapshot() == before
    [failed] = (await world.admin.get(f"/api/admin/orders/{order['id']}/refunds")).json()["items"]
    assert failed["status"] == "failed" and "refused" in failed["error"]
    # asked again once Stripe agrees: a new refund with its own key
    stripe_on.refuse_refunds = False
    r = await world.admin.post(url, json={})
    assert r.status_code == 200 and r.json()["status"] == "refunded"
    assert [c.headers["idempotency-key"] for c in stripe_on.calls("/v1/refunds")] == [f"order-{order['id']}-refund-1", f"order-{order['id']}-refund-2"]
    assert [await budget(m) for m in world.members[:3]] == [(0, 0)] * 3
    assert await ledger_ok()


@pytest.mark.parametrize("outage", ["http_500", "connection_refused"])
async def test_stripe_unreachable_leaves_the_refund_pending_then_resumes_it(app, client, world, stripe_on, outage):
    order = await paid_stripe_order(client, world, stripe_on)
    url = f"/api/orders/{order['id']}/refund"
    part = {"lines": [{"line_id": order["lines"][1]["id"], "quantity": 1}]}
    before = await snapshot()
    base = app.state.settings
    if outage == "http_500":
        stripe_on.fail_with = 500
    else:
        use_settings(app, stripe_api_base=f"http://127.0.0.1:{free_port()}")
    body = assert_problem(await world.admin.post(url, json=part), 503, "payment_unavailable")
    assert body["refund_status"] == "pending"
    assert await snapshot() == before  # budgets, lines, allocations and the order as they were
    [pending] = (await world.admin.get(f"/api/admin/orders/{order['id']}/refunds")).json()["items"]
    assert pending["status"] == "pending" and pending["amount_fen"] == 2501 and pending["error"]
    # while it is pending, no other refund of the order may start
    stripe_on.fail_with = None
    app.state.settings = base
    body = assert_problem(await world.admin.post(url, json={}), 409, "invalid_state")
    assert body["refund_id"] == pending["id"]
    assert await snapshot() == before
    # the same request again resumes it, with the same idempotency key
    r = await world.admin.post(url, json=part)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "partially_refunded" and r.json()["refunded_fen"] == 2501
    keys = [c.headers["idempotency-key"] for c in stripe_on.calls("/v1/refunds")]
    assert set(keys) == {f"order-{order['id']}-refund-1"}
    assert len(stripe_on.refunds) == 1
    [done] = (await world.admin.get(f"/api/admin/orders/{order['id']}/refunds")).json()["items"]
    assert done["status"] == "succeeded" and done["error"] == ""
    assert sum(x["refunded_fen"] for x in r.json()["allocations"]) == 2501
    assert await ledger_ok()


async def test_refund_applied_once_when_resumed_concurrently(client, world, stripe_on):
    order = await paid_stripe_order(client, world, stripe_on)
    url = f"/api/orders/{order['id']}/refund"
    stripe_on.fail_with = 503
    assert_problem(await world.admin.post(url, json={}), 503, "payment_unavailable")
    stripe_on.fail_with = None
    results = await asyncio.gather(*[world.admin.post(url, json={}) for _ in range(4)])
    # each repeat either completes the pending refund (200) or, once it is applied, finds
    # nothing left to refund (409); none refunds a second time
    assert {r.status_code for r in results} <= {200, 409} and 200 in {r.status_code for r in results}, [r.text for r in results]
    assert all(r.json()["status"] == "refunded" for r in results if r.status_code == 200)
    assert all(r.json()["code"] == "invalid_state" for r in results if r.status_code == 409)
    assert (await order_of(world.admin, order["id"]))["status"] == "refunded"
    assert len(stripe_on.refunds) == 1
    assert await LedgerEntry.count().where(LedgerEntry.kind == "refund") == 3
    assert [await budget(m) for m in world.members[:3]] == [(0, 0)] * 3
    assert await ledger_ok()


# --- the split itself -------------------------------------------------------------------


def test_pro_rata_examples():
    assert pro_rata(2501, [7001, 5000, 3001]) == [1167, 834, 500]
    assert pro_rata(1, [5, 5]) == [1, 0]  # a tie goes to the earlier allocation
    assert pro_rata(2, [1, 1, 1]) == [1, 1, 0]
    assert pro_rata(10, [3, 0, 7]) == [3, 0, 7]  # everything left: exactly what each has
    assert pro_rata(0, [3, 4]) == [0, 0]
    with pytest.raises(ValueError):
        pro_rata(8, [3, 4])


@given(st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=30).filter(any), st.data())
def test_pro_rata_adds_up_and_never_exceeds_what_is_left(remaining, data):
    amount = data.draw(st.integers(min_value=0, max_value=sum(remaining)))
    shares = pro_rata(amount, remaining)
    assert sum(shares) == amount
    assert all(0 <= s <= r for s, r in zip(shares, remaining))
    # each share is its exact quota rounded down or up
    total = sum(remaining)
    assert all(amount * r // total <= s <= -(-amount * r // total) for s, r in zip(shares, remaining))


# --- real concurrency: the real server, two workers, racing deliveries ------------------------


@pytest.fixture(scope="module")
def stripe_server(stripe_stub):
    env = {"STRIPE_API_KEY": API_KEY, "STRIPE_API_BASE": stripe_stub.url, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}
    with running_server(workers=2, extra_env=env) as url:
        yield url


@pytest.mark.slow_suite
async def test_racing_deliveries_across_workers_settle_each_order_once(app, stripe_server, stripe_stub, make_user, admin):
    stripe_stub.reset()
    world = await build_world(make_user, admin, members=2)
    auth = {"Authorization": f"Bearer {world.buyer.token}"}
    body = {"lines": [{"product_id": world.products["tea"], "quantity": 1}], "members": world.members}
    async with httpx.AsyncClient(base_url=stripe_server, timeout=120) as c:
        placed = []
        for i in range(4):
            r = await c.post("/api/orders", json=body, headers={**auth, "Idempotency-Key": f"race-{i}"})
            assert r.status_code == 201, r.text
            placed.append(r.json())
        # every order gets its payment and its session's expiry, each delivered three times, all at once
        payloads = []
        for order in placed:
            for type_ in ("checkout.session.completed", "checkout.session.expired"):
                payloads += [json.dumps(stripe_stub.event(type_, order["payment"]["reference"]))] * 3
        random.Random(4).shuffle(payloads)
        responses = await asyncio.gather(
            *[c.post(WEBHOOK, content=p, headers={"Stripe-Signature": sign(p), "content-type": "application/json"}) for p in payloads]
        )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200][:3]
    outcomes = [r.json()["outcome"] for r in responses]
    assert outcomes.count("duplicate") == 16  # 8 events, each handled once
    assert await PaymentEvent.count() == 8
    paid = 0
    for order in placed:
        row = await Order.select().where(Order.id == order["id"]).first()
        captures = await LedgerEntry.count().where((LedgerEntry.order_id == order["id"]) & (LedgerEntry.kind == "capture"))
        releases = await LedgerEntry.count().where((LedgerEntry.order_id == order["id"]) & (LedgerEntry.kind == "release"))
        if row["status"] == "paid":  # paid first; the expiry came after and changed nothing
            assert (captures, releases, row["needs_refund"]) == (2, 0, False)
            paid += 1
        else:  # expired first; the payment came late and waits for an admin's refund
            assert row["status"] == "expired" and (captures, releases, row["needs_refund"]) == (0, 2, True)
    for member in world.members:
        assert await budget(member) == (0, paid * 5000)
    assert await stock(world.products["tea"]) == 100 - paid
    assert await ledger_ok()
