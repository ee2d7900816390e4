"""对账 as pages: the suppliers' monthly settlement (结算: an admin picks a supplier or all of
them, a supplier sees its own) and a branch's statement of the year (对账单: a buyer its own
branch, an auditor a branch of its subtree, an admin any branch) — `shop.reports.settlement`,
as `/api/reports/settlement` and `/api/reports/statement` use it, whose `?format=csv|xlsx` the
pages link to for the same files."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Request, get
from litestar.params import FromQuery
from litestar.response import Template

from budgets import unions
from budgets.states import Level
from catalog import suppliers
from common.errors import DomainError
from shop.auth import scope
from shop.reports import settlement
from shop.web.forms import int_or_none
from shop.web.render import Page, render, year_of, years_for
from shop.web import ui

MONTHS = {m: f"{m} 月" for m in range(1, 13)}
SUMMED = ("paid_fen", "refunded_fen", "net_fen", "invoiced_fen", "uninvoiced_fen", "shipments")


def _query(**params: Any) -> str:
    return urlencode({k: v for k, v in params.items() if v is not None})


class SettlementPages(Page):
    """Admins and suppliers (the route group); a supplier naming another supplier: 403, as the API."""

    @get("/reports/settlement")
    async def settlement(
        self,
        request: Request,
        year: FromQuery[str | None] = None,
        month: FromQuery[str | None] = None,
        supplier_id: FromQuery[str | None] = None,
    ) -> Template:
        user = request.user
        chosen = year_of(request, year)
        month_n = int_or_none(month, 1, 12)
        wanted = int_or_none(supplier_id)
        if user.role == "supplier":
            if (supplier_id or "").strip() and wanted != user.supplier_id:
                raise DomainError("forbidden", "a supplier sees only its own settlement")
            wanted, choices = user.supplier_id, []
            supplier = await suppliers.get_supplier(user.supplier_id)
        else:
            supplier = await suppliers.get_supplier(wanted) if wanted is not None else None  # 404 for none such
            choices, _ = await suppliers.list_suppliers(limit=200)
        rows = await settlement.settlement(chosen, month_n, wanted)
        totals = {k: sum(r[k] for r in rows) for k in SUMMED}
        return render(
            request,
            "reports_settlement.html",
            rows=rows,
            totals=totals,
            year=chosen,
            years=years_for(request),
            month=month_n,
            months=MONTHS,
            supplier=supplier,
            choices=choices,
            export=_query(year=chosen, month=month_n, supplier_id=wanted if user.role == "admin" else None),
        )


class StatementPages(Page):
    """Buyers (their branch), auditors (a branch of their subtree) and admins (any branch)."""

    @get("/reports/statement")
    async def statement(self, request: Request, year: FromQuery[str | None] = None, union_id: FromQuery[str | None] = None) -> Template:
        user = request.user
        chosen = year_of(request, year)
        wanted = int_or_none(union_id)
        branches: list[dict] = []
        if user.role != "buyer":
            branches = await unions.branches_under(await unions.subtree_prefix(user.union_id) if user.role == "auditor" else None)
        context: dict[str, Any] = {"year": chosen, "years": years_for(request), "branches": branches, "branch": None, "body": None}
        if user.role != "buyer" and wanted is None:
            return render(request, "reports_statement.html", **context)
        root = await scope.scope_root(user, wanted)  # another branch of a buyer, outside an auditor's subtree: 403
        branch = await unions.get_union(root) if root is not None else None
        if branch is None or branch["level"] != Level.branch:
            problem = ui.problem("请选择一个基层工会", "对账单按基层工会出具；总工会、区级工会请选择其下的基层工会。")
            return render(request, "reports_statement.html", status_code=400, error=problem, **context)
        body = await settlement.statement(root, chosen)
        context.update(branch=branch, body=body, export=_query(year=chosen, union_id=root if user.role != "buyer" else None))
        return render(request, "reports_statement.html", **context)
