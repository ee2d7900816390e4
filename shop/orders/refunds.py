"""Refunds (admin): money goes back to the payer through the order's payment provider,
and the same amount goes back to the members' yearly quotas, pro rata to what is left of
their allocations. Stock is not returned: the goods were delivered.

Ordering against the provider — reserve, call, apply:

1. One transaction (order row locked): check the request and record a `Refund` row
   `pending` with the lines and amount. Nothing else changes: budgets, lines,
   allocations and the order stay as they are. While a refund is pending no other refund
   of the order can start, so the pending quantities are never refunded twice.
2. Outside any transaction: ask the provider, with the idempotency key
   `order-{id}-refund-{seq}` (Stripe: the Refund API on the PaymentIntent; bank
   transfer: recorded as owed, no call).
3. One transaction (order row, then budget rows): apply it — line quantities,
   allocations, budgets.ledger.refund (ledger entries), the order's refunded_fen and status —
   and mark the refund `succeeded` (or `owed`).

If the provider refuses (a definite answer: nothing was refunded there), the refund is
marked `failed` and nothing else changed; the answer is 503 `payment_unavailable`. If it
cannot be reached or its outcome is unknown (no answer, 5xx), the refund stays `pending`,
visibly, and the answer is 503: repeating the same request resumes it with the same
idempotency key, so Stripe refunds at most once, and then step 3 applies it. A crash
between 2 and 3 leaves the same `pending` row, resumed the same way.

Why not apply first and undo on failure: the quota would be free for other orders in the
meantime, and taking it back could push a member over the cap; the ledger has no "undo
refund" entry either. Why not call the provider first: a refund that succeeded at Stripe
but was never recorded (crash, or a concurrent refund taking the same lines) would be
invisible here. With a pending row first, no fen is ever moved in our books before the
money moved, and a provider-side refund is never without a record.

A late payment (`needs_refund`: the money arrived after the order expired or was
cancelled) is refunded whole the same way; its quota was never spent, so budgets do not
change, and the order is marked settled (`needs_refund` false)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Container, Sequence
from datetime import datetime, timezone
from typing import Any

import msgspec

from budgets import ledger
from common.errors import DomainError, invalid
from shop.fulfilment import shipments
from shop.orders import lifecycle
from shop.orders.schemas import RefundIn, RefundLineOut, RefundOut, RefundShareOut
from shop.orders.states import OrderAction, OrderStatus, RefundKind, RefundStatus
from shop.orders.tables import (
    Allocation,
    Order,
    OrderLine,
    Refund,
    RefundLine,
    RefundShare,
)
from shop.payments import provider_named
from shop.payments.provider import PaymentProviderError
from shop.settings import Settings

logger = logging.getLogger("shop.refunds")

# Called inside the transaction that applies a refund, before the order's `refunded` event,
# with the refund and the locked order rows (an after-sales request becomes `refunded`).
OnApply = Callable[[dict, dict], Awaitable[None]]

LATE = (OrderStatus.expired, OrderStatus.cancelled)


def pro_rata(amount: int, remaining: list[int]) -> list[int]:
    """Split `amount` fen over allocations in proportion to what each has left.

    Largest remainder: every share is first rounded down, then the fen still missing go one
    each to the largest remainders, ties to the earlier allocation. The shares add up to
    `amount` exactly and none exceeds what its allocation has left."""
    total = sum(remaining)
    if amount < 0 or any(r < 0 for r in remaining) or amount > total:
        raise ValueError(f"cannot split {amount} fen over {remaining}")
    if amount == 0:
        return [0] * len(remaining)
    shares = [amount * r // total for r in remaining]
    fractions = [amount * r % total for r in remaining]
    missing = amount - sum(shares)
    for i in sorted(range(len(remaining)), key=lambda i: (-fractions[i], i))[:missing]:
        shares[i] += 1
    assert sum(shares) == amount and all(s <= r for s, r in zip(shares, remaining))
    return shares


def refund_key(order_id: int, seq: int) -> str:
    return f"order-{order_id}-refund-{seq}"



def check_line_ids(items: Sequence[Any], lines: Container[int]) -> None:
    """Every item (`line_id`, …) names a line of the order, each at most once; else
    `validation_failed` on the first one that does not (refunds and after-sales requests)."""
    seen: set[int] = set()
    for i, item in enumerate(items):
        if item.line_id not in lines:
            raise invalid(f"lines[{i}].line_id", "is not a line of this order")
        if item.line_id in seen:
            raise invalid(f"lines[{i}].line_id", "appears more than once")
        seen.add(item.line_id)


def _wanted(body: RefundIn, lines: list[dict]) -> list[tuple[int, int]]:
    """[(line id, quantity)] the request asks for, checked against the order's lines."""
    by_id = {l["id"]: l for l in lines}
    if body.lines is None:  # everything left
        return [(l["id"], l["quantity"] - l["refunded_quantity"]) for l in lines if l["quantity"] > l["refunded_quantity"]]
    check_line_ids(body.lines, by_id)
    over = []
    for item in body.lines:
        left = by_id[item.line_id]["quantity"] - by_id[item.line_id]["refunded_quantity"]
        if item.quantity > left:
            over.append({"line_id": item.line_id, "requested": item.quantity, "refundable": left})
    if over:
        raise DomainError("invalid_state", "more than is left on the line(s) would be refunded", lines=over)
    # in line order, so that the same request always reads the same
    return sorted((item.line_id, item.quantity) for item in body.lines)


def request_hash(body: RefundIn) -> str:
    return hashlib.sha256(msgspec.json.encode(body)).hexdigest()


async def _reserve(order_id: int, body: RefundIn, user_id: int | None, now: datetime, key: str | None) -> dict:
    """Step 1: the pending Refund row (a new one, or the one this request repeats: the
    same Idempotency-Key, or without a key the pending refund of the same lines)."""
    async with Order._meta.db.transaction():
        order = await lifecycle.lock(order_id)
        if order is None:
            raise DomainError("not_found", f"order {order_id} does not exist")
        if key is not None:
            same_key = await Refund.select().where((Refund.order == order_id) & (Refund.idempotency_key == key)).first()
            if same_key is not None:
                if same_key["request_hash"] != request_hash(body):
                    raise DomainError(
                        "idempotency_conflict",
                        "this Idempotency-Key was already used for a refund of this order with another body",
                        refund_id=same_key["id"],
                    )
                return same_key
        pending = await Refund.select().where((Refund.order == order_id) & (Refund.status == RefundStatus.pending)).first()
        late = order["needs_refund"] and order["status"] in LATE
        if late:
            if body.lines is not None:
                raise invalid("lines", "a payment that arrived after the order closed is refunded whole: send {}")
            wanted: list[tuple[int, int]] = []
            amount = order["total_fen"]
        else:
            if order["status"] in LATE or not lifecycle.allows(order["status"], OrderAction.refunded):
                raise lifecycle.refused(order, OrderAction.refunded)
            lines = await OrderLine.select().where(OrderLine.order == order_id).order_by(OrderLine.id)
            wanted = _wanted(body, lines)
            price = {l["id"]: l["unit_price_fen"] for l in lines}
            amount = sum(price[line_id] * qty for line_id, qty in wanted)
        if pending is not None:
            if await _lines_of(pending["id"]) == wanted:
                logger.info("refund %s of order %s is pending: resuming it", pending["seq"], order_id)
                return pending
            raise DomainError(
                "invalid_state",
                f"refund #{pending['seq']} of {pending['amount_fen']} fen is still pending with the payment provider; "
                "repeat that request to complete it first",
                refund_id=pending["id"],
                refund_status="pending",
            )
        if amount <= 0:
            raise DomainError("invalid_state", "nothing is left to refund on this order", order_status=order["status"])
        last = await Refund.select(Refund.seq).where(Refund.order == order_id).order_by(Refund.seq, ascending=False).first()
        rows = await Refund.insert(
            Refund(
                order=order_id,
                seq=(last["seq"] if last else 0) + 1,
                kind=RefundKind.late_payment if late else RefundKind.lines,
                amount_fen=amount,
                status=RefundStatus.pending,
                provider=order["provider"],
                created_by=user_id,
                created_at=now,
                idempotency_key=key,
                request_hash=request_hash(body),
            )
        ).returning(Refund.id)
        if wanted:
            await RefundLine.insert(*[RefundLine(refund=rows[0]["id"], line=line_id, quantity=qty) for line_id, qty in wanted])
        return await Refund.select().where(Refund.id == rows[0]["id"]).first()


async def _lines_of(refund_id: int) -> list[tuple[int, int]]:
    rows = await RefundLine.select(RefundLine.line, RefundLine.quantity).where(RefundLine.refund == refund_id).order_by(RefundLine.line)
    return [(r["line"], r["quantity"]) for r in rows]


async def _fail(refund_id: int, error: str, now: datetime) -> None:
    await Refund.update(
        {Refund.status: RefundStatus.failed, Refund.error: error[:2000], Refund.settled_at: now}
    ).where((Refund.id == refund_id) & (Refund.status == RefundStatus.pending))


async def _apply(
    refund_id: int, status: str, reference: str, now: datetime, actor_id: int | None, on_apply: OnApply | None = None
) -> None:
    """Step 3: the provider gave the money back (or it is owed): move our books."""
    first = await Refund.select(Refund.order).where(Refund.id == refund_id).first()
    async with Order._meta.db.transaction():
        order = await lifecycle.lock(first["order"])
        refund = await Refund.select().where(Refund.id == refund_id).first()
        if refund["status"] != RefundStatus.pending:
            return  # a repeated request completed it meanwhile
        done = {Refund.status: status, Refund.provider_reference: reference, Refund.settled_at: now, Refund.error: ""}
        said = f"refund #{refund['seq']}: {refund['amount_fen']} fen ({status})"
        if refund["kind"] == RefundKind.late_payment:
            await lifecycle.transition(
                order["id"], OrderAction.refunded, at=now, actor_id=actor_id, detail=said,
                values={Order.needs_refund: False}, locked=order,
            )
            await Refund.update(done).where(Refund.id == refund_id)
            return
        if on_apply is not None:
            await on_apply(refund, order)
        lines = {l["id"]: l for l in await OrderLine.select().where(OrderLine.order == order["id"])}
        for line_id, qty in await _lines_of(refund_id):
            line = lines[line_id]
            if line["refunded_quantity"] + qty > line["quantity"]:  # the pending reservation prevents it
                raise RuntimeError(f"refund {refund_id}: line {line_id} has less than {qty} left to refund")
            await OrderLine.update({OrderLine.refunded_quantity: line["refunded_quantity"] + qty}).where(OrderLine.id == line_id)
        allocations = await Allocation.select().where(Allocation.order == order["id"]).order_by(Allocation.id)
        split = pro_rata(refund["amount_fen"], [a["amount_fen"] - a["refunded_fen"] for a in allocations])
        shares = [(a["member"], s) for a, s in zip(allocations, split) if s]
        for a, s in zip(allocations, split):
            if s:
                await Allocation.update({Allocation.refunded_fen: Allocation.refunded_fen + s}).where(Allocation.id == a["id"])
        await ledger.refund(shares, year=order["year"], order_id=order["id"], at=now)
        await shipments.cancel_refunded(order["id"])
        left = await OrderLine.count().where((OrderLine.order == order["id"]) & (OrderLine.refunded_quantity < OrderLine.quantity))
        await lifecycle.transition(
            order["id"],
            OrderAction.refunded,
            at=now,
            actor_id=actor_id,
            detail=said,
            to=OrderStatus.partially_refunded if left else OrderStatus.refunded,
            values={Order.refunded_fen: Order.refunded_fen + refund["amount_fen"]},
            locked=order,
        )
        if shares:
            await RefundShare.insert(*[RefundShare(refund=refund_id, member=m, amount_fen=a) for m, a in shares])
        await Refund.update(done).where(Refund.id == refund_id)
    logger.info("refund %s of order %s: %s fen back to %d member(s), %s", refund["seq"], order["id"], refund["amount_fen"], len(shares), status)


async def refund_order(
    order_id: int,
    body: RefundIn,
    *,
    user_id: int | None,
    now: datetime,
    settings: Settings,
    key: str | None = None,
    on_apply: OnApply | None = None,
) -> dict:
    """Refund (part of) a paid order, or a late payment; returns the Refund row. With an
    Idempotency-Key, the same key and body again answer the same refund and move no
    money twice; another body is `idempotency_conflict`."""
    refund = await _reserve(order_id, body, user_id, now, key)
    if refund["status"] == RefundStatus.failed:
        raise DomainError(
            "payment_unavailable",
            f"refund #{refund['seq']} was refused by the payment provider; nothing was refunded",
            refund_id=refund["id"],
            refund_status="failed",
        )
    if refund["status"] != RefundStatus.pending:
        return refund  # made already: this is a repeat
    order = await Order.select().where(Order.id == order_id).first()
    provider = provider_named(order["provider"], settings)
    key = refund_key(order_id, refund["seq"])
    try:
        result = await provider.refund(order, refund["amount_fen"], key)
    except PaymentProviderError as exc:
        definite = exc.definite
        if definite:
            logger.warning("refund %s of order %s refused by %s: %s", refund["seq"], order_id, provider.name, exc)
            await _fail(refund["id"], str(exc), now)
        else:
            logger.error("refund %s of order %s: outcome at %s unknown, left pending: %r", refund["seq"], order_id, provider.name, exc)
            await Refund.update({Refund.error: str(exc)[:2000]}).where(Refund.id == refund["id"])
        raise DomainError(
            "payment_unavailable",
            "the payment provider refused the refund; nothing was refunded"
            if definite
            else "the payment provider could not be reached; the refund is pending and nothing was refunded here yet — repeat the request to complete it",
            refund_id=refund["id"],
            refund_status="failed" if definite else "pending",
        ) from exc
    await _apply(refund["id"], result.status, result.reference, now, user_id, on_apply)
    return await Refund.select().where(Refund.id == refund["id"]).first()


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if value else None


async def refunds_out(rows: list[dict]) -> list[RefundOut]:
    ids = [r["id"] for r in rows]
    lines: dict[int, list[RefundLineOut]] = {i: [] for i in ids}
    shares: dict[int, list[RefundShareOut]] = {i: [] for i in ids}
    if ids:
        for r in await RefundLine.select().where(RefundLine.refund.is_in(ids)).order_by(RefundLine.line):
            lines[r["refund"]].append(RefundLineOut(line_id=r["line"], quantity=r["quantity"]))
        for r in await RefundShare.select().where(RefundShare.refund.is_in(ids)).order_by(RefundShare.id):
            shares[r["refund"]].append(RefundShareOut(member_id=r["member"], amount_fen=r["amount_fen"]))
    return [_refund_out(r, lines[r["id"]], shares[r["id"]]) for r in rows]


def _refund_out(row: dict, lines: list[RefundLineOut], shares: list[RefundShareOut]) -> RefundOut:
    return RefundOut(
        id=row["id"],
        order_id=row["order"],
        seq=row["seq"],
        kind=row["kind"],
        amount_fen=row["amount_fen"],
        status=row["status"],
        provider=row["provider"],
        provider_reference=row["provider_reference"],
        lines=lines,
        shares=shares,
        error=row["error"],
        created_at=_iso(row["created_at"]) or "",
        settled_at=_iso(row["settled_at"]),
    )


async def list_refunds(order_id: int) -> list[RefundOut]:
    if not await Order.exists().where(Order.id == order_id):
        raise DomainError("not_found", f"order {order_id} does not exist")
    return await refunds_out(await Refund.select().where(Refund.order == order_id).order_by(Refund.seq))
