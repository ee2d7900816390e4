"""Accounts: Piccolo's BaseUser (hashing, login) plus a role and its scope, and what was
done to each account by whom; the login counters and revoked tokens that every server
process shares when there is no Redis (`REDIS_URL`)."""

from enum import StrEnum

from piccolo.apps.user.tables import BaseUser
from piccolo.columns import Boolean, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.constraints import Check, Unique
from piccolo.table import Table

from budgets.tables import Union
from catalog.tables import Supplier
from common.sql import one_of


class Role(StrEnum):
    admin = "admin"
    buyer = "buyer"
    supplier = "supplier"
    auditor = "auditor"
    approver = "approver"  # a branch's union chair or finance member: decides its orders above the rule


class User(BaseUser, tablename="shop_user"):
    role = Varchar(length=16, default=Role.buyer.value)
    union = ForeignKey(Union, null=True, default=None, on_delete=OnDelete.restrict)
    supplier = ForeignKey(Supplier, null=True, default=None, on_delete=OnDelete.restrict)
    # every token carries the version it was issued under; a password change, a reset or a
    # deactivation raises it, and every older token stops working
    token_version = Integer(default=0)
    # a buyer who is also the branch's approver (a union chair who buys): may decide the
    # branch's orders waiting for approval, never one it placed itself
    approves = Boolean(default=False)

    user_role_known_v2 = Check(one_of("role", Role))  # a new name when Role changes


class AccountAction(StrEnum):
    created = "created"
    deactivated = "deactivated"
    activated = "activated"
    password_reset = "password_reset"  # by an admin
    password_changed = "password_changed"  # by the account holder (no actor: not an admin's doing)


class AccountEvent(Table, tablename="shop_account_event"):
    """One change of an account, written with it (the admin's trail reads these)."""

    user = ForeignKey(User, null=False, index=True, on_delete=OnDelete.restrict)
    at = Timestamptz()
    actor = ForeignKey(User, null=True, default=None, on_delete=OnDelete.restrict)
    action = Varchar(length=32)
    detail = Text(default="")

    # Piccolo compares constraints by name only: when AccountAction changes, the name changes
    # too, so that the migration drops the old condition and adds the new one.
    account_event_action_known_v2 = Check(one_of("action", AccountAction))


class LoginAttempt(Table, tablename="shop_login_attempt"):
    """How many logins one client address and username tried in one fixed minute; counted by
    one `INSERT … ON CONFLICT … DO UPDATE … RETURNING` (`shop/auth/ratelimit.py`)."""

    key = Varchar(length=64)  # sha256 of "address|username": fixed length, no NUL, no plain usernames
    window_start = Timestamptz(index=True)
    attempts = Integer(default=0)

    login_attempt_one_per_window = Unique(["key", "window_start"])


class RevokedToken(Table, tablename="shop_revoked_token"):
    """A token ended by logging out, kept until the token would have expired anyway."""

    jti = Varchar(length=64, unique=True)
    expires_at = Timestamptz(index=True)

