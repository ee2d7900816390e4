from datetime import datetime, timezone

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-25T19:06:58:057863"
VERSION = "1.38.0"
DESCRIPTION = "a change row for every cap set before changes were kept"


class CapPolicy(Table, tablename="budget_cap_policy", schema=None):
    pass


async def carry_over_set_caps() -> None:
    """One change per policy row whose year has no history: dated now (the policy table
    keeps no time), no actor, the cap it replaced unknown, and in force from before the
    first ledger entry (`ledger_seq` 0) — the audit judges earlier holds by it, as before."""
    now = datetime.now(timezone.utc)
    rows = await CapPolicy.raw(
        "SELECT p.year, p.cap_fen FROM budget_cap_policy p WHERE NOT EXISTS "
        "(SELECT 1 FROM budget_cap_policy_change c WHERE c.year = p.year) ORDER BY p.year"
    )
    for row in rows:
        await CapPolicy.raw(
            "INSERT INTO budget_cap_policy_change (year, cap_fen, previous_cap_fen, at, actor_id, ledger_seq) "
            "VALUES ({}, {}, NULL, {}, NULL, 0)",
            row["year"],
            row["cap_fen"],
            now,
        )


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="budgets", description=DESCRIPTION)
    manager.add_raw(carry_over_set_caps)  # the table exists: the migration before made it
    return manager
