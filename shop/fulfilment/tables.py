"""Delivery addresses and invoice profiles of branches; the shipments of paid orders
(one per supplier), their invoices, and after-sales requests on their lines."""

from piccolo.columns import BigInt, Boolean, Date, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.constraints import Check, Unique
from piccolo.table import Table

from budgets.tables import Union
from catalog.tables import Supplier
from common.sql import one_of
from common.tables import StoredFile
from shop.auth.tables import User
from shop.fulfilment.states import AfterSaleStatus, InvoiceStatus, ShipmentStatus
from shop.orders.tables import Order, OrderLine, Refund


class DeliveryAddress(Table, tablename="shop_delivery_address"):
    """Where a branch has its goods delivered (收货地址). At most one per branch is the
    default (a partial unique index, made by a migration of its own)."""

    branch = ForeignKey(Union, null=False, index=True, on_delete=OnDelete.restrict)
    name = Varchar(length=40)
    phone = Varchar(length=32)
    address = Varchar(length=200)
    is_default = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())


class InvoiceProfile(Table, tablename="shop_invoice_profile"):
    """Whom a branch's invoices are made out to (发票抬头, 纳税人识别号)."""

    branch = ForeignKey(Union, null=False, unique=True, on_delete=OnDelete.restrict)
    title = Varchar(length=100)
    tax_no = Varchar(length=20)
    updated_at = Timestamptz(default=TimestamptzNow())
    updated_by = ForeignKey(User, null=True, default=None, on_delete=OnDelete.restrict)


class Shipment(Table, tablename="shop_shipment"):
    """One supplier's lines of a paid order, on their way to the branch. Its lines are the
    order's lines of that supplier; the invoice profile is copied when it is created."""

    order = ForeignKey(Order, null=False, index=True, on_delete=OnDelete.restrict)
    supplier = ForeignKey(Supplier, null=False, index=True, on_delete=OnDelete.restrict)
    status = Varchar(length=24, default=ShipmentStatus.awaiting_shipment.value, index=True)
    created_at = Timestamptz(default=TimestamptzNow())
    carrier = Varchar(length=40, default="")
    tracking_no = Varchar(length=40, default="")
    shipped_at = Timestamptz(null=True, default=None)
    received_at = Timestamptz(null=True, default=None)
    invoice_title = Varchar(length=100, default="")
    invoice_tax_no = Varchar(length=20, default="")

    shipment_order_supplier_unique = Unique([order, supplier])
    shipment_status_known = Check(one_of("status", ShipmentStatus))


class Invoice(Table, tablename="shop_invoice"):
    """A supplier's VAT invoice (发票) for a shipment, made out to the branch: its number, date and
    amount as the supplier entered them, and the file (a stored file, by content). At most one
    `issued` or `accepted` invoice a shipment, and a supplier's live invoice numbers are its own
    once: partial unique indexes, made by a migration of their own. `supplier` is the shipment's."""

    shipment = ForeignKey(Shipment, null=False, index=True, on_delete=OnDelete.restrict)
    supplier = ForeignKey(Supplier, null=False, index=True, on_delete=OnDelete.restrict)
    number = Varchar(length=20)
    issued_on = Date()
    amount_fen = BigInt()
    file = ForeignKey(StoredFile, null=False, index=True, on_delete=OnDelete.restrict)
    status = Varchar(length=16, default=InvoiceStatus.issued.value, index=True)
    created_by = ForeignKey(User, null=True, default=None, on_delete=OnDelete.restrict)
    created_at = Timestamptz(default=TimestamptzNow())
    decided_by = ForeignKey(User, null=True, default=None, on_delete=OnDelete.restrict)
    decided_at = Timestamptz(null=True, default=None)
    decision_reason = Text(default="")

    invoice_status_known = Check(one_of("status", InvoiceStatus))
    invoice_amount_positive = Check(amount_fen > 0)


class AfterSale(Table, tablename="shop_after_sale"):
    """A buyer's request to take back some of a paid order's lines (售后). Accepting it
    refunds them through `shop/orders/refunds.py`; `decided_at` is set when the accepting
    starts (the refund may wait on the provider), and `attempt` names the refund's
    Idempotency-Key so that a refused refund can be tried again under a new one."""

    order = ForeignKey(Order, null=False, index=True, on_delete=OnDelete.restrict)
    status = Varchar(length=16, default=AfterSaleStatus.open.value, index=True)
    reason = Text(default="")
    amount_fen = BigInt()
    created_by = ForeignKey(User, null=True, default=None, on_delete=OnDelete.restrict)
    created_at = Timestamptz(default=TimestamptzNow())
    decided_by = ForeignKey(User, null=True, default=None, on_delete=OnDelete.restrict)
    decided_at = Timestamptz(null=True, default=None)
    decision_reason = Text(default="")
    refund = ForeignKey(Refund, null=True, default=None, on_delete=OnDelete.restrict)
    attempt = Integer(default=1)

    after_sale_status_known = Check(one_of("status", AfterSaleStatus))
    after_sale_amount_positive = Check(amount_fen > 0)


class AfterSaleLine(Table, tablename="shop_after_sale_line"):
    after_sale = ForeignKey(AfterSale, null=False, index=True, on_delete=OnDelete.restrict)
    line = ForeignKey(OrderLine, null=False, index=True, on_delete=OnDelete.restrict)
    quantity = Integer()

    after_sale_line_unique = Unique([after_sale, line])
    after_sale_line_quantity_positive = Check(quantity > 0)
