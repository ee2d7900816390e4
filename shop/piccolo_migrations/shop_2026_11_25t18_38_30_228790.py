from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import OnDelete
from piccolo.columns.base import OnUpdate
from piccolo.columns.column_types import BigInt
from piccolo.columns.column_types import ForeignKey
from piccolo.columns.column_types import Integer
from piccolo.columns.column_types import Serial
from piccolo.columns.indexes import IndexMethod
from piccolo.constraints import Check
from piccolo.constraints import Unique
from piccolo.table import Table


class Member(Table, tablename="budget_member", schema=None):
    id = Serial(
        null=False,
        primary_key=True,
        unique=False,
        index=False,
        index_method=IndexMethod.btree,
        choices=None,
        db_column_name="id",
        secret=False,
    )


class OrderLine(Table, tablename="shop_order_line", schema=None):
    id = Serial(
        null=False,
        primary_key=True,
        unique=False,
        index=False,
        index_method=IndexMethod.btree,
        choices=None,
        db_column_name="id",
        secret=False,
    )


class Refund(Table, tablename="shop_refund", schema=None):
    id = Serial(
        null=False,
        primary_key=True,
        unique=False,
        index=False,
        index_method=IndexMethod.btree,
        choices=None,
        db_column_name="id",
        secret=False,
    )


ID = "2026-11-25T18:38:30:228790"
VERSION = "1.38.0"
DESCRIPTION = ""


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="shop", description=DESCRIPTION
    )

    manager.add_table(
        class_name="RefundShare",
        tablename="shop_refund_share",
        schema=None,
        columns=None,
    )

    manager.add_table(
        class_name="RefundLine",
        tablename="shop_refund_line",
        schema=None,
        columns=None,
    )

    manager.add_column(
        table_class_name="RefundShare",
        tablename="shop_refund_share",
        column_name="refund",
        db_column_name="refund",
        column_class_name="ForeignKey",
        column_class=ForeignKey,
        params={
            "references": Refund,
            "on_delete": OnDelete.restrict,
            "on_update": OnUpdate.cascade,
            "target_column": None,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": True,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="RefundShare",
        tablename="shop_refund_share",
        column_name="member",
        db_column_name="member",
        column_class_name="ForeignKey",
        column_class=ForeignKey,
        params={
            "references": Member,
            "on_delete": OnDelete.restrict,
            "on_update": OnUpdate.cascade,
            "target_column": None,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": True,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="RefundShare",
        tablename="shop_refund_share",
        column_name="amount_fen",
        db_column_name="amount_fen",
        column_class_name="BigInt",
        column_class=BigInt,
        params={
            "default": 0,
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

    manager.add_column(
        table_class_name="RefundLine",
        tablename="shop_refund_line",
        column_name="refund",
        db_column_name="refund",
        column_class_name="ForeignKey",
        column_class=ForeignKey,
        params={
            "references": Refund,
            "on_delete": OnDelete.restrict,
            "on_update": OnUpdate.cascade,
            "target_column": None,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": True,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="RefundLine",
        tablename="shop_refund_line",
        column_name="line",
        db_column_name="line",
        column_class_name="ForeignKey",
        column_class=ForeignKey,
        params={
            "references": OrderLine,
            "on_delete": OnDelete.restrict,
            "on_update": OnUpdate.cascade,
            "target_column": None,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": True,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="RefundLine",
        tablename="shop_refund_line",
        column_name="quantity",
        db_column_name="quantity",
        column_class_name="Integer",
        column_class=Integer,
        params={
            "default": 0,
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

    manager.add_constraint(
        table_class_name="RefundShare",
        tablename="shop_refund_share",
        constraint_name="refund_share_unique",
        constraint_class=Unique,
        params={"columns": ["refund", "member"], "nulls_distinct": True},
        schema=None,
    )

    manager.add_constraint(
        table_class_name="RefundShare",
        tablename="shop_refund_share",
        constraint_name="refund_share_amount_positive",
        constraint_class=Check,
        params={"condition": '"amount_fen" > 0'},
        schema=None,
    )

    manager.add_constraint(
        table_class_name="RefundLine",
        tablename="shop_refund_line",
        constraint_name="refund_line_unique",
        constraint_class=Unique,
        params={"columns": ["refund", "line"], "nulls_distinct": True},
        schema=None,
    )

    manager.add_constraint(
        table_class_name="RefundLine",
        tablename="shop_refund_line",
        constraint_name="refund_line_quantity_positive",
        constraint_class=Check,
        params={"condition": '"quantity" > 0'},
        schema=None,
    )

    return manager
