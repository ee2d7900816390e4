"""What a notification is about."""

from enum import StrEnum


class Kind(StrEnum):
    order_to_ship = "order_to_ship"  # supplier: a paid order holds its products
    after_sale_opened = "after_sale_opened"  # supplier: a buyer asks for some back
    shipment_shipped = "shipment_shipped"  # buyer: goods are on their way
    after_sale_decided = "after_sale_decided"  # buyer: accepted (refunded) or rejected
    hold_ending = "hold_ending"  # buyer: an unpaid order's hold ends within a day
    review_decided = "review_decided"  # supplier: a listing approved, rejected or delisted
    invoice_issued = "invoice_issued"  # buyer: a supplier uploaded an invoice
    invoice_decided = "invoice_decided"  # supplier: the buyer accepted or rejected it
    approval_requested = "approval_requested"  # approver: an order waits for a decision
    approval_decided = "approval_decided"  # buyer: approved (pay now), rejected or expired
