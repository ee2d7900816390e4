"""Orders over HTTP: any role reads in its scope; a buyer places and cancels; an admin
refunds and sees late payments."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.params import (
    FromQuery,
    HeaderParameter,
    JSONBody,
    QueryParameter,
)

from common.pagination import PAGINATION, Paging
from common.schemas import PathId
from shop.auth.guards import admin_only, buyer_only, require_approver
from shop.orders import approval, cancellation, queries, refunds
from shop.orders.placement import checkout
from shop.orders.schemas import (
    ApprovalList,
    ApprovalOut,
    ApprovalRejectIn,
    EventOut,
    OrderIn,
    OrderList,
    OrderOut,
    RefundIn,
    RefundList,
)
from shop.orders.states import ApprovalStatus, OrderStatus

approver_only = require_approver()


class OrderController(Controller):
    path = "/api/orders"
    dependencies = PAGINATION

    @post("/", guards=[buyer_only])
    async def place(
        self,
        request: Request,
        data: JSONBody[OrderIn],
        idempotency_key: Annotated[str, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=64)],
    ) -> Response[OrderOut]:
        order, created = await checkout(
            request.user,
            data,
            key=idempotency_key,
            now=request.app.state.clock(),
            settings=request.app.state.settings,
        )
        return Response(order, status_code=201 if created else 200)

    @post("/{order_id:int}/cancel", status_code=200, guards=[buyer_only])
    async def cancel(self, request: Request, order_id: PathId) -> OrderOut:
        await cancellation.cancel_order(order_id, request.user, request.app.state.clock(), request.app.state.settings)
        return await queries.get_order(order_id, request.user)

    @get("/")
    async def list(
        self,
        request: Request,
        page: Paging,
        status: FromQuery[OrderStatus | None] = None,
        year: Annotated[int | None, QueryParameter(ge=2000, le=2100)] = None,
    ) -> OrderList:
        items, total = await queries.list_orders(
            request.user, status=status, year=year, limit=page.limit, offset=page.offset
        )
        return OrderList(items=items, total=total)

    @get("/{order_id:int}")
    async def detail(self, request: Request, order_id: PathId) -> OrderOut:
        return await queries.get_order(order_id, request.user)

    @get("/{order_id:int}/events")
    async def events(self, request: Request, order_id: PathId) -> list[EventOut]:
        """The order's history, oldest first."""
        return await queries.list_events(order_id, request.user)

    @post("/{order_id:int}/refund", status_code=200, guards=[admin_only])
    async def refund(
        self,
        request: Request,
        order_id: PathId,
        data: JSONBody[RefundIn],
        idempotency_key: Annotated[
            str | None, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=64, required=False)
        ] = None,
    ) -> OrderOut:
        """Refund lines of a paid order (`{}`: everything left), or a late payment whole.
        The same Idempotency-Key and body again answer the same refund."""
        await refunds.refund_order(
            order_id,
            data,
            user_id=request.user.id,
            now=request.app.state.clock(),
            settings=request.app.state.settings,
            key=idempotency_key,
        )
        return await queries.get_order(order_id, request.user)


class AdminOrderController(Controller):
    """Admins: find late payments to refund, see an order's refunds."""

    path = "/api/admin/orders"
    dependencies = PAGINATION

    @get("/needs-refund")
    async def needs_refund(self, page: Paging) -> OrderList:
        items, total = await queries.list_needs_refund(limit=page.limit, offset=page.offset)
        return OrderList(items=items, total=total)

    @get("/{order_id:int}/refunds")
    async def refund_list(self, order_id: PathId) -> RefundList:
        items = await refunds.list_refunds(order_id)
        return RefundList(items=items, total=len(items))


class ApprovalController(Controller):
    """The approver's list (an admin's: every branch's) and decisions on its branch's orders."""

    path = "/api"
    dependencies = PAGINATION

    @get("/approvals", guards=[require_approver(admins=True)])
    async def list(self, request: Request, page: Paging, status: FromQuery[ApprovalStatus | None] = None) -> ApprovalList:
        items, total = await approval.list_approvals(request.user, status=status, limit=page.limit, offset=page.offset)
        return ApprovalList(items=[ApprovalOut(**{**i, **_times(i)}) for i in items], total=total)

    @post("/orders/{order_id:int}/approve", status_code=200, guards=[approver_only])
    async def approve(self, request: Request, order_id: PathId) -> OrderOut:
        """pending_approval -> pending_payment: the payment starts, its hold time from now."""
        return await approval.approve(order_id, request.user, request.app.state.clock(), request.app.state.settings)

    @post("/orders/{order_id:int}/reject", status_code=200, guards=[approver_only])
    async def reject(self, request: Request, order_id: PathId, data: JSONBody[ApprovalRejectIn]) -> OrderOut:
        """pending_approval -> cancelled: stock and every member's share released."""
        return await approval.reject(order_id, request.user, data.reason, request.app.state.clock())


def _times(item: dict) -> dict:
    return {k: queries.iso(item[k]) if item[k] is not None else None for k in ("requested_at", "deadline", "decided_at")}


ROUTES = {
    "any": [OrderController, ApprovalController],
    "admin": [AdminOrderController],
}
