"""Accounts: Piccolo's BaseUser (hashing, login) plus a role and its scope."""

from enum import StrEnum

from piccolo.apps.user.tables import BaseUser
from piccolo.columns import ForeignKey, Varchar
from piccolo.columns.base import OnDelete
from piccolo.constraints import Check

from budgets.tables import Union
from catalog.tables import Supplier
from common.sql import one_of


class Role(StrEnum):
    admin = "admin"
    buyer = "buyer"
    supplier = "supplier"
    auditor = "auditor"


class User(BaseUser, tablename="shop_user"):
    role = Varchar(length=16, default=Role.buyer.value)
    union = ForeignKey(Union, null=True, default=None, on_delete=OnDelete.restrict)
    supplier = ForeignKey(Supplier, null=True, default=None, on_delete=OnDelete.restrict)

    user_role_known = Check(one_of("role", Role))
