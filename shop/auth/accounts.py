"""Accounts: the principal every guard and domain function sees, creating users, checking
and changing passwords (Piccolo's BaseUser hashing, off the event loop), and the admin's
list of accounts with deactivation and password resets.

A token is issued under the account's `token_version`; changing or resetting the password
and deactivating raise it, so every older token stops working (`load_principal` compares
it in the query that loads the account on every request)."""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

import msgspec
from piccolo.query import WhereRaw

from budgets.states import Level
from budgets.tables import Union
from common.clock import utcnow
from common.errors import invalid
from common.sql import fetch, for_update, is_unique_violation, like_pattern
from shop.auth.ratelimit import count_login_attempt
from shop.auth.schemas import PASSWORD_MIN_LENGTH
from shop.auth.tables import AccountAction, AccountEvent, RevokedToken, Role, User
from shop.errors import ShopError, problem


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """The authenticated caller, as every guard and service sees it."""

    id: int
    username: str
    role: str
    union_id: int | None = None
    supplier_id: int | None = None
    token_version: int = 0  # the account's, when it was loaded: a new token carries it
    approves: bool = False  # a buyer who may also decide the branch's orders waiting for approval

    @property
    def may_approve(self) -> bool:
        """An approver, or a buyer who also holds the approver's part (`approves`)."""
        return self.role == "approver" or (self.role == "buyer" and self.approves)



_PRINCIPAL_SQL = (
    'SELECT id, username, role, "union", supplier, token_version, approves FROM '
    + User._meta.tablename + " WHERE id = {} AND active"
)

# a token revoked by logging out, when revocations live in the database (no Redis)
_NOT_REVOKED = f"NOT EXISTS (SELECT 1 FROM {RevokedToken._meta.tablename} r WHERE r.jti = {{}})"


def _principal(row: dict[str, Any]) -> Principal:
    return Principal(
        id=row["id"],
        username=row["username"],
        role=row["role"],
        union_id=row["union"],
        supplier_id=row["supplier"],
        token_version=row["token_version"],
        approves=bool(row["approves"]),
    )


async def load_principal(user_id: int, token_version: int | None = None, unless_revoked: str | None = None) -> Principal | None:
    """The active account `user_id`; with `token_version`, only if its tokens of that version
    still count; with `unless_revoked` (a token's jti), only if that token was not revoked in
    the database. One query either way: this runs on every authenticated request."""
    sql, args = _PRINCIPAL_SQL, [user_id]  # raw: the query builder cost more than the query here
    if token_version is not None:
        sql, args = sql + " AND token_version = {}", [*args, token_version]
    if unless_revoked is not None:
        sql, args = sql + " AND " + _NOT_REVOKED, [*args, unless_revoked]
    rows = await fetch(User, sql, *args)
    return _principal(rows[0]) if rows else None


async def verify_password(username: str, password: str) -> int | None:
    """BaseUser's own hashing (pbkdf2-sha256), with the CPU-heavy part off the event loop."""
    if len(username) > (User.username.length or 100) or len(password) > User._max_password_length or "\x00" in username:
        return None  # no such account (PostgreSQL text cannot even hold a NUL)
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
    approves: bool = False,
) -> Principal:
    """Create an account (`actor_id`: the admin who did it; None from the CLI and the
    seeds); the role decides which scope it needs.

    BaseUser's email is unique and required: without one, a reserved placeholder is kept."""
    if role not in Role.__members__:
        raise ShopError("validation_failed", f"unknown role {role!r}", errors=[{"field": "role", "message": "unknown role"}])
    if role in ("buyer", "auditor", "approver") and union_id is None:
        raise ShopError("validation_failed", f"a {role} needs a union_id", errors=[{"field": "union_id", "message": "required for this role"}])
    if role == "approver" and not await Union.exists().where((Union.id == union_id) & (Union.level == Level.branch)):
        raise ShopError("validation_failed", "an approver decides one branch's orders: union_id must be a branch (基层工会)", errors=[{"field": "union_id", "message": "must be a branch"}])
    if approves and role != "buyer":
        raise ShopError("validation_failed", "only a buyer also approves (an approver account approves by its role)", errors=[{"field": "approves", "message": "only for a buyer"}])
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
        approves=approves,
    )
    try:
        async with User._meta.db.transaction():
            await user.save()
            detail = f"{role}" + (f", union {union_id}" if union_id else "") + (f", supplier {supplier_id}" if supplier_id else "") + (", approves" if approves else "")
            await AccountEvent.insert(
                AccountEvent(user=user.id, at=utcnow(), actor=actor_id, action=AccountAction.created, detail=detail)
            )
    except Exception as exc:
        if is_unique_violation(exc):
            raise ShopError("conflict", f"username {username!r} or its email is taken") from exc
        raise
    return Principal(id=user.id, username=username, role=role, union_id=union_id, supplier_id=supplier_id, approves=approves)


# --- passwords, deactivation: each ends the account's tokens ---------------------------------------


async def _hash_new(password: str, field: str) -> str:
    """Our length and BaseUser's own rules for a new password (`validation_failed` on `field`), hashed."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise invalid(field, f"must be at least {PASSWORD_MIN_LENGTH} characters")
    try:
        User._validate_password(password)
    except ValueError as exc:
        raise invalid(field, str(exc)) from exc
    return await asyncio.to_thread(User.hash_password, password)


async def change_password(request: Any, principal: Principal, old_password: str, new_password: str) -> None:
    """The account holder changes their own password (API and page alike). The old password is
    checked like a login, under the same limit, so a stolen token is no way to guess it. Every
    token issued before stops working."""
    await count_login_attempt(request, principal.username)
    if await verify_password(principal.username, old_password) != principal.id:
        raise invalid("old_password", "does not match the current password")
    hashed = await _hash_new(new_password, "new_password")
    async with User._meta.db.transaction():
        await User.update({User.password: hashed, User.token_version: User.token_version + 1}).where(User.id == principal.id)
        # the holder's own doing, not an admin's: no actor, so the admin's trail leaves it out
        await AccountEvent.insert(AccountEvent(user=principal.id, at=utcnow(), actor=None, action=AccountAction.password_changed))


_USER_COLUMNS = (User.id, User.username, User.role, User.union, User.supplier, User.active, User.approves)


def _account(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "username": row["username"],
        "role": row["role"],
        "union_id": row["union"],
        "supplier_id": row["supplier"],
        "active": row["active"],
        "approves": bool(row["approves"]),
    }


async def list_users(*, role: str | None = None, q: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list[dict], int]:
    """Accounts by id, optionally of one role and whose username contains `q` (any case)."""
    clauses = []
    if role is not None:
        clauses.append(User.role == role)
    if q is not None and q.strip():
        clauses.append(WhereRaw("""LOWER("username") LIKE {} ESCAPE '!'""", like_pattern(q.strip())))
    rows = await User.select(*_USER_COLUMNS).where(*clauses).order_by(User.id).limit(limit).offset(offset)
    return [_account(r) for r in rows], await User.count().where(*clauses)


async def update_user(user_id: int, *, active: bool | None, password: str | None, actor_id: int) -> dict[str, Any]:
    """An admin deactivates, reactivates or resets the password of an account. Deactivating
    and resetting end the account's tokens; each change is an account event with the admin
    as its actor. Refused before anything changes: nothing to do, a password BaseUser
    refuses, an admin deactivating their own account."""
    if active is None and password is None:
        raise invalid("body", "give active, password or both")
    if active is False and user_id == actor_id:
        raise ShopError("forbidden", "an admin cannot deactivate their own account")
    hashed = await _hash_new(password, "password") if password is not None else None
    async with User._meta.db.transaction():
        row = await for_update(User.select(User.active).where(User.id == user_id), User).first()
        if row is None:
            raise ShopError("not_found", f"user {user_id} does not exist")
        values: dict[Any, Any] = {}
        actions: list[AccountAction] = []
        if active is not None and active != row["active"]:
            values[User.active] = active
            actions.append(AccountAction.activated if active else AccountAction.deactivated)
        if hashed is not None:
            values[User.password] = hashed
            actions.append(AccountAction.password_reset)
        if active is False or hashed is not None:
            values[User.token_version] = User.token_version + 1
        if values:
            await User.update(values).where(User.id == user_id)
        at = utcnow()
        for action in actions:
            await AccountEvent.insert(AccountEvent(user=user_id, at=at, actor=actor_id, action=action))
        updated = await User.select(*_USER_COLUMNS).where(User.id == user_id).first()
    return _account(updated)
