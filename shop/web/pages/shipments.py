"""Shipments as pages: the supplier's list (whom to send what, for how much), shipping one with
its carrier and tracking number and uploading its invoice (again after the branch rejected one);
the buyer's receipt (确认收货) from the order page — `shop.fulfilment.shipments`, `invoices` and
`queries`, as `/api/supplier/shipments`, `…/{id}/invoice` and `/api/shipments/{id}/receive` use them."""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from common.clock import SHANGHAI
from common.errors import DomainError
from common.files import FileStore, body_limit, multipart_form, upload_in
from common.schemas import PathId
from shop.fulfilment import invoices, queries, shipments
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
            invoices=await invoices.current_for([s.id for s in items]),
            today=clock(request).astimezone(SHANGHAI).date().isoformat(),
            max_mb=invoices.MAX_BYTES // (1024 * 1024),
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

    @post("/supplier/shipments/{shipment_id:int}/invoice", status_code=200, request_max_body_size=body_limit(invoices.MAX_BYTES))
    async def invoice(self, request: Request, shipment_id: PathId, file_store: NamedDependency[FileStore]) -> Response:
        """The shipment's invoice: 发票号码, 开票日期, 金额 in yuan and the file — the same upload as
        `POST /api/supplier/shipments/{id}/invoice` (size cap, content recognised, amount checked)."""
        title = f"包裹 #{shipment_id} 的发票未上传"
        posted: dict[str, Any] = {"invoice_id": shipment_id}
        try:
            await invoices.check_supplier(shipment_id, request.user)  # 404 / 403 before anything is read, as the API
            async with multipart_form(request, max_bytes=invoices.MAX_BYTES) as form:
                number = "".join(str(form.get("number") or "").split()).upper()[:40]
                issued_on = str(form.get("issued_on") or "").strip()[:20]
                amount_text = str(form.get("amount") or "").strip()[:32]
                posted.update(number=number, issued_on=issued_on, amount=amount_text)
                amount_fen, amount_problem = ui.read_yuan(amount_text)
                problems = [
                    said for said, bad in (
                        ("请填写发票号码（8 到 20 位字母或数字）", not number),
                        ("请填写开票日期", not issued_on),
                        (f"金额：{amount_problem}", bool(amount_problem)),
                        ("金额须大于 0", not amount_problem and not amount_fen),
                        ("请选择发票文件（PDF、OFD、PNG 或 JPEG）", not getattr(form.get("file"), "filename", "")),
                    ) if bad
                ]
                if problems:
                    return await self._page(request, 400, ui.problem(title, *problems), posted)
                fields = {"number": number, "issued_on": issued_on, "amount_fen": str(amount_fen), "file": upload_in(form)}
                await invoices.issue(file_store, shipment_id, request.user, fields, now=clock(request))
        except DomainError as exc:
            if exc.code in ("not_found", "forbidden"):
                raise
            explained = ui.explain(exc)
            explained["title"] = f"{title}：{explained['title']}"
            return await self._page(request, status_of(exc), explained, posted)
        return Redirect(path=f"/supplier/shipments?ok=invoice_issued#shipment-{shipment_id}", status_code=303)


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
