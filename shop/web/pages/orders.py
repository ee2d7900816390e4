"""Orders as pages: the list and one order (payment details, the 发放清单, cancelling)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from budgets import unions
from common.errors import DomainError
from common.schemas import PathId
from shop.auth.guards import buyer_only
from shop.orders import cancellation, queries, refunds
from shop.reports import queries as reports
from shop.web import ui
from shop.web.forms import page_number
from shop.web.render import PAGE_SIZE, Page, clock, pager, render, status_of

# --- orders ----------------------------------------------------------------------------------------


class OrderPages(Page):
    """Buyers (their branch), auditors (their subtree) and admins: orders and their details."""

    @get("/orders")
    async def orders(self, request: Request, status: FromQuery[str | None] = None, page: FromQuery[str | None] = None) -> Template:
        status = status if status in ui.ORDER_STATES else None
        number = page_number(page)
        items, total = await queries.list_orders(request.user, status=status, year=None, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
        return render(
            request,
            "orders.html",
            orders=items,
            pager=pager(total, number),
            status=status,
            states=ui.ORDER_STATES,
            branches=await unions.names_by_id({o.branch_id for o in items}),
        )

    async def _detail(self, request: Request, order_id: int, status_code: int = 200, error: Any = None) -> Template:
        order = await queries.get_order(order_id, request.user)
        distribution = await reports.order_distribution(order_id)
        refund_rows = await refunds.list_refunds(order_id) if request.user.role in ("admin", "auditor", "buyer") else []
        branch = await unions.get_union(order.branch_id)
        events = await queries.list_events(order_id, request.user)
        return render(
            request,
            "order.html",
            status_code=status_code,
            order=order,
            distribution=distribution,
            refunds=refund_rows,
            branch=branch,
            events=events,
            error=error,
        )

    @get("/orders/{order_id:int}")
    async def order(self, request: Request, order_id: PathId) -> Template:
        return await self._detail(request, order_id)

    @post("/orders/{order_id:int}/cancel", status_code=200, guards=[buyer_only])
    async def cancel(self, request: Request, order_id: PathId) -> Response:
        try:
            await cancellation.cancel_order(order_id, request.user, clock(request), request.app.state.settings)
        except DomainError as exc:
            if exc.code in ("not_found", "forbidden"):
                raise
            return await self._detail(request, order_id, status_code=status_of(exc), error=ui.explain(exc))
        return Redirect(path=f"/orders/{order_id}?ok=cancelled", status_code=303)
