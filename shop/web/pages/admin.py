"""The admin's pages: listing review, confirming transfers and refunding late payments, the cap
policy and targets."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from budgets import checks, ledger, policy, targets, unions
from catalog import service as catalog
from catalog.tables import ProductStatus
from common.errors import DomainError
from common.schemas import PathId, query_name
from shop.auth import accounts
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

    @get("/admin/products")
    async def products(
        self, request: Request, status: FromQuery[str | None] = None, q: Annotated[str | None, query_name(100)] = None, page: FromQuery[str | None] = None
    ) -> Template:
        return await self._products_page(request, status, q, page)

    async def _products_page(
        self, request: Request, status: str | None, q: str | None, page: str | None, status_code: int = 200, error: Any = None
    ) -> Template:
        status = status if status in ui.PRODUCT_STATES else (None if status == "" else ProductStatus.listed.value)
        q = (q or "").strip()[:100] or None
        number = page_number(page)
        items, total = await catalog.list_products(status=status, q=q, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
        return render(
            request,
            "admin_products.html",
            status_code=status_code,
            products=items,
            pager=pager(total, number),
            status=status or "",
            states=ui.PRODUCT_STATES,
            q=q or "",
            error=error,
        )

    @post("/admin/products/{product_id:int}/delist", status_code=200)
    async def delist(self, request: Request, product_id: PathId) -> Response:
        """Take a listed product off sale, with the reason the supplier will read."""
        form = await request.form()
        reason = " ".join(str(form.get("reason") or "").split())[:200]
        q = request.query_params
        if not reason:
            error = ui.problem("商品未下架", "请填写下架原因（供应商可见）")
            return await self._products_page(request, q.get("status"), q.get("q"), q.get("page"), 400, error)
        try:
            await catalog.delist_product(product_id, reason, actor_id=request.user.id)
        except DomainError as exc:
            if exc.code == "not_found":
                raise
            return await self._products_page(request, q.get("status"), q.get("q"), q.get("page"), status_of(exc), ui.explain(exc))
        return Redirect(path="/admin/products?ok=delisted", status_code=303)

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
        if is_htmx(request):  # the row, and the heading's count (out of band)
            _, pending_total = await _pending_transfers(request.user, limit=1)
            return render(request, "_confirm_result.html", order=order, error=error, reference=reference, pending_total=pending_total)
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
            _, late_total = await queries.list_needs_refund(limit=1, offset=0)
            return render(request, "_refund_result.html", order=order, error=error, late_total=late_total)
        if error:
            return error_page(request, status_of_error(error), error["title"], error["details"])
        return Redirect(path="/admin/orders", status_code=303)

    @get("/admin/policy")
    async def policy(self, request: Request) -> Template:
        return await self._policy_page(request)

    async def _policy_page(self, request: Request, status_code: int = 200, error: Any = None, form: dict | None = None) -> Template:
        current = ledger.budget_year(clock(request))
        policies = [await policy.get_policy(y) for y in range(current + 1, current - 3, -1)]
        actors = {c["actor_id"] for p in policies for c in p["history"] if c["actor_id"]}
        names = {}
        for actor_id in sorted(actors):
            principal = await accounts.load_principal(actor_id)
            names[actor_id] = principal.username if principal else f"#{actor_id}"
        affected = int_or_none(request.query_params.get("affected"), 0, 10_000_000)
        return render(
            request,
            "admin_policy.html",
            status_code=status_code,
            policies=policies,
            current=current,
            error=error,
            form=form or {"year": str(current), "cap": ""},
            default_cap=policy.DEFAULT_CAP_FEN,
            actors=names,
            affected=affected,
            affected_year=int_or_none(request.query_params.get("year"), checks.YEAR_MIN, checks.YEAR_MAX),
        )

    @post("/admin/policy", status_code=200)
    async def set_policy(self, request: Request) -> Response:
        form = await request.form()
        shown = {"year": str(form.get("year") or ""), "cap": str(form.get("cap") or "")}
        year = int_or_none(shown["year"], checks.YEAR_MIN, checks.YEAR_MAX)
        cap, cap_problem = ui.read_yuan(shown["cap"])
        if year is None or cap is None:
            error = ui.problem("请填写年度和每人每年的额度（元）", *([f"额度：{cap_problem}"] if cap_problem and shown["cap"] else []))
            return await self._policy_page(request, status_code=400, error=error, form=shown)
        try:
            result = await policy.set_cap(year, cap, actor_id=request.user.id, at=clock(request))
        except DomainError as exc:
            return await self._policy_page(request, status_code=status_of(exc), error=ui.explain(exc), form=shown)
        return Redirect(path=f"/admin/policy?ok=cap&year={year}&affected={len(result['affected'])}", status_code=303)

    @get("/admin/targets")
    async def targets(self, request: Request, year: FromQuery[str | None] = None) -> Template:
        chosen = year_of(request, year)
        rows = _flatten(await targets.targets_report(None, chosen))
        return render(request, "admin_targets.html", rows=rows, year=chosen, years=years_for(request))

    @post("/admin/targets/{union_id:int}/{year:int}", status_code=200)
    async def set_target(self, request: Request, union_id: PathId, year: PathId) -> Response:
        form = await request.form()
        target, target_problem = ui.read_yuan(str(form.get("target") or ""))
        error = None
        if target is None:
            error = ui.problem(f"目标金额：{target_problem}")
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
