"""Piccolo's configuration: the engine comes from DATABASE_URL (see shop/settings.py)."""

import os

from piccolo.conf.apps import AppRegistry

from shop.db import engine_from_url
from shop.settings import Settings

# DATABASE_URL alone: loading every setting would make the token secret as a side effect
DB = engine_from_url(os.environ.get("DATABASE_URL") or Settings().database_url)

APP_REGISTRY = AppRegistry(
    apps=[
        "common.piccolo_app",
        "budgets.piccolo_app",
        "catalog.piccolo_app",
        "shop.piccolo_app",
    ]
)
