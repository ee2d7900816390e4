"""Shipments as pages: the supplier's list (whom to send what, for how much) and shipping
one with its carrier and tracking number; the buyer's receipt (确认收货) from the order page —
`shop.fulfilment.shipments` and `queries`, as `/api/supplier/shipments` and
`/api/shipments/{id}/receive` use them."""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, Response, get, post
from litestar.response import Redirect, Template

from common.errors import DomainError
from common.schemas import PathId
from shop.fulfilment import queries, shipments
from shop.fulfilment.states import ShipmentStatus
from shop.web import ui
from shop.web.forms import page_number
from shop.web.render import PAGE_SIZE, Page, clock, error_page, pager, render, status_of

TRACKING_NO = re.compile(r"[0-9A-Za-z\-]{4,40}")
CARRIERS = ["顺丰速运", "中国邮政 EMS", "京东物流", "中通快递", "圆通速递", "韵达快递", "申通快递", "德邦快递", "极兔速递"]


class SupplierShipmentPages(Page):
    async def _page(self, request: Request, status_code: int = 200, error: Any = None, posted: dict | None = None) -> Template:
        query = request.query_params
        status = query.get("status") if query.get("status") in ui.SHIPMENT_STATES else None
        number = page_number(query.get("page"))
        items, total = await queries.list_for_supplier(
            request.user.supplier_id, status=ShipmentStatus(status) if status else None, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
        )
        return render(
            request,
            "supplier_shipments.html",
            status_code=status_code,
            shipments=items,
            pager=pager(total, number),
            status=status,
            states=ui.SHIPMENT_STATES,
            carriers=CARRIERS,
            error=error,
            posted=posted or {},
        )

    @get("/supplier/shipments")
    async def list(self, request: Request) -> Template:
        return await self._page(request)

    @post("/supplier/shipments/{shipment_id:int}/ship", status_code=200)
    async def ship(self, request: Request, shipment_id: PathId) -> Response:
        form = await request.form()
        carrier = " ".join(str(form.get("carrier") or "").split())
        tracking_no = str(form.get("tracking_no") or "").strip()
        posted = {"id": shipment_id, "carrier": carrier, "tracking_no": tracking_no}
        problems = []
        if not carrier or len(carrier) > 40:
            problems.append("请填写快递公司（最多 40 个字）")
        if not TRACKING_NO.fullmatch(tracking_no):
            problems.append("运单号应为 4 到 40 位字母、数字或 -")
        if problems:
            return await self._page(request, 400, ui.problem(f"包裹 #{shipment_id} 未发货", *problems), posted)
        try:
            await shipments.ship(shipment_id, request.user, carrier=carrier, tracking_no=tracking_no, now=clock(request))
        except DomainError as exc:
            if exc.code == "not_found":
                raise
            return await self._page(request, status_of(exc), ui.explain(exc), posted)
        return Redirect(path=f"/supplier/shipments?ok=shipped#shipment-{shipment_id}", status_code=303)


class ReceiptPages(Page):
    @post("/shipments/{shipment_id:int}/receive", status_code=200)
    async def receive(self, request: Request, shipment_id: PathId) -> Response:
        """shipped → received, by a buyer of the order's branch; back to the order."""
        try:
            order_id = await shipments.receive(shipment_id, request.user, now=clock(request))
        except DomainError as exc:
            explained = ui.explain(exc)
            return error_page(request, status_of(exc), explained["title"], explained["details"])
        return Redirect(path=f"/orders/{order_id}?ok=received#shipments", status_code=303)
