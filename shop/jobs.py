"""Periodic jobs that run inside every server process (each is safe to run concurrently)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Awaitable, Callable

from shop.settings import Settings

logger = logging.getLogger("shop.background")


async def expire_holds(settings: Settings) -> None:
    """Every `expiry_interval_seconds`: pending orders past their hold become expired."""
    from shop.orders.cancellation import expire_due

    while True:
        await asyncio.sleep(settings.expiry_interval_seconds)
        try:
            count = await expire_due(datetime.now(timezone.utc))
            if count:
                logger.info("expired %d order(s) whose hold ran out", count)
        except Exception:  # keep the loop alive; the next round tries again
            logger.exception("hold expiry failed")


JOBS: list[Callable[[Settings], Awaitable[None]]] = [expire_holds]
