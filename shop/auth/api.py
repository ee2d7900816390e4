"""Logging in, the caller, and (admins) creating accounts."""

from __future__ import annotations

from litestar import Controller, Request, get, post
from litestar.params import JSONBody

from budgets.tables import Union
from catalog.tables import Supplier
from common.errors import DomainError
from shop.auth import accounts
from shop.auth.accounts import Principal
from shop.auth.schemas import LoginIn, LoginOut, UserIn, UserOut


def user_out(principal: Principal) -> UserOut:
    return UserOut(
        id=principal.id,
        username=principal.username,
        role=principal.role,
        union_id=principal.union_id,
        supplier_id=principal.supplier_id,
    )


class LoginController(Controller):
    path = "/api/auth"
    opt = {"exclude_from_auth": True}

    @post("/login", status_code=200)
    async def login(self, request: Request, data: JSONBody[LoginIn]) -> LoginOut:
        principal = await accounts.login_attempt(request, data.username, data.password)
        token = request.app.state.jwt_auth.create_token(identifier=str(principal.id))
        return LoginOut(token=token, user=user_out(principal))


class MeController(Controller):
    path = "/api/me"

    @get("/")
    async def me(self, request: Request) -> UserOut:
        return user_out(request.user)


class AdminUserController(Controller):
    path = "/api/admin/users"

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
        )
        return user_out(principal)


ROUTES = {
    "public": [LoginController],
    "any": [MeController],
    "admin": [AdminUserController],
}
