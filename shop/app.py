"""The Litestar application factory."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone

import msgspec
from litestar import Litestar, Request, Router
from litestar.di import Provide
from litestar.exceptions import ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

from common.files import FileStore
from shop import web
from shop.auth.accounts import Principal
from shop.auth.guards import require_roles
from shop.auth.revocation import RevocationCache
from shop.auth.tokens import build_jwt_auth, principal_of_request
from shop.db import bind_tables, connection_pool, redis_client
from shop.errors import exception_handlers, problem, problem_details_plugin
from shop.logs import RequestIdMiddleware, litestar_logging
from shop.metrics import ShopPrometheusMiddleware
from shop.openapi import install as document_problems
from shop.settings import Settings, get_settings
from shop.web.render import page_aware

logger = logging.getLogger("shop")

# Which roles may reach each group of controllers a package exports in its `ROUTES`.
ROLE_GROUPS: dict[str, tuple[str, ...]] = {
    "admin": ("admin",),
    "buyer": ("buyer",),
    "supplier": ("supplier",),
    "auditor": ("admin", "auditor"),
    "reader": ("admin", "auditor", "buyer"),
    "orders": ("admin", "auditor", "buyer", "approver"),  # the orders' pages
    "seller": ("admin", "supplier"),
    "any": ("admin", "buyer", "supplier", "auditor", "approver"),
}


def _route_handlers() -> list:
    from budgets import api as budgets_api
    from catalog import api as catalog_api
    from shop import operations
    from shop.auth import api as auth_api
    from shop.fulfilment import api as fulfilment_api
    from shop.member_view import api as member_view_api
    from shop.notifications import api as notifications_api
    from shop.orders import api as orders_api
    from shop.payments import api as payments_api
    from shop.reports import api as reports_api
    from shop.web import pages as web_pages

    handlers: list = []
    modules = (
        operations, auth_api, orders_api, payments_api, fulfilment_api, notifications_api,
        reports_api, catalog_api, budgets_api, member_view_api, web_pages,
    )
    for module in modules:
        for group, controllers in module.ROUTES.items():
            if group == "public":
                handlers.extend(controllers)
            else:
                handlers.append(
                    Router(path="/", guards=[require_roles(*ROLE_GROUPS[group])], route_handlers=controllers)
                )
    return handlers


WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def cookie_needs_csrf(request: Request) -> None:
    """A write to the API is authenticated by `Authorization: Bearer`, or by the pages'
    cookie together with the CSRF token (the `x-csrftoken` header equal to the `csrftoken`
    cookie: a page of another site can send neither). The cookie alone is refused."""
    if request.method not in WRITES or "authorization" in request.headers:
        return
    if request.route_handler.opt.get("exclude_from_auth"):
        return  # public (logging in, Stripe's webhook): the cookie plays no part
    if not request.cookies.get("shop_token"):
        return  # not cookie-authenticated: the auth middleware decides
    sent, expected = request.headers.get("x-csrftoken", ""), request.cookies.get("csrftoken", "")
    if not (sent and expected and hmac.compare_digest(sent, expected)):
        raise problem("forbidden", "a write with the login cookie needs the CSRF token (x-csrftoken), or use Authorization: Bearer")


async def strict_json_body(request: Request) -> None:
    """Every API write passes `cookie_needs_csrf`. Litestar converts bodies leniently ("2"
    becomes 2); money and counts must not be guessed, so every JSON body must say it is JSON
    and is first decoded strictly against its msgspec struct. A read (GET, HEAD) has neither."""
    if request.method not in WRITES:
        return
    if request.url.path.startswith("/api/"):
        cookie_needs_csrf(request)
    field = request.route_handler.parsed_fn_signature.parameters.get("data")
    target = field.annotation if field is not None else None
    if not (isinstance(target, type) and issubclass(target, msgspec.Struct)):
        return
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise problem("unsupported_media_type", f"the body must be JSON (Content-Type: application/json), not {media or 'unset'}")
    raw = await request.body()
    try:
        msgspec.json.decode(raw, type=target)
    except msgspec.ValidationError as exc:
        raise ValidationException(detail=str(exc), extra=[{"message": str(exc), "key": "data", "source": "body"}]) from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # msgspec lets a string's bad UTF-8 through as it is
        raise ValidationException(detail=f"JSON is malformed (or not UTF-8): {exc}") from exc


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    import piccolo_conf  # the engine chosen from DATABASE_URL
    from shop.notifications import notify

    notify.register()  # suppliers hear of review decisions, whichever page or endpoint made them

    engine = piccolo_conf.DB
    bind_tables(engine)
    jwt_auth = build_jwt_auth(settings)
    redis = redis_client(settings.redis_url)  # login limits and revoked tokens; else in the database
    prometheus = PrometheusConfig(
        app_name="shop", prefix="shop", group_path=True, exclude=["^/metrics"], middleware_class=ShopPrometheusMiddleware
    )
    file_store = FileStore(settings.data_dir)  # uploads, by content hash under DATA_DIR/files/

    def provide_file_store() -> FileStore:
        return file_store

    def provide_viewer(request: Request) -> Callable[[], Awaitable[Principal | None]]:
        """Who is asking on a public route, looked up only if the handler asks (a listed
        product's photo does not need to know)."""
        return lambda: principal_of_request(request)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with connection_pool(engine, settings.pg_pool_min, settings.pg_pool_max):
            background = _start_background_tasks(settings)
            try:
                yield
            finally:
                for task in background:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)
                if redis is not None:
                    await redis.aclose()

    app = Litestar(
        route_handlers=[*_route_handlers(), PrometheusController, web.static_files_router()],
        # what the packages' controllers cannot make themselves (`catalog.api` says which it takes)
        dependencies={
            "file_store": Provide(provide_file_store, sync_to_thread=False),
            "viewer": Provide(provide_viewer, sync_to_thread=False),
        },
        template_config=web.template_config(),
        csrf_config=web.csrf_config(settings),
        compression_config=web.compression_config(),
        lifespan=[lifespan],
        on_startup=[document_problems],
        on_app_init=[jwt_auth.on_app_init],
        middleware=[prometheus.middleware],
        plugins=[problem_details_plugin()],
        before_request=strict_json_body,
        exception_handlers=page_aware(exception_handlers),  # an unknown page's address: a page, not JSON
        openapi_config=OpenAPIConfig(title="消费帮扶商城 API", version="1.0.0", path="/schema"),
        logging_config=litestar_logging(settings.log_format, settings.log_level),
        request_max_body_size=2 * 1024 * 1024,
        debug=False,
    )
    app.state.settings = settings
    app.state.clock = lambda: datetime.now(timezone.utc)
    app.state.jwt_auth = jwt_auth
    app.state.redis = redis
    app.state.revocations = RevocationCache()
    # outermost, around the router itself: unknown paths and refusals get a request id too
    app.asgi_handler = RequestIdMiddleware(app.asgi_handler)
    return app


def _start_background_tasks(settings: Settings) -> list[asyncio.Task]:
    """Periodic work inside every server process (`shop/jobs.py`)."""
    from shop import jobs

    return [asyncio.create_task(job(settings)) for job in jobs.JOBS]
