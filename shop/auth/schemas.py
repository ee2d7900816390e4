"""msgspec structs for logging in and for accounts."""

from __future__ import annotations

from typing import Annotated

import msgspec

from common.schemas import Body, Id, Name, Text
from shop.auth.tables import Role

Username = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")]
Password = Annotated[Text, msgspec.Meta(min_length=1, max_length=128)]
PASSWORD_MIN_LENGTH = 8  # a new password (BaseUser itself asks for 6)
NewPassword = Annotated[Text, msgspec.Meta(min_length=PASSWORD_MIN_LENGTH, max_length=128)]


class LoginIn(Body):
    username: Annotated[Name, msgspec.Meta(min_length=1, max_length=100)]
    password: Password


class UserOut(msgspec.Struct, kw_only=True):
    id: int
    username: str
    role: Role
    union_id: int | None
    supplier_id: int | None
    approves: bool = False  # a buyer who also decides the branch's orders waiting for approval


class LoginOut(msgspec.Struct, kw_only=True):
    token: str
    user: UserOut


class UserIn(Body):
    username: Username
    password: NewPassword
    role: Role
    union_id: Id | None = None
    supplier_id: Id | None = None
    email: Annotated[str, msgspec.Meta(max_length=255, pattern=r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$")] | None = None
    approves: bool = False  # buyers only: also the branch's approver (工会主席 who buys)


class PasswordChangeIn(Body):
    old_password: Password
    new_password: NewPassword


class UserPatchIn(Body):
    """What an admin changes on an account: give at least one."""

    active: bool | None = None
    password: NewPassword | None = None


class AccountOut(UserOut, kw_only=True):
    """A user as the admin's list shows it."""

    active: bool


class AccountList(msgspec.Struct, kw_only=True):
    items: list[AccountOut]
    total: int
