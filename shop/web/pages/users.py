"""Accounts on the pages: every user's own password, and the admin's list of accounts
(deactivate, reactivate, reset a password) — the same domain functions as the API."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, get, post
from litestar.params import FromQuery
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.response import Redirect, Template

from common.errors import DomainError
from common.schemas import ID_MAX, PathId, query_name
from shop.auth import accounts
from shop.auth.tables import Role
from shop.errors import CODES
from shop.web import ui
from shop.web.forms import page_number
from shop.web.pages.account import token_cookie
from shop.web.render import PAGE_SIZE, Page, error_page, pager, render, status_of


class PasswordPages(Page):
    @get("/account/password")
    async def password_form(self, request: Request) -> Template:
        return render(request, "account_password.html")

    @post("/account/password", status_code=200)
    async def change_password(self, request: Request) -> Response:
        """Every other session of the account ends; this one gets a new token."""
        form = await request.form()
        old, new, again = (str(form.get(k) or "") for k in ("old_password", "new_password", "new_password_again"))
        error = None
        if not old or not new:
            error = ui.problem("请填写当前密码和新密码")
        elif new != again:
            error = ui.problem("两次输入的新密码不一致")
        elif len(old) > 128 or len(new) > 128:
            error = ui.problem("密码最长 128 位")
        else:
            try:
                await accounts.change_password(request, request.user, old, new)
            except DomainError as exc:
                error = ui.explain(exc)
            except ProblemDetailsException as exc:  # the login limit
                error = ui.problem(ui.CODE_MESSAGES["rate_limited"], code="rate_limited")
                return render(request, "account_password.html", status_code=exc.status_code, error=error, headers=exc.headers)
        if error is not None:
            return render(request, "account_password.html", status_code=CODES[error["code"]][0], error=error)
        principal = await accounts.load_principal(request.user.id)
        cookies = [token_cookie(request, principal)] if principal is not None else []
        return Redirect(path="/account/password?ok=password", status_code=303, cookies=cookies)


class AdminUserPages(Page):
    @get("/admin/users")
    async def users(
        self, request: Request, role: FromQuery[str | None] = None, q: Annotated[str | None, query_name(100)] = None, page: FromQuery[str | None] = None
    ) -> Template:
        number = page_number(page)
        role = role if role in Role.__members__ else None
        q = (q or "").strip()[:100]
        items, total = await accounts.list_users(role=role, q=q or None, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
        return render(request, "admin_users.html", users=items, role=role or "", q=q, roles=list(Role), pager=pager(total, number))

    @post("/admin/users/{user_id:int}/active", status_code=200)
    async def set_active(self, request: Request, user_id: PathId) -> Response:
        form = await request.form()
        active = str(form.get("active") or "") == "1"
        return await self._update(request, user_id, active=active, password=None, done="saved")

    @post("/admin/users/{user_id:int}/password", status_code=200)
    async def reset_password(self, request: Request, user_id: PathId) -> Response:
        form = await request.form()
        password = str(form.get("password") or "")
        if not password or len(password) > 128:
            return error_page(request, 400, "请填写新密码（8–128 位）")
        return await self._update(request, user_id, active=None, password=password, done="reset")

    async def _update(self, request: Request, user_id: int, *, active: bool | None, password: str | None, done: str) -> Response:
        if not 1 <= user_id <= ID_MAX:
            return error_page(request, 404, ui.CODE_MESSAGES["not_found"])
        try:
            await accounts.update_user(user_id, active=active, password=password, actor_id=request.user.id)
        except DomainError as exc:
            explained = ui.explain(exc)
            return error_page(request, status_of(exc), explained["title"], explained["details"])
        return Redirect(path=f"/admin/users?ok={done}", status_code=303)
