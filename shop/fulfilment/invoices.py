"""Invoices (发票): the supplier uploads one for its shipment, the branch's buyer accepts or
rejects it, and whoever may see the shipment's order downloads its file.

An upload is the invoice's number, date and amount and its file: a PDF, OFD, PNG or JPEG of at
most 5 MB, recognised by its content (`common.files`), kept as it came (no re-encoding) under
`DATA_DIR/files/` by content hash. Its amount must be the shipment's `amount_fen` (its lines less
refunds); a shipment has at most one `issued` or `accepted` invoice, and a rejected one is
followed by a new upload.

Like every change of a shipment (`shipments.py`), each step locks the order row first
(`lifecycle.lock`), checks the order's and the shipment's state under that lock, writes the
invoice, the order's event (`invoice_issued`, `invoice_accepted`, `invoice_rejected`) and the
notification in one transaction: two uploads racing for one shipment leave one invoice. The
upload's transaction is the file store's (`FileStore.transaction`): if it fails, the file it
stored is removed and no row is left."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from common.clock import SHANGHAI
from common.errors import DomainError, invalid
from common.files import JPEG, MB, OFD, PDF, PNG, FileStore, Received, StoredRef, upload_in
from common.sql import is_unique_violation
from shop.auth.accounts import Principal
from shop.auth.scope import check_order
from shop.fulfilment.queries import net_fen
from shop.fulfilment.schemas import InvoiceIn, InvoiceOut
from shop.fulfilment.states import LIVE_INVOICE, InvoiceStatus, ShipmentStatus
from shop.fulfilment.tables import Invoice, Shipment
from shop.notifications import notify
from shop.notifications.kinds import Kind
from shop.orders import lifecycle
from shop.orders.states import OrderAction
from shop.orders.tables import OrderLine

MAX_BYTES = 5 * MB
KINDS = {PDF: "pdf", OFD: "ofd", PNG: "png", JPEG: "jpg"}  # what an invoice file may be, by content
FILE_PATH = "/api/invoices/{id}/file"


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if value else None


def invoice_out(row: dict[str, Any]) -> InvoiceOut:
    return InvoiceOut(
        id=row["id"],
        shipment_id=row["shipment"],
        number=row["number"],
        issued_on=row["issued_on"].isoformat(),
        amount_fen=row["amount_fen"],
        status=InvoiceStatus(row["status"]),
        file_url=FILE_PATH.format(id=row["id"]),
        created_at=_iso(row["created_at"]) or "",
        decided_at=_iso(row["decided_at"]),
        decision_reason=row["decision_reason"],
    )


async def _shipment(shipment_id: int) -> dict[str, Any]:
    row = await Shipment.select(Shipment.id, Shipment.order, Shipment.supplier).where(Shipment.id == shipment_id).first()
    if row is None:
        raise DomainError("not_found", f"shipment {shipment_id} does not exist")
    return row


async def _amount_due(shipment: dict[str, Any]) -> int:
    lines = await OrderLine.select(OrderLine.unit_price_fen, OrderLine.quantity, OrderLine.refunded_quantity).where(
        (OrderLine.order == shipment["order"]) & (OrderLine.supplier == shipment["supplier"])
    )
    return net_fen(lines)


def _state(detail: str, **extra: Any) -> DomainError:
    return DomainError("invalid_state", detail, **extra)


async def check_supplier(shipment_id: int, principal: Principal) -> None:
    """`not_found`, or `forbidden` for another supplier's shipment (its supplier never changes)."""
    if (await _shipment(shipment_id))["supplier"] != principal.supplier_id:
        raise DomainError("forbidden", "this shipment is another supplier's")


async def issue(store: FileStore, shipment_id: int, principal: Principal, form: Mapping[str, Any], *, now: datetime) -> InvoiceOut:
    """The shipment's supplier uploads its invoice: the multipart form's `number`, `issued_on`,
    `amount_fen` and `file`. Refusals, with nothing written: `not_found`; another supplier's
    shipment `forbidden`; a bad field, a date after today (Shanghai), a file not a PDF, OFD, PNG or
    JPEG, or over 5 MB, an amount other than the shipment's: `validation_failed`; an order not
    paid (or refunded), a cancelled shipment, a shipment with a live invoice, a number the supplier
    already has live on another one: `invalid_state`."""
    await check_supplier(shipment_id, principal)  # before the file is read
    fields = InvoiceIn.from_form(form)
    if fields.issued_on > now.astimezone(SHANGHAI).date():
        raise invalid("issued_on", "is after today")
    upload = upload_in(form)  # type: ignore[arg-type]
    async with store.receive(upload, max_bytes=MAX_BYTES) as received:
        if received.content_type not in KINDS:
            raise invalid("file", "an invoice must be a PDF, OFD, PNG or JPEG file (recognised by its content)")
        try:
            async with store.transaction() as files:
                return await _issue_locked(files, shipment_id, principal, fields, received, now)
        except Exception as exc:
            if is_unique_violation(exc):  # the partial unique indexes: only if a check above was raced
                raise _state(f"shipment {shipment_id} has an invoice, or number {fields.number} is in use") from None
            raise


async def _issue_locked(files: Any, shipment_id: int, principal: Principal, fields: InvoiceIn, received: Received, now: datetime) -> InvoiceOut:
    order = await lifecycle.lock((await _shipment(shipment_id))["order"])
    shipment = await Shipment.select().where(Shipment.id == shipment_id).first()
    if order is None or shipment is None:  # pragma: no cover - neither is ever deleted
        raise DomainError("not_found", f"shipment {shipment_id} does not exist")
    if not lifecycle.allows(order["status"], OrderAction.invoice_issued):
        raise lifecycle.refused(order, OrderAction.invoice_issued)
    if shipment["status"] == ShipmentStatus.cancelled:
        raise _state("a cancelled shipment (every line refunded) is not invoiced", shipment_status=shipment["status"])
    live = await Invoice.select(Invoice.id, Invoice.status).where(
        (Invoice.shipment == shipment_id) & Invoice.status.is_in(list(LIVE_INVOICE))
    ).first()
    if live is not None:
        raise _state(f"shipment {shipment_id} already has invoice {live['id']} ({live['status']})", invoice_id=live["id"])
    used = await Invoice.select(Invoice.shipment).where(
        (Invoice.supplier == principal.supplier_id) & (Invoice.number == fields.number) & Invoice.status.is_in(list(LIVE_INVOICE))
    ).first()
    if used is not None:
        raise _state(f"invoice number {fields.number} is already on shipment {used['shipment']}")
    due = await _amount_due(shipment)
    if fields.amount_fen != due:
        raise invalid("amount_fen", f"must equal the shipment's amount_fen, {due} (its lines less refunds)")
    ref: StoredRef = await files.put_received(received)
    rows = await Invoice.insert(
        Invoice(
            shipment=shipment_id,
            supplier=shipment["supplier"],
            number=fields.number,
            issued_on=fields.issued_on,
            amount_fen=fields.amount_fen,
            file=ref.id,
            status=InvoiceStatus.issued.value,
            created_by=principal.id,
            created_at=now.astimezone(timezone.utc),
        )
    ).returning(*Invoice.all_columns())
    await lifecycle.transition(
        order["id"], OrderAction.invoice_issued, at=now, actor_id=principal.id, locked=order,
        detail=f"shipment {shipment_id}: invoice {fields.number}, {fields.amount_fen} fen ({KINDS[ref.content_type]})",
    )
    await notify.to_branch(
        order["branch"], Kind.invoice_issued,
        f"订单 {order['id']} 的供应商已开具发票 {fields.number}（{notify.yuan(fields.amount_fen)}），请确认", at=now, order_id=order["id"],
    )
    return invoice_out(rows[0])


async def decide(invoice_id: int, principal: Principal, *, accept: bool, reason: str = "", now: datetime) -> InvoiceOut:
    """A buyer of the order's branch accepts the `issued` invoice, or rejects it with a reason
    (the supplier then uploads a new one). Another branch: `forbidden`; not `issued`: `invalid_state`."""
    reason = reason.strip()
    if not accept and not reason:
        raise invalid("reason", "must not be blank")
    first = await Invoice.select(Invoice.shipment.order).where(Invoice.id == invoice_id).first()
    if first is None:
        raise DomainError("not_found", f"invoice {invoice_id} does not exist")
    action = OrderAction.invoice_accepted if accept else OrderAction.invoice_rejected
    async with Invoice._meta.db.transaction():
        order = await lifecycle.lock(first["shipment.order"])
        if order is None:  # pragma: no cover - an order is never deleted
            raise DomainError("not_found", f"invoice {invoice_id} does not exist")
        if order["branch"] != principal.union_id:
            raise DomainError("forbidden", "this invoice is for another branch")
        invoice = await Invoice.select().where(Invoice.id == invoice_id).first()
        if invoice["status"] != InvoiceStatus.issued:
            raise _state(f"an invoice that is {invoice['status']} cannot be {'accepted' if accept else 'rejected'}", invoice_status=invoice["status"])
        if not lifecycle.allows(order["status"], action):  # pragma: no cover - an invoiced order stays paid or refunded
            raise lifecycle.refused(order, action)
        status = InvoiceStatus.accepted if accept else InvoiceStatus.rejected
        rows = await Invoice.update(
            {Invoice.status: status.value, Invoice.decided_by: principal.id, Invoice.decided_at: now.astimezone(timezone.utc), Invoice.decision_reason: reason}
        ).where((Invoice.id == invoice_id) & (Invoice.status == InvoiceStatus.issued)).returning(*Invoice.all_columns())
        said = f"shipment {invoice['shipment']}: invoice {invoice['number']} {status.value}" + (f": {reason}" if reason else "")
        await lifecycle.transition(order["id"], action, at=now, actor_id=principal.id, detail=said, locked=order)
        title = f"订单 {order['id']} 的发票 {invoice['number']} " + ("已被采购方确认" if accept else f"被退回：{reason}，请重新开具")
        await notify.to_supplier(invoice["supplier"], Kind.invoice_decided, title, at=now, order_id=order["id"])
    return invoice_out(rows[0])


async def _visible(invoice_id: int, principal: Principal) -> dict[str, Any]:
    """The invoice with its file, if the caller may see it: the shipment's supplier, the order's
    branch's buyers, auditors over that branch and admins; anyone else `forbidden`."""
    row = await Invoice.select(
        *Invoice.all_columns(), Invoice.shipment.order, Invoice.file.sha256, Invoice.file.size, Invoice.file.content_type
    ).where(Invoice.id == invoice_id).first()
    if row is None:
        raise DomainError("not_found", f"invoice {invoice_id} does not exist")
    if principal.role == "supplier":
        if row["supplier"] != principal.supplier_id:
            raise DomainError("forbidden", "this invoice is another supplier's")
    elif principal.role in ("admin", "buyer", "auditor", "approver"):
        await check_order(principal, row["shipment.order"])
    else:  # pragma: no cover - every role is one of those
        raise DomainError("forbidden", "this role sees no invoices")
    return row


async def current_for(shipment_ids: list[int]) -> dict[int, InvoiceOut]:
    """Each shipment's newest invoice in full (its decision's reason too), as the shipment's
    `invoice` names it; for shipments the caller was already allowed to see."""
    if not shipment_ids:
        return {}
    rows = await Invoice.select().where(Invoice.shipment.is_in(sorted(set(shipment_ids)))).order_by(Invoice.id)
    return {r["shipment"]: invoice_out(r) for r in rows}


async def order_of(invoice_id: int) -> int:
    """The id of the order an invoice is for; `not_found` if there is no such invoice."""
    row = await Invoice.select(Invoice.shipment.order).where(Invoice.id == invoice_id).first()
    if row is None:
        raise DomainError("not_found", f"invoice {invoice_id} does not exist")
    return row["shipment.order"]


async def get_invoice(invoice_id: int, principal: Principal) -> InvoiceOut:
    return invoice_out(await _visible(invoice_id, principal))


async def file_of(invoice_id: int, principal: Principal) -> tuple[StoredRef, str]:
    """The invoice's stored file and the name to download it as, for whoever may see the invoice."""
    row = await _visible(invoice_id, principal)
    ref = StoredRef(id=row["file"], sha256=row["file.sha256"], size=row["file.size"], content_type=row["file.content_type"])
    return ref, f"invoice-{row['number']}.{KINDS.get(ref.content_type, 'bin')}"
