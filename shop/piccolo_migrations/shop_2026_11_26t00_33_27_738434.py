from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Boolean
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-26T00:33:27:738434"
VERSION = "1.38.0"
DESCRIPTION = "a buyer who also approves its branch's orders (User.approves)"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="shop", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="User",
        tablename="shop_user",
        column_name="approves",
        db_column_name="approves",
        column_class_name="Boolean",
        column_class=Boolean,
        params={
            "default": False,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
