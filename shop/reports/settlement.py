"""对账: what each supplier was paid and has invoiced, month by month (`settlement`), and a
branch's statement of the year for its finance office (`statement`).

Both are summed by the database (GROUP BY, the same SQL on SQLite and PostgreSQL), in one read
snapshot. Months are Asia/Shanghai months: the moments they start are computed here, in UTC,
and an order's month is found by comparing its `paid_at` with them (a `CASE` over the twelve
starts), so no date function of either database is needed. An order paid at 2026-03-31T17:30Z
is paid on April 1st in Shanghai, and counts in April."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from common.clock import SHANGHAI
from common.sql import read_snapshot
from shop.fulfilment.states import LIVE_INVOICE
from shop.orders.states import OrderStatus
from shop.orders.tables import Order

PAID_STATES = (OrderStatus.paid, OrderStatus.partially_refunded, OrderStatus.refunded)
_PAID = ", ".join(f"'{s.value}'" for s in PAID_STATES)
_LIVE = ", ".join(f"'{s.value}'" for s in LIVE_INVOICE)


def month_starts(year: int) -> list[datetime]:
    """The 13 moments (UTC) at which the months of `year` start in Shanghai, and the next year does."""
    starts = [datetime(year, month, 1, tzinfo=SHANGHAI) for month in range(1, 13)] + [datetime(year + 1, 1, 1, tzinfo=SHANGHAI)]
    return [s.astimezone(timezone.utc) for s in starts]


def _month_case(column: str, starts: list[datetime]) -> tuple[str, list[datetime]]:
    """`CASE WHEN col < Feb 1st THEN 1 … ELSE 12 END` and its arguments (for rows within the year)."""
    whens = " ".join(f"WHEN {column} < {{}} THEN {month}" for month in range(1, 12))
    return f"CASE {whens} ELSE 12 END", starts[1:12]


SETTLEMENT_SQL = """
WITH lines AS (
    SELECT l."order" AS order_id, l.supplier AS supplier_id, {month} AS month,
           SUM(l.amount_fen) AS paid_fen, SUM(CAST(l.unit_price_fen AS BIGINT) * l.refunded_quantity) AS refunded_fen
    FROM shop_order_line l JOIN shop_order o ON o.id = l."order"
    WHERE o.status IN ({paid}) AND o.paid_at >= {{}} AND o.paid_at < {{}} {supplier}
    GROUP BY l."order", l.supplier, o.paid_at
), invoiced AS (
    SELECT sh."order" AS order_id, sh.supplier AS supplier_id, SUM(i.amount_fen) AS invoiced_fen
    FROM shop_invoice i
    JOIN shop_shipment sh ON sh.id = i.shipment
    JOIN lines x ON x.order_id = sh."order" AND x.supplier_id = sh.supplier
    WHERE i.status IN ({live})
    GROUP BY sh."order", sh.supplier
)
SELECT x.supplier_id, s.name AS supplier_name, x.month,
       SUM(x.paid_fen) AS paid_fen, SUM(x.refunded_fen) AS refunded_fen,
       SUM(COALESCE(v.invoiced_fen, 0)) AS invoiced_fen, COUNT(sh.id) AS shipments
FROM lines x
JOIN catalog_supplier s ON s.id = x.supplier_id
LEFT JOIN shop_shipment sh ON sh."order" = x.order_id AND sh.supplier = x.supplier_id
LEFT JOIN invoiced v ON v.order_id = x.order_id AND v.supplier_id = x.supplier_id
GROUP BY x.supplier_id, s.name, x.month
ORDER BY x.month, x.supplier_id
"""


async def settlement(year: int, month: int | None, supplier_id: int | None) -> list[dict[str, Any]]:
    """Per supplier and month of `year` (or only `month`), over the orders paid in it and not
    since cancelled: its lines' amount (`paid_fen`), what was refunded of them, the net, what its
    live (`issued`, `accepted`) invoices for those orders come to, what is left to invoice
    (negative: invoiced above the net, a refund came after the invoice), and its shipments."""
    starts = month_starts(year)
    month_sql, month_args = _month_case("o.paid_at", starts)
    since, until = (starts[month - 1], starts[month]) if month else (starts[0], starts[12])
    sql = SETTLEMENT_SQL.format(
        month=month_sql, paid=_PAID, live=_LIVE, supplier="AND l.supplier = {}" if supplier_id is not None else ""
    )
    args: list[Any] = [*month_args, since, until] + ([supplier_id] if supplier_id is not None else [])
    async with read_snapshot(Order):
        rows = await Order.raw(sql, *args)
    out = []
    for r in rows:
        paid, refunded, invoiced = int(r["paid_fen"]), int(r["refunded_fen"]), int(r["invoiced_fen"])
        out.append({
            "supplier_id": r["supplier_id"], "supplier_name": r["supplier_name"], "year": year, "month": int(r["month"]),
            "paid_fen": paid, "refunded_fen": refunded, "net_fen": paid - refunded,
            "invoiced_fen": invoiced, "uninvoiced_fen": paid - refunded - invoiced, "shipments": int(r["shipments"]),
        })
    return out


_PAID_FEN = f"CASE WHEN o.status IN ({_PAID}) THEN o.total_fen ELSE 0 END"
_REFUNDED_FEN = f"CASE WHEN o.status IN ({_PAID}) THEN o.refunded_fen ELSE 0 END"
_BRANCH_YEAR = "o.branch = {} AND o.year = {}"
_INVOICES = 'shop_invoice i JOIN shop_shipment sh ON sh.id = i.shipment JOIN shop_order o ON o.id = sh."order"'


async def statement(branch_id: int, year: int) -> dict[str, Any]:
    """The branch's orders of the budget `year` (placed in it, Shanghai), each with what was paid
    (its total once paid; 0 for one never paid: pending, cancelled, expired), refunded, and its
    invoices (every one, rejected too); the year's totals, and what the live invoices come to."""
    async with read_snapshot(Order):
        orders = await Order.raw(
            "SELECT o.id AS order_id, o.created_at AS placed_at, o.paid_at, o.status, o.total_fen,"
            f" {_PAID_FEN} AS paid_fen, {_REFUNDED_FEN} AS refunded_fen"
            f" FROM shop_order o WHERE {_BRANCH_YEAR} ORDER BY o.id",
            branch_id, year,
        )
        totals = (await Order.raw(
            f"SELECT COALESCE(SUM({_PAID_FEN}), 0) AS paid_fen, COALESCE(SUM({_REFUNDED_FEN}), 0) AS refunded_fen,"
            f" (SELECT COALESCE(SUM(i.amount_fen), 0) FROM {_INVOICES} WHERE {_BRANCH_YEAR} AND i.status IN ({_LIVE})) AS invoiced_fen"
            f" FROM shop_order o WHERE {_BRANCH_YEAR}",
            branch_id, year, branch_id, year,
        ))[0]
        invoices = await Order.raw(
            f"SELECT sh.\"order\" AS order_id, i.number, i.status, i.amount_fen FROM {_INVOICES} WHERE {_BRANCH_YEAR} ORDER BY i.id",
            branch_id, year,
        )
    by_order: dict[int, list[dict[str, Any]]] = {}
    for i in invoices:
        by_order.setdefault(i["order_id"], []).append({"number": i["number"], "status": i["status"], "amount_fen": int(i["amount_fen"])})
    paid, refunded = int(totals["paid_fen"]), int(totals["refunded_fen"])
    return {
        "union_id": branch_id,
        "year": year,
        "orders": [
            {
                "order_id": o["order_id"],
                "placed_at": _local(o["placed_at"]),
                "paid_at": _local(o["paid_at"]),
                "status": o["status"],
                "total_fen": int(o["total_fen"]),
                "paid_fen": int(o["paid_fen"]),
                "refunded_fen": int(o["refunded_fen"]),
                "invoices": by_order.get(o["order_id"], []),
            }
            for o in orders
        ],
        "paid_fen": paid,
        "refunded_fen": refunded,
        "net_fen": paid - refunded,
        "invoiced_fen": int(totals["invoiced_fen"]),
    }


def _local(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):  # pragma: no cover - a driver that does not convert
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(SHANGHAI).isoformat()
