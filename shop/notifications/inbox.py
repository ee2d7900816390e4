"""Reading one's notifications and marking them read."""

from __future__ import annotations

from datetime import timezone

import msgspec

from common.errors import DomainError
from shop.notifications.tables import Notification


class NotificationOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: int
    at: str
    kind: str
    title: str
    read: bool
    order_id: int | None = None


class Inbox(msgspec.Struct, kw_only=True):
    items: list[NotificationOut]
    unread: int


async def unread_count(user_id: int) -> int:
    """How many of the user's notifications are unread (the pages' bell)."""
    return await Notification.count().where((Notification.user == user_id) & (Notification.read == False))  # noqa: E712


async def inbox(user_id: int, *, unread_only: bool, limit: int, offset: int) -> Inbox:
    """The user's notifications, newest first, and how many are unread in all."""
    where = Notification.user == user_id
    unread = await unread_count(user_id)
    if unread_only:
        where &= Notification.read == False  # noqa: E712
    rows = await Notification.select().where(where).order_by(Notification.id, ascending=False).limit(limit).offset(offset)
    items = [
        NotificationOut(
            id=r["id"], at=r["at"].astimezone(timezone.utc).isoformat(), kind=r["kind"], title=r["title"],
            read=r["read"], order_id=r["order"],
        )
        for r in rows
    ]
    return Inbox(items=items, unread=unread)


async def mark_read(user_id: int, ids: list[int] | None) -> int:
    """Mark these (None: all) of the user's notifications read. An id that is not one of the
    user's is `not_found`, and then nothing is marked. Returns how many changed."""
    where = (Notification.user == user_id) & (Notification.read == False)  # noqa: E712
    async with Notification._meta.db.transaction():
        if ids is not None:
            wanted = set(ids)
            own = {r["id"] for r in await Notification.select(Notification.id).where(
                (Notification.user == user_id) & Notification.id.is_in(list(wanted))
            )}
            if missing := sorted(wanted - own):
                raise DomainError("not_found", f"no such notification(s) of yours: {missing}", ids=missing)
            where &= Notification.id.is_in(list(wanted))
        changed = await Notification.update({Notification.read: True}).where(where).returning(Notification.id)
    return len(changed)
