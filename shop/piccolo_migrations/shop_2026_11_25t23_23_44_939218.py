from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import OnDelete
from piccolo.columns.base import OnUpdate
from piccolo.columns.column_types import BigInt
from piccolo.columns.column_types import ForeignKey
from piccolo.columns.column_types import Serial
from piccolo.columns.column_types import Text
from piccolo.columns.column_types import Timestamptz
from piccolo.columns.column_types import Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.indexes import IndexMethod
from piccolo.constraints import Check
from piccolo.table import Table


class Order(Table, tablename="shop_order", schema=None):
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


class Union(Table, tablename="budget_union", schema=None):
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


class User(Table, tablename="shop_user", schema=None):
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


ID = "2026-11-25T23:23:44:939218"
VERSION = "1.38.0"
DESCRIPTION = "approvals: pending_approval orders, the approver role, approval rows and their notifications"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="shop", description=DESCRIPTION
    )

    manager.add_table(
        class_name="Approval",
        tablename="shop_approval",
        schema=None,
        columns=None,
    )

    manager.add_column(
        table_class_name="Approval",
        tablename="shop_approval",
        column_name="order",
        db_column_name="order",
        column_class_name="ForeignKey",
        column_class=ForeignKey,
        params={
            "references": Order,
            "on_delete": OnDelete.restrict,
            "on_update": OnUpdate.cascade,
            "target_column": None,
            "null": False,
            "primary_key": False,
            "unique": True,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="Approval",
        tablename="shop_approval",
        column_name="branch",
        db_column_name="branch",
        column_class_name="ForeignKey",
        column_class=ForeignKey,
        params={
            "references": Union,
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
        table_class_name="Approval",
        tablename="shop_approval",
        column_name="status",
        db_column_name="status",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 16,
            "default": "pending",
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
        table_class_name="Approval",
        tablename="shop_approval",
        column_name="required_above_fen",
        db_column_name="required_above_fen",
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
        table_class_name="Approval",
        tablename="shop_approval",
        column_name="requested_at",
        db_column_name="requested_at",
        column_class_name="Timestamptz",
        column_class=Timestamptz,
        params={
            "default": TimestamptzNow(),
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
        table_class_name="Approval",
        tablename="shop_approval",
        column_name="decided_at",
        db_column_name="decided_at",
        column_class_name="Timestamptz",
        column_class=Timestamptz,
        params={
            "default": None,
            "null": True,
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
        table_class_name="Approval",
        tablename="shop_approval",
        column_name="decided_by",
        db_column_name="decided_by",
        column_class_name="ForeignKey",
        column_class=ForeignKey,
        params={
            "references": User,
            "on_delete": OnDelete.restrict,
            "on_update": OnUpdate.cascade,
            "target_column": None,
            "null": True,
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
        table_class_name="Approval",
        tablename="shop_approval",
        column_name="reason",
        db_column_name="reason",
        column_class_name="Text",
        column_class=Text,
        params={
            "default": "",
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
        table_class_name="Approval",
        tablename="shop_approval",
        constraint_name="approval_status_known",
        constraint_class=Check,
        params={
            "condition": "\"status\" IN ('pending', 'approved', 'rejected', 'withdrawn', 'expired')"
        },
        schema=None,
    )

    manager.drop_constraint(
        table_class_name="User",
        tablename="shop_user",
        constraint_name="user_role_known",
        schema=None,
    )

    manager.drop_constraint(
        table_class_name="Order",
        tablename="shop_order",
        constraint_name="order_status_known",
        schema=None,
    )

    manager.drop_constraint(
        table_class_name="OrderEvent",
        tablename="shop_order_event",
        constraint_name="order_event_action_known_v2",
        schema=None,
    )

    manager.drop_constraint(
        table_class_name="Notification",
        tablename="shop_notification",
        constraint_name="notification_kind_known",
        schema=None,
    )

    manager.add_constraint(
        table_class_name="User",
        tablename="shop_user",
        constraint_name="user_role_known_v2",
        constraint_class=Check,
        params={
            "condition": "\"role\" IN ('admin', 'buyer', 'supplier', 'auditor', 'approver')"
        },
        schema=None,
    )

    manager.add_constraint(
        table_class_name="Order",
        tablename="shop_order",
        constraint_name="order_status_known_v2",
        constraint_class=Check,
        params={
            "condition": "\"status\" IN ('pending_approval', 'pending_payment', 'paid', 'cancelled', 'expired', 'partially_refunded', 'refunded')"
        },
        schema=None,
    )

    manager.add_constraint(
        table_class_name="OrderEvent",
        tablename="shop_order_event",
        constraint_name="order_event_action_known_v3",
        constraint_class=Check,
        params={
            "condition": "\"action\" IN ('placed', 'approved', 'rejected', 'cancelled', 'expired', 'paid', 'transfer_confirmed', 'late_payment', 'shipped', 'received', 'after_sale_opened', 'after_sale_accepted', 'after_sale_rejected', 'refunded', 'invoice_issued', 'invoice_accepted', 'invoice_rejected')"
        },
        schema=None,
    )

    manager.add_constraint(
        table_class_name="Notification",
        tablename="shop_notification",
        constraint_name="notification_kind_known_v2",
        constraint_class=Check,
        params={
            "condition": "\"kind\" IN ('order_to_ship', 'after_sale_opened', 'shipment_shipped', 'after_sale_decided', 'hold_ending', 'review_decided', 'invoice_issued', 'invoice_decided', 'approval_requested', 'approval_decided')"
        },
        schema=None,
    )

    return manager
