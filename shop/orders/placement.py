"""Placing an order: stock reserved, the order and its `placed` event written and every
member's share held, in one transaction; then, once it has committed, the payment is
started (`checkout()`, used by the API and the pages alike).

Lock order, the same everywhere so that no two transactions wait on each other in a
circle: the order row, then product rows (ascending id), then budget rows (ascending
member id)."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

import msgspec

from budgets import ledger
from budgets.tables import Member
from catalog import stock
from common.errors import DomainError, invalid
from common.sql import is_unique_violation
from shop.auth.accounts import Principal
from shop.db import after_commit
from shop.fulfilment.addresses import delivery_for
from shop.orders import cancellation, lifecycle, queries
from shop.orders.schemas import OrderIn, OrderOut
from shop.orders.states import OrderAction, OrderStatus
from shop.orders.tables import Allocation, Order, OrderLine
from shop.payments import provider_for, provider_named
from shop.payments.provider import PaymentProviderError, Provider
from shop.settings import Settings

logger = logging.getLogger("shop.orders")


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
        raise DomainError("not_found", f"no such member(s): {missing}", members=missing)
    foreign = [m for m in member_ids if found[m]["union"] != branch_id]
    if foreign:
        raise DomainError("forbidden", f"member(s) {foreign} are not of your branch", members=foreign)
    inactive = [m for m in member_ids if not found[m]["active"]]
    if inactive:
        raise DomainError("invalid_state", f"member(s) {inactive} are inactive and get no new allocations", members=inactive)


async def find_by_key(branch_id: int, key: str) -> dict | None:
    return await Order.select(Order.id, Order.request_hash).where(
        (Order.branch == branch_id) & (Order.idempotency_key == key)
    ).first()


def _replay(existing: dict, digest: str) -> int:
    if existing["request_hash"] != digest:
        raise DomainError(
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
    year = ledger.budget_year(now)
    expires_at = now + provider.hold_time()
    try:
        async with Order._meta.db.transaction():
            if existing := await find_by_key(branch_id, key):  # a twin committed meanwhile
                return _replay(existing, digest), False
            await _check_members(member_ids, branch_id)
            delivery = await delivery_for(branch_id, body.address_id) or {}
            reserved = await stock.reserve_stock([(line.product_id, line.quantity) for line in body.lines])
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
            order = await lifecycle.create(
                {
                    "branch": branch_id,
                    "created_by": user_id,
                    "year": year,
                    "total_fen": total,
                    "idempotency_key": key,
                    "request_hash": digest,
                    "created_at": now,
                    "expires_at": expires_at,
                    "provider": provider.name,
                    "delivery_name": delivery.get("name", ""),
                    "delivery_phone": delivery.get("phone", ""),
                    "delivery_address": delivery.get("address", ""),
                },
                at=now,
                actor_id=user_id,
                detail=f"{total} fen for {len(shares)} member(s)",
            )
            order_id = order["id"]
            reference = provider.reference_for(order_id)
            if reference:
                await Order.update({Order.payment_reference: reference}).where(Order.id == order_id)
            await OrderLine.insert(
                *[
                    OrderLine(
                        order=order_id,
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
            await Allocation.insert(*[Allocation(order=order_id, member=m, amount_fen=a) for m, a in shares])
            await ledger.hold(shares, year=year, order_id=order_id, at=now)
    except Exception as exc:
        if is_unique_violation(exc) and (existing := await find_by_key(branch_id, key)):
            return _replay(existing, digest), False
        raise
    return order_id, True


async def start_payment(order_id: int, provider: Provider, now: datetime) -> None:
    """After the order committed: ask the provider for a way to pay. If it refuses or
    cannot be reached, the order is cancelled so that nothing stays held without a way to pay."""
    order = await Order.select(Order.expires_at, Order.payment_reference).where(Order.id == order_id).first()
    lines = await OrderLine.select().where(OrderLine.order == order_id).order_by(OrderLine.id)
    try:
        started = await provider.start(order_id, lines, order["expires_at"])
    except PaymentProviderError as exc:
        logger.warning("payment provider refused order %s: %s; cancelling it", order_id, exc)
        await cancellation.close(order_id, OrderAction.cancelled, now, reason="payment_unavailable")
        raise DomainError(
            "payment_unavailable", "the payment provider could not be reached; the order was cancelled and nothing is held"
        ) from exc
    if started.reference != order["payment_reference"] or started.url:
        await Order.update({Order.payment_reference: started.reference, Order.payment_url: started.url}).where(
            Order.id == order_id
        )


async def checkout(
    principal: Principal, body: OrderIn, *, key: str, now: datetime, settings: Settings
) -> tuple[OrderOut, bool]:
    """Place an order for the buyer's branch and start its payment: the one use case
    behind `POST /api/orders` and the basket page. Returns (the order, created)."""
    if principal.union_id is None:
        raise DomainError("forbidden", "this account is not linked to a branch")
    provider = provider_for(settings)
    order_id, created = await place_order(
        branch_id=principal.union_id, user_id=principal.id, body=body, key=key, now=now, provider=provider
    )

    async def pay_and_answer() -> OrderOut:
        if created or await _needs_a_way_to_pay(order_id):
            # a replay of an order whose payment was never started (the provider was not
            # reached, or the process died after the commit): start it now; the provider's
            # idempotency key makes a second start give the same session
            order = await Order.select(Order.provider).where(Order.id == order_id).first()
            await start_payment(order_id, provider if created else provider_named(order["provider"], settings), now)
        return await queries.get_order(order_id, principal)

    return await after_commit(pay_and_answer), created


async def _needs_a_way_to_pay(order_id: int) -> bool:
    return await Order.exists().where(
        (Order.id == order_id)
        & (Order.status == OrderStatus.pending_payment)
        & (Order.provider != "transfer")
        & (Order.payment_url == "")
    )


async def resume_payments(now: datetime, settings: Settings, grace: timedelta = timedelta(minutes=2)) -> int:
    """The periodic job's half of the same rule: an unpaid order placed more than `grace`
    ago that still has no way to pay gets its payment started again, or (the provider
    still refusing) is cancelled, so that nothing stays held without a way to pay."""
    stuck = await Order.select(Order.id, Order.provider).where(
        (Order.status == OrderStatus.pending_payment)
        & (Order.provider != "transfer")
        & (Order.payment_url == "")
        & (Order.created_at <= now - grace)
    ).order_by(Order.id).limit(200)
    for row in stuck:
        try:
            await start_payment(row["id"], provider_named(row["provider"], settings), now)
        except DomainError as exc:
            logger.warning("order %s still has no way to pay: %s", row["id"], exc.detail)
    return len(stuck)
