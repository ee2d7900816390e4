"""Operations: is the process up (`/health`), can it reach the database (`/ready`)."""

from __future__ import annotations

import logging

from litestar import Controller, get

from budgets.tables import Union
from shop.errors import problem

logger = logging.getLogger("shop")


class OperationsController(Controller):
    opt = {"exclude_from_auth": True}

    @get("/health", sync_to_thread=False)
    def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready")
    async def ready(self) -> dict[str, str]:
        try:
            await Union.count()
        except Exception as exc:  # the database does not answer
            logger.warning("readiness check failed: %r", exc)
            raise problem("unavailable", "the database is not reachable") from exc
        return {"status": "ready"}


ROUTES = {"public": [OperationsController]}
