"""The money path's gaps (issue 9): a cancelled Stripe order can no longer be paid, an
order committed without a way to pay gets one, a refund is made once per
Idempotency-Key, and a webhook for another session moves nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec

from budgets.tables import LedgerEntry
from shop.jobs import tick
from shop.orders.placement import place_order
from shop.orders.schemas import OrderIn
from shop.orders.tables import Order
from shop.payments import provider_for
from tests.conftest import assert_problem
from tests.test_payments import (  # noqa: F401  (fixtures)
    budget,
    deliver,
    ledger_ok,
    order_of,
    paid_stripe_order,
    place,
    snapshot,
    stock,
    stripe_on,
    stripe_order,
    stripe_stub,
    world,
)

# --- 2. a cancelled (or expired) Stripe order cannot be paid any more -------------------


async def test_cancelling_a_stripe_order_expires_its_checkout_session(client, world, stripe_on):
    order = await stripe_order(world)
    session = order["payment"]["reference"]
    r = await world.buyer.post(f"/api/orders/{order['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    [call] = stripe_on.calls(f"/v1/checkout/sessions/{session}/expire")
    assert call.method == "POST"
    assert stripe_on.sessions[session]["status"] == "expired"


async def test_expiry_by_the_shops_job_expires_the_session_too(app, world, stripe_on):
    order = await stripe_order(world)
    session = order["payment"]["reference"]
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    assert (await tick(later, app.state.settings))["expired"] == 1
    assert stripe_on.sessions[session]["status"] == "expired"
    assert (await order_of(world.buyer, order["id"]))["status"] == "expired"


async def test_a_cancel_stands_when_stripe_cannot_expire_the_session(client, world, stripe_on):
    """The cancel has committed; the session stays payable, so a payment that still
    comes is a late payment for an admin to refund, and no quota is taken."""
    order = await stripe_order(world)
    stripe_on.fail_with = 500
    r = await world.buyer.post(f"/api/orders/{order['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    stripe_on.fail_with = None
    r = await deliver(client, stripe_on.event("checkout.session.completed", order["payment"]["reference"]))
    assert r.json()["outcome"] == "late_payment"
    assert (await order_of(world.admin, order["id"]))["needs_refund"] is True
    assert await budget(world.members[0]) == (0, 0)


# --- 3. an order committed without a way to pay -------------------------------------------


def _body(world) -> dict:
    return {"lines": [{"product_id": world.products["tea"], "quantity": 1}], "members": world.members[:2]}


async def _committed_without_payment(app, world, key: str) -> int:
    """What a worker that died between the commit and the Checkout Session leaves behind."""
    order_id, created = await place_order(
        branch_id=world.buyer.user["union_id"],
        user_id=world.buyer.user["id"],
        body=msgspec.convert(_body(world), OrderIn),
        key=key,
        now=datetime.now(timezone.utc),
        provider=provider_for(app.state.settings),
    )
    assert created
    row = await Order.select(Order.payment_url, Order.payment_reference).where(Order.id == order_id).first()
    assert row == {"payment_url": "", "payment_reference": ""}
    return order_id


async def test_replaying_the_request_starts_the_payment_it_never_got(app, world, stripe_on):
    order_id = await _committed_without_payment(app, world, "crash-1")
    r = await place(world.buyer, _body(world), key="crash-1")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == order_id and r.json()["status"] == "pending_payment"
    assert r.json()["payment"]["url"].startswith(stripe_on.url)
    assert r.json()["payment"]["reference"] in stripe_on.sessions
    # a further replay makes no second session
    again = await place(world.buyer, _body(world), key="crash-1")
    assert again.json()["payment"] == r.json()["payment"]
    assert len(stripe_on.calls("/v1/checkout/sessions")) == 1


async def test_the_periodic_job_starts_or_cancels_stuck_orders(app, world, stripe_on):
    started = await _committed_without_payment(app, world, "crash-2")
    soon = datetime.now(timezone.utc) + timedelta(seconds=10)
    assert (await tick(soon, app.state.settings))["payments_resumed"] == 0  # still within its grace
    later = datetime.now(timezone.utc) + timedelta(minutes=5)
    assert (await tick(later, app.state.settings))["payments_resumed"] == 1
    assert (await order_of(world.buyer, started))["payment"]["url"]
    # with Stripe still down, the stuck order is cancelled and nothing stays held
    stuck = await _committed_without_payment(app, world, "crash-3")
    stripe_on.fail_with = 503
    await tick(later, app.state.settings)
    assert (await order_of(world.buyer, stuck))["status"] == "cancelled"
    stripe_on.fail_with = None
    assert await stock(world.products["tea"]) == 100 - 1
    assert await ledger_ok()


# --- 4. a refund is made once per Idempotency-Key -------------------------------------------


async def test_the_same_refund_request_twice_refunds_once(client, world, stripe_on):
    order = await paid_stripe_order(client, world, stripe_on)
    url = f"/api/orders/{order['id']}/refund"
    line = order["lines"][0]["id"]
    body = {"lines": [{"line_id": line, "quantity": 1}]}
    first = await world.admin.post(url, json=body, headers={"Idempotency-Key": "rf-1"})
    assert first.status_code == 200 and first.json()["status"] == "partially_refunded"
    after = await snapshot()
    again = await world.admin.post(url, json=body, headers={"Idempotency-Key": "rf-1"})
    assert again.status_code == 200 and again.json() == first.json()
    assert await snapshot() == after
    assert len(stripe_on.calls("/v1/refunds")) == 1
    assert await LedgerEntry.count().where(LedgerEntry.kind == "refund") == 3
    # the same key with another body is refused and moves nothing
    other = {"lines": [{"line_id": line, "quantity": 2}]}
    assert_problem(await world.admin.post(url, json=other, headers={"Idempotency-Key": "rf-1"}), 409, "idempotency_conflict")
    assert await snapshot() == after
    # another key is another refund
    r = await world.admin.post(url, json=body, headers={"Idempotency-Key": "rf-2"})
    assert r.status_code == 200 and r.json()["refunded_fen"] == 2 * 10000
    # keys are checked like the order's
    assert_problem(await world.admin.post(url, json=body, headers={"Idempotency-Key": "k" * 65}), 400, "validation_failed")
    assert await ledger_ok()


async def test_a_refused_refund_repeated_with_its_key_is_the_same_refusal(client, world, stripe_on):
    order = await paid_stripe_order(client, world, stripe_on)
    url = f"/api/orders/{order['id']}/refund"
    stripe_on.refuse_refunds = True
    assert_problem(await world.admin.post(url, json={}, headers={"Idempotency-Key": "no"}), 503, "payment_unavailable")
    stripe_on.refuse_refunds = False
    body = assert_problem(await world.admin.post(url, json={}, headers={"Idempotency-Key": "no"}), 503, "payment_unavailable")
    assert body["refund_status"] == "failed"
    assert len(stripe_on.calls("/v1/refunds")) == 1
    assert (await order_of(world.admin, order["id"]))["status"] == "paid"


# --- 6. a webhook for another session ------------------------------------------------------


async def test_an_event_for_another_session_moves_nothing(client, world, stripe_on):
    order = await stripe_order(world)
    other = await stripe_order(world, members=world.members[3:5], key="s-2")
    event = stripe_on.event("checkout.session.completed", other["payment"]["reference"])
    event["data"]["object"]["metadata"] = {"order_id": str(order["id"])}  # names the first order
    event["data"]["object"]["client_reference_id"] = str(order["id"])
    before = await snapshot()
    r = await deliver(client, event)
    assert r.status_code == 200 and r.json()["outcome"] == "other_session"
    assert await snapshot() == before
    assert (await order_of(world.buyer, order["id"]))["status"] == "pending_payment"
