"""Guards: the caller must be logged in and hold one of the roles a route allows."""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from shop.auth.accounts import Principal
from shop.errors import problem


def require_roles(*roles: str):
    """A guard: the caller must hold one of `roles`."""

    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:  # async: a sync guard runs in a thread
        user = connection.user if "user" in connection.scope else None
        if not isinstance(user, Principal):
            raise problem("unauthenticated", "log in first")
        if user.role not in roles:
            raise problem("forbidden", f"this needs the role {' or '.join(roles)}")

    guard.__name__ = f"require_{'_or_'.join(roles)}"
    return guard


def require_approver(*, admins: bool = False):
    """A guard: the caller decides orders waiting for approval (an approver, or a buyer who
    also approves); with `admins`, admins pass too (they read every branch's approvals)."""

    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        user = connection.user if "user" in connection.scope else None
        if not isinstance(user, Principal):
            raise problem("unauthenticated", "log in first")
        if not (user.may_approve or (admins and user.role == "admin")):
            raise problem("forbidden", "this needs the role approver (or a buyer who approves)")

    guard.__name__ = "require_approver" + ("_or_admin" if admins else "")
    return guard


admin_only = require_roles("admin")
buyer_only = require_roles("buyer")
