"""At most one default delivery address per branch: a partial unique index (the same SQL
on PostgreSQL and SQLite). Its table was made by the migration before this one."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-25T20:56:50:000000"
VERSION = "1.38.0"
DESCRIPTION = "one default delivery address per branch"


class DeliveryAddress(Table, tablename="shop_delivery_address", schema=None):
    pass


async def one_default_per_branch() -> None:
    await DeliveryAddress.raw(
        "CREATE UNIQUE INDEX shop_delivery_address_one_default ON shop_delivery_address (branch) WHERE is_default"
    )


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="shop", description=DESCRIPTION)
    manager.add_raw(one_default_per_branch)
    return manager
