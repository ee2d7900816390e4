"""The shop's own endpoints: operations, login, the caller, users, orders, payments and refunds."""

from __future__ import annotations

import logging

from datetime import datetime
from typing import Annotated, Literal

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from budgets.tables import Union
from catalog.tables import Supplier
from shop import auth
from shop import refunds
from shop import service as orders
from shop import stripe_events
from shop.payments import provider_for
from shop.errors import ShopError, problem
from shop.schemas import (
    ConfirmTransferIn,
    LoginIn,
    LoginOut,
    OrderIn,
    OrderList,
    OrderOut,
    RefundIn,
    RefundList,
    UserIn,
    UserOut,
    WebhookOut,
)
from shop.settings import Settings

logger = logging.getLogger("shop")


def user_out(principal: auth.Principal) -> UserOut:
    return UserOut(
        id=principal.id,
        username=principal.username,
        role=principal.role,
        union_id=principal.union_id,
        supplier_id=principal.supplier_id,
    )


class OperationsController(Controller):
    opt = {"exclude_from_auth": True}

    @get("/health", sync_to_thread=False)
    def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready")
    async def ready(self) -> dict[str, str]:
        try:
            await Union.count()
        except Exception as exc:  # the database does not answer
            logger.warning("readiness check failed: %r", exc)
            raise problem("unavailable", "the database is not reachable") from exc
        return {"status": "ready"}


class LoginController(Controller):
    path = "/api/auth"
    opt = {"exclude_from_auth": True}

    @post("/login", status_code=200)
    async def login(self, request: Request, data: JSONBody[LoginIn]) -> LoginOut:
        principal = await auth.login_attempt(request, data.username, data.password)
        token = request.app.state.jwt_auth.create_token(identifier=str(principal.id))
        return LoginOut(token=token, user=user_out(principal))


class MeController(Controller):
    path = "/api/me"

    @get("/")
    async def me(self, request: Request) -> UserOut:
        return user_out(request.user)


class AdminUserController(Controller):
    path = "/api/admin/users"

    @post("/")
    async def create(self, data: JSONBody[UserIn]) -> UserOut:
        if data.union_id is not None and not await Union.exists().where(Union.id == data.union_id):
            raise ShopError("not_found", f"union {data.union_id} does not exist")
        if data.supplier_id is not None and not await Supplier.exists().where(Supplier.id == data.supplier_id):
            raise ShopError("not_found", f"supplier {data.supplier_id} does not exist")
        principal = await auth.create_user(
            data.username,
            data.password,
            data.role,
            union_id=data.union_id,
            supplier_id=data.supplier_id,
            email=data.email,
        )
        return user_out(principal)


def _now(request: Request) -> datetime:
    """The app's clock (injectable: tests set app.state.clock)."""
    return request.app.state.clock()


Limit = Annotated[int, QueryParameter(ge=1, le=200)]
Offset = Annotated[int, QueryParameter(ge=0)]
OrderStatus = Literal["pending_payment", "paid", "cancelled", "expired", "partially_refunded", "refunded"]


class OrderController(Controller):
    """Orders: any role reads in its scope; only a buyer places and cancels."""

    path = "/api/orders"

    @post("/", guards=[auth.buyer_only])
    async def place(
        self,
        request: Request,
        data: JSONBody[OrderIn],
        idempotency_key: Annotated[str, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=64)],
    ) -> Response[OrderOut]:
        settings: Settings = request.app.state.settings
        provider = provider_for(settings)
        now = _now(request)
        order_id, created = await orders.place_order(
            branch_id=request.user.union_id,
            user_id=request.user.id,
            body=data,
            key=idempotency_key,
            now=now,
            provider=provider,
        )
        if created:
            await orders.start_payment(order_id, provider, now)
        order = await orders.get_order(order_id, request.user)
        return Response(order, status_code=201 if created else 200)

    @post("/{order_id:int}/cancel", status_code=200, guards=[auth.buyer_only])
    async def cancel(self, request: Request, order_id: FromPath[int]) -> OrderOut:
        await orders.cancel_order(order_id, request.user.union_id, _now(request))
        return await orders.get_order(order_id, request.user)

    @get("/")
    async def list(
        self,
        request: Request,
        status: FromQuery[OrderStatus | None] = None,
        year: Annotated[int | None, QueryParameter(ge=2000, le=2100)] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> OrderList:
        items, total = await orders.list_orders(request.user, status=status, year=year, limit=limit, offset=offset)
        return OrderList(items=items, total=total)

    @get("/{order_id:int}")
    async def detail(self, request: Request, order_id: FromPath[int]) -> OrderOut:
        return await orders.get_order(order_id, request.user)

    @post("/{order_id:int}/refund", status_code=200, guards=[auth.admin_only])
    async def refund(self, request: Request, order_id: FromPath[int], data: JSONBody[RefundIn]) -> OrderOut:
        """Refund lines of a paid order (`{}`: everything left), or a late payment whole."""
        settings: Settings = request.app.state.settings
        await refunds.refund_order(order_id, data, user_id=request.user.id, now=_now(request), settings=settings)
        return await orders.get_order(order_id, request.user)


class AdminOrderController(Controller):
    """Admins: confirm bank transfers, find late payments to refund, see refunds."""

    path = "/api/admin/orders"

    @post("/{order_id:int}/confirm-transfer", status_code=200)
    async def confirm_transfer(self, request: Request, order_id: FromPath[int], data: JSONBody[ConfirmTransferIn]) -> OrderOut:
        await orders.confirm_transfer(order_id, data.reference, _now(request))
        return await orders.get_order(order_id, request.user)

    @get("/needs-refund")
    async def needs_refund(self, limit: Limit = 50, offset: Offset = 0) -> OrderList:
        items, total = await orders.list_needs_refund(limit=limit, offset=offset)
        return OrderList(items=items, total=total)

    @get("/{order_id:int}/refunds")
    async def refund_list(self, order_id: FromPath[int]) -> RefundList:
        items = await refunds.list_refunds(order_id)
        return RefundList(items=items, total=len(items))


class StripeWebhookController(Controller):
    """Stripe calls this (no login): the signature over the raw body is the authentication."""

    path = "/api/payments/stripe"
    opt = {"exclude_from_auth": True}

    @post("/webhook", status_code=200)
    async def webhook(self, request: Request) -> WebhookOut:
        settings: Settings = request.app.state.settings
        event = stripe_events.verify(
            await request.body(), request.headers.get("stripe-signature"), settings.stripe_webhook_secret
        )
        return WebhookOut(received=True, outcome=await stripe_events.handle(event, _now(request)))


ROUTES = {
    "public": [OperationsController, LoginController, StripeWebhookController],
    "any": [MeController, OrderController],
    "admin": [AdminUserController, AdminOrderController],
}
