"""The order's state machine: the one place an order's `status` is written.

| action             | from                                   | to                                 |
|--------------------|----------------------------------------|------------------------------------|
| placed             | (a new order)                          | pending_payment, or pending_approval above the branch's rule |
| approved           | pending_approval                       | pending_payment (the payment starts) |
| rejected           | pending_approval                       | cancelled                          |
| cancelled          | pending_approval, pending_payment      | cancelled                          |
| expired            | pending_approval, pending_payment      | expired                            |
| paid               | pending_payment                        | paid (a payment webhook)           |
| transfer_confirmed | pending_payment                        | paid (an admin saw the transfer)   |
| late_payment       | cancelled, expired                     | unchanged; `needs_refund` is set   |
| refunded           | paid, partially_refunded               | partially_refunded or refunded     |
| refunded           | cancelled, expired (a late payment)    | unchanged; `needs_refund` cleared  |
| shipped, received  | paid, partially_refunded               | unchanged (a shipment moved)       |
| after_sale_opened  | paid, partially_refunded               | unchanged (a request on its lines) |
| after_sale_accepted| paid, partially_refunded               | unchanged; the refund follows      |
| after_sale_rejected| paid, partially_refunded, refunded     | unchanged                          |
| invoice_*          | paid, partially_refunded, refunded     | unchanged (a shipment's invoice)   |

The actions that leave the status as it is still lock the order row and check its state:
every change of an order's shipments, after-sales requests and invoices is serialised on
the order, and written with its event.

`transition()` runs inside the caller's transaction: it locks the order row (`SELECT …
FOR UPDATE` on PostgreSQL; SQLite's IMMEDIATE transaction holds the only write lock),
checks the move against this table, writes the new status (with the caller's other
columns) and appends the order's event row. If the transaction rolls back, the change
and its event are gone together. Lock order everywhere: the order row, then budget
rows (ascending member id), then product rows (ascending id).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from common.errors import DomainError
from common.sql import CtePart, for_update, is_postgres, run_cte
from shop.orders.states import OrderAction, OrderStatus
from shop.orders.tables import Order, OrderEvent

S, A = OrderStatus, OrderAction


@dataclass(frozen=True)
class Move:
    sources: frozenset[OrderStatus]
    targets: frozenset[OrderStatus] | None  # None: the status stays as it is


PAID = frozenset({S.paid, S.partially_refunded})
UNPAID = frozenset({S.pending_approval, S.pending_payment})  # stock and shares held, nothing paid

TRANSITIONS: dict[OrderAction, tuple[Move, ...]] = {
    A.approved: (Move(frozenset({S.pending_approval}), frozenset({S.pending_payment})),),
    A.rejected: (Move(frozenset({S.pending_approval}), frozenset({S.cancelled})),),
    A.cancelled: (Move(UNPAID, frozenset({S.cancelled})),),
    A.expired: (Move(UNPAID, frozenset({S.expired})),),
    A.paid: (Move(frozenset({S.pending_payment}), frozenset({S.paid})),),
    A.transfer_confirmed: (Move(frozenset({S.pending_payment}), frozenset({S.paid})),),
    A.late_payment: (Move(frozenset({S.cancelled, S.expired}), None),),
    A.refunded: (
        Move(frozenset({S.paid, S.partially_refunded}), frozenset({S.partially_refunded, S.refunded})),
        Move(frozenset({S.cancelled, S.expired}), None),
    ),
    **{
        action: (Move(PAID, None),)
        for action in (A.shipped, A.received, A.after_sale_opened, A.after_sale_accepted)
    },
    **{
        action: (Move(PAID | {S.refunded}, None),)
        for action in (A.after_sale_rejected, A.invoice_issued, A.invoice_accepted, A.invoice_rejected)
    },
}

# What a person reads for an action that does not fit ("cannot be cancelled").
VERBS: dict[OrderAction, str] = {
    A.approved: "approved",
    A.rejected: "rejected",
    A.cancelled: "cancelled",
    A.expired: "expired",
    A.paid: "paid",
    A.transfer_confirmed: "paid",
    A.late_payment: "recorded as a late payment",
    A.refunded: "refunded",
    A.shipped: "shipped",
    A.received: "received",
    A.after_sale_opened: "given an after-sales request",
    A.after_sale_accepted: "refunded by an after-sales request",
    A.after_sale_rejected: "given an after-sales decision",
    A.invoice_issued: "invoiced",
    A.invoice_accepted: "given an invoice decision",
    A.invoice_rejected: "given an invoice decision",
}


def allows(status: str, action: OrderAction) -> bool:
    """May `action` start from an order that is `status`?"""
    return any(status in move.sources for move in TRANSITIONS[action])


def refused(order: dict[str, Any], action: OrderAction) -> DomainError:
    status = order["status"]
    return DomainError(
        "invalid_state", f"an order that is {status} cannot be {VERBS[action]}", order_status=status
    )


async def lock(order_id: int) -> dict[str, Any] | None:
    """The order row, locked for the rest of the caller's transaction (None if it does not exist)."""
    return await for_update(Order.select().where(Order.id == order_id), Order).first()


def _target(order: dict[str, Any], action: OrderAction, to: OrderStatus | None) -> OrderStatus:
    status = OrderStatus(order["status"])
    for move in TRANSITIONS[action]:
        if status not in move.sources:
            continue
        if move.targets is None:
            if to not in (None, status):
                break
            return status
        if to is None and len(move.targets) == 1:
            return next(iter(move.targets))
        if to in move.targets:
            return to
        break
    raise refused(order, action)


async def _event(order_id: int, action: OrderAction, at: datetime, actor_id: int | None, detail: str) -> None:
    await OrderEvent.insert(
        OrderEvent(order=order_id, at=at.astimezone(timezone.utc), actor=actor_id, action=action.value, detail=detail)
    )


async def transition(
    order_id: int,
    action: OrderAction,
    *,
    at: datetime,
    actor_id: int | None = None,
    detail: str = "",
    to: OrderStatus | None = None,
    values: dict[Any, Any] | None = None,
    locked: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Move the order by `action` (to `to` where the action has more than one end), with
    `values` written in the same statement, and record the event. Call it inside a
    transaction; pass `locked` when the caller already holds the row from `lock()`.

    Raises `not_found`, or `invalid_state` when the action does not fit the order's
    state (nothing is written). Returns the order row as it is now."""
    order = locked if locked is not None else await lock(order_id)
    if order is None:
        raise DomainError("not_found", f"order {order_id} does not exist")
    target = _target(order, action, to)
    changes = {Order.status: target.value, **(values or {})}
    rows = await Order.update(changes).where(
        (Order.id == order["id"]) & (Order.status == order["status"])
    ).returning(*Order.all_columns())
    if not rows:  # only possible when the caller's `locked` row was stale
        raise refused(await Order.select(Order.status).where(Order.id == order["id"]).first() or order, action)
    await _event(order["id"], action, at, actor_id, detail)
    return rows[0]


async def create(
    values: dict[str, Any],
    *,
    at: datetime,
    actor_id: int | None,
    detail: str = "",
    order_id: int | None = None,
    parts: Sequence[CtePart] = (),
    before: Sequence[CtePart] = (),
    when: str = "",
    select: str = "",
    awaiting_approval: bool = False,
) -> dict[str, Any] | None:
    """A new order, `pending_payment` (`pending_approval` when `awaiting_approval`), with its
    `placed` event (inside the placing transaction).

    On PostgreSQL, given the order's id beforehand (`next_order_id()`), the order, its event
    and the caller's `parts` (its lines, allocations, ledger entries …) are one statement:
    `before` are parts that come ahead of the order (the stock it takes), `when` a condition
    over them without which the order is not written, and the `parts` read `new_order` (the
    order's row, if it was written) so that they are written with it or not at all;
    `select` adds expressions over the parts to the row returned. None when `when` kept the
    order out. Otherwise the order and its event are written in turn and the caller writes
    the rest."""
    status = OrderStatus.pending_approval if awaiting_approval else OrderStatus.pending_payment
    row = {**values, "status": status.value}
    if order_id is None or not is_postgres(Order):
        rows = await Order.insert(Order(**row)).returning(*Order.all_columns())
        await _event(rows[0]["id"], A.placed, at, actor_id, detail)
        return rows[0]
    row["id"] = order_id
    columns = ", ".join(f'"{c}"' for c in row)
    head = [
        *before,
        CtePart(
            "new_order",
            f"INSERT INTO shop_order ({columns}) SELECT {', '.join('{}' for _ in row)}"
            + (f" WHERE {when}" if when else "") + " RETURNING *",
            tuple(row.values()),
        ),
        CtePart(
            "new_event",
            'INSERT INTO shop_order_event ("order", at, actor, action, detail) SELECT id, {}, {}, {}, {} FROM new_order',
            (at.astimezone(timezone.utc), actor_id, A.placed.value, detail),
        ),
    ]
    written = await run_cte(Order, [*head, *parts], f"SELECT new_order.*{select} FROM new_order")
    return dict(written) if written is not None else None
