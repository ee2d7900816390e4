"""Reading shipments: as their orders show them, and as their supplier works through them."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from shop.fulfilment.addresses import delivery_out
from shop.fulfilment.schemas import (
    BranchOut,
    InvoiceBrief,
    InvoiceToOut,
    ShipmentBrief,
    ShipmentLineOut,
    ShipmentOut,
)
from shop.fulfilment.states import ShipmentStatus
from shop.fulfilment.tables import Invoice, Shipment
from shop.orders.tables import OrderLine


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if value else None


async def _lines_by_shipment(shipments: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Each shipment's lines: its order's lines of its supplier."""
    order_ids = sorted({s["order"] for s in shipments})
    by_key: dict[tuple[int, int], list[dict[str, Any]]] = {}
    if order_ids:
        for line in await OrderLine.select().where(OrderLine.order.is_in(order_ids)).order_by(OrderLine.id):
            by_key.setdefault((line["order"], line["supplier"]), []).append(line)
    return {s["id"]: by_key.get((s["order"], s["supplier"]), []) for s in shipments}


async def _invoices(shipments: list[dict[str, Any]]) -> dict[int, InvoiceBrief]:
    """Each shipment's newest invoice: its live one when it has one (a new invoice is taken only
    once every earlier one was rejected), else the last one rejected; none: left out."""
    if not shipments:
        return {}
    rows = await Invoice.select(Invoice.id, Invoice.shipment, Invoice.number, Invoice.status, Invoice.amount_fen).where(
        Invoice.shipment.is_in([s["id"] for s in shipments])
    ).order_by(Invoice.id)
    return {r["shipment"]: InvoiceBrief(id=r["id"], number=r["number"], status=r["status"], amount_fen=r["amount_fen"]) for r in rows}


async def briefs_for(order_ids: list[int], supplier_id: int | None = None) -> dict[int, list[ShipmentBrief]]:
    """The shipments of these orders (a supplier: only its own), by order id."""
    out: dict[int, list[ShipmentBrief]] = {i: [] for i in order_ids}
    if not order_ids:
        return out
    query = Shipment.select(*Shipment.all_columns(), Shipment.supplier.name).where(Shipment.order.is_in(order_ids))
    if supplier_id is not None:
        query = query.where(Shipment.supplier == supplier_id)
    rows = await query.order_by(Shipment.id)
    lines, invoices = await _lines_by_shipment(rows), await _invoices(rows)
    for s in rows:
        out[s["order"]].append(
            ShipmentBrief(
                id=s["id"],
                supplier_id=s["supplier"],
                supplier_name=s["supplier.name"],
                status=ShipmentStatus(s["status"]),
                line_ids=[line["id"] for line in lines[s["id"]]],
                carrier=s["carrier"],
                tracking_no=s["tracking_no"],
                shipped_at=_iso(s["shipped_at"]),
                received_at=_iso(s["received_at"]),
                invoice=invoices.get(s["id"]),
            )
        )
    return out


async def list_for_supplier(
    supplier_id: int, *, status: ShipmentStatus | None, limit: int, offset: int, shipment_id: int | None = None
) -> tuple[list[ShipmentOut], int]:
    """The supplier's shipments (or the one named), newest first, with everything it needs to send them."""
    where = Shipment.supplier == supplier_id
    if shipment_id is not None:
        where &= Shipment.id == shipment_id
    if status is not None:
        where &= Shipment.status == status
    rows = await Shipment.select(
        *Shipment.all_columns(),
        Shipment.order.branch,
        Shipment.order.branch.code,
        Shipment.order.branch.name,
        Shipment.order.delivery_name,
        Shipment.order.delivery_phone,
        Shipment.order.delivery_address,
    ).where(where).order_by(Shipment.id, ascending=False).limit(limit).offset(offset)
    total = await Shipment.count().where(where)
    lines, invoices = await _lines_by_shipment(rows), await _invoices(rows)
    items = []
    for s in rows:
        mine = [
            ShipmentLineOut(
                line_id=line["id"],
                title=line["title"],
                quantity=line["quantity"],
                refunded_quantity=line["refunded_quantity"],
                amount_fen=line["amount_fen"],
            )
            for line in lines[s["id"]]
        ]
        order = {k.removeprefix("order."): v for k, v in s.items() if k.startswith("order.delivery")}
        items.append(
            ShipmentOut(
                id=s["id"],
                order_id=s["order"],
                status=ShipmentStatus(s["status"]),
                branch=BranchOut(id=s["order.branch"], code=s["order.branch.code"], name=s["order.branch.name"]),
                delivery=delivery_out(order),
                invoice_to=InvoiceToOut(title=s["invoice_title"], tax_no=s["invoice_tax_no"]) if s["invoice_title"] else None,
                lines=mine,
                amount_fen=net_fen(lines[s["id"]]),
                carrier=s["carrier"],
                tracking_no=s["tracking_no"],
                shipped_at=_iso(s["shipped_at"]),
                received_at=_iso(s["received_at"]),
                created_at=_iso(s["created_at"]) or "",
                invoice=invoices.get(s["id"]),
            )
        )
    return items, total


async def shipment_brief(order_id: int, shipment_id: int) -> ShipmentBrief:
    """One shipment as its order shows it."""
    [brief] = [s for s in (await briefs_for([order_id]))[order_id] if s.id == shipment_id]
    return brief


async def supplier_shipment(supplier_id: int, shipment_id: int) -> ShipmentOut:
    """One of the supplier's shipments as its list shows it."""
    items, _ = await list_for_supplier(supplier_id, status=None, limit=1, offset=0, shipment_id=shipment_id)
    return items[0]


def net_fen(lines: list[dict[str, Any]]) -> int:
    """What a shipment's lines come to, less what was refunded of them."""
    return sum(line["unit_price_fen"] * (line["quantity"] - line["refunded_quantity"]) for line in lines)
