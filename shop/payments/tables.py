"""Payment provider events, each handled once."""

from piccolo.columns import Integer, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class PaymentEvent(Table, tablename="shop_payment_event"):
    """Each provider event id is handled once: the unique constraint decides, not a lookup."""

    event_id = Varchar(length=255, unique=True)
    type = Varchar(length=64)
    order_id = Integer(null=True, default=None)
    outcome = Varchar(length=64, default="")
    received_at = Timestamptz(default=TimestamptzNow())
