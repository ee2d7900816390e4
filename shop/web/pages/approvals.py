"""Approval before spending as pages: the approver's list of its branch's orders above the
approval rule, each with its goods and every member's share beside what that member has
left this year, to approve (the buyer can pay) or reject with a reason; the admin's page of
branches' approval rules. The same domain functions as `/api/approvals`,
`/api/orders/{id}/approve|reject` and `/api/admin/unions/{id}/approval`."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from budgets import approval_rules, ledger, members, unions
from common.errors import DomainError
from common.schemas import PathId
from shop.auth.guards import require_approver, require_roles
from shop.orders import approval
from shop.orders.states import ApprovalStatus
from shop.reports import queries as reports
from shop.web import ui
from shop.web.forms import page_number
from shop.web.render import PAGE_SIZE, Page, clock, pager, render, status_of

approver_only = require_approver()
admin_only = require_roles("admin")


async def _with_shares(items: list[dict[str, Any]], branch_id: int | None, year: int) -> list[dict[str, Any]]:
    """Each pending approval with its members' shares and what each has left this year
    (the order's own share already held)."""
    pending = [i["order_id"] for i in items if i["status"] == ApprovalStatus.pending]
    if branch_id is None or not pending:
        return [{**item, "shares": []} for item in items]
    left = {m["member_id"]: m["remaining_fen"] for m in (await members.branch_budget(branch_id, year))["members"]}
    shares = await reports.orders_distributions(pending)
    return [{**item, "shares": [{**s, "left_fen": left.get(s["member_id"])} for s in shares.get(item["order_id"], [])]} for item in items]


class ApprovalPages(Page):
    """The approver's (工会审批人) orders to decide, and those decided."""

    @get("/approvals", guards=[approver_only])
    async def list(self, request: Request, status: FromQuery[str | None] = None, page: FromQuery[str | None] = None) -> Template:
        return await self._page(request, status, page)

    async def _page(
        self, request: Request, status: str | None, page: str | None, status_code: int = 200, error: Any = None
    ) -> Template:
        status = status if status in ui.APPROVAL_STATES or status == "all" else ApprovalStatus.pending.value
        number = page_number(page)
        chosen = None if status == "all" else ApprovalStatus(status)
        items, total = await approval.list_approvals(request.user, status=chosen, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
        year = ledger.budget_year(clock(request))  # a Shanghai calendar year
        return render(
            request,
            "approvals.html",
            status_code=status_code,
            items=await _with_shares(items, request.user.union_id, year),
            pager=pager(total, number),
            status=status,
            states=ui.APPROVAL_STATES,
            branch=await unions.get_union(request.user.union_id),
            error=error,
        )

    async def _decided(self, request: Request, order_id: int, call: Any, done: str) -> Response:
        try:
            await call()
        except DomainError as exc:
            if exc.code == "not_found":
                raise
            explained = ui.explain(exc)
            explained["title"] = f"订单 #{order_id}：{explained['title']}"
            return await self._page(request, None, None, status_of(exc), explained)
        return Redirect(path=f"/approvals?ok={done}", status_code=303)

    @post("/approvals/{order_id:int}/approve", status_code=200, guards=[approver_only])
    async def approve(self, request: Request, order_id: PathId) -> Response:
        settings = request.app.state.settings
        return await self._decided(
            request, order_id, lambda: approval.approve(order_id, request.user, clock(request), settings), "approved"
        )

    @post("/approvals/{order_id:int}/reject", status_code=200, guards=[approver_only])
    async def reject(self, request: Request, order_id: PathId) -> Response:
        form = await request.form()
        reason = " ".join(str(form.get("reason") or "").split())[:500]
        if not reason:
            problem = ui.problem(f"订单 #{order_id} 未驳回", "请写明驳回原因，采购员会看到它。")
            return await self._page(request, None, None, 400, problem)
        return await self._decided(request, order_id, lambda: approval.reject(order_id, request.user, reason, clock(request)), "rejected")


class ApprovalRulePages(Page):
    """The admin sets which branches' orders need approval, and above what amount."""

    @get("/admin/approval", guards=[admin_only])
    async def rules(self, request: Request, code: FromQuery[str | None] = None) -> Template:
        return await self._page(request, form={"code": code or ""})

    async def _page(self, request: Request, status_code: int = 200, error: Any = None, form: dict | None = None) -> Template:
        rules = await approval_rules.branches_with_rules()
        return render(request, "admin_approval.html", status_code=status_code, rules=rules, form=form or {}, error=error)

    @post("/admin/approval", status_code=200, guards=[admin_only])
    async def set_rule(self, request: Request) -> Response:
        form = await request.form()
        shown = {"code": str(form.get("code") or "").strip()[:32], "amount": str(form.get("amount") or "")[:40], "mode": form.get("mode")}
        union = await unions.union_by_code(shown["code"].upper()) if shown["code"] else None
        problems = []
        if union is None:
            problems.append("请填写基层工会代码，如 GZ-TH-001（不区分大小写）")
        amount = None
        if shown["mode"] == "above":
            amount, wrong = ui.read_yuan(shown["amount"])
            if wrong:
                problems.append(f"审批起点金额：{wrong}")
        elif shown["mode"] == "all":
            amount = 0
        elif shown["mode"] != "none":
            problems.append("请选择审批方式")
        if problems:
            return await self._page(request, 400, ui.problem("审批规则未保存", *problems), shown)
        try:
            await approval_rules.set_rule(union["id"], amount, actor_id=request.user.id, at=clock(request))
        except DomainError as exc:
            return await self._page(request, status_of(exc), ui.explain(exc), shown)
        return Redirect(path="/admin/approval?ok=approval_rule", status_code=303)
