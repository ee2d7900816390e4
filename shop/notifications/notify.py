"""Writing notifications: called inside the transaction of the change they tell of, so a
change that rolls back leaves no notification behind. A supplier's notifications go to
every active account of that supplier; a branch's to every active buyer of it (or, for
orders waiting for approval, every active approver)."""

from __future__ import annotations

from datetime import datetime, timezone

from common.money import yuan_text
from shop.auth.tables import Role, User
from shop.notifications.kinds import Kind
from shop.notifications.tables import Notification


def yuan(fen: int) -> str:
    return f"{yuan_text(fen)} 元"


async def _to(where, kind: Kind, title: str, at: datetime, order_id: int | None) -> int:
    users = await User.select(User.id).where(where & (User.active == True)).order_by(User.id)  # noqa: E712
    if users:
        when = at.astimezone(timezone.utc)
        await Notification.insert(
            *[Notification(user=u["id"], at=when, kind=kind.value, title=title[:200], order=order_id) for u in users]
        )
    return len(users)


async def to_supplier(supplier_id: int, kind: Kind, title: str, *, at: datetime, order_id: int | None = None) -> int:
    """Tell every active account of the supplier; returns how many were told."""
    return await _to((User.supplier == supplier_id) & (User.role == Role.supplier), kind, title, at, order_id)


async def to_branch(branch_id: int, kind: Kind, title: str, *, at: datetime, order_id: int | None = None) -> int:
    """Tell every active buyer of the branch; returns how many were told."""
    return await _to((User.union == branch_id) & (User.role == Role.buyer), kind, title, at, order_id)


async def to_approvers(branch_id: int, kind: Kind, title: str, *, at: datetime, order_id: int | None = None) -> int:
    """Tell every active approver of the branch (buyers who also approve too); returns how many were told."""
    approvers = (User.role == Role.approver) | ((User.role == Role.buyer) & (User.approves == True))  # noqa: E712
    return await _to((User.union == branch_id) & approvers, kind, title, at, order_id)


REVIEW_TITLES = {"approve": "商品「{title}」审核通过，已上架", "reject": "商品「{title}」审核未通过：{reason}", "delist": "商品「{title}」已被下架：{reason}"}


async def review_decided(decision: dict) -> None:
    """Registered with `catalog.service.REVIEW_LISTENERS`: the supplier hears of the decision."""
    title = REVIEW_TITLES[decision["action"]].format(title=decision["title"], reason=decision["reason"])
    await to_supplier(decision["supplier_id"], Kind.review_decided, title, at=decision["at"])


def register() -> None:
    from catalog import service

    if review_decided not in service.REVIEW_LISTENERS:
        service.REVIEW_LISTENERS.append(review_decided)
