"""After-sales (售后) as pages: the buyer asks for some of a paid order's lines back from the
order page (`orders.py`); the supplier of the lines (or an admin) accepts — the lines are refunded as an
admin refund would — or rejects with a reason; everyone sees the requests in their scope.
The same domain functions as `/api/orders/{id}/after-sales` and `/api/after-sales`."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from common.errors import DomainError
from common.schemas import PathId
from shop.auth.guards import require_roles
from shop.fulfilment import after_sales
from shop.fulfilment.states import AfterSaleStatus
from shop.orders import queries
from shop.web import ui
from shop.web.forms import page_number
from shop.web.render import PAGE_SIZE, Page, clock, pager, render, status_of

admin_or_supplier = require_roles("admin", "supplier")


async def with_orders(items: list[Any], principal: Any) -> list[dict[str, Any]]:
    """Each request with its order's lines by id (titles for the page)."""
    orders = {o.id: o for o in await queries.orders_out(sorted({s.order_id for s in items}), principal)}
    out = []
    for sale in items:
        order = orders.get(sale.order_id)
        titles = {line.id: line.title for line in order.lines} if order else {}
        suppliers = {line.id: line.supplier_id for line in order.lines} if order else {}
        mine = principal.role == "admin" or (
            principal.role == "supplier" and all(suppliers.get(x.line_id) == principal.supplier_id for x in sale.lines)
        )
        out.append(
            {
                "sale": sale,
                "lines": [{"title": titles.get(x.line_id, "（其他供应商的商品）"), "quantity": x.quantity} for x in sale.lines],
                "may_decide": mine and sale.status == AfterSaleStatus.open,
                "branch_id": order.branch_id if order else None,
            }
        )
    return out


class AfterSalePages(Page):
    @get("/after-sales")
    async def list(self, request: Request, status: FromQuery[str | None] = None, page: FromQuery[str | None] = None) -> Template:
        return await self._page(request, status, page)

    async def _page(self, request: Request, status: str | None, page: str | None, status_code: int = 200, error: Any = None) -> Template:
        status = status if status in ui.AFTER_SALE_STATES else None
        number = page_number(page)
        items, total = await after_sales.list_requests(
            request.user, status=AfterSaleStatus(status) if status else None, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
        )
        return render(
            request,
            "after_sales.html",
            status_code=status_code,
            requests=await with_orders(items, request.user),
            pager=pager(total, number),
            status=status,
            states=ui.AFTER_SALE_STATES,
            error=error,
        )

    async def _decided(self, request: Request, sale_id: int, call: Any) -> Response:
        try:
            await call()
        except DomainError as exc:
            if exc.code == "not_found":
                raise
            explained = ui.explain(exc)
            explained["title"] = f"售后 #{sale_id}：{explained['title']}"
            q = request.query_params
            return await self._page(request, q.get("status"), q.get("page"), status_of(exc), explained)
        return Redirect(path=f"/after-sales#sale-{sale_id}", status_code=303)

    @post("/after-sales/{sale_id:int}/accept", status_code=200, guards=[admin_or_supplier])
    async def accept(self, request: Request, sale_id: PathId) -> Response:
        settings = request.app.state.settings
        return await self._decided(
            request, sale_id, lambda: after_sales.accept(sale_id, request.user, now=clock(request), settings=settings)
        )

    @post("/after-sales/{sale_id:int}/reject", status_code=200, guards=[admin_or_supplier])
    async def reject(self, request: Request, sale_id: PathId) -> Response:
        form = await request.form()
        reason = " ".join(str(form.get("reason") or "").split())[:500]
        if not reason:
            return await self._page(request, None, None, 400, ui.problem(f"售后 #{sale_id} 未驳回", "请填写驳回原因（采购单位可见）"))
        return await self._decided(request, sale_id, lambda: after_sales.reject(sale_id, request.user, reason, now=clock(request)))
