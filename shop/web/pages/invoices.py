"""Invoices on the order page: the branch's buyer accepts a shipment's invoice, or rejects it
with a reason (the supplier then uploads a new one) — `shop.fulfilment.invoices.decide`, as
`POST /api/invoices/{id}/accept` and `…/reject` use it. Whoever may see the order downloads the
file from `/api/invoices/{id}/file` (the cookie is enough for a GET), with the API's checks."""

from __future__ import annotations

from litestar import Request, Response, post
from litestar.response import Redirect

from common.errors import DomainError
from common.schemas import PathId
from shop.fulfilment import invoices
from shop.web import ui
from shop.web.pages.orders import order_detail
from shop.web.render import Page, clock, status_of


class InvoiceDecisionPages(Page):
    """Buyers only (the route group); another branch's invoice is refused by `decide` (403)."""

    async def _decide(self, request: Request, invoice_id: int, *, accept: bool) -> Response:
        order_id = await invoices.order_of(invoice_id)  # 404 for an invoice there is not
        reason = ""
        if not accept:
            form = await request.form()
            reason = " ".join(str(form.get("reason") or "").split())[:500]
        try:
            if not accept and not reason:
                await invoices.get_invoice(invoice_id, request.user)  # another branch's: 403 first, as the API
                problem = ui.problem("发票未退回", "请填写退回原因（供应商可见），如“抬头有误”")
                return await order_detail(request, order_id, 400, problem, form={"invoice_id": invoice_id})
            invoice = await invoices.decide(invoice_id, request.user, accept=accept, reason=reason, now=clock(request))
        except DomainError as exc:
            if exc.code in ("not_found", "forbidden"):
                raise
            explained = ui.explain(exc)
            explained["title"] = f"发票：{explained['title']}"
            return await order_detail(request, order_id, status_of(exc), explained)
        said = "invoice_accepted" if accept else "invoice_rejected"
        return Redirect(path=f"/orders/{order_id}?ok={said}#shipment-{invoice.shipment_id}", status_code=303)

    @post("/invoices/{invoice_id:int}/accept", status_code=200)
    async def accept(self, request: Request, invoice_id: PathId) -> Response:
        return await self._decide(request, invoice_id, accept=True)

    @post("/invoices/{invoice_id:int}/reject", status_code=200)
    async def reject(self, request: Request, invoice_id: PathId) -> Response:
        return await self._decide(request, invoice_id, accept=False)
