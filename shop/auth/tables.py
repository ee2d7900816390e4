"""Accounts: Piccolo's BaseUser (hashing, login) plus a role and its scope, and what was
done to each account by whom."""

from enum import StrEnum

from piccolo.apps.user.tables import BaseUser
from piccolo.columns import ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.constraints import Check
from piccolo.table import Table

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


class AccountAction(StrEnum):
    created = "created"


class AccountEvent(Table, tablename="shop_account_event"):
    """One change of an account, written with it (the admin's trail reads these)."""

    user = ForeignKey(User, null=False, index=True, on_delete=OnDelete.restrict)
    at = Timestamptz()
    actor = ForeignKey(User, null=True, default=None, on_delete=OnDelete.restrict)
    action = Varchar(length=32)
    detail = Text(default="")

    account_event_action_known = Check(one_of("action", AccountAction))
