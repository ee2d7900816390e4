"""Orders with their lines, member allocations, refunds and events."""

from piccolo.columns import (
    BigInt,
    Boolean,
    ForeignKey,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.constraints import Check, Unique
from piccolo.table import Table

from budgets.tables import Member, Union
from catalog.tables import Product, Supplier
from common.sql import one_of
from shop.auth.tables import User
from shop.orders.states import ApprovalStatus, OrderAction, OrderStatus, RefundKind, RefundStatus


class Order(Table, tablename="shop_order"):
    """An order of one branch; its `status` is written only by `shop/orders/lifecycle.py`."""

    branch = ForeignKey(Union, null=False, index=True, on_delete=OnDelete.restrict)
    created_by = ForeignKey(User, null=True, default=None, on_delete=OnDelete.restrict)
    year = Integer(index=True)
    status = Varchar(length=24, default=OrderStatus.pending_payment.value, index=True)
    total_fen = BigInt()
    refunded_fen = BigInt(default=0)
    idempotency_key = Varchar(length=64)
    request_hash = Varchar(length=64)
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    paid_at = Timestamptz(null=True, default=None)
    closed_at = Timestamptz(null=True, default=None)
    provider = Varchar(length=16, default="transfer")
    payment_reference = Varchar(length=255, default="")
    payment_url = Text(default="")
    # Stripe's PaymentIntent (from the paid Checkout Session): what a refund is made against.
    payment_intent = Varchar(length=255, default="")
    # A payment that arrived after the order expired: money to give back, shown to admins.
    needs_refund = Boolean(default=False)
    # where it goes: a copy of the branch's address when the order was placed ("" without one)
    delivery_name = Varchar(length=40, default="")
    delivery_phone = Varchar(length=32, default="")
    delivery_address = Varchar(length=200, default="")
    # the buyers were told that the hold ends within a day (set once, by the periodic job)
    hold_warned = Boolean(default=False)

    order_idempotency_unique = Unique([branch, idempotency_key])
    # Piccolo compares constraints by name only: a new status needs a new name
    order_status_known_v2 = Check(one_of("status", OrderStatus))
    order_total_positive = Check(total_fen > 0)
    order_refunded_range = Check((refunded_fen >= 0) & (refunded_fen <= total_fen))


class OrderLine(Table, tablename="shop_order_line"):
    order = ForeignKey(Order, null=False, index=True, on_delete=OnDelete.restrict)
    product = ForeignKey(Product, null=False, index=True, on_delete=OnDelete.restrict)
    supplier = ForeignKey(Supplier, null=False, index=True, on_delete=OnDelete.restrict)
    region_code = Varchar(length=32)
    title = Varchar(length=60)
    quantity = Integer()
    unit_price_fen = Integer()
    amount_fen = BigInt()
    refunded_quantity = Integer(default=0)

    line_quantity_positive = Check(quantity > 0)
    line_refunded_range = Check((refunded_quantity >= 0) & (refunded_quantity <= quantity))


class Allocation(Table, tablename="shop_allocation"):
    """The share of an order charged to one member's yearly quota."""

    order = ForeignKey(Order, null=False, index=True, on_delete=OnDelete.restrict)
    member = ForeignKey(Member, null=False, index=True, on_delete=OnDelete.restrict)
    amount_fen = BigInt()
    refunded_fen = BigInt(default=0)

    allocation_unique = Unique([order, member])
    allocation_amount_positive = Check(amount_fen > 0)
    allocation_refunded_range = Check((refunded_fen >= 0) & (refunded_fen <= amount_fen))



class Refund(Table, tablename="shop_refund"):
    """One refund of an order (see shop/orders/refunds.py for its life): `pending` while the
    provider is asked, then `succeeded` (Stripe gave the money back) or `owed` (bank
    transfer: to be paid back by the shop), or `failed` (the provider refused; nothing
    was applied). `seq` numbers an order's refunds and names the provider's idempotency key."""

    order = ForeignKey(Order, null=False, index=True, on_delete=OnDelete.restrict)
    amount_fen = BigInt()
    status = Varchar(length=16)
    provider_reference = Varchar(length=255, default="")
    created_by = ForeignKey(User, null=True, default=None, on_delete=OnDelete.restrict)
    created_at = Timestamptz(default=TimestamptzNow())
    seq = Integer(default=0)
    kind = Varchar(length=16, default=RefundKind.lines.value)
    provider = Varchar(length=16, default="")
    error = Text(default="")
    settled_at = Timestamptz(null=True, default=None)
    # the client's Idempotency-Key (null without one) and the request it came with
    idempotency_key = Varchar(length=64, null=True, default=None)
    request_hash = Varchar(length=64, default="")

    refund_idempotency_unique = Unique([order, idempotency_key])
    refund_amount_positive = Check(amount_fen > 0)
    refund_order_seq_unique = Unique([order, seq])
    refund_status_known = Check(one_of("status", RefundStatus))
    refund_kind_known = Check(one_of("kind", RefundKind))


class OrderEvent(Table, tablename="shop_order_event"):
    """One thing that happened to an order, written with the change it records (in the
    same transaction, by `lifecycle.py`); never updated or deleted. `actor` is null for the
    shop's own jobs and for payment webhooks."""

    order = ForeignKey(Order, null=False, index=True, on_delete=OnDelete.restrict)
    at = Timestamptz()
    actor = ForeignKey(User, null=True, default=None, on_delete=OnDelete.restrict)
    action = Varchar(length=32)
    detail = Text(default="")

    order_event_action_known_v3 = Check(one_of("action", OrderAction))


class RefundLine(Table, tablename="shop_refund_line"):
    """What a refund takes back: this many of one order line."""

    refund = ForeignKey(Refund, null=False, index=True, on_delete=OnDelete.restrict)
    line = ForeignKey(OrderLine, null=False, index=True, on_delete=OnDelete.restrict)
    quantity = Integer()

    refund_line_unique = Unique([refund, line])
    refund_line_quantity_positive = Check(quantity > 0)


class RefundShare(Table, tablename="shop_refund_share"):
    """What a refund gave back to one member's yearly quota (written when it is applied)."""

    refund = ForeignKey(Refund, null=False, index=True, on_delete=OnDelete.restrict)
    member = ForeignKey(Member, null=False, index=True, on_delete=OnDelete.restrict)
    amount_fen = BigInt()

    refund_share_unique = Unique([refund, member])
    refund_share_amount_positive = Check(amount_fen > 0)


class Approval(Table, tablename="shop_approval"):
    """An order placed above its branch's approval rule, and what became of it: written with
    the order, decided in the transaction that moves the order (`shop/orders/approval.py`,
    `cancellation.close`). `required_above_fen` is the rule it was placed under."""

    order = ForeignKey(Order, null=False, unique=True, on_delete=OnDelete.restrict)
    branch = ForeignKey(Union, null=False, index=True, on_delete=OnDelete.restrict)
    status = Varchar(length=16, default=ApprovalStatus.pending.value, index=True)
    required_above_fen = BigInt()
    requested_at = Timestamptz()
    decided_at = Timestamptz(null=True, default=None)
    decided_by = ForeignKey(User, null=True, default=None, on_delete=OnDelete.restrict)
    reason = Text(default="")

    approval_status_known = Check(one_of("status", ApprovalStatus))
