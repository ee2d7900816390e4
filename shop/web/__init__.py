"""The web pages (zh-CN), server-rendered with Jinja and HTMX. The controllers are in
`pages.py` (mounted by `shop.app` like every other module's `ROUTES`); this module gives
the app its template engine, static files and CSRF settings."""

from __future__ import annotations

import hmac
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar.config.compression import CompressionConfig
from litestar.config.csrf import CSRFConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from shop.settings import Settings
from shop.web import ui
from shop.web.assets import ASSETS, StaticFiles

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

# JSON (Bearer token) and operational paths are not forms: no CSRF token there.
CSRF_EXCLUDE = ["^/api/", "^/health", "^/ready", "^/metrics", "^/schema", "^/static/"]
# Paths that are not pages: their errors stay problem+json (everything else is a page).
NOT_PAGES = ("/api/", "/health", "/ready", "/metrics", "/schema", "/static/", "/images/")


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
    environment.globals["static"] = ASSETS.url  # a static file's hashed address
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))


def static_files_router() -> type[StaticFiles]:
    """The static files: hashed names, cached for a year, gzipped ahead of time (`assets.py`)."""
    return StaticFiles


def compression_config() -> CompressionConfig:
    """Pages are gzipped as they are sent (static files are gzipped once, ahead of time; the
    API's answers and exports are left as they are)."""
    return CompressionConfig(
        backend="gzip", minimum_size=1024, gzip_compress_level=6, exclude=[f"^{p}" for p in NOT_PAGES]
    )


def is_page_path(path: str) -> bool:
    return not path.startswith(NOT_PAGES)


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
