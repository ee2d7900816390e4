"""One notification for one user; written with the change it tells of."""

from piccolo.columns import Boolean, ForeignKey, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.constraints import Check
from piccolo.table import Table

from common.sql import one_of
from shop.auth.tables import User
from shop.notifications.kinds import Kind
from shop.orders.tables import Order


class Notification(Table, tablename="shop_notification"):
    user = ForeignKey(User, null=False, index=True, on_delete=OnDelete.restrict)
    at = Timestamptz()
    kind = Varchar(length=32)
    title = Varchar(length=200)
    order = ForeignKey(Order, null=True, default=None, index=True, on_delete=OnDelete.restrict)
    read = Boolean(default=False)

    notification_kind_known_v2 = Check(one_of("kind", Kind))
