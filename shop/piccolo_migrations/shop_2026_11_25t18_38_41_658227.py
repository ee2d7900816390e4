"""Refund lines and shares were JSON in shop_refund.detail; they are rows now
(shop_refund_line, shop_refund_share, made by the migration before this one).
Existing refunds are copied into the rows before the column is dropped."""

import json

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Text
from piccolo.table import Table

ID = "2026-11-25T18:38:41:658227"
VERSION = "1.38.0"
DESCRIPTION = "refund detail JSON into rows"


class Refund(Table, tablename="shop_refund", schema=None):
    detail = Text()


async def copy_detail_into_rows() -> None:
    for row in await Refund.raw("SELECT id, detail FROM shop_refund WHERE detail <> ''"):
        detail = json.loads(row["detail"])
        for line_id, quantity in detail.get("lines", []):
            await Refund.raw(
                'INSERT INTO shop_refund_line (refund, line, quantity) VALUES ({}, {}, {})', row["id"], line_id, quantity
            )
        for member_id, amount_fen in detail.get("shares", []):
            await Refund.raw(
                "INSERT INTO shop_refund_share (refund, member, amount_fen) VALUES ({}, {}, {})", row["id"], member_id, amount_fen
            )


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="shop", description=DESCRIPTION)
    manager.add_raw(copy_detail_into_rows)  # runs before the column is dropped
    manager.drop_column(
        table_class_name="Refund",
        tablename="shop_refund",
        column_name="detail",
        db_column_name="detail",
        schema=None,
    )
    return manager
