"""After-sales requests (售后): a buyer of the branch asks for some of a paid order's lines
back, with a reason; the supplier of every line in it (or an admin) accepts it, which
refunds those lines exactly as an admin refund does (`shop/orders/refunds.py`: quotas back
pro rata, money back through the provider, reserve → provider → apply), or rejects it
with a reason.

Quantities: a request may ask for at most what is neither refunded, nor reserved by a
pending refund, nor in another open request. The check and the insert run with the order
row locked, so of two requests racing for the last unit exactly one is made.

Accepting: one transaction marks the request as being decided (`decided_at`) so that it
can no longer be rejected; then the refund runs under the Idempotency-Key
`after-sale-{id}-{attempt}`, and the transaction that applies it also makes the request
`refunded` and writes `after_sale_accepted` before the order's `refunded` event. If the
provider cannot be reached, the refund stays pending and accepting again resumes it; if
it refuses, the request is open and undecided again (the next attempt uses a new key)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import Any

from common.errors import DomainError, invalid
from shop.auth.accounts import Principal
from shop.auth.scope import order_filter
from shop.fulfilment.schemas import AfterSaleIn, AfterSaleLineOut, AfterSaleOut
from shop.fulfilment.states import AfterSaleStatus as S
from shop.fulfilment.tables import AfterSale, AfterSaleLine
from shop.notifications import notify
from shop.notifications.kinds import Kind
from shop.orders import lifecycle, refunds
from shop.orders.schemas import RefundIn, RefundLineIn
from shop.orders.states import OrderAction, RefundStatus
from shop.orders.tables import Order, OrderLine, RefundLine
from shop.settings import Settings


async def _taken(order_id: int) -> Counter[int]:
    """Per line: units in open requests and in pending refunds (not yet counted as refunded)."""
    taken: Counter[int] = Counter()
    for r in await AfterSaleLine.select(AfterSaleLine.line, AfterSaleLine.quantity).where(
        (AfterSaleLine.after_sale.order == order_id) & (AfterSaleLine.after_sale.status == S.open)
    ):
        taken[r["line"]] += r["quantity"]
    for r in await RefundLine.select(RefundLine.line, RefundLine.quantity).where(
        (RefundLine.refund.order == order_id) & (RefundLine.refund.status == RefundStatus.pending)
    ):
        taken[r["line"]] += r["quantity"]
    return taken


async def open_request(order_id: int, principal: Principal, body: AfterSaleIn, *, now: datetime) -> AfterSaleOut:
    reason = body.reason.strip()
    if not reason:
        raise invalid("reason", "must not be blank")
    async with Order._meta.db.transaction():
        order = await lifecycle.lock(order_id)
        if order is None:
            raise DomainError("not_found", f"order {order_id} does not exist")
        if order["branch"] != principal.union_id:
            raise DomainError("forbidden", "this order belongs to another branch")
        if not lifecycle.allows(order["status"], OrderAction.after_sale_opened):
            raise lifecycle.refused(order, OrderAction.after_sale_opened)
        lines = {line["id"]: line for line in await OrderLine.select().where(OrderLine.order == order_id)}
        refunds.check_line_ids(body.lines, lines)
        taken = await _taken(order_id)
        over = []
        for item in body.lines:
            line = lines[item.line_id]
            left = line["quantity"] - line["refunded_quantity"] - taken[item.line_id]
            if item.quantity > left:
                over.append({"line_id": item.line_id, "requested": item.quantity, "available": max(left, 0)})
        if over:
            raise DomainError(
                "invalid_state", "more than is neither refunded nor already asked for would be taken back", lines=over
            )
        amount = sum(lines[item.line_id]["unit_price_fen"] * item.quantity for item in body.lines)
        rows = await AfterSale.insert(
            AfterSale(order=order_id, reason=reason, amount_fen=amount, created_by=principal.id, created_at=now)
        ).returning(AfterSale.id)
        sale_id = rows[0]["id"]
        await AfterSaleLine.insert(
            *[AfterSaleLine(after_sale=sale_id, line=item.line_id, quantity=item.quantity) for item in sorted(body.lines, key=lambda x: x.line_id)]
        )
        await lifecycle.transition(
            order_id, OrderAction.after_sale_opened, at=now, actor_id=principal.id,
            detail=f"after-sale {sale_id}: {amount} fen: {reason[:200]}", locked=order,
        )
        for supplier in sorted({lines[item.line_id]["supplier"] for item in body.lines}):
            await notify.to_supplier(
                supplier, Kind.after_sale_opened, f"订单 {order_id} 有新的售后申请：{reason[:60]}", at=now, order_id=order_id
            )
    return await get_request(sale_id)


async def _sale_and_lines(sale_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    sale = await AfterSale.select().where(AfterSale.id == sale_id).first()
    if sale is None:
        raise DomainError("not_found", f"after-sales request {sale_id} does not exist")
    lines = await AfterSaleLine.select(AfterSaleLine.line, AfterSaleLine.quantity, AfterSaleLine.line.supplier).where(
        AfterSaleLine.after_sale == sale_id
    ).order_by(AfterSaleLine.line)
    return sale, lines


def _may_decide(principal: Principal, lines: list[dict[str, Any]]) -> None:
    if principal.role == "admin":
        return
    if principal.role == "supplier" and all(line["line.supplier"] == principal.supplier_id for line in lines):
        return
    raise DomainError("forbidden", "only an admin, or the supplier of every line in it, decides this request")


def _not_open(sale: dict[str, Any], verb: str) -> DomainError:
    return DomainError("invalid_state", f"an after-sales request that is {sale['status']} cannot be {verb}", request_status=sale["status"])


async def accept(sale_id: int, principal: Principal, *, now: datetime, settings: Settings) -> AfterSaleOut:
    sale, lines = await _sale_and_lines(sale_id)
    _may_decide(principal, lines)
    async with Order._meta.db.transaction():
        await lifecycle.lock(sale["order"])
        sale = await AfterSale.select().where(AfterSale.id == sale_id).first()
        if sale["status"] != S.open:
            raise _not_open(sale, "accepted")
        if sale["decided_at"] is None:
            await AfterSale.update({AfterSale.decided_at: now, AfterSale.decided_by: principal.id}).where(AfterSale.id == sale_id)

    async def mark_refunded(refund: dict, order: dict) -> None:
        await _mark_refunded(sale_id, refund, order, now=now, actor_id=principal.id)

    body = RefundIn(lines=[RefundLineIn(line_id=line["line"], quantity=line["quantity"]) for line in lines])
    key = f"after-sale-{sale_id}-{sale['attempt']}"
    try:
        refund = await refunds.refund_order(
            sale["order"], body, user_id=principal.id, now=now, settings=settings, key=key, on_apply=mark_refunded
        )
    except DomainError as exc:
        if exc.code != "payment_unavailable" or exc.extra.get("refund_status") == "failed":
            # nothing was refunded and nothing is pending: the request is undecided again
            await AfterSale.update(
                {AfterSale.decided_at: None, AfterSale.decided_by: None, AfterSale.attempt: AfterSale.attempt + 1}
            ).where((AfterSale.id == sale_id) & (AfterSale.status == S.open))
        raise
    if refund["status"] in (RefundStatus.succeeded, RefundStatus.owed):
        # made already by an earlier attempt whose answer was lost: record the decision now
        async with Order._meta.db.transaction():
            order = await lifecycle.lock(sale["order"])
            await _mark_refunded(sale_id, refund, order, now=now, actor_id=principal.id)
    return await get_request(sale_id)


async def _mark_refunded(sale_id: int, refund: dict, order: dict, *, now: datetime, actor_id: int | None) -> None:
    moved = await AfterSale.update({AfterSale.status: S.refunded, AfterSale.refund: refund["id"]}).where(
        (AfterSale.id == sale_id) & (AfterSale.status == S.open)
    ).returning(AfterSale.id)
    if not moved:
        return
    await lifecycle.transition(
        order["id"], OrderAction.after_sale_accepted, at=now, actor_id=actor_id,
        detail=f"after-sale {sale_id}: refund #{refund['seq']} of {refund['amount_fen']} fen", locked=order,
    )
    await notify.to_branch(
        order["branch"], Kind.after_sale_decided,
        f"订单 {order['id']} 的售后申请已同意，退款 {notify.yuan(refund['amount_fen'])}", at=now, order_id=order["id"],
    )


async def reject(sale_id: int, principal: Principal, reason: str, *, now: datetime) -> AfterSaleOut:
    reason = reason.strip()
    if not reason:
        raise invalid("reason", "must not be blank")
    sale, lines = await _sale_and_lines(sale_id)
    _may_decide(principal, lines)
    async with Order._meta.db.transaction():
        order = await lifecycle.lock(sale["order"])
        sale = await AfterSale.select().where(AfterSale.id == sale_id).first()
        if sale["status"] != S.open:
            raise _not_open(sale, "rejected")
        if sale["decided_at"] is not None:
            raise DomainError("invalid_state", "this request was accepted and its refund is under way", request_status="open")
        await AfterSale.update(
            {AfterSale.status: S.rejected, AfterSale.decision_reason: reason, AfterSale.decided_at: now, AfterSale.decided_by: principal.id}
        ).where(AfterSale.id == sale_id)
        await lifecycle.transition(
            order["id"], OrderAction.after_sale_rejected, at=now, actor_id=principal.id,
            detail=f"after-sale {sale_id}: {reason[:200]}", locked=order,
        )
        await notify.to_branch(
            order["branch"], Kind.after_sale_decided, f"订单 {order['id']} 的售后申请未通过：{reason[:60]}", at=now, order_id=order["id"]
        )
    return await get_request(sale_id)


async def _scope(principal: Principal) -> Any | None:
    if principal.role == "supplier":
        return AfterSale.id.is_in(
            AfterSaleLine.select(AfterSaleLine.after_sale).where(AfterSaleLine.line.supplier == principal.supplier_id)
        )
    where = await order_filter(principal)
    return None if where is None else AfterSale.order.is_in(Order.select(Order.id).where(where))


async def list_requests(
    principal: Principal, *, status: S | None, limit: int, offset: int, order_id: int | None = None
) -> tuple[list[AfterSaleOut], int]:
    """Buyer: its branch's; supplier: those on its lines; auditor: its subtree's; admin: all
    (`order_id`: only that order's, as its page shows them)."""
    where = [w for w in [await _scope(principal)] if w is not None]
    if status is not None:
        where.append(AfterSale.status == status)
    if order_id is not None:
        where.append(AfterSale.order == order_id)
    query, count = AfterSale.select(), AfterSale.count()
    for clause in where:
        query, count = query.where(clause), count.where(clause)
    rows = await query.order_by(AfterSale.id, ascending=False).limit(limit).offset(offset)
    return await _out(rows), await count


async def get_request(sale_id: int) -> AfterSaleOut:
    return (await _out(await AfterSale.select().where(AfterSale.id == sale_id)))[0]


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if value else None


async def _out(rows: list[dict[str, Any]]) -> list[AfterSaleOut]:
    lines: dict[int, list[AfterSaleLineOut]] = {r["id"]: [] for r in rows}
    if rows:
        for line in await AfterSaleLine.select().where(AfterSaleLine.after_sale.is_in(list(lines))).order_by(AfterSaleLine.line):
            lines[line["after_sale"]].append(AfterSaleLineOut(line_id=line["line"], quantity=line["quantity"]))
    return [
        AfterSaleOut(
            id=r["id"],
            order_id=r["order"],
            status=S(r["status"]),
            lines=lines[r["id"]],
            reason=r["reason"],
            amount_fen=r["amount_fen"],
            created_at=_iso(r["created_at"]) or "",
            decided_at=_iso(r["decided_at"]) if r["status"] != S.open else None,
            decision_reason=r["decision_reason"],
            refund_id=r["refund"],
        )
        for r in rows
    ]
