"""The buyer's members (add, deactivate, import from Excel or CSV, the import template) and their
yearly budget."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import quote

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from budgets import members, unions
from common.errors import DomainError
from common.schemas import PathId
from shop.member_view import links as member_links
from shop.reports.export import XLSX_TYPE
from shop.web import ui
from shop.web.forms import IMPORT_MAX_BYTES, page_number
from shop.web.render import Page, clock, is_htmx, pager, render, status_of, year_of, years_for

# --- buyer: members and their yearly budget -----------------------------------------------------------


class MemberPages(Page):
    async def _members_page(self, request: Request, status_code: int = 200, **extra: Any) -> Template:
        query = request.query_params
        number = page_number(query.get("page"))
        q = (query.get("q") or "").strip()[:50] or None
        items, total = await members.list_members(request.user.union_id, q=q, limit=50, offset=(number - 1) * 50)
        extra.setdefault("form", {"member_no": "", "name": ""})
        extra.setdefault("imported", None)
        extra.setdefault("import_errors", [])
        return render(request, "members.html", status_code=status_code, members=items, pager=pager(total, number, 50), q=q or "", **extra)

    @get("/members")
    async def members(self, request: Request) -> Template:
        return await self._members_page(request)

    @post("/members", status_code=200)
    async def add(self, request: Request) -> Response:
        form = await request.form()
        member_no = str(form.get("member_no") or "").strip()
        name = str(form.get("name") or "").strip()
        try:
            await members.create_member(request.user.union_id, member_no, name)
        except DomainError as exc:
            return await self._members_page(
                request, status_code=status_of(exc), error=ui.explain(exc), form={"member_no": member_no, "name": name}
            )
        return Redirect(path="/members?ok=added", status_code=303)

    @post("/members/{member_id:int}/active", status_code=200)
    async def set_active(self, request: Request, member_id: PathId) -> Response:
        form = await request.form()
        member = await members.update_member(member_id, branch_id=request.user.union_id, active=form.get("active") == "1")
        if is_htmx(request):
            return render(request, "_member_row.html", m=member)
        return Redirect(path="/members?ok=saved", status_code=303)

    @post("/members/{member_id:int}/link", status_code=200)
    async def new_link(self, request: Request, member_id: PathId) -> Response:
        """A new read-only link for the member: the old one (and its printed QR codes) ends."""
        await member_links.regenerate(member_id, request.user.union_id, request.app.state.settings, clock(request))
        return Redirect(path="/members?ok=link", status_code=303)

    @post("/members/import", status_code=200, request_max_body_size=IMPORT_MAX_BYTES)
    async def import_csv(self, request: Request) -> Template:
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return await self._members_page(request, status_code=400, error=ui.problem("请选择要导入的文件（Excel 或 CSV）"))
        data = await upload.read()
        try:  # as Excel saves it: .xlsx, or CSV in UTF-8 or GBK, headed 会员编号,姓名 (or member_no,name)
            result = await members.import_members(request.user.union_id, data, excel=True)
        except DomainError as exc:
            errors = [{"line": e.get("line"), "message": ui.translate(e.get("message", ""))} for e in exc.extra.get("errors", [])]
            explained = ui.explain(exc)
            if errors:
                explained = {**explained, "title": f"文件中有 {len(errors)} 行有误，全部未导入；请改正后重新导入。", "details": []}
            return await self._members_page(request, status_code=status_of(exc), error=explained, import_errors=errors)
        return await self._members_page(request, imported=result)


    @get("/members/template.csv")
    async def template_csv(self) -> Response:
        """The import template as CSV (UTF-8 with a BOM, so Excel shows the Chinese headers)."""
        body = ("\ufeff" + ",".join(members.CN_HEADER) + "\r\n").encode("utf-8")
        return Response(body, media_type="text/csv; charset=utf-8", headers=_download("会员导入模板.csv"))

    @get("/members/template.xlsx")
    async def template_xlsx(self) -> Response:
        """The import template as a workbook: the two headers, the member number column as text
        (so numbers like 0012 keep their zeros)."""
        return Response(_template_workbook(), media_type=XLSX_TYPE, headers=_download("会员导入模板.xlsx"))


def _download(filename: str) -> dict[str, str]:
    suffix = filename.rsplit(".", 1)[-1]
    return {"content-disposition": f"attachment; filename=\"members-template.{suffix}\"; filename*=UTF-8''{quote(filename)}"}


def _template_workbook() -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "会员"
    sheet.append(list(members.CN_HEADER))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.column_dimensions["A"].width = 18
    sheet.column_dimensions["B"].width = 16
    for row in range(2, 1002):
        sheet.cell(row=row, column=1).number_format = "@"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


class BudgetPages(Page):
    @get("/budget")
    async def budget(self, request: Request, year: FromQuery[str | None] = None) -> Template:
        chosen = year_of(request, year)
        budget = await members.branch_budget(request.user.union_id, chosen)
        totals = {
            "spent_fen": sum(m["spent_fen"] for m in budget["members"]),
            "held_fen": sum(m["held_fen"] for m in budget["members"]),
            "remaining_fen": sum(m["remaining_fen"] for m in budget["members"]),
        }
        branch = await unions.get_union(request.user.union_id)
        return render(request, "budget.html", budget=budget, totals=totals, years=years_for(request), year=chosen, branch=branch)
