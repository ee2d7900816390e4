"""The members' links as pages: the member's own quota page (`/m/{token}`, public, a phone
page without navigation or login) and the branch buyer's 签收表 of an order (A4, printed,
each member's share, a signature column and the QR code of their link)."""

from __future__ import annotations

from litestar import Request, get
from litestar.exceptions import HTTPException
from litestar.response import Template

from budgets import unions
from common.errors import DomainError
from common.schemas import PathId
from shop.member_view import links as member_links
from shop.member_view.api import Token, view_of_token
from shop.orders import queries
from shop.orders.states import OrderStatus
from shop.reports import queries as reports
from shop.web.render import Page, clock, render

# a link's page is nobody else's business: not cached, not indexed, not told to other sites
PRIVATE = {"Cache-Control": "private, no-store", "X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"}
SPENT = {OrderStatus.paid, OrderStatus.partially_refunded, OrderStatus.refunded}


class MemberViewPages(Page):
    opt = {"exclude_from_auth": True}

    @get("/m/{token:str}")
    async def member(self, request: Request, token: Token) -> Template:
        try:
            view = await view_of_token(request, token)
        except DomainError as exc:
            if exc.code != "not_found":
                raise
            return render(request, "member_view.html", status_code=404, view=None, why="gone", headers=PRIVATE)
        except HTTPException as exc:
            if exc.status_code != 429:
                raise
            headers = {**PRIVATE, **(exc.headers or {})}
            return render(request, "member_view.html", status_code=429, view=None, why="busy", headers=headers)
        return render(request, "member_view.html", view=view, why=None, headers=PRIVATE)


class ReceiptSheetPages(Page):
    @get("/orders/{order_id:int}/receipt-sheet")
    async def receipt_sheet(self, request: Request, order_id: PathId) -> Template:
        """The 签收表 of a paid order: one row per member who shares it."""
        order = await queries.get_order(order_id, request.user)  # 404, or 403 for another branch's
        if order.status not in SPENT:
            raise DomainError("invalid_state", "a 签收表 is printed once the order is paid")
        rows = await reports.order_distribution(order_id)
        urls = await member_links.urls_for([r["member_id"] for r in rows], request.app.state.settings, clock(request))
        members = [{**r, "url": urls[r["member_id"]], "qr": member_links.qr_svg(urls[r["member_id"]])} for r in rows]
        return render(
            request,
            "receipt_sheet.html",
            order=order,
            branch=await unions.get_union(order.branch_id),
            members=members,
            headers={"Cache-Control": "private, no-store"},
        )
