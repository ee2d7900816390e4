"""msgspec structs for orders, their events and refunds."""

from __future__ import annotations

from typing import Annotated

import msgspec

from common.schemas import Body, Id
from shop.fulfilment.schemas import DeliveryOut, ShipmentBrief
from shop.orders.states import ApprovalStatus, OrderAction, OrderStatus

Quantity = Annotated[int, msgspec.Meta(ge=1, le=10_000)]
AmountFen = Annotated[int, msgspec.Meta(ge=1, le=100_000_000)]


class LineIn(Body):
    product_id: Id
    quantity: Quantity


class AllocationIn(Body):
    member_id: Id
    amount_fen: AmountFen


class OrderIn(Body):
    lines: Annotated[list[LineIn], msgspec.Meta(min_length=1, max_length=100)]
    members: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=5000)] | None = None
    allocations: Annotated[list[AllocationIn], msgspec.Meta(min_length=1, max_length=5000)] | None = None
    address_id: Id | None = None  # default: the branch's default delivery address


class LineOut(msgspec.Struct, kw_only=True):
    id: int
    product_id: int
    title: str
    quantity: int
    unit_price_fen: int
    amount_fen: int
    refunded_quantity: int
    supplier_id: int
    region: str


class AllocationOut(msgspec.Struct, kw_only=True):
    member_id: int
    amount_fen: int
    refunded_fen: int = 0


class BankOut(msgspec.Struct, kw_only=True):
    bank_name: str
    account_name: str
    account_no: str


class PaymentOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    provider: str
    reference: str
    expires_at: str
    url: str | None = None
    bank: BankOut | None = None


class OrderOut(msgspec.Struct, kw_only=True):
    id: int
    status: OrderStatus
    branch_id: int
    year: int
    total_fen: int
    refunded_fen: int
    created_at: str
    lines: list[LineOut]
    allocations: list[AllocationOut]
    payment: PaymentOut
    needs_refund: bool = False
    delivery: DeliveryOut | None = None
    shipments: list[ShipmentBrief] = msgspec.field(default_factory=list)


class OrderList(msgspec.Struct, kw_only=True):
    items: list[OrderOut]
    total: int


# --- refunds and events ------------------------------------------------------------


class RefundLineIn(Body):
    line_id: Id
    quantity: Quantity


class RefundIn(Body):
    """`{}` refunds everything left on the order; otherwise these quantities of these lines."""

    lines: Annotated[list[RefundLineIn], msgspec.Meta(min_length=1, max_length=100)] | None = None


class RefundLineOut(msgspec.Struct, kw_only=True):
    line_id: int
    quantity: int


class RefundShareOut(msgspec.Struct, kw_only=True):
    member_id: int
    amount_fen: int


class RefundOut(msgspec.Struct, kw_only=True):
    id: int
    order_id: int
    seq: int
    kind: str  # lines | late_payment
    amount_fen: int
    status: str  # pending | succeeded | owed | failed
    provider: str
    provider_reference: str
    lines: list[RefundLineOut]
    shares: list[RefundShareOut]
    error: str
    created_at: str
    settled_at: str | None


class RefundList(msgspec.Struct, kw_only=True):
    items: list[RefundOut]
    total: int


class ActorOut(msgspec.Struct, kw_only=True):
    id: int
    username: str
    role: str


class EventOut(msgspec.Struct, kw_only=True):
    at: str
    actor: ActorOut | None
    action: OrderAction
    detail: str


class ApprovalLineOut(msgspec.Struct, kw_only=True):
    title: str
    quantity: int
    amount_fen: int


class ApprovalOut(msgspec.Struct, kw_only=True):
    """An order that waited (or waits) for its branch's approver, and what became of it."""

    order_id: int
    branch_id: int
    status: ApprovalStatus
    order_status: OrderStatus
    total_fen: int
    members: int  # how many members share it
    required_above_fen: int  # the rule it was placed under
    requested_at: str
    deadline: str | None  # while pending: when it expires undecided
    decided_at: str | None
    decided_by: str | None  # who decided: the approver, or the buyer who withdrew it (null: expired)
    reason: str
    placed_by: str | None
    lines: list[ApprovalLineOut]


class ApprovalList(msgspec.Struct, kw_only=True):
    items: list[ApprovalOut]
    total: int


class ApprovalRejectIn(Body):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=r"\S")]
