"""msgspec structs for delivery addresses, invoice profiles, shipments and after-sales."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

import msgspec

from common.errors import invalid
from common.schemas import ONE_LINE, Body, Id, Text
from shop.fulfilment.states import AfterSaleStatus, InvoiceStatus, ShipmentStatus

Line = Annotated[str, msgspec.Meta(pattern=ONE_LINE, min_length=1)]

# a mainland mobile number, a landline with its area code (and maybe an extension), a 400/800 hotline
MOBILE = re.compile(r"1[3-9]\d{9}")
LANDLINE = re.compile(r"0\d{2,3}\d{7,8}(?:(?:转|ext|x)\d{1,6})?")
HOTLINE = re.compile(r"[48]00\d{7}")


def clean_phone(value: str, field: str = "phone") -> str:
    """The number as written (trimmed) if it is a mainland mobile number, a landline with its
    area code, or a 400/800 number, with or without +86, spaces, hyphens and brackets."""
    compact = re.sub(r"[\s\-()（）－]", "", value)
    for prefix in ("+86", "0086"):
        if compact.startswith(prefix):
            rest = compact[len(prefix):]
            compact = rest if rest.startswith(("0", "1", "4", "8")) else "0" + rest
            break
    if MOBILE.fullmatch(compact) or LANDLINE.fullmatch(compact) or HOTLINE.fullmatch(compact):
        return value.strip()
    raise invalid(field, "is not a mainland mobile number (11 digits, 1[3-9]…) or a landline with its area code (020-12345678)")


def clean_line(value: str, field: str) -> str:
    """One line of text, trimmed; blank is refused."""
    value = value.strip()
    if not value:
        raise invalid(field, "must not be blank")
    return value


class AddressIn(Body):
    name: Annotated[Line, msgspec.Meta(max_length=40)]
    phone: Annotated[Line, msgspec.Meta(max_length=32)]
    address: Annotated[Line, msgspec.Meta(max_length=200)]
    is_default: bool = False


class AddressPatch(Body):
    name: Annotated[Line, msgspec.Meta(max_length=40)] | None = None
    phone: Annotated[Line, msgspec.Meta(max_length=32)] | None = None
    address: Annotated[Line, msgspec.Meta(max_length=200)] | None = None
    is_default: bool | None = None


class AddressOut(msgspec.Struct, kw_only=True):
    id: int
    name: str
    phone: str
    address: str
    is_default: bool


class AddressList(msgspec.Struct, kw_only=True):
    items: list[AddressOut]
    total: int


class DeliveryOut(msgspec.Struct, kw_only=True):
    name: str
    phone: str
    address: str


class InvoiceProfileIn(Body):
    title: Annotated[Line, msgspec.Meta(max_length=100)]
    tax_no: Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z]{15,20}$")]


class InvoiceToOut(msgspec.Struct, kw_only=True):
    title: str
    tax_no: str


class InvoiceBrief(msgspec.Struct, kw_only=True):
    id: int
    number: str
    status: str
    amount_fen: int


INVOICE_NUMBER = re.compile(r"[0-9A-Z]{8,20}")  # 8 digits (纸质/电子发票), 20 (数电票), or 发票代码 + 号码
AMOUNT = re.compile(r"[0-9]{1,15}")
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class InvoiceIn(msgspec.Struct, kw_only=True, frozen=True):
    """An invoice's fields from the upload's multipart form (text parts), checked."""

    number: str
    issued_on: date
    amount_fen: int

    @classmethod
    def from_form(cls, form: Any) -> InvoiceIn:
        """`number` (letters and digits, 8 to 20, kept upper-case), `issued_on` (`YYYY-MM-DD`, a
        real date from 2000 on) and `amount_fen` (a whole number of fen above 0); else
        `validation_failed` on the field."""
        text = {}
        for field in ("number", "issued_on", "amount_fen"):
            value = form.get(field)
            if not isinstance(value, str) or not value.strip():
                raise invalid(field, f"send {field} as a text field of the multipart/form-data body")
            text[field] = value.strip()
        number = text["number"].upper()
        if not INVOICE_NUMBER.fullmatch(number):
            raise invalid("number", "an invoice number is 8 to 20 letters and digits")
        issued_on = None
        if ISO_DATE.fullmatch(text["issued_on"]):
            try:
                issued_on = date.fromisoformat(text["issued_on"])
            except ValueError:
                pass
        if issued_on is None or issued_on.year < 2000:
            raise invalid("issued_on", "is not a date written YYYY-MM-DD")
        if not AMOUNT.fullmatch(text["amount_fen"]) or int(text["amount_fen"]) <= 0:
            raise invalid("amount_fen", "is not a whole number of fen above 0")
        return cls(number=number, issued_on=issued_on, amount_fen=int(text["amount_fen"]))


class InvoiceOut(msgspec.Struct, kw_only=True):
    """An invoice as the supplier and the branch see it; `file_url` answers its file."""

    id: int
    shipment_id: int
    number: str
    issued_on: str
    amount_fen: int
    status: InvoiceStatus
    file_url: str
    created_at: str
    decided_at: str | None = None
    decision_reason: str = ""


class ShipmentBrief(msgspec.Struct, kw_only=True):
    """A shipment as its order shows it."""

    id: int
    supplier_id: int
    supplier_name: str
    status: ShipmentStatus
    line_ids: list[int]
    carrier: str
    tracking_no: str
    shipped_at: str | None
    received_at: str | None
    invoice: InvoiceBrief | None = None


class BranchOut(msgspec.Struct, kw_only=True):
    id: int
    code: str
    name: str


class ShipmentLineOut(msgspec.Struct, kw_only=True):
    line_id: int
    title: str
    quantity: int
    refunded_quantity: int
    amount_fen: int


class ShipmentOut(msgspec.Struct, kw_only=True):
    """A shipment as its supplier sees it: whom to send it to, what, and for how much."""

    id: int
    order_id: int
    status: ShipmentStatus
    branch: BranchOut
    delivery: DeliveryOut | None
    invoice_to: InvoiceToOut | None
    lines: list[ShipmentLineOut]
    amount_fen: int
    carrier: str
    tracking_no: str
    shipped_at: str | None
    received_at: str | None
    created_at: str
    invoice: InvoiceBrief | None = None


class ShipmentList(msgspec.Struct, kw_only=True):
    items: list[ShipmentOut]
    total: int


class ShipIn(Body):
    carrier: Annotated[Line, msgspec.Meta(max_length=40)]
    tracking_no: Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z\-]{4,40}$")]


class AfterSaleLineIn(Body):
    line_id: Id
    quantity: Annotated[int, msgspec.Meta(ge=1, le=10_000)]


class AfterSaleIn(Body):
    lines: Annotated[list[AfterSaleLineIn], msgspec.Meta(min_length=1, max_length=100)]
    reason: Annotated[Text, msgspec.Meta(min_length=1, max_length=500)]


class RejectIn(Body):
    reason: Annotated[Text, msgspec.Meta(min_length=1, max_length=500)]


class AfterSaleLineOut(msgspec.Struct, kw_only=True):
    line_id: int
    quantity: int


class AfterSaleOut(msgspec.Struct, kw_only=True):
    id: int
    order_id: int
    status: AfterSaleStatus
    lines: list[AfterSaleLineOut]
    reason: str
    amount_fen: int
    created_at: str
    decided_at: str | None = None
    decision_reason: str = ""
    refund_id: int | None = None


class AfterSaleList(msgspec.Struct, kw_only=True):
    items: list[AfterSaleOut]
    total: int
