"""msgspec structs for the shop's own bodies (auth, users; orders and payments)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Username = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Id = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
Role = Literal["admin", "buyer", "supplier", "auditor"]


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Every request body: unknown fields are refused."""


class LoginIn(Body):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    password: Password


class UserOut(msgspec.Struct, kw_only=True):
    id: int
    username: str
    role: str
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


# --- orders -----------------------------------------------------------------------

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
    status: str
    branch_id: int
    year: int
    total_fen: int
    refunded_fen: int
    created_at: str
    lines: list[LineOut]
    allocations: list[AllocationOut]
    payment: PaymentOut
    needs_refund: bool = False


class OrderList(msgspec.Struct, kw_only=True):
    items: list[OrderOut]
    total: int


# --- payments and refunds ------------------------------------------------------------


class RefundLineIn(Body):
    line_id: Id
    quantity: Quantity


class RefundIn(Body):
    """`{}` refunds everything left on the order; otherwise these quantities of these lines."""

    lines: Annotated[list[RefundLineIn], msgspec.Meta(min_length=1, max_length=100)] | None = None


class ConfirmTransferIn(Body):
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


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


class WebhookOut(msgspec.Struct, kw_only=True):
    received: bool
    outcome: str
