"""Orders as pages: the list and one order — payment details, the 发放清单, shipments, receipt
and their invoices, after-sales requests, refunds (an admin's, of some lines or all) and the
order's history; cancelling (buyer)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from budgets import unions
from common.errors import DomainError
from common.schemas import PathId
from shop.auth.guards import admin_only, buyer_only
from shop.fulfilment import after_sales, invoices
from shop.fulfilment.schemas import AfterSaleIn
from shop.fulfilment.states import AfterSaleStatus
from shop.orders import cancellation, queries, refunds
from shop.orders.schemas import RefundIn
from shop.orders.states import OrderStatus
from shop.reports import queries as reports
from shop.web import ui
from shop.web.forms import int_or_none, page_number
from shop.web.render import PAGE_SIZE, Page, clock, pager, render, status_of

# the orders whose money went to the members (the 发放清单 is then a record to keep)
SPENT = {OrderStatus.paid, OrderStatus.partially_refunded, OrderStatus.refunded}
REFUNDABLE = {OrderStatus.paid, OrderStatus.partially_refunded}


def _quantities(form: Any) -> list[dict[str, int]]:
    """`qty-<line id>` fields of a form -> [{line_id, quantity}] (zero and blank left out)."""
    lines = []
    for key in form.keys():
        if str(key).startswith("qty-") and (line_id := int_or_none(str(key)[4:])):
            if quantity := int_or_none(form.get(key), 0, 10_000):
                lines.append({"line_id": line_id, "quantity": quantity})
    return lines


async def order_detail(request: Request, order_id: int, status_code: int = 200, error: Any = None, form: Any = None) -> Template:
    user = request.user
    order = await queries.get_order(order_id, user)
    titles = {line.id: line.title for line in order.lines}
    sales, _ = await after_sales.list_requests(user, status=None, limit=200, offset=0, order_id=order_id)
    asked = {}  # units of each line in open requests: not to be asked for again
    for sale in sales:
        if sale.status == AfterSaleStatus.open:
            for x in sale.lines:
                asked[x.line_id] = asked.get(x.line_id, 0) + x.quantity
    left = {line.id: line.quantity - line.refunded_quantity for line in order.lines}
    current = await invoices.current_for([s.id for s in order.shipments])  # each shipment's invoice, its reason too
    shipments = [{"s": s, "titles": [titles.get(i, "") for i in s.line_ids], "invoice": current.get(s.id)} for s in order.shipments]
    return render(
        request,
        "order.html",
        status_code=status_code,
        order=order,
        distribution=await reports.order_distribution(order_id) if user.role != "supplier" else [],
        spent=order.status in SPENT,
        refundable=order.status in REFUNDABLE and not order.needs_refund,
        refunds=await refunds.list_refunds(order_id),
        branch=await unions.get_union(order.branch_id),
        events=await queries.list_events(order_id, user),
        shipments=shipments,
        sales=[{"sale": s, "lines": [{"title": titles.get(x.line_id, ""), "quantity": x.quantity} for x in s.lines]} for s in sales],
        left=left,
        askable={line_id: max(n - asked.get(line_id, 0), 0) for line_id, n in left.items()},
        refund_key=uuid.uuid4().hex,
        posted=form or {},
        error=error,
    )


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

    @get("/orders/{order_id:int}")
    async def order(self, request: Request, order_id: PathId) -> Template:
        return await order_detail(request, order_id)

    @post("/orders/{order_id:int}/cancel", status_code=200, guards=[buyer_only])
    async def cancel(self, request: Request, order_id: PathId) -> Response:
        try:
            await cancellation.cancel_order(order_id, request.user, clock(request), request.app.state.settings)
        except DomainError as exc:
            if exc.code in ("not_found", "forbidden"):
                raise
            return await order_detail(request, order_id, status_code=status_of(exc), error=ui.explain(exc))
        return Redirect(path=f"/orders/{order_id}?ok=cancelled", status_code=303)

    @post("/orders/{order_id:int}/refund", status_code=200, guards=[admin_only])
    async def refund(self, request: Request, order_id: PathId) -> Response:
        """Refund some lines (`qty-<line id>`) or, with `all`, everything left — the same
        refund as `POST /api/orders/{id}/refund`, idempotent on the form's key."""
        form = await request.form()
        whole = form.get("all") == "1"
        lines = _quantities(form)
        if not whole and not lines:
            return await order_detail(request, order_id, 400, ui.problem("请填写要退款的数量", "在要退的商品后填写数量，或选择全部退款。"))
        key = str(form.get("refund_key") or "")[:64] or None
        body = RefundIn() if whole else msgspec.convert({"lines": lines}, RefundIn)
        try:
            await refunds.refund_order(
                order_id, body, user_id=request.user.id, now=clock(request), settings=request.app.state.settings, key=key
            )
        except DomainError as exc:
            if exc.code == "not_found":
                raise
            return await order_detail(request, order_id, status_of(exc), ui.explain(exc), form=dict(form))
        return Redirect(path=f"/orders/{order_id}?ok=refunded#refunds", status_code=303)

    @post("/orders/{order_id:int}/after-sales", status_code=200, guards=[buyer_only])
    async def open_after_sale(self, request: Request, order_id: PathId) -> Response:
        """The buyer asks for these quantities of the order's lines back, with a reason."""
        form = await request.form()
        lines = _quantities(form)
        reason = " ".join(str(form.get("reason") or "").split())[:500]
        problems = [p for p, bad in (("请填写要退的数量（至少一件）", not lines), ("请写明原因，如“破损 2 箱”", not reason)) if bad]
        if problems:
            return await order_detail(request, order_id, 400, ui.problem("售后申请未提交", *problems), form=dict(form))
        try:
            body = msgspec.convert({"lines": lines, "reason": reason}, AfterSaleIn)
            await after_sales.open_request(order_id, request.user, body, now=clock(request))
        except msgspec.ValidationError:
            return await order_detail(request, order_id, 400, ui.problem("售后申请未提交", "原因中有不允许的字符"), form=dict(form))
        except DomainError as exc:
            if exc.code in ("not_found", "forbidden"):
                raise
            return await order_detail(request, order_id, status_of(exc), ui.explain(exc), form=dict(form))
        return Redirect(path=f"/orders/{order_id}?ok=after_sale#after-sales", status_code=303)
