import os

from piccolo.conf.apps import AppConfig, table_finder

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="shop",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "piccolo_migrations"),
    table_classes=table_finder(
        modules=[
            "shop.auth.tables",
            "shop.orders.tables",
            "shop.payments.tables",
            "shop.fulfilment.tables",
            "shop.notifications.tables",
        ],
        exclude_imported=True,
    ),
    migration_dependencies=["common.piccolo_app", "budgets.piccolo_app", "catalog.piccolo_app"],
    commands=[],
)
