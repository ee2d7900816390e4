"""The web pages (zh-CN), server-rendered with Jinja and HTMX. The controllers are in
`pages.py` (mounted by `shop.app` like every other module's `ROUTES`); this module gives
the app its template engine, static files and CSRF settings."""

from __future__ import annotations

import hmac
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Router
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import CacheControlHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from shop.settings import Settings
from shop.web import ui

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

# JSON (Bearer token) and operational paths are not forms: no CSRF token there.
CSRF_EXCLUDE = ["^/api/", "^/health", "^/ready", "^/metrics", "^/schema", "^/static/"]


def template_config() -> TemplateConfig:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(ui.filters())
    environment.globals.update(ui.globals_())
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))


def static_files_router() -> Router:
    return create_static_files_router(
        path="/static",
        directories=[STATIC],
        opt={"exclude_from_auth": True},
        include_in_schema=False,
        cache_control=CacheControlHeader(max_age=3600),
    )


def csrf_config(settings: Settings) -> CSRFConfig:
    # A key of its own, derived from the token secret, so the two never share a use.
    secret = hmac.new(settings.secret_key.encode(), b"shop-csrf", "sha256").hexdigest()
    return CSRFConfig(
        secret=secret,
        cookie_name="csrftoken",
        header_name="x-csrftoken",
        cookie_samesite="strict",
        cookie_secure=settings.public_url.startswith("https"),
        exclude=CSRF_EXCLUDE,
    )
