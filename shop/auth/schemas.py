"""msgspec structs for logging in and for accounts."""

from __future__ import annotations

from typing import Annotated

import msgspec

from common.schemas import Body, Id
from shop.auth.tables import Role

Username = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class LoginIn(Body):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    password: Password


class UserOut(msgspec.Struct, kw_only=True):
    id: int
    username: str
    role: Role
    union_id: int | None
    supplier_id: int | None


class LoginOut(msgspec.Struct, kw_only=True):
    token: str
    user: UserOut


class UserIn(Body):
    username: Username
    password: Annotated[str, msgspec.Meta(min_length=8, max_length=128)]
    role: Role
    union_id: Id | None = None
    supplier_id: Id | None = None
    email: Annotated[str, msgspec.Meta(max_length=255, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
