"""Orders: placing them (stock, holds, the order in one transaction), reading them in
the caller's scope, cancelling and expiring them.

Lock order, the same everywhere so that no two transactions wait on each other in a
circle: the order row, then product rows (ascending id), then budget rows (ascending
member id)."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone
from typing import Any

import msgspec
from piccolo.engine.postgres import PostgresEngine

from budgets import service as budgets
from budgets.tables import Member, Union
from catalog.stock import release_stock, reserve_stock
from shop.db import is_unique_violation
from shop.errors import ShopError, invalid
from shop.payments import Provider, TransferProvider
from shop.schemas import (
    AllocationOut,
    BankOut,
    LineOut,
    OrderIn,
    OrderOut,
    PaymentOut,
)
from shop.settings import get_settings
from shop.tables import Allocation, Order, OrderLine

logger = logging.getLogger("shop.orders")

OPEN = "pending_payment"
# what each action may start from
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "cancel": (OPEN,),
    "expire": (OPEN,),
    "pay": (OPEN,),
    "refund": ("paid", "partially_refunded"),
}


def request_hash(body: OrderIn) -> str:
    return hashlib.sha256(msgspec.json.encode(body)).hexdigest()



def _check_shape(body: OrderIn) -> None:
    """What the schema cannot say: one of members/allocations, no duplicates."""
    product_ids = [line.product_id for line in body.lines]
    if len(set(product_ids)) != len(product_ids):
        raise invalid("lines", "a product appears on more than one line; put the quantity on one line")
    if (body.members is None) == (body.allocations is None):
        raise invalid("members", "give either members (an even split) or allocations, not both or neither")
    member_ids = body.members if body.members is not None else [a.member_id for a in body.allocations or []]
    if len(set(member_ids)) != len(member_ids):
        field = "members" if body.members is not None else "allocations"
        raise invalid(field, "a member appears more than once")


def split_evenly(total_fen: int, member_ids: list[int]) -> list[tuple[int, int]]:
    """Equal shares; the remainder fen go one each to the first members in the order given."""
    share, remainder = divmod(total_fen, len(member_ids))
    return [(m, share + (1 if i < remainder else 0)) for i, m in enumerate(member_ids)]


async def _check_members(member_ids: list[int], branch_id: int) -> None:
    rows = await Member.select(Member.id, Member.union, Member.active).where(Member.id.is_in(member_ids))
    found = {r["id"]: r for r in rows}
    missing = [m for m in member_ids if m not in found]
    if missing:
        raise ShopError("not_found", f"no such member(s): {missing}", members=missing)
    foreign = [m for m in member_ids if found[m]["union"] != branch_id]
    if foreign:
        raise ShopError("forbidden", f"member(s) {foreign} are not of your branch", members=foreign)
    inactive = [m for m in member_ids if not found[m]["active"]]
    if inactive:
        raise ShopError("invalid_state", f"member(s) {inactive} are inactive and get no new allocations", members=inactive)


async def find_by_key(branch_id: int, key: str) -> dict | None:
    return await Order.select(Order.id, Order.request_hash).where(
        (Order.branch == branch_id) & (Order.idempotency_key == key)
    ).first()


def _replay(existing: dict, digest: str) -> int:
    if existing["request_hash"] != digest:
        raise ShopError(
            "idempotency_conflict",
            "this Idempotency-Key was already used for an order with another body",
            order_id=existing["id"],
        )
    return existing["id"]


async def place_order(
    *,
    branch_id: int,
    user_id: int,
    body: OrderIn,
    key: str,
    now: datetime,
    provider: Provider,
) -> tuple[int, bool]:
    """Reserve stock, record the order and hold every member's share: all or nothing.

    Returns (order id, created). The same key and body again gives the same order."""
    if not 1 <= len(key) <= 64:
        raise invalid("Idempotency-Key", "required, 1 to 64 characters")
    _check_shape(body)
    digest = request_hash(body)
    if existing := await find_by_key(branch_id, key):
        return _replay(existing, digest), False
    member_ids = body.members if body.members is not None else [a.member_id for a in body.allocations or []]
    year = budgets.budget_year(now)
    expires_at = now + provider.hold_time()
    try:
        async with Order._meta.db.transaction():
            if existing := await find_by_key(branch_id, key):  # a twin committed meanwhile
                return _replay(existing, digest), False
            await _check_members(member_ids, branch_id)
            reserved = await reserve_stock([(line.product_id, line.quantity) for line in body.lines])
            total = sum(line.amount_fen for line in reserved)
            if body.members is not None:
                if total < len(member_ids):
                    raise invalid("members", f"the total of {total} fen cannot give every member at least one fen")
                shares = split_evenly(total, member_ids)
            else:
                shares = [(a.member_id, a.amount_fen) for a in body.allocations or []]
                allocated = sum(amount for _, amount in shares)
                if allocated != total:
                    raise invalid("allocations", f"the allocations add up to {allocated} fen, the order's total is {total} fen")
            order = Order(
                branch=branch_id,
                created_by=user_id,
                year=year,
                status=OPEN,
                total_fen=total,
                idempotency_key=key,
                request_hash=digest,
                created_at=now,
                expires_at=expires_at,
                provider=provider.name,
            )
            await order.save()
            reference = provider.reference_for(order.id)
            if reference:
                await Order.update({Order.payment_reference: reference}).where(Order.id == order.id)
            await OrderLine.insert(
                *[
                    OrderLine(
                        order=order.id,
                        product=line.product_id,
                        supplier=line.supplier_id,
                        region_code=line.region_code,
                        title=line.title,
                        quantity=line.quantity,
                        unit_price_fen=line.unit_price_fen,
                        amount_fen=line.amount_fen,
                    )
                    for line in reserved
                ]
            )
            await Allocation.insert(*[Allocation(order=order.id, member=m, amount_fen=a) for m, a in shares])
            await budgets.hold(shares, year=year, order_id=order.id, at=now)
    except Exception as exc:
        if is_unique_violation(exc) and (existing := await find_by_key(branch_id, key)):
            return _replay(existing, digest), False
        raise
    return order.id, True


async def start_payment(order_id: int, provider: Provider, now: datetime) -> None:
    """After the order committed: ask the provider for a way to pay. If it cannot give
    one, the order is cancelled so that nothing stays held without a way to pay."""
    order = await Order.select(Order.expires_at, Order.payment_reference).where(Order.id == order_id).first()
    lines = await OrderLine.select().where(OrderLine.order == order_id).order_by(OrderLine.id)
    try:
        started = await provider.start(order_id, lines, order["expires_at"])
    except Exception as exc:
        logger.warning("payment provider refused order %s: %r; cancelling it", order_id, exc)
        await close_order(order_id, "cancelled", now, reason="payment_unavailable")
        raise ShopError("payment_unavailable", "the payment provider could not be reached; the order was cancelled and nothing is held") from exc
    if started.reference != order["payment_reference"] or started.url:
        await Order.update({Order.payment_reference: started.reference, Order.payment_url: started.url}).where(
            Order.id == order_id
        )


async def _lock_order(order_id: int) -> dict | None:
    query = Order.select().where(Order.id == order_id)
    if isinstance(Order._meta.db, PostgresEngine):
        query = query.lock_rows("UPDATE")
    return await query.first()


async def close_order(order_id: int, status: str, now: datetime, reason: str = "") -> bool:
    """pending_payment -> cancelled | expired: stock goes back, holds are released.

    Returns False (and changes nothing) when the order is no longer pending, so that
    several workers may race to expire the same order safely."""
    async with Order._meta.db.transaction():
        order = await _lock_order(order_id)
        if order is None or order["status"] != OPEN:
            return False
        changed = await Order.update({Order.status: status, Order.closed_at: now}).where(
            (Order.id == order_id) & (Order.status == OPEN)
        ).returning(Order.id)
        if not changed:
            return False
        lines = await OrderLine.select(OrderLine.product, OrderLine.quantity).where(OrderLine.order == order_id)
        await release_stock(sorted((l["product"], l["quantity"]) for l in lines))
        shares = await _shares(order_id)
        await budgets.release(shares, year=order["year"], order_id=order_id, at=now)
    logger.info("order %s %s%s", order_id, status, f" ({reason})" if reason else "")
    return True


async def _shares(order_id: int) -> list[tuple[int, int]]:
    rows = await Allocation.select(Allocation.member, Allocation.amount_fen).where(Allocation.order == order_id)
    return [(r["member"], r["amount_fen"]) for r in rows]


async def cancel_order(order_id: int, branch_id: int, now: datetime) -> None:
    order = await Order.select(Order.branch, Order.status).where(Order.id == order_id).first()
    if order is None:
        raise ShopError("not_found", f"order {order_id} does not exist")
    if order["branch"] != branch_id:
        raise ShopError("forbidden", "this order belongs to another branch")
    if order["status"] not in TRANSITIONS["cancel"] or not await close_order(order_id, "cancelled", now):
        current = (await Order.select(Order.status).where(Order.id == order_id).first())["status"]
        raise ShopError("invalid_state", f"an order that is {current} cannot be cancelled", order_status=current)


async def expire_due(now: datetime, batch: int = 200) -> int:
    """Expire every pending order whose hold has run out. Safe to run in several
    workers at once: each order is closed by exactly one of them."""
    expired = 0
    while True:
        due = await Order.select(Order.id).where((Order.status == OPEN) & (Order.expires_at <= now)).order_by(
            Order.expires_at
        ).limit(batch)
        if not due:
            return expired
        for row in due:
            if await close_order(row["id"], "expired", now, reason="hold ran out"):
                expired += 1
        if len(due) < batch:
            return expired


# --- reading orders in the caller's scope --------------------------------------------


async def _scope_where(principal: Any):
    """The orders a caller may see: buyer its branch, auditor its subtree, supplier the
    orders holding its products, admin all."""
    if principal.role == "admin":
        return None
    if principal.role == "buyer":
        return Order.branch == principal.union_id
    if principal.role == "auditor":
        union = await Union.select(Union.path).where(Union.id == principal.union_id).first()
        return Order.branch.path.like((union["path"] if union else "/none/") + "%")
    if principal.role == "supplier":
        return Order.id.is_in(OrderLine.select(OrderLine.order).where(OrderLine.supplier == principal.supplier_id))
    raise ShopError("forbidden", "this role sees no orders")


async def list_orders(principal: Any, *, status: str | None, year: int | None, limit: int, offset: int) -> tuple[list[OrderOut], int]:
    where = [w for w in [await _scope_where(principal)] if w is not None]
    if status:
        where.append(Order.status == status)
    if year:
        where.append(Order.year == year)
    query = Order.select(Order.id).order_by(Order.id, ascending=False)
    count = Order.count()
    for clause in where:
        query = query.where(clause)
        count = count.where(clause)
    ids = [r["id"] for r in await query.limit(limit).offset(offset)]
    return await orders_out(ids, principal), await count


async def get_order(order_id: int, principal: Any) -> OrderOut:
    order = await Order.select(Order.id, Order.branch).where(Order.id == order_id).first()
    if order is None:
        raise ShopError("not_found", f"order {order_id} does not exist")
    where = await _scope_where(principal)
    if where is not None and not await Order.exists().where((Order.id == order_id) & where):
        raise ShopError("forbidden", "this order is outside your scope")
    return (await orders_out([order_id], principal))[0]


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat()


async def orders_out(ids: list[int], principal: Any | None = None) -> list[OrderOut]:
    """Shape orders for the caller; a supplier sees only its own lines and no members."""
    if not ids:
        return []
    orders = {r["id"]: r for r in await Order.select().where(Order.id.is_in(ids))}
    lines: dict[int, list[LineOut]] = {i: [] for i in ids}
    for l in await OrderLine.select().where(OrderLine.order.is_in(ids)).order_by(OrderLine.id):
        if principal is not None and principal.role == "supplier" and l["supplier"] != principal.supplier_id:
            continue
        lines[l["order"]].append(
            LineOut(
                id=l["id"],
                product_id=l["product"],
                title=l["title"],
                quantity=l["quantity"],
                unit_price_fen=l["unit_price_fen"],
                amount_fen=l["amount_fen"],
                refunded_quantity=l["refunded_quantity"],
                supplier_id=l["supplier"],
                region=l["region_code"],
            )
        )
    allocations: dict[int, list[AllocationOut]] = {i: [] for i in ids}
    if principal is None or principal.role != "supplier":
        for a in await Allocation.select().where(Allocation.order.is_in(ids)).order_by(Allocation.id):
            allocations[a["order"]].append(
                AllocationOut(member_id=a["member"], amount_fen=a["amount_fen"], refunded_fen=a["refunded_fen"])
            )
    bank = BankOut(**TransferProvider(get_settings()).bank())
    out = []
    for i in ids:
        o = orders[i]
        supplier_view = principal is not None and principal.role == "supplier"
        out.append(
            OrderOut(
                id=o["id"],
                status=o["status"],
                branch_id=o["branch"],
                year=o["year"],
                total_fen=sum(l.amount_fen for l in lines[i]) if supplier_view else o["total_fen"],
                refunded_fen=o["refunded_fen"],
                created_at=_iso(o["created_at"]),
                lines=lines[i],
                allocations=allocations[i],
                payment=PaymentOut(
                    provider=o["provider"],
                    reference=o["payment_reference"],
                    expires_at=_iso(o["expires_at"]),
                    url=o["payment_url"] or None,
                    bank=bank if o["provider"] == "transfer" and not supplier_view else None,
                ),
                needs_refund=o["needs_refund"],
            )
        )
    return out


# --- paying: Stripe webhooks and confirmed bank transfers -----------------------------


async def pay_locked(order: dict, now: datetime, payment_intent: str = "") -> bool:
    """pending_payment -> paid, inside the caller's transaction, with the order row already
    locked (`_lock_order`): every held share becomes spent. False if it was not pending."""
    if order["status"] not in TRANSITIONS["pay"]:
        return False
    values: dict = {Order.status: "paid", Order.paid_at: now}
    if payment_intent:
        values[Order.payment_intent] = payment_intent
    changed = await Order.update(values).where((Order.id == order["id"]) & (Order.status == OPEN)).returning(Order.id)
    if not changed:
        return False
    await budgets.capture(await _shares(order["id"]), year=order["year"], order_id=order["id"], at=now)
    logger.info("order %s paid (%s)", order["id"], order["provider"])
    return True


def _same_reference(given: str, expected: str) -> bool:
    """Bank statements vary in case and spacing; the reference itself must match."""
    return "".join(given.split()).upper() == "".join(expected.split()).upper()


async def confirm_transfer(order_id: int, reference: str, now: datetime) -> None:
    """An admin saw the branch's transfer arrive: the order is paid and its holds captured."""
    async with Order._meta.db.transaction():
        order = await _lock_order(order_id)
        if order is None:
            raise ShopError("not_found", f"order {order_id} does not exist")
        if order["provider"] != "transfer":
            raise ShopError(
                "invalid_state", f"order {order_id} is paid through {order['provider']}, not by bank transfer", order_status=order["status"]
            )
        if order["status"] not in TRANSITIONS["pay"]:
            raise ShopError("invalid_state", f"an order that is {order['status']} cannot be paid", order_status=order["status"])
        if not _same_reference(reference, order["payment_reference"]):
            raise invalid("reference", "does not match the order's transfer reference")
        await pay_locked(order, now)


async def list_needs_refund(limit: int, offset: int) -> tuple[list[OrderOut], int]:
    """Orders whose payment arrived after they were no longer held (admins refund them)."""
    where = Order.needs_refund == True  # noqa: E712
    ids = [r["id"] for r in await Order.select(Order.id).where(where).order_by(Order.id).limit(limit).offset(offset)]
    return await orders_out(ids), await Order.count().where(where)
