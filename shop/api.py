"""The shop's own endpoints: operations, login, the caller, admin user management."""

from __future__ import annotations

import logging

from litestar import Controller, Request, get, post
from litestar.params import JSONBody

from budgets.tables import Union
from catalog.tables import Supplier
from shop import auth
from shop.errors import ShopError, problem
from shop.schemas import LoginIn, LoginOut, UserIn, UserOut
from shop.settings import Settings

logger = logging.getLogger("shop")


def user_out(principal: auth.Principal) -> UserOut:
    return UserOut(
        id=principal.id,
        username=principal.username,
        role=principal.role,
        union_id=principal.union_id,
        supplier_id=principal.supplier_id,
    )


class OperationsController(Controller):
    opt = {"exclude_from_auth": True}

    @get("/health", sync_to_thread=False)
    def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready")
    async def ready(self) -> dict[str, str]:
        try:
            await Union.count()
        except Exception as exc:  # the database does not answer
            logger.warning("readiness check failed: %r", exc)
            raise problem("unavailable", "the database is not reachable") from exc
        return {"status": "ready"}


class LoginController(Controller):
    path = "/api/auth"
    opt = {"exclude_from_auth": True}

    @post("/login", status_code=200)
    async def login(self, request: Request, data: JSONBody[LoginIn]) -> LoginOut:
        settings: Settings = request.app.state.settings
        store = request.app.stores.get("login_attempts")
        client = request.client.host if request.client else "unknown"
        key = f"{client}|{data.username}"
        attempts = int(await store.get(key) or 0) + 1
        if attempts > settings.login_rate_limit:
            raise problem("rate_limited", "too many login attempts; wait a minute", headers={"Retry-After": "60"})
        ttl = await store.expires_in(key)
        await store.set(key, str(attempts), expires_in=ttl if ttl and ttl > 0 else 60)
        user_id = await auth.verify_password(data.username, data.password)
        principal = await auth.load_principal(user_id) if user_id else None
        if principal is None:
            raise problem("unauthenticated", "wrong username or password")
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
    async def create(self, data: JSONBody[UserIn]) -> UserOut:
        if data.union_id is not None and not await Union.exists().where(Union.id == data.union_id):
            raise ShopError("not_found", f"union {data.union_id} does not exist")
        if data.supplier_id is not None and not await Supplier.exists().where(Supplier.id == data.supplier_id):
            raise ShopError("not_found", f"supplier {data.supplier_id} does not exist")
        principal = await auth.create_user(
            data.username,
            data.password,
            data.role,
            union_id=data.union_id,
            supplier_id=data.supplier_id,
            email=data.email,
        )
        return user_out(principal)


ROUTES = {
    "public": [OperationsController, LoginController],
    "any": [MeController],
    "admin": [AdminUserController],
}
