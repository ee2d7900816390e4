"""Placing an order: stock reserved, the order and its `placed` event written and every
member's share held, in one transaction; then, once it has committed, the payment is
started (`checkout()`, used by the API and the pages alike).

Lock order, the same everywhere so that no two transactions wait on each other in a
circle: the order row, then budget rows (ascending member id), then product rows
(ascending id). Placing takes the product rows last, so a hot product stays locked for
the fewest round trips."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec

from budgets import approval_rules, ledger, policy
from budgets.states import LedgerKind
from budgets.tables import Union
from catalog import stock
from common.errors import DomainError, invalid
from common.sql import CtePart, fetch, is_postgres, is_unique_violation
from shop.auth.accounts import Principal
from shop.db import after_commit
from shop.fulfilment.addresses import DELIVERY_LATERAL_SQL, delivery_of, delivery_row
from shop.orders import approval, cancellation, lifecycle, queries
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


def _replay(existing: dict, digest: str) -> int:
    if existing["request_hash"] != digest:
        raise DomainError(
            "idempotency_conflict",
            "this Idempotency-Key was already used for an order with another body",
            order_id=existing["id"],
        )
    return existing["id"]


@dataclass
class Opening:
    """What placing reads first, in one statement on PostgreSQL: the id the next order will
    have (PostgreSQL only, else None), the branch's order already placed with this
    Idempotency-Key (SQLite; PostgreSQL finds it only when something refuses, `_place`), the
    branch's approval rule, the delivery address to copy (the named one, or the branch's
    default: `address`, its row or None, checked by `delivery()` once a replay is ruled out)
    and, on PostgreSQL, the order's products as they are (unlocked: `catalog.stock.priced`);
    that statement also takes the cap gate and has the rest of the transaction planned on
    indexes (`INDEX_PLANS_SQL`)."""

    order_id: int | None
    existing: dict[str, Any] | None
    approval_above_fen: int | None
    address: dict[str, Any] | None
    products: list[dict[str, Any]] | None = None

    def delivery(self, branch_id: int, address_id: int | None) -> dict[str, str]:
        return delivery_of(self.address, branch_id, address_id) or {}


# For the rest of the placing transaction PostgreSQL plans with sequential scans off, so that
# every plan it makes there, the foreign keys' checks among them, reaches rows through their
# indexes. A connection keeps a statement's generic plan until the table's statistics change;
# where they are never refreshed (autovacuum off), plans made while the orders' tables were
# nearly empty scan them whole (cheapest for a page or two) and went on doing so once they
# had grown (pg_stat_user_tables: a pass over shop_order and over the budget rows for every
# order). Index plans stay right as the tables grow, and being kept, they are planned once
# per connection, not on every order (planning every statement afresh, as this did before,
# cost more PostgreSQL time than the statements themselves). The setting is local to the
# transaction; the first statement reads only tables that change slowly (the unions,
# addresses and catalog) and is planned as usual.
INDEX_PLANS_SQL = "set_config('enable_seqscan', 'off', true)"


async def opening(branch_id: int, key: str, address_id: int | None, product_ids: list[int] | None = None) -> Opening:
    if not is_postgres(Order):
        found = await find_by_key(branch_id, key)
        rule = await Union.select(Union.approval_above_fen).where(Union.id == branch_id).first()
        address = await delivery_row(branch_id, address_id)
        return Opening(None, found, rule["approval_above_fen"] if rule else None, address)
    ids = product_ids or []
    [row] = await fetch(
        Order,
        "SELECT one.next_id, "
        "(SELECT approval_above_fen FROM budget_union WHERE id = {}) AS approval_above_fen, "
        "a.branch AS address_branch, a.name AS address_name, a.phone AS address_phone, a.address AS address_text, "
        f"(SELECT json_agg(pr) FROM ({stock.products_sql(len(ids))}) pr) AS products "
        "FROM (SELECT nextval(pg_get_serial_sequence('shop_order', 'id')) AS next_id, "
        f"{policy.HOLD_GATE_SQL} AS gate, {INDEX_PLANS_SQL} AS plans) AS one "
        f"LEFT JOIN LATERAL ({DELIVERY_LATERAL_SQL}) a ON true",
        branch_id, *ids, address_id, address_id, branch_id,
    )
    address = None
    if row["address_branch"] is not None:
        address = {"branch": row["address_branch"], "name": row["address_name"], "phone": row["address_phone"],
                   "address": row["address_text"]}
    products = msgspec.json.decode(row["products"]) if row["products"] else []
    return Opening(row["next_id"], None, row["approval_above_fen"], address, products)


async def find_by_key(branch_id: int, key: str) -> dict | None:
    return await Order.select(Order.id, Order.request_hash).where(
        (Order.branch == branch_id) & (Order.idempotency_key == key)
    ).first()


@dataclass
class Placed:
    """What the placing transaction wrote, enough to answer without reading it back."""

    order: dict[str, Any]
    lines: list[dict[str, Any]]
    shares: list[tuple[int, int]]


class _ProductsMoved(Exception):
    """The last statement took no stock (PostgreSQL): a product was sold out, delisted or
    changed since it was read. Rolls the placing back; `place_order` finds out which."""


PLACING_ATTEMPTS = 3  # a product changed under the order this many times in a row: give up


async def place_order(
    *,
    branch_id: int,
    user_id: int,
    body: OrderIn,
    key: str,
    now: datetime,
    provider: Provider,
    approval_time: timedelta = timedelta(hours=72),
) -> tuple[int, Placed | None]:
    """Reserve stock, record the order and hold every member's share: all or nothing.

    Returns (order id, what was written — None when the same key and body came before and
    this is that order). An order above the branch's approval rule is placed
    `pending_approval` for `approval_time`, with its approval row, and its approvers are
    told (`approval.request`); it holds exactly as a payable order does. One transaction,
    in the lock order budget rows (ascending member id), then product rows (ascending id).

    On PostgreSQL it is 5 round trips, whatever the number of products and members: BEGIN;
    the next order id with the branch's approval rule, the delivery address, the products as
    they are, the cap gate and index plans (`Opening`); the members' budget rows made where
    missing and locked, with the cap; one statement taking the stock and writing the order,
    its event, lines, allocations, ledger entries and budgets; COMMIT. The product rows stay
    locked for the last two. If that statement took no stock, nothing was written: a
    refusal when a product is short, unlisted or gone, else (it changed since it was read)
    the whole placing again, at most `PLACING_ATTEMPTS` times."""
    if not 1 <= len(key) <= 64:
        raise invalid("Idempotency-Key", "required, 1 to 64 characters")
    _check_shape(body)
    wanted = [(line.product_id, line.quantity) for line in body.lines]
    for _ in range(PLACING_ATTEMPTS):
        try:
            return await _place(branch_id, user_id, body, key, now, provider, approval_time)
        except _ProductsMoved:
            await stock.check_available(wanted)  # refuses if a product is short, unlisted or gone
    raise DomainError("conflict", "the products changed while the order was being placed; place it again")


async def _place(
    branch_id: int, user_id: int, body: OrderIn, key: str, now: datetime, provider: Provider, approval_time: timedelta,
) -> tuple[int, Placed | None]:
    digest = request_hash(body)
    member_ids = body.members if body.members is not None else [a.member_id for a in body.allocations or []]
    wanted = [(line.product_id, line.quantity) for line in body.lines]
    year = ledger.budget_year(now)
    try:
        async with Order._meta.db.transaction():
            opened = await opening(branch_id, key, body.address_id, stock.wanted_ids(wanted))
            order_id = opened.order_id
            if opened.existing:
                return _replay(opened.existing, digest), None
            delivery = opened.delivery(branch_id, body.address_id)
            if order_id is None:  # SQLite: statement by statement, the stock taken now
                await policy.hold_gate()
                held = await ledger.lock_for_hold(member_ids, year, union_id=branch_id)
                reserved = await stock.reserve_stock(wanted)
            else:
                reserved = stock.priced(wanted, opened.products or [])
                held = await ledger.lock_for_hold(member_ids, year, union_id=branch_id)
            total = sum(line.amount_fen for line in reserved)
            shares = _shares(body, member_ids, total)
            items = held.check(shares)
            awaiting = approval_rules.needs_approval(opened.approval_above_fen, total)
            values = {
                "branch": branch_id,
                "created_by": user_id,
                "year": year,
                "total_fen": total,
                "idempotency_key": key,
                "request_hash": digest,
                "created_at": now,
                "expires_at": now + (approval_time if awaiting else provider.hold_time()),
                "provider": provider.name,
                "delivery_name": delivery.get("name", ""),
                "delivery_phone": delivery.get("phone", ""),
                "delivery_address": delivery.get("address", ""),
            }
            detail = f"{total} fen for {len(shares)} member(s)" + ("; awaiting approval" if awaiting else "")
            if order_id is not None:  # PostgreSQL: the stock and everything written in one statement
                values["payment_reference"] = provider.reference_for(order_id)
                moves = ledger.chain(LedgerKind.hold, items, held.rows, year, order_id, now)
                taking, taken = stock.take_parts(reserved)
                row = await lifecycle.create(
                    values, at=now, actor_id=user_id, detail=detail, order_id=order_id,
                    before=taking, when=f"EXISTS (SELECT 1 FROM {taken})",
                    parts=[*_line_parts(reserved, shares), *ledger.cte_parts(moves, after="new_order")],
                    select=", (SELECT array_agg(id ORDER BY id) FROM new_lines) AS line_ids",
                    awaiting_approval=awaiting,
                )
                if row is None:
                    raise _ProductsMoved()
                line_ids = row.pop("line_ids")
            else:
                row = await lifecycle.create(values, at=now, actor_id=user_id, detail=detail, awaiting_approval=awaiting)
                order_id = row["id"]
                if reference := provider.reference_for(order_id):
                    await Order.update({Order.payment_reference: reference}).where(Order.id == order_id)
                    row["payment_reference"] = reference
                line_ids = await _write_lines(order_id, reserved, shares)
                await ledger.write(ledger.chain(LedgerKind.hold, items, held.rows, year, order_id, now))
            if awaiting:
                await approval.request(row, opened.approval_above_fen, now)
    except Exception as exc:
        # An Idempotency-Key used before: the order's unique key refuses the insert, or (on
        # PostgreSQL, which does not look for it up front) something refuses before it (the
        # stock or the quota spent since, …). Either way the earlier order is the answer.
        if (is_unique_violation(exc) or isinstance(exc, (DomainError, _ProductsMoved))) and (
            existing := await find_by_key(branch_id, key)
        ):
            return _replay(existing, digest), None
        raise
    lines = [
        {"id": line_id, "order": order_id, "product": r.product_id, "supplier": r.supplier_id, "region_code": r.region_code,
         "title": r.title, "quantity": r.quantity, "unit_price_fen": r.unit_price_fen, "amount_fen": r.amount_fen,
         "refunded_quantity": 0}  # fmt: skip
        for line_id, r in zip(line_ids, reserved)
    ]
    return order_id, Placed(order=row, lines=lines, shares=shares)


def _shares(body: OrderIn, member_ids: list[int], total: int) -> list[tuple[int, int]]:
    if body.members is not None:
        if total < len(member_ids):
            raise invalid("members", f"the total of {total} fen cannot give every member at least one fen")
        return split_evenly(total, member_ids)
    shares = [(a.member_id, a.amount_fen) for a in body.allocations or []]
    allocated = sum(amount for _, amount in shares)
    if allocated != total:
        raise invalid("allocations", f"the allocations add up to {allocated} fen, the order's total is {total} fen")
    return shares


def _line_parts(reserved: list[stock.ReservedLine], shares: list[tuple[int, int]]) -> list[CtePart]:
    """The order's lines and allocations as parts of the placing statement (PostgreSQL),
    written with `new_order` (none if it was not)."""
    cols = ("product_id", "supplier_id", "region_code", "title", "quantity", "unit_price_fen", "amount_fen")
    return [
        CtePart(
            "new_lines",
            'INSERT INTO shop_order_line ("order", product, supplier, region_code, title, quantity, unit_price_fen, amount_fen) '
            "SELECT new_order.id, u.* FROM new_order, unnest({}::integer[], {}::integer[], {}::varchar[], {}::varchar[], "
            "{}::integer[], {}::integer[], {}::bigint[]) AS u RETURNING id",
            tuple([getattr(r, c) for r in reserved] for c in cols),
        ),
        CtePart(
            "new_allocations",
            'INSERT INTO shop_allocation ("order", member, amount_fen) '
            "SELECT new_order.id, u.* FROM new_order, unnest({}::integer[], {}::bigint[]) AS u",
            ([m for m, _ in shares], [a for _, a in shares]),
        ),
    ]


async def _write_lines(order_id: int, reserved: list[stock.ReservedLine], shares: list[tuple[int, int]]) -> list[int]:
    """The same rows as `_line_parts`, statement by statement (SQLite). Returns the line ids."""
    rows = await OrderLine.insert(
        *[
            OrderLine(
                order=order_id, product=r.product_id, supplier=r.supplier_id, region_code=r.region_code, title=r.title,
                quantity=r.quantity, unit_price_fen=r.unit_price_fen, amount_fen=r.amount_fen,
            )
            for r in reserved
        ]
    ).returning(OrderLine.id)
    await Allocation.insert(*[Allocation(order=order_id, member=m, amount_fen=a) for m, a in shares])
    return sorted(r["id"] for r in rows)


async def start_payment(order_id: int, provider: Provider, now: datetime, placed: Placed | None = None) -> dict[str, str]:
    """After the order committed: ask the provider for a way to pay. If it refuses or
    cannot be reached, the order is cancelled so that nothing stays held without a way to
    pay. `placed`: what the placing transaction wrote (nothing is read back then). Returns
    the order's payment reference and url as they are now."""
    if placed is not None:
        order, lines = placed.order, placed.lines
    else:
        order = await Order.select(Order.expires_at, Order.payment_reference, Order.payment_url).where(Order.id == order_id).first()
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
    return {"payment_reference": started.reference, "payment_url": started.url or order.get("payment_url", "")}


async def checkout(
    principal: Principal, body: OrderIn, *, key: str, now: datetime, settings: Settings
) -> tuple[OrderOut, bool]:
    """Place an order for the buyer's branch and start its payment: the one use case
    behind `POST /api/orders` and the basket page. Returns (the order, created). A new
    order is answered from what its transaction wrote; nothing is read back."""
    if principal.union_id is None:
        raise DomainError("forbidden", "this account is not linked to a branch")
    provider = provider_for(settings)
    order_id, placed = await place_order(
        branch_id=principal.union_id, user_id=principal.id, body=body, key=key, now=now, provider=provider,
        approval_time=timedelta(hours=settings.approval_hours),
    )
    if placed is not None:
        if placed.order["status"] == OrderStatus.pending_payment:  # else it waits for its approver
            placed.order.update(await start_payment(order_id, provider, now, placed))
        return queries.placed_out(placed.order, placed.lines, placed.shares), True

    async def pay_and_answer() -> OrderOut:
        if await _needs_a_way_to_pay(order_id):
            # a replay of an order whose payment was never started (the provider was not
            # reached, or the process died after the commit): start it now; the provider's
            # idempotency key makes a second start give the same session
            order = await Order.select(Order.provider).where(Order.id == order_id).first()
            await start_payment(order_id, provider_named(order["provider"], settings), now)
        return await queries.get_order(order_id, principal)

    return await after_commit(pay_and_answer), False


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
