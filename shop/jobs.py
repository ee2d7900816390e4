"""Periodic work: one `tick()` that every server process runs every
`EXPIRY_INTERVAL_SECONDS` (and `shop tick` runs from cron). Each step is safe to run in
several processes at once: every order is moved by exactly one of them."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from common.clock import utcnow
from shop.settings import Settings

logger = logging.getLogger("shop.jobs")


async def tick(now: datetime, settings: Settings) -> dict[str, int]:
    """Expire unpaid orders whose hold ran out; tell buyers of holds that end within a day;
    start again (or cancel) payments that never started; receive shipments sent
    `AUTO_RECEIVE_DAYS` ago; forget the database's ended login windows and the revocations of tokens
    that expired anyway (Redis, when set, expires its own). Returns how many of each."""
    from shop.auth.ratelimit import purge_attempts
    from shop.auth.revocation import purge_revoked
    from shop.fulfilment.shipments import auto_receive
    from shop.orders.cancellation import expire_due, warn_ending_holds
    from shop.orders.placement import resume_payments

    done = {
        "expired": await expire_due(now, settings=settings),
        "holds_ending_told": await warn_ending_holds(now),
        "payments_resumed": await resume_payments(now, settings),
        "shipments_received": await auto_receive(now, settings.auto_receive_days),
        "login_windows_purged": await purge_attempts(now),
        "revocations_purged": await purge_revoked(now),
    }
    if any(done.values()):
        logger.info("periodic work: %s", done)
    return done


async def run_periodically(settings: Settings) -> None:
    while True:
        await asyncio.sleep(settings.expiry_interval_seconds)
        try:
            await tick(utcnow(), settings)
        except Exception:  # keep the loop alive; the next round tries again
            logger.exception("periodic work failed")


JOBS = [run_periodically]
