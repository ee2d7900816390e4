"""Piccolo's configuration: the engine comes from DATABASE_URL (see shop/settings.py)."""

import os

from shop.db import engine_from_url
from shop.settings import Settings

# DATABASE_URL alone: loading every setting would make the token secret as a side effect
DB = engine_from_url(os.environ.get("DATABASE_URL") or Settings().database_url)

APPS = ["common.piccolo_app", "budgets.piccolo_app", "catalog.piccolo_app", "shop.piccolo_app"]


def __getattr__(name: str):
    """APP_REGISTRY, made when first asked for (by migrations and Piccolo's CLI): Piccolo's
    AppRegistry module imports black (~9 MiB), which a serving worker never needs."""
    if name == "APP_REGISTRY":
        from piccolo.conf.apps import AppRegistry

        registry = AppRegistry(apps=APPS)
        globals()["APP_REGISTRY"] = registry
        return registry
    raise AttributeError(name)
