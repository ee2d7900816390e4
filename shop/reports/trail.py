"""The admin's trail (`GET /api/audit/events`): who did what, read from the rows each change
already writes in its own transaction — order events by a person (transfer confirmations,
late transfers recorded, refunds, approvals), cap changes, approval rules, listing reviews,
account changes — so the trail cannot
miss a change or list one that was rolled back. Newest first."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, AsyncIterator

from common.sql import pages, read_snapshot
from shop.auth.tables import User
from shop.orders.states import OrderAction
from shop.orders.tables import OrderEvent

# the order events that are an admin's doing (the buyer's own placing and cancelling are not)
ORDER_ACTIONS = (
    OrderAction.transfer_confirmed, OrderAction.late_payment, OrderAction.refunded, OrderAction.approved, OrderAction.rejected,
)

# Each source answers the same columns; `path` is the union the change is about (its
# materialised path, for an auditor's subtree), NULL for a change about the whole shop.
SOURCES = {
    "orders": (
        "SELECT e.at AS at, e.actor AS actor_id, e.action AS action, 'order ' || e.\"order\" AS subject,"
        " e.detail AS detail, u.path AS path"
        " FROM shop_order_event e JOIN shop_order o ON o.id = e.\"order\" JOIN budget_union u ON u.id = o.branch"
        " WHERE e.actor IS NOT NULL AND e.action IN (" + ", ".join(f"'{a}'" for a in ORDER_ACTIONS) + ")"
    ),
    "caps": (
        "SELECT c.at AS at, c.actor_id AS actor_id, 'cap_changed' AS action, 'policy ' || c.year AS subject,"
        " COALESCE(CAST(c.previous_cap_fen AS TEXT), '?') || ' -> ' || c.cap_fen || ' fen' AS detail, NULL AS path"
        " FROM budget_cap_policy_change c WHERE c.actor_id IS NOT NULL"
    ),
    "approval_rules": (
        "SELECT r.at AS at, r.actor_id AS actor_id, 'approval_rule_changed' AS action, 'union ' || u.code AS subject,"
        " COALESCE(CAST(r.previous_above_fen AS TEXT), 'none') || ' -> ' || COALESCE(CAST(r.required_above_fen AS TEXT), 'none')"
        " || ' fen' AS detail, u.path AS path"
        " FROM budget_approval_rule_change r JOIN budget_union u ON u.id = r.\"union\" WHERE r.actor_id IS NOT NULL"
    ),
    "reviews": (
        "SELECT r.at AS at, r.actor_id AS actor_id, 'product_' || r.action AS action,"
        " 'product ' || r.product || ' ' || p.title AS subject, r.reason AS detail, NULL AS path"
        " FROM catalog_product_review r JOIN catalog_product p ON p.id = r.product"
        " WHERE r.actor_id IS NOT NULL AND r.action <> 'submitted'"
    ),
    "accounts": (
        "SELECT a.at AS at, a.actor AS actor_id, 'user_' || a.action AS action, 'user ' || usr.username AS subject,"
        " a.detail AS detail, un.path AS path"
        " FROM shop_account_event a JOIN shop_user usr ON usr.id = a.\"user\" LEFT JOIN budget_union un ON un.id = usr.\"union\""
        " WHERE a.actor IS NOT NULL"
    ),
}


def _at(value: Any) -> str:
    """A timestamp from a raw UNION (SQLite answers text there) as ISO 8601 in UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(timezone.utc).isoformat()


def _condition(prefix: str | None, action: str | None) -> tuple[str, list[Any]]:
    where, args = [], []
    if prefix is not None:
        where.append("(path LIKE {} OR action = 'cap_changed')")  # a cap applies to every union
        args.append(prefix + "%")
    if action:
        where.append("action = {}")
        args.append(action)
    return (" WHERE " + " AND ".join(where)) if where else "", args


UNION = " UNION ALL ".join(SOURCES.values())


async def _items(condition: str, args: list[Any], limit: int, offset: int) -> list[dict[str, Any]]:
    rows = await OrderEvent.raw(
        f"SELECT at, actor_id, action, subject, detail FROM ({UNION}) t{condition}"
        " ORDER BY at DESC, action, subject, actor_id, detail LIMIT {} OFFSET {}",
        *args,
        limit,
        offset,
    )
    actor_ids = sorted({r["actor_id"] for r in rows if r["actor_id"] is not None})
    actors = {
        a["id"]: a for a in (await User.select(User.id, User.username, User.role).where(User.id.is_in(actor_ids)) if actor_ids else [])
    }
    return [
        {
            "at": _at(r["at"]),
            "actor": actors.get(r["actor_id"]),
            "action": r["action"],
            "subject": r["subject"],
            "detail": r["detail"],
        }
        for r in rows
    ]


async def trail(*, prefix: str | None, action: str | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """The page of the trail under the union path `prefix` (None: everything), optionally one action."""
    condition, args = _condition(prefix, action)
    total = (await OrderEvent.raw(f"SELECT COUNT(*) AS n FROM ({UNION}) t{condition}", *args))[0]["n"]
    return await _items(condition, args, limit, offset), total


async def trail_batches(*, prefix: str | None, action: str | None) -> AsyncIterator[list[dict[str, Any]]]:
    """The whole trail of `trail`, batch by batch, in one read snapshot (an export)."""
    condition, args = _condition(prefix, action)
    async with read_snapshot(OrderEvent):
        async for page in pages(lambda limit, offset: _items(condition, args, limit, offset)):
            yield page
