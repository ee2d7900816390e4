"""`GET /api/notifications`, `POST /api/notifications/read`: every role, its own only."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromQuery, JSONBody

from common.pagination import PAGINATION, Paging
from common.schemas import Body, Id
from shop.notifications.inbox import Inbox, inbox, mark_read


class ReadIn(Body):
    """`{ids}` marks those read; `{}` marks all."""

    ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=500)] | None = None


class NotificationController(Controller):
    path = "/api/notifications"
    dependencies = PAGINATION

    @get("/")
    async def list(self, request: Request, page: Paging, unread: FromQuery[bool] = False) -> Inbox:
        """The caller's notifications, newest first, with the count of unread ones."""
        return await inbox(request.user.id, unread_only=unread, limit=page.limit, offset=page.offset)

    @post("/read", status_code=204)
    async def read(self, request: Request, data: JSONBody[ReadIn]) -> None:
        await mark_read(request.user.id, data.ids)


ROUTES = {"any": [NotificationController]}
