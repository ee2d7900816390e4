"""Shipments: when an order is paid its lines become one shipment per supplier
(`open_for_order`, in the paying transaction). The supplier ships one (carrier and
tracking number), the branch's buyer confirms receipt, or the periodic job does once a
shipment has been `shipped` for `AUTO_RECEIVE_DAYS`. A shipment all of whose lines were
refunded is `cancelled` (`cancel_refunded`, in the refund's transaction).

Every change locks the order row first (`lifecycle.lock`), moves the shipment by a
compare-and-set on its status, and writes the order's event and the notification in the
same transaction: two workers (or a worker and `shop tick`) racing to receive the same
shipment move it once and write one `received` event."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from common.errors import DomainError
from shop.auth.accounts import Principal
from shop.fulfilment.schemas import clean_line
from shop.fulfilment.states import ShipmentStatus as S
from shop.fulfilment.tables import InvoiceProfile, Shipment
from shop.notifications import notify
from shop.notifications.kinds import Kind
from shop.orders import lifecycle
from shop.orders.states import OrderAction
from shop.orders.tables import OrderLine

logger = logging.getLogger("shop.fulfilment")


async def open_for_order(order: dict[str, Any], now: datetime) -> int:
    """Inside the transaction that made the order paid: one shipment per supplier of its
    lines, each with the branch's invoice profile as it is now; each supplier is told."""
    lines = await OrderLine.select(OrderLine.supplier).where(OrderLine.order == order["id"])
    suppliers = sorted({line["supplier"] for line in lines})
    profile = await InvoiceProfile.select(InvoiceProfile.title, InvoiceProfile.tax_no).where(
        InvoiceProfile.branch == order["branch"]
    ).first() or {"title": "", "tax_no": ""}
    await Shipment.insert(
        *[
            Shipment(order=order["id"], supplier=s, created_at=now, invoice_title=profile["title"], invoice_tax_no=profile["tax_no"])
            for s in suppliers
        ]
    )
    for s in suppliers:
        await notify.to_supplier(s, Kind.order_to_ship, f"订单 {order['id']} 已付款，请尽快发货", at=now, order_id=order["id"])
    return len(suppliers)


async def _locked(shipment_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(shipment, its order locked); `not_found` if there is no such shipment."""
    first = await Shipment.select(Shipment.order).where(Shipment.id == shipment_id).first()
    if first is None:
        raise DomainError("not_found", f"shipment {shipment_id} does not exist")
    order = await lifecycle.lock(first["order"])
    shipment = await Shipment.select().where(Shipment.id == shipment_id).first()
    return shipment, order  # type: ignore[return-value]


def _refused(shipment: dict[str, Any], verb: str) -> DomainError:
    status = shipment["status"]
    return DomainError("invalid_state", f"a shipment that is {status} cannot be {verb}", shipment_status=status)


async def _move(shipment: dict[str, Any], source: S, values: dict[Any, Any]) -> bool:
    moved = await Shipment.update(values).where((Shipment.id == shipment["id"]) & (Shipment.status == source)).returning(Shipment.id)
    return bool(moved)


async def ship(shipment_id: int, principal: Principal, *, carrier: str, tracking_no: str, now: datetime) -> None:
    """The shipment's supplier sends it: awaiting_shipment -> shipped; the branch is told."""
    carrier, tracking_no = clean_line(carrier, "carrier"), tracking_no.strip()
    async with Shipment._meta.db.transaction():
        shipment, order = await _locked(shipment_id)
        if shipment["supplier"] != principal.supplier_id:
            raise DomainError("forbidden", "this shipment is another supplier's")
        values = {Shipment.status: S.shipped, Shipment.carrier: carrier, Shipment.tracking_no: tracking_no, Shipment.shipped_at: now}
        if shipment["status"] != S.awaiting_shipment or not await _move(shipment, S.awaiting_shipment, values):
            raise _refused(shipment, "shipped")
        await lifecycle.transition(
            order["id"], OrderAction.shipped, at=now, actor_id=principal.id,
            detail=f"shipment {shipment_id}: {carrier} {tracking_no}", locked=order,
        )
        await notify.to_branch(
            order["branch"], Kind.shipment_shipped, f"订单 {order['id']} 已发货：{carrier} {tracking_no}", at=now, order_id=order["id"]
        )


async def receive(shipment_id: int, principal: Principal, *, now: datetime) -> int:
    """A buyer of the order's branch confirms receipt: shipped -> received. Returns the order's id."""
    async with Shipment._meta.db.transaction():
        shipment, order = await _locked(shipment_id)
        if order["branch"] != principal.union_id:
            raise DomainError("forbidden", "this shipment is for another branch")
        if not await _receive(shipment, order, now, actor_id=principal.id, detail=f"shipment {shipment_id}"):
            raise _refused(shipment, "received")
    return shipment["order"]


async def _receive(shipment: dict[str, Any], order: dict[str, Any], now: datetime, *, actor_id: int | None, detail: str) -> bool:
    if shipment["status"] != S.shipped or not await _move(shipment, S.shipped, {Shipment.status: S.received, Shipment.received_at: now}):
        return False
    await lifecycle.transition(order["id"], OrderAction.received, at=now, actor_id=actor_id, detail=detail, locked=order)
    return True


async def auto_receive(now: datetime, days: int, batch: int = 200) -> int:
    """Receive every shipment still `shipped` `days` after it was sent (the periodic job).
    Safe beside other workers and `shop tick`: each is received by exactly one of them."""
    done, skipped = 0, [0]
    cutoff = now - timedelta(days=days)
    while True:
        due = await Shipment.select(Shipment.id).where(
            (Shipment.status == S.shipped) & (Shipment.shipped_at <= cutoff) & Shipment.id.not_in(skipped)
        ).order_by(Shipment.shipped_at).limit(batch)
        for row in due:
            detail = f"shipment {row['id']}: received automatically after {days} days"
            try:
                async with Shipment._meta.db.transaction():
                    shipment, order = await _locked(row["id"])
                    if await _receive(shipment, order, now, actor_id=None, detail=detail):
                        done += 1
                        logger.info("shipment %s received automatically (order %s)", row["id"], order["id"])
            except DomainError as exc:  # the order's state does not allow it: leave it to a person
                logger.error("shipment %s not received automatically: %s", row["id"], exc.detail)
                skipped.append(row["id"])
        if len(due) < batch:
            return done


async def cancel_refunded(order_id: int) -> int:
    """In a refund's transaction: shipments all of whose lines are now refunded are cancelled."""
    rows = await Shipment.raw(
        'UPDATE shop_shipment SET status = {} WHERE "order" = {} AND status <> {} AND NOT EXISTS ('
        ' SELECT 1 FROM shop_order_line l WHERE l."order" = shop_shipment."order"'
        " AND l.supplier = shop_shipment.supplier AND l.refunded_quantity < l.quantity) RETURNING id",
        S.cancelled.value, order_id, S.cancelled.value,
    )
    return len(rows)
