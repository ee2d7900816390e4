"""At most one live (`issued` or `accepted`) invoice a shipment, and a supplier's live invoice
numbers used once: partial unique indexes (the same SQL on PostgreSQL and SQLite). Their table
was made by the migration before this one."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-25T21:45:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "one live invoice per shipment; live invoice numbers unique per supplier"


class Invoice(Table, tablename="shop_invoice", schema=None):
    pass


LIVE = "status IN ('issued', 'accepted')"


async def one_live_invoice() -> None:
    await Invoice.raw(f"CREATE UNIQUE INDEX shop_invoice_one_live ON shop_invoice (shipment) WHERE {LIVE}")
    await Invoice.raw(f"CREATE UNIQUE INDEX shop_invoice_live_number ON shop_invoice (supplier, number) WHERE {LIVE}")


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="shop", description=DESCRIPTION)
    manager.add_raw(one_live_invoice)
    return manager
