"""Piccolo's configuration: the engine comes from DATABASE_URL (see shop/settings.py)."""

from piccolo.conf.apps import AppRegistry

from shop.db import engine_from_url
from shop.settings import get_settings

DB = engine_from_url(get_settings().database_url)

APP_REGISTRY = AppRegistry(
    apps=[
        "common.piccolo_app",
        "budgets.piccolo_app",
        "catalog.piccolo_app",
        "shop.piccolo_app",
    ]
)
