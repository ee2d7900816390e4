"""Every role's notifications (通知): the list, newest first, opening one (it is then read),
and marking all read — `shop.notifications.inbox`, as `/api/notifications` uses it."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from common.schemas import PathId
from shop.notifications.inbox import inbox, mark_read
from shop.notifications.kinds import Kind
from shop.web.forms import page_number
from shop.web.render import PAGE_SIZE, Page, render, safe_next

KIND_NAMES = {
    Kind.order_to_ship: "待发货",
    Kind.after_sale_opened: "售后申请",
    Kind.shipment_shipped: "已发货",
    Kind.after_sale_decided: "售后结果",
    Kind.hold_ending: "付款将到期",
    Kind.review_decided: "商品审核",
    Kind.invoice_issued: "发票",
    Kind.invoice_decided: "发票",
}


def target_of(item: Any, role: str) -> str:
    """Where a notification leads: the order, or the supplier's list it is about."""
    if role == "supplier":
        return {
            Kind.order_to_ship: "/supplier/shipments?status=awaiting_shipment",
            Kind.after_sale_opened: "/after-sales?status=open",
            Kind.review_decided: "/supplier/products",
        }.get(item.kind, "/supplier/shipments")
    if item.kind == Kind.after_sale_opened:
        return "/after-sales?status=open"
    return f"/orders/{item.order_id}" if item.order_id else "/notifications"


class NotificationPages(Page):
    @get("/notifications")
    async def notifications(self, request: Request, unread: FromQuery[str | None] = None, page: FromQuery[str | None] = None) -> Template:
        number = page_number(page)
        only_unread = unread == "1"
        box = await inbox(request.user.id, unread_only=only_unread, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
        items = [{"item": n, "kind": KIND_NAMES.get(n.kind, "通知"), "href": target_of(n, request.user.role)} for n in box.items]
        return render(
            request,
            "notifications.html",
            items=items,
            unread_total=box.unread,
            only_unread=only_unread,
            page_no=number,
            more=len(box.items) == PAGE_SIZE,  # the inbox has no total: another page may follow a full one
        )

    @post("/notifications/{notification_id:int}/open", status_code=200)
    async def open(self, request: Request, notification_id: PathId) -> Response:
        """Mark it read and go where it leads."""
        form = await request.form()
        await mark_read(request.user.id, [notification_id])
        return Redirect(path=safe_next(str(form.get("next") or "")) or "/notifications", status_code=303)

    @post("/notifications/read", status_code=200)
    async def read_all(self, request: Request) -> Response:
        await mark_read(request.user.id, None)
        return Redirect(path="/notifications?ok=read", status_code=303)
