"""Operations: is the process up (`/health`), can it reach the database and Redis, when
`REDIS_URL` is set (`/ready`)."""

from __future__ import annotations

import logging

from litestar import Controller, Request, get

from budgets.tables import Union
from shop.errors import problem

logger = logging.getLogger("shop")


class OperationsController(Controller):
    opt = {"exclude_from_auth": True}

    @get("/health", sync_to_thread=False)
    def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready")
    async def ready(self, request: Request) -> dict[str, str]:
        try:
            await Union.count()
        except Exception as exc:  # the database does not answer
            logger.warning("readiness check failed: %r", exc)
            raise problem("unavailable", "the database is not reachable") from exc
        if (redis := request.app.state.redis) is not None:
            try:
                await redis.ping()
            except Exception as exc:
                logger.warning("readiness check failed: %r", exc)
                raise problem("unavailable", "redis is not reachable") from exc
        return {"status": "ready"}


ROUTES = {"public": [OperationsController]}
