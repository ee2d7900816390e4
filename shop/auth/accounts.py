"""Accounts: the principal every guard and domain function sees, creating users and
checking passwords (Piccolo's BaseUser hashing, off the event loop)."""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

import msgspec

from common.clock import utcnow
from common.sql import is_unique_violation
from shop.auth.ratelimit import count_login_attempt
from shop.auth.tables import AccountAction, AccountEvent, Role, User
from shop.errors import ShopError, problem


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """The authenticated caller, as every guard and service sees it."""

    id: int
    username: str
    role: str
    union_id: int | None = None
    supplier_id: int | None = None


_PRINCIPAL_COLUMNS = (User.id, User.username, User.role, User.union, User.supplier)


def _principal(row: dict[str, Any]) -> Principal:
    return Principal(
        id=row["id"],
        username=row["username"],
        role=row["role"],
        union_id=row["union"],
        supplier_id=row["supplier"],
    )


async def load_principal(user_id: int) -> Principal | None:
    row = await User.select(*_PRINCIPAL_COLUMNS).where((User.id == user_id) & (User.active == True)).first()  # noqa: E712
    return _principal(row) if row else None


async def verify_password(username: str, password: str) -> int | None:
    """BaseUser's own hashing (pbkdf2-sha256), with the CPU-heavy part off the event loop."""
    if len(username) > (User.username.length or 100) or len(password) > User._max_password_length:
        return None
    row = await User.select(User.id, User.password).where((User.username == username) & (User.active == True)).first()  # noqa: E712
    if row is None:
        await asyncio.to_thread(User.hash_password, password)  # same time as a real check
        return None
    _, iterations, salt, _ = User.split_stored_password(row["password"])
    computed = await asyncio.to_thread(User.hash_password, password, salt, int(iterations))
    if not hmac.compare_digest(computed, row["password"]):
        return None
    return row["id"]


async def login_attempt(request: Any, username: str, password: str) -> Principal:
    """Check a login (API and login page alike): at most `LOGIN_RATE_LIMIT` attempts a
    minute per client address and username (`rate_limited`), then the password
    (`unauthenticated`). Returns the account's principal."""
    await count_login_attempt(request, username)
    user_id = await verify_password(username, password)
    principal = await load_principal(user_id) if user_id else None
    if principal is None:
        raise problem("unauthenticated", "wrong username or password")
    return principal


async def create_user(
    username: str,
    password: str,
    role: str,
    union_id: int | None = None,
    supplier_id: int | None = None,
    email: str | None = None,
    actor_id: int | None = None,
) -> Principal:
    """Create an account (`actor_id`: the admin who did it; None from the CLI and the
    seeds); the role decides which scope it needs.

    BaseUser's email is unique and required: without one, a reserved placeholder is kept."""
    if role not in Role.__members__:
        raise ShopError("validation_failed", f"unknown role {role!r}", errors=[{"field": "role", "message": "unknown role"}])
    if role in ("buyer", "auditor") and union_id is None:
        raise ShopError("validation_failed", f"a {role} needs a union_id", errors=[{"field": "union_id", "message": "required for this role"}])
    if role == "supplier" and supplier_id is None:
        raise ShopError("validation_failed", "a supplier needs a supplier_id", errors=[{"field": "supplier_id", "message": "required for this role"}])
    if role in ("admin", "supplier"):
        union_id = None
    if role != "supplier":
        supplier_id = None
    if await User.exists().where(User.username == username):
        raise ShopError("conflict", f"username {username!r} is taken")
    try:
        User._validate_password(password)
    except ValueError as exc:
        raise ShopError("validation_failed", str(exc), errors=[{"field": "password", "message": str(exc)}]) from exc
    hashed = await asyncio.to_thread(User.hash_password, password)
    user = User(
        username=username,
        password=hashed,
        email=email or f"{username}@users.invalid",
        role=role,
        union=union_id,
        supplier=supplier_id,
        active=True,
    )
    try:
        async with User._meta.db.transaction():
            await user.save()
            detail = f"{role}" + (f", union {union_id}" if union_id else "") + (f", supplier {supplier_id}" if supplier_id else "")
            await AccountEvent.insert(
                AccountEvent(user=user.id, at=utcnow(), actor=actor_id, action=AccountAction.created, detail=detail)
            )
    except Exception as exc:
        if is_unique_violation(exc):
            raise ShopError("conflict", f"username {username!r} or its email is taken") from exc
        raise
    return Principal(id=user.id, username=username, role=role, union_id=union_id, supplier_id=supplier_id)
