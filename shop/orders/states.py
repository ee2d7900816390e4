"""The words of an order's life, shared by the tables (CHECK constraints), the schemas,
`lifecycle.py` and the pages' labels."""

from enum import StrEnum


class OrderStatus(StrEnum):
    pending_approval = "pending_approval"  # above the branch's approval rule: held, not yet payable
    pending_payment = "pending_payment"
    paid = "paid"
    cancelled = "cancelled"
    expired = "expired"
    partially_refunded = "partially_refunded"
    refunded = "refunded"


class OrderAction(StrEnum):
    """What happened to an order: one event row each (`GET /api/orders/{id}/events`)."""

    placed = "placed"
    approved = "approved"  # the branch's approver agreed: the payment starts
    rejected = "rejected"  # the branch's approver refused: everything is released
    cancelled = "cancelled"
    expired = "expired"
    paid = "paid"
    transfer_confirmed = "transfer_confirmed"
    late_payment = "late_payment"
    shipped = "shipped"
    received = "received"
    after_sale_opened = "after_sale_opened"
    after_sale_accepted = "after_sale_accepted"
    after_sale_rejected = "after_sale_rejected"
    refunded = "refunded"
    invoice_issued = "invoice_issued"
    invoice_accepted = "invoice_accepted"
    invoice_rejected = "invoice_rejected"


class RefundStatus(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    owed = "owed"
    failed = "failed"


class RefundKind(StrEnum):
    lines = "lines"
    late_payment = "late_payment"


class ApprovalStatus(StrEnum):
    """An order's approval (`shop/orders/approval.py`): `pending` until the approver decides,
    the buyer withdraws the order or its time runs out."""

    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    withdrawn = "withdrawn"
    expired = "expired"
