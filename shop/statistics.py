"""Statistics of the tables orders grow, where PostgreSQL does not keep them itself.

A connection keeps each statement's generic plan until the statistics of its tables change.
With autovacuum off (as on the CI machine) they never do: a database analyzed while its order
tables were empty kept planning for empty tables, and once the tables had grown every order
scanned `shop_order` and the budget rows whole (`pg_stat_user_tables.seq_tup_read`: a pass
over each for every order; the bench's orders/s fell by half within a minute). So where
autovacuum is off, every server process looks every `STATISTICS_INTERVAL_SECONDS` for the
tables below that have changed more than they hold (they doubled, at least 1000 rows) since
they were last analyzed, and analyzes them: what autovacuum's analyze would do, by the same
measure (`n_mod_since_analyze`). ANALYZE takes no lock that writes wait for, and the plans
made afterwards fit the tables as they are. With autovacuum on this does nothing."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from common.sql import is_postgres
from shop.settings import Settings

logger = logging.getLogger("shop.statistics")

# what placing an order grows, row by row
GROWING_TABLES = (
    "shop_order", "shop_order_line", "shop_allocation", "shop_order_event", "budget_ledger", "budget_member_budget",
)


async def analyze_grown(table: Any, minimum: int = 1000) -> list[str]:
    """Analyze the growing tables changed by more than they hold (and by at least `minimum`
    rows) since their last analysis. Returns their names."""
    rows = await table.raw(
        "SELECT s.relname AS name FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
        "WHERE s.schemaname = current_schema() AND s.relname = ANY({}) "
        "AND s.n_mod_since_analyze > GREATEST({}, c.reltuples) ORDER BY s.relname",
        list(GROWING_TABLES), minimum,
    )
    names = [r["name"] for r in rows if r["name"] in GROWING_TABLES]  # our own names only, quoted as such
    if names:
        await table.raw("ANALYZE " + ", ".join(f'"{name}"' for name in names))
        logger.info("analyzed %s: grown past their statistics (autovacuum is off)", ", ".join(names))
    return names


async def keep_statistics(settings: Settings) -> None:
    """The server's job (`shop/jobs.py`): on PostgreSQL with autovacuum off, `analyze_grown`
    every `statistics_interval_seconds`."""
    from shop.orders.tables import Order

    if not settings.statistics_interval_seconds or not is_postgres(Order):
        return
    try:
        [row] = await Order.raw("SELECT current_setting('autovacuum') AS autovacuum")
    except Exception:
        logger.exception("could not read whether autovacuum is on; not keeping statistics")
        return
    if row["autovacuum"] == "on":
        return
    while True:
        await asyncio.sleep(settings.statistics_interval_seconds)
        try:
            await analyze_grown(Order)
        except Exception:  # keep the loop alive; the next round tries again
            logger.exception("analyzing the order tables failed")
