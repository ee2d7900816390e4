"""Stripe Checkout: an order is paid through a Checkout Session and refunded through
Stripe's Refund API on the session's PaymentIntent.

Everything here talks to Stripe over the network and is therefore never called inside a
database transaction. Every request carries an idempotency key derived from the order,
so that a retry (ours or the library's) never creates a second session or refund."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from shop.payments.provider import PaymentProviderError, PaymentStart, RefundResult
from shop.settings import Settings

if TYPE_CHECKING:
    import stripe

logger = logging.getLogger("shop.payments")
T = TypeVar("T")

# A Checkout Session lives 30 minutes to 24 hours from its creation. The session is made
# a moment after the order (once its transaction committed), so the hold keeps a minute
# of margin at the short end; at the long end it is made a moment later, so 24 h fits.
MIN_HOLD = timedelta(minutes=31)
MAX_HOLD = timedelta(hours=24)
# The library retries connection errors, 409s and 5xx (unless Stripe says not to) with
# the same idempotency key, which makes the retries safe.
NETWORK_RETRIES = 2


def _failure(exc: stripe.StripeError, what: str) -> PaymentProviderError:
    """What the library raised, as the seam's error: no answer, or a 5xx, leaves the
    outcome unknown (Stripe may have done it); a 4xx is a refusal (nothing happened)."""
    import stripe  # already loaded: only `_call` gets here

    if isinstance(exc, stripe.APIConnectionError):
        return PaymentProviderError(f"Stripe could not be reached: {exc.user_message or exc}", definite=False)
    definite = exc.http_status is not None and exc.http_status < 500
    return PaymentProviderError(
        f"Stripe {'refused' if definite else 'failed on'} {what} (HTTP {exc.http_status}): {exc.user_message or exc}",
        definite=definite,
    )


class StripeProvider:
    name = "stripe"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def hold_time(self) -> timedelta:
        return min(max(timedelta(minutes=self.settings.hold_minutes), MIN_HOLD), MAX_HOLD)

    def reference_for(self, order_id: int) -> str:
        return ""  # the Checkout Session's id, known once start() has made it

    async def _call(self, what: str, call: Callable[[stripe.StripeClient], Awaitable[T]]) -> T:
        """One call to Stripe with a client of its own (the `*_async` methods go through
        httpx, whose connection pool belongs to the running event loop, so it is closed
        after use); what the library raises comes out as the seam's error. The library
        (with requests and httpx, ~12 MiB a worker) is imported here, on first use, so that
        a shop taking bank transfers only never loads it."""
        import stripe

        http_client = stripe.HTTPXClient()
        base = {"api": self.settings.stripe_api_base} if self.settings.stripe_api_base else None
        client = stripe.StripeClient(
            self.settings.stripe_api_key,
            base_addresses=base,  # type: ignore[arg-type]
            http_client=http_client,
            max_network_retries=NETWORK_RETRIES,
        )
        try:
            return await call(client)
        except stripe.StripeError as exc:
            raise _failure(exc, what) from exc
        finally:
            await http_client.close_async()

    def checkout_params(self, order_id: int, lines: list[dict], expires_at: datetime) -> dict[str, Any]:
        base = self.settings.public_url.rstrip("/")
        return {
            "mode": "payment",
            "currency": "cny",
            "line_items": [
                {
                    "price_data": {
                        "currency": "cny",
                        "unit_amount": line["unit_price_fen"],
                        "product_data": {"name": line["title"]},
                    },
                    "quantity": line["quantity"],
                }
                for line in lines
            ],
            "client_reference_id": str(order_id),
            "metadata": {"order_id": str(order_id)},
            "payment_intent_data": {"metadata": {"order_id": str(order_id)}},
            "expires_at": int(expires_at.timestamp()),
            "success_url": f"{base}/orders/{order_id}?paid=1",
            "cancel_url": f"{base}/orders/{order_id}?cancelled=1",
        }

    async def start(self, order_id: int, lines: list[dict], expires_at: datetime) -> PaymentStart:
        session = await self._call(
            "the Checkout Session",
            lambda client: client.v1.checkout.sessions.create_async(
                self.checkout_params(order_id, lines, expires_at),  # type: ignore[arg-type]
                options={"idempotency_key": f"order-{order_id}-checkout"},
            ),
        )
        if not session.id or not session.url:
            raise PaymentProviderError(f"Stripe answered a Checkout Session without id or url for order {order_id}", definite=True)
        return PaymentStart(reference=session.id, url=session.url)

    async def cancel(self, order: dict) -> None:
        """Expire the order's Checkout Session: the page the buyer may still have open can
        no longer take the payment."""
        session_id = order.get("payment_reference") or ""
        if not session_id:
            return
        await self._call(
            f"expiring Checkout Session {session_id}", lambda client: client.v1.checkout.sessions.expire_async(session_id)
        )
        logger.info("Stripe Checkout Session %s of order %s expired", session_id, order["id"])

    async def refund(self, order: dict, amount_fen: int, idempotency_key: str) -> RefundResult:
        payment_intent = order.get("payment_intent") or ""
        if not payment_intent:
            raise PaymentProviderError(f"order {order['id']} has no Stripe PaymentIntent to refund", definite=True)
        if not self.settings.stripe_api_key:
            raise PaymentProviderError("STRIPE_API_KEY is not set: Stripe payments cannot be refunded", definite=True)
        refund = await self._call(
            "the refund",
            lambda client: client.v1.refunds.create_async(
                {
                    "payment_intent": payment_intent,
                    "amount": amount_fen,
                    "metadata": {"order_id": str(order["id"]), "idempotency_key": idempotency_key},
                },
                options={"idempotency_key": idempotency_key},
            ),
        )
        if refund.status in ("failed", "canceled"):
            raise PaymentProviderError(f"Stripe refund {refund.id} is {refund.status}", definite=True)
        logger.info("Stripe refund %s of %s fen for order %s: %s", refund.id, amount_fen, order["id"], refund.status)
        return RefundResult(status="succeeded", reference=refund.id)
