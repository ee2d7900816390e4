"""The admin's pages: listing review, confirming transfers and refunding late payments, the cap
policy and targets."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from budgets import checks, ledger, policy, targets, unions
from catalog import service as catalog
from catalog.tables import ProductStatus
from common.errors import DomainError
from common.schemas import PathId
from shop.auth.accounts import Principal
from shop.errors import CODES
from shop.orders import queries, refunds
from shop.orders.schemas import RefundIn
from shop.orders.states import OrderStatus
from shop.payments import transfer
from shop.web import ui
from shop.web.forms import int_or_none, page_number
from shop.web.render import (
    PAGE_SIZE,
    Page,
    clock,
    error_page,
    is_htmx,
    pager,
    render,
    status_of,
    year_of,
    years_for,
)

# --- admin -------------------------------------------------------------------------------------------------


async def _pending_transfers(admin: Principal, limit: int = 200) -> tuple[list[Any], int]:
    """Orders waiting for a bank transfer to arrive, oldest first (the page's own list)."""
    return await queries.list_orders(
        admin, status=OrderStatus.pending_payment, year=None, provider="transfer", limit=limit, offset=0, oldest_first=True
    )


def _flatten(nodes: list[dict], depth: int = 0) -> list[dict]:
    rows = []
    for node in nodes:
        rows.append({**node, "depth": depth, "has_children": bool(node["children"])})
        rows.extend(_flatten(node["children"], depth + 1))
    return rows


class AdminPages(Page):
    @get("/admin/reviews")
    async def reviews(self, request: Request, page: FromQuery[str | None] = None) -> Template:
        number = page_number(page)
        items, total = await catalog.list_products(status=ProductStatus.pending_review, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
        return render(request, "admin_reviews.html", products=items, pager=pager(total, number))

    @post("/admin/reviews/{product_id:int}/approve", status_code=200)
    async def approve(self, request: Request, product_id: PathId) -> Response:
        try:
            product = await catalog.approve_product(product_id, actor_id=request.user.id)
        except DomainError as exc:
            return self._review_result(request, product_id, None, ui.explain(exc))
        return self._review_result(request, product_id, product, None)

    @post("/admin/reviews/{product_id:int}/reject", status_code=200)
    async def reject(self, request: Request, product_id: PathId) -> Response:
        form = await request.form()
        reason = str(form.get("reason") or "").strip()
        if not reason:
            return self._review_result(request, product_id, None, ui.problem("请填写驳回原因"))
        try:
            product = await catalog.reject_product(product_id, reason[:200], actor_id=request.user.id)
        except DomainError as exc:
            return self._review_result(request, product_id, None, ui.explain(exc))
        return self._review_result(request, product_id, product, None)

    def _review_result(self, request: Request, product_id: int, product: Any, error: Any) -> Response:
        if is_htmx(request):
            return render(request, "_review_result.html", product_id=product_id, product=product, error=error)
        if error:
            return error_page(request, 409, error["title"], error["details"])
        return Redirect(path="/admin/reviews", status_code=303)

    @get("/admin/orders")
    async def admin_orders(self, request: Request) -> Template:
        pending, pending_total = await _pending_transfers(request.user)
        late, late_total = await queries.list_needs_refund(limit=200, offset=0)
        branches = await unions.names_by_id({o.branch_id for o in pending + late})
        return render(
            request, "admin_orders.html", pending=pending, pending_total=pending_total, late=late, late_total=late_total, branches=branches
        )

    @post("/admin/orders/{order_id:int}/confirm", status_code=200)
    async def confirm(self, request: Request, order_id: PathId) -> Response:
        form = await request.form()
        reference = str(form.get("reference") or "").strip()[:64]
        error = None
        if not reference:
            error = ui.problem("请填写银行流水上的转账附言")
        else:
            try:
                await transfer.confirm_transfer(order_id, reference, actor_id=request.user.id, now=clock(request))
            except DomainError as exc:
                error = ui.explain(exc)
        order = await queries.get_order(order_id, request.user)
        if is_htmx(request):
            return render(request, "_confirm_result.html", order=order, error=error, reference=reference)
        if error:
            return error_page(request, status_of_error(error), error["title"], error["details"])
        return Redirect(path="/admin/orders", status_code=303)

    @post("/admin/orders/{order_id:int}/refund", status_code=200)
    async def refund(self, request: Request, order_id: PathId) -> Response:
        """Give back a payment that arrived after the order was no longer held (whole)."""
        error = None
        try:
            await refunds.refund_order(order_id, RefundIn(), user_id=request.user.id, now=clock(request), settings=request.app.state.settings)
        except DomainError as exc:
            error = ui.explain(exc)
        order = await queries.get_order(order_id, request.user)
        if is_htmx(request):
            return render(request, "_refund_result.html", order=order, error=error)
        if error:
            return error_page(request, status_of_error(error), error["title"], error["details"])
        return Redirect(path="/admin/orders", status_code=303)

    @get("/admin/policy")
    async def policy(self, request: Request) -> Template:
        return await self._policy_page(request)

    async def _policy_page(self, request: Request, status_code: int = 200, error: Any = None, form: dict | None = None) -> Template:
        current = ledger.budget_year(clock(request))
        policies = [await policy.get_policy(y) for y in range(current + 1, current - 3, -1)]
        return render(
            request,
            "admin_policy.html",
            status_code=status_code,
            policies=policies,
            current=current,
            error=error,
            form=form or {"year": str(current), "cap": ""},
            default_cap=policy.DEFAULT_CAP_FEN,
        )

    @post("/admin/policy", status_code=200)
    async def set_policy(self, request: Request) -> Response:
        form = await request.form()
        shown = {"year": str(form.get("year") or ""), "cap": str(form.get("cap") or "")}
        year = int_or_none(shown["year"], checks.YEAR_MIN, checks.YEAR_MAX)
        cap = ui.parse_yuan(shown["cap"])
        if year is None or cap is None:
            error = ui.problem("请填写年度和每人每年的额度（元）")
            return await self._policy_page(request, status_code=400, error=error, form=shown)
        try:
            await policy.set_cap(year, cap, actor_id=request.user.id, at=clock(request))
        except DomainError as exc:
            return await self._policy_page(request, status_code=status_of(exc), error=ui.explain(exc), form=shown)
        return Redirect(path="/admin/policy?ok=cap", status_code=303)

    @get("/admin/targets")
    async def targets(self, request: Request, year: FromQuery[str | None] = None) -> Template:
        chosen = year_of(request, year)
        rows = _flatten(await targets.targets_report(None, chosen))
        return render(request, "admin_targets.html", rows=rows, year=chosen, years=years_for(request))

    @post("/admin/targets/{union_id:int}/{year:int}", status_code=200)
    async def set_target(self, request: Request, union_id: PathId, year: PathId) -> Response:
        form = await request.form()
        target = ui.parse_yuan(str(form.get("target") or ""))
        error = None
        if target is None:
            error = ui.problem("请填写目标金额（元）")
        else:
            try:
                await targets.set_target(union_id, year, target)
            except DomainError as exc:
                error = ui.explain(exc)
        if not is_htmx(request):
            if error:
                return error_page(request, status_of_error(error), error["title"], error["details"])
            return Redirect(path=f"/admin/targets?year={year}", status_code=303)
        rows = {r["union_id"]: r for r in _flatten(await targets.targets_report(None, year))}
        row = rows.get(union_id)
        if row is None:
            raise DomainError("not_found", f"union {union_id} does not exist")
        return render(request, "_target_row.html", r=row, year=year, error=error, saved=error is None)


def status_of_error(error: dict[str, Any]) -> int:
    return CODES.get(error.get("code", ""), (400, ""))[0]
