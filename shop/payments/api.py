"""Payment endpoints: Stripe's webhook and an admin's confirmation of a bank transfer."""

from __future__ import annotations

from litestar import Controller, Request, post
from litestar.params import JSONBody

from common.schemas import PathId
from shop.orders import queries
from shop.orders.schemas import OrderOut
from shop.payments import transfer, webhooks
from shop.payments.schemas import ConfirmTransferIn, WebhookOut
from shop.settings import Settings


class StripeWebhookController(Controller):
    """Stripe calls this (no login): the signature over the raw body is the authentication."""

    path = "/api/payments/stripe"
    opt = {"exclude_from_auth": True}

    @post("/webhook", status_code=200, opt={"problems": (400,)})  # bad_signature
    async def webhook(self, request: Request) -> WebhookOut:
        settings: Settings = request.app.state.settings
        event = webhooks.verify(await request.body(), request.headers.get("stripe-signature"), settings.stripe_webhook_secret)
        return WebhookOut(received=True, outcome=await webhooks.handle(event, request.app.state.clock()))


class TransferController(Controller):
    path = "/api/admin/orders"

    @post("/{order_id:int}/confirm-transfer", status_code=200)
    async def confirm_transfer(self, request: Request, order_id: PathId, data: JSONBody[ConfirmTransferIn]) -> OrderOut:
        await transfer.confirm_transfer(order_id, data.reference, actor_id=request.user.id, now=request.app.state.clock())
        return await queries.get_order(order_id, request.user)


ROUTES = {
    "public": [StripeWebhookController],
    "admin": [TransferController],
}
