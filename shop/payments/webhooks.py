"""Stripe webhook events -> order transitions.

Events arrive at least once and in any order. Each event is handled in one transaction:
the order row is locked first (`shop/orders/lifecycle.py`'s lock order: order, products,
budgets), then the event id is inserted into `PaymentEvent` with ON CONFLICT DO NOTHING —
the unique constraint, not a lookup, decides that an event is new — and only a new
event may change anything. A transition that does not fit the order's state is a no-op
that is recorded and answered 200, with one exception: money that arrives for an order
we no longer hold (expired or cancelled) marks the order `needs_refund` for the admins.

| event | pending_payment | paid / refunded | expired / cancelled |
|---|---|---|---|
| checkout.session.completed (payment_status paid), async_payment_succeeded | paid, holds captured | no-op | needs_refund |
| checkout.session.completed (unpaid: an async method still running) | no-op | no-op | no-op |
| checkout.session.expired, async_payment_failed | expired, stock and holds released | no-op | no-op |

An event whose session is not the order's own Checkout Session changes nothing (`other_session`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

import msgspec

from common.errors import DomainError
from common.schemas import ID_MAX
from shop.orders import cancellation, lifecycle
from shop.orders.states import OrderAction, OrderStatus
from shop.orders.tables import Order
from shop.payments.settle import pay, record_late_payment
from shop.payments.tables import PaymentEvent

logger = logging.getLogger("shop.payments")

TOLERANCE_SECONDS = 300  # a signature older than five minutes is refused (replays)
PAID = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
FAILED = ("checkout.session.expired", "checkout.session.async_payment_failed")


class _Data(msgspec.Struct):
    object: dict[str, Any]


class StripeEvent(msgspec.Struct):
    """The part of a Stripe event the shop reads (Stripe adds fields freely: they are ignored)."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    data: _Data


class CheckoutSession(msgspec.Struct):
    id: str = ""
    client_reference_id: str | None = None
    metadata: dict[str, str] | None = None
    payment_status: str = ""
    payment_intent: str | dict[str, Any] | None = None

    def order_id(self) -> int | None:
        raw = (self.metadata or {}).get("order_id") or self.client_reference_id or ""
        try:
            value = int(raw)
        except ValueError:
            return None
        return value if 1 <= value <= ID_MAX else None

    def payment_intent_id(self) -> str:
        pi = self.payment_intent
        if isinstance(pi, dict):
            pi = pi.get("id")
        return pi if isinstance(pi, str) else ""


def verify(payload: bytes, signature: str | None, secret: str) -> StripeEvent:
    """Check `Stripe-Signature` over the raw body with the library, then read the event.

    400 `bad_signature` (nothing changes) when it does not verify, is older than the
    tolerance or no secret is configured; 400 `validation_failed` for a signed body that
    is not a Stripe event."""
    if not secret:
        logger.error("a Stripe webhook arrived but STRIPE_WEBHOOK_SECRET is not set; refusing it")
        raise DomainError("bad_signature", "webhook signatures cannot be verified: no webhook secret is configured")
    import stripe  # on first use: see shop.payments.stripe

    try:
        stripe.Webhook.construct_event(payload, signature, secret, tolerance=TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as exc:
        logger.warning("Stripe webhook refused: %s", exc.user_message or exc)
        raise DomainError("bad_signature", "the Stripe-Signature header does not verify") from exc
    except UnicodeDecodeError as exc:  # not even text: cannot have been signed by Stripe
        raise DomainError("bad_signature", "the body is not UTF-8 text") from exc
    except Exception as exc:  # the signature verified, but the body is not JSON / not an event
        raise _malformed(str(exc) or type(exc).__name__) from exc
    try:
        return msgspec.json.decode(payload, type=StripeEvent)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _malformed(str(exc)) from exc


def _malformed(message: str) -> DomainError:
    return DomainError(
        "validation_failed", f"the webhook body is not a Stripe event: {message}", errors=[{"field": "body", "message": message}]
    )


async def handle(event: StripeEvent, now: datetime) -> str:
    """Apply one verified event; returns what became of it (also kept on PaymentEvent)."""
    session: CheckoutSession | None = None
    if event.type in PAID or event.type in FAILED:
        try:
            session = msgspec.convert(event.data.object, CheckoutSession)
        except msgspec.ValidationError as exc:
            raise _malformed(f"data.object: {exc}") from exc
    order_id = session.order_id() if session else None
    async with Order._meta.db.transaction():
        order = await lifecycle.lock(order_id) if order_id else None
        recorded = (
            await PaymentEvent.insert(
                PaymentEvent(event_id=event.id, type=event.type, order_id=order_id, received_at=now)
            )
            .on_conflict(target=PaymentEvent.event_id, action="DO NOTHING")
            .returning(PaymentEvent.id)
        )
        if not recorded:
            logger.info("Stripe event %s (%s) was already handled", event.id, event.type)
            return "duplicate"
        outcome = await _transition(event, session, order, now)
        await PaymentEvent.update({PaymentEvent.outcome: outcome}).where(PaymentEvent.id == recorded[0]["id"])
    logger.info("Stripe event %s (%s) for order %s: %s", event.id, event.type, order_id, outcome)
    return outcome


async def _transition(event: StripeEvent, session: CheckoutSession | None, order: dict | None, now: datetime) -> str:
    if session is None:
        return "ignored"
    if order is None:
        logger.warning("Stripe event %s (%s) names no order we know (%r)", event.id, event.type, session.order_id())
        return "unknown_order"
    if order["provider"] != "stripe":
        logger.warning("Stripe event %s for order %s, which is paid by %s", event.id, order["id"], order["provider"])
        return "not_a_stripe_order"
    if session.id and order["payment_reference"] and session.id != order["payment_reference"]:
        # not the session the order is paid through: recorded, and nothing moves
        logger.warning("Stripe event %s: session %s is not order %s's session %s", event.id, session.id, order["id"], order["payment_reference"])
        return "other_session"
    status = order["status"]
    if event.type in PAID:
        if event.type == "checkout.session.completed" and session.payment_status != "paid":
            return "awaiting_payment"  # an asynchronous method: async_payment_succeeded/failed follows
        if lifecycle.allows(status, OrderAction.paid):
            await pay(order, OrderAction.paid, now, detail=session.id, payment_intent=session.payment_intent_id())
            return "paid"
        if lifecycle.allows(status, OrderAction.late_payment):
            # Money arrived for an order that no longer holds stock or quota: an admin refunds it.
            await record_late_payment(order, now, payment_intent=session.payment_intent_id(), detail=session.id)
            return "late_payment"
        return f"ignored: order is {status}"
    # FAILED: the Checkout Session can no longer be paid
    if status == OrderStatus.pending_payment:
        await cancellation.close(order["id"], OrderAction.expired, now, reason=event.type)
        return "expired"
    return f"ignored: order is {status}"
