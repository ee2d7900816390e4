"""Logging in and out, the caller and their password, and (admins) the accounts."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, patch, post
from litestar.params import FromQuery, JSONBody

from budgets.tables import Union
from catalog.tables import Supplier
from common.errors import DomainError
from common.pagination import PAGINATION, Paging
from common.schemas import ID_MAX, PathId, query_name
from shop.auth import accounts, tokens
from shop.auth.accounts import Principal
from shop.auth.schemas import (
    AccountList,
    AccountOut,
    LoginIn,
    LoginOut,
    PasswordChangeIn,
    UserIn,
    UserOut,
    UserPatchIn,
)
from shop.auth.tables import Role


def user_out(principal: Principal) -> UserOut:
    return UserOut(
        id=principal.id,
        username=principal.username,
        role=principal.role,
        union_id=principal.union_id,
        supplier_id=principal.supplier_id,
        approves=principal.approves,
    )


class LoginController(Controller):
    path = "/api/auth"
    opt = {"exclude_from_auth": True}

    @post("/login", status_code=200)
    async def login(self, request: Request, data: JSONBody[LoginIn]) -> LoginOut:
        principal = await accounts.login_attempt(request, data.username, data.password)
        token = tokens.issue_token(request.app.state.jwt_auth, principal)
        return LoginOut(token=token, user=user_out(principal))


class LogoutController(Controller):
    path = "/api/auth"

    @post("/logout", status_code=204)
    async def logout(self, request: Request) -> None:
        """This token no longer works, in any server process."""
        await tokens.revoke_token(request.auth, request.app.state)


class MeController(Controller):
    path = "/api/me"

    @get("/")
    async def me(self, request: Request) -> UserOut:
        return user_out(request.user)

    @post("/password", status_code=204)
    async def change_password(self, request: Request, data: JSONBody[PasswordChangeIn]) -> None:
        """Every token issued before (this one too) stops working: log in again. A wrong
        `old_password` is 400 `validation_failed` on that field (the caller is authenticated;
        a 401 would tell clients their token is bad); it counts against the login limit."""
        await accounts.change_password(request, request.user, data.old_password, data.new_password)


class AdminUserController(Controller):
    path = "/api/admin/users"
    dependencies = PAGINATION

    @get("/")
    async def list(
        self,
        page: Paging,
        role: FromQuery[Role | None] = None,
        q: Annotated[str | None, query_name(100)] = None,
    ) -> AccountList:
        """Accounts by id, with whether each is active; `q`: part of the username."""
        items, total = await accounts.list_users(role=role, q=q, limit=page.limit, offset=page.offset)
        return AccountList(items=[AccountOut(**i) for i in items], total=total)

    @post("/")
    async def create(self, request: Request, data: JSONBody[UserIn]) -> UserOut:
        if data.union_id is not None and not await Union.exists().where(Union.id == data.union_id):
            raise DomainError("not_found", f"union {data.union_id} does not exist")
        if data.supplier_id is not None and not await Supplier.exists().where(Supplier.id == data.supplier_id):
            raise DomainError("not_found", f"supplier {data.supplier_id} does not exist")
        principal = await accounts.create_user(
            data.username,
            data.password,
            data.role,
            union_id=data.union_id,
            supplier_id=data.supplier_id,
            email=data.email,
            actor_id=request.user.id,
            approves=data.approves,
        )
        return user_out(principal)

    @patch("/{user_id:int}")
    async def update(self, request: Request, user_id: PathId, data: JSONBody[UserPatchIn]) -> AccountOut:
        """Deactivate or reactivate an account, or reset its password; deactivating and
        resetting end the account's tokens."""
        if not 1 <= user_id <= ID_MAX:
            raise DomainError("not_found", f"user {user_id} does not exist")
        account = await accounts.update_user(user_id, active=data.active, password=data.password, actor_id=request.user.id)
        return AccountOut(**account)


ROUTES = {
    "public": [LoginController],
    "any": [LogoutController, MeController],
    "admin": [AdminUserController],
}
