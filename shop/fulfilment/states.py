"""The words of a shipment's and an after-sales request's life, shared by the tables'
CHECK constraints, the schemas and the pages' labels."""

from enum import StrEnum


class ShipmentStatus(StrEnum):
    awaiting_shipment = "awaiting_shipment"
    shipped = "shipped"
    received = "received"
    cancelled = "cancelled"  # every line of it was refunded


class AfterSaleStatus(StrEnum):
    open = "open"
    refunded = "refunded"
    rejected = "rejected"


class InvoiceStatus(StrEnum):
    issued = "issued"  # the supplier uploaded it; the buyer has yet to decide
    accepted = "accepted"
    rejected = "rejected"  # the supplier uploads a new one


LIVE_INVOICE = (InvoiceStatus.issued, InvoiceStatus.accepted)  # at most one a shipment
