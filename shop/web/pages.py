"""The web pages (zh-CN): thin controllers over the same service functions as the API.

Each page parses its form or query, calls `catalog.service`, `budgets.service`,
`shop.service` (orders), `shop.refunds` or `shop.reports`, and renders a template;
HTMX asks for partials (`_*.html`). Logins are a cookie (`shop_token`, the same JWT
the API's Bearer header carries); forms carry Litestar's CSRF token. A refusal from a
service is shown in Chinese next to the form that caused it."""

from __future__ import annotations

import logging
import uuid
from typing import Any
from urllib.parse import quote, urlencode

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie, UploadFile
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.params import FromPath, FromQuery
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.response import Redirect, Template
from litestar.security.jwt import Token

from budgets import service as budgets
from budgets.service import BudgetError
from budgets.tables import Member, Union
from catalog import service as catalog
from catalog.regions import CATEGORIES, get_region, list_regions
from catalog.suppliers import get_supplier
from catalog.tables import RegionPairing
from shop import auth, refunds, reports
from shop import service as orders
from shop.auth import Principal
from shop.errors import CODES, ShopError
from shop.payments import provider_for
from shop.schemas import OrderIn, RefundIn
from shop.tables import Order
from shop.web import ui

logger = logging.getLogger("shop.web")

DomainError = (ShopError, BudgetError)
PAGE_SIZE = 20
BASKET_COOKIE = "shop_basket"
BASKET_MAX_LINES = 50
IMPORT_MAX_BYTES = 8 * 1024 * 1024

HOME = {"buyer": "/shop", "supplier": "/supplier/products", "admin": "/admin/reviews", "auditor": "/reports/targets"}

NAV: dict[str | None, list[tuple[str, str]]] = {
    "buyer": [("/shop", "采购下单"), ("/orders", "我的订单"), ("/members", "会员"), ("/budget", "年度额度"), ("/products", "商品目录")],
    "supplier": [("/supplier/products", "我的商品"), ("/supplier/orders", "订单"), ("/products", "商品目录")],
    "admin": [
        ("/admin/reviews", "商品审核"),
        ("/admin/orders", "收款与退款"),
        ("/admin/policy", "额度政策"),
        ("/admin/targets", "帮扶目标"),
        ("/reports/targets", "目标完成"),
        ("/audit/members", "额度审计"),
        ("/audit/ledger", "额度流水"),
        ("/orders", "订单"),
    ],
    "auditor": [("/reports/targets", "目标完成"), ("/audit/members", "额度审计"), ("/audit/ledger", "额度流水"), ("/orders", "订单")],
    None: [("/products", "商品目录")],
}

# ?ok=… after a redirect: what just happened, said once at the top of the page
NOTICES = {
    "placed": "订单已提交，额度已为所选会员预留。",
    "cancelled": "订单已取消，预留的额度和库存已释放。",
    "added": "会员已添加。",
    "created": "商品已保存为草稿，可以提交审核了。",
    "saved": "修改已保存。",
    "submitted": "已提交审核，请等待管理员审核。",
    "cap": "额度已保存。",
    "bye": "已退出登录。",
}


# --- who is asking ----------------------------------------------------------------------


def user_of(request: Request) -> Principal | None:
    user = request.scope.get("user")
    return user if isinstance(user, Principal) else None


async def optional_user(request: Request) -> Principal | None:
    """On public pages (no auth middleware): the logged-in user, if the cookie says so."""
    if user := user_of(request):
        return user
    raw = request.cookies.get("shop_token", "").split(" ")[-1]
    if not raw:
        return None
    jwt_auth = request.app.state.jwt_auth
    try:
        token = Token.decode(raw, jwt_auth.token_secret, jwt_auth.algorithm)
        return await auth.load_principal(int(token.sub))
    except (NotAuthorizedException, ValueError):
        return None


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _safe_next(target: str | None) -> str | None:
    """Only paths of this site (no "//host" or "\\host")."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


# --- rendering ----------------------------------------------------------------------------


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    user: Principal | None = None,
    cookies: list[Cookie] | None = None,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Template:
    user = user or user_of(request)
    context.setdefault("notice", NOTICES.get(request.query_params.get("ok", ""), ""))
    context.setdefault("error", None)
    return Template(
        template_name=template,
        context={
            "user": user,
            "nav": NAV.get(user.role if user else None, NAV[None]),
            "path": request.url.path,
            "qs": lambda **changes: _query(request, **changes),
            **context,
        },
        status_code=status_code,
        cookies=cookies,
        headers=headers,
    )


def _query(request: Request, **changes: Any) -> str:
    """The current query string with some parameters changed (None or "" drops one)."""
    params = {k: v for k, v in request.query_params.items()}
    for key, value in changes.items():
        params[key] = value
    kept = {k: v for k, v in params.items() if v not in (None, "") and k != "ok"}
    return "?" + urlencode(kept) if kept else "?"


def pager(total: int, page: int, size: int = PAGE_SIZE) -> dict[str, int]:
    pages = max(1, -(-total // size))
    return {"page": page, "pages": pages, "total": total, "size": size}


def _page(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 100_000))
    except ValueError:
        return 1


def _int_or_none(value: str | None, low: int = 1, high: int = 2**31 - 1) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if low <= number <= high else None


def _now(request: Request):
    return request.app.state.clock()


def _year(request: Request, value: str | None) -> int:
    return _int_or_none(value, budgets.YEAR_MIN, budgets.YEAR_MAX) or budgets.budget_year(_now(request))


def _years(request: Request) -> list[int]:
    current = budgets.budget_year(_now(request))
    return list(range(current + 1, current - 4, -1))


def _status_of(exc: Any) -> int:
    return CODES.get(getattr(exc, "code", ""), (500, ""))[0]


# --- errors, as pages -------------------------------------------------------------------


def _error_page(request: Request, status: int, title: str, details: list[str] | None = None) -> Response:
    if is_htmx(request):  # said at the top of the page, whatever the request meant to swap
        headers = {"HX-Retarget": "#flash", "HX-Reswap": "innerHTML show:top"}
        return render(request, "_error.html", status_code=200, title=title, details=details or [], headers=headers)
    return render(request, "error.html", status_code=status, title=title, details=details or [], status=status)


def _unauthenticated(request: Request, exc: Exception) -> Response:
    target = "/login"
    if request.method == "GET" and request.url.path != "/":
        target += "?next=" + quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe="")
    if is_htmx(request):
        return Response(content=None, status_code=200, headers={"HX-Redirect": target})
    return Redirect(path=target, status_code=303)


def _forbidden(request: Request, exc: HTTPException) -> Response:
    if "CSRF" in str(exc.detail):
        return _error_page(request, 403, "页面已过期，请刷新页面后重新提交。")
    return _error_page(request, 403, "没有权限访问此页面", ["当前账号的角色不能使用这项功能；如需开通，请联系管理员。"])


def _not_found(request: Request, exc: Exception) -> Response:
    return _error_page(request, 404, "找不到该页面或记录")


def _bad_request(request: Request, exc: HTTPException) -> Response:
    return _error_page(request, 400, "请求的内容有误", ["请返回上一页检查后重试。"])


def _domain(request: Request, exc: Exception) -> Response:
    explained = ui.explain(exc)
    status = _status_of(exc)
    if status == 401:
        return _unauthenticated(request, exc)
    return _error_page(request, status, explained["title"], explained["details"])


def _http(request: Request, exc: HTTPException) -> Response:
    if exc.status_code >= 500:
        logger.error("server error on page %s %s: %r", request.method, request.url.path, exc)
        return _error_page(request, exc.status_code, "系统暂时无法完成请求，请稍后再试")
    if exc.status_code == 429:
        return _error_page(request, 429, "操作太频繁，请稍后再试")
    if exc.status_code == 413:
        return _error_page(request, 413, "文件太大")
    return _error_page(request, exc.status_code, "无法完成请求")


def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on page %s %s", request.method, request.url.path, exc_info=exc)
    return _error_page(request, 500, "系统出错了，已记录，请稍后再试")


PAGE_EXCEPTION_HANDLERS = {
    401: _unauthenticated,
    403: _forbidden,
    404: _not_found,
    400: _bad_request,
    ShopError: _domain,
    BudgetError: _domain,
    HTTPException: _http,
    Exception: _unexpected,
}


class Page(Controller):
    """Every page: HTML errors (a login redirect, a 403 page) instead of problem+json."""

    exception_handlers = PAGE_EXCEPTION_HANDLERS
    include_in_schema = False


# --- login ---------------------------------------------------------------------------------


class LoginPages(Page):
    opt = {"exclude_from_auth": True}

    @get("/login")
    async def login_form(self, request: Request, next: FromQuery[str | None] = None) -> Template | Redirect:
        user = await optional_user(request)
        if user is not None:
            return Redirect(path=_safe_next(next) or HOME[user.role], status_code=303)
        return render(request, "login.html", user=None, username="", next=_safe_next(next) or "", nav=NAV[None])

    @post("/login", status_code=200)
    async def login(self, request: Request) -> Response:
        form = await request.form()
        username = str(form.get("username") or "").strip()
        password = str(form.get("password") or "")
        target = _safe_next(str(form.get("next") or ""))
        if not username or not password:
            return render(request, "login.html", status_code=400, username=username, next=target or "", error="请输入用户名和密码。")
        if len(username) > 100 or len(password) > 128:
            return render(request, "login.html", status_code=401, username="", next=target or "", error="用户名或密码错误。")
        try:
            principal = await auth.login_attempt(request, username, password)
        except ProblemDetailsException as exc:
            code = (exc.extra or {}).get("code") if isinstance(exc.extra, dict) else None
            message = "登录尝试次数过多，请一分钟后再试。" if code == "rate_limited" else "用户名或密码错误。"
            return render(
                request, "login.html", status_code=exc.status_code, username=username, next=target or "", error=message, headers=exc.headers
            )
        jwt_auth = request.app.state.jwt_auth
        token = jwt_auth.create_token(identifier=str(principal.id))
        cookie = Cookie(
            key=jwt_auth.key,
            value=token,
            path="/",
            httponly=True,
            max_age=int(jwt_auth.default_token_expiration.total_seconds()),
            secure=jwt_auth.secure,
            samesite=jwt_auth.samesite,
        )
        return Redirect(path=target or HOME[principal.role], status_code=303, cookies=[cookie])

    @post("/logout", status_code=200)
    async def logout(self, request: Request) -> Redirect:
        jwt_auth = request.app.state.jwt_auth
        gone = [
            Cookie(key=jwt_auth.key, value="", path="/", max_age=0, expires=0, httponly=True, samesite=jwt_auth.samesite, secure=jwt_auth.secure),
            Cookie(key=BASKET_COOKIE, value="", path="/", max_age=0, expires=0, httponly=True, samesite="strict"),
        ]
        return Redirect(path="/login?ok=bye", status_code=303, cookies=gone)


class HomePage(Page):
    @get("/")
    async def home(self, request: Request) -> Redirect:
        return Redirect(path=HOME.get(request.user.role, "/products"), status_code=303)


# --- the public catalog -----------------------------------------------------------------------


async def _regions() -> list[Any]:
    items, _ = await list_regions(limit=200)
    return items


async def _paired_unions() -> list[dict[str, str]]:
    """The unions some region is paired with (the 对口地区 filter), by code."""
    codes = sorted({r["union_code"] for r in await RegionPairing.select(RegionPairing.union_code)})
    if not codes:
        return []
    names = {u["code"]: u["name"] for u in await Union.select(Union.code, Union.name).where(Union.code.is_in(codes))}
    return [{"code": c, "name": names.get(c, c)} for c in codes]


def _catalog_filters(region: str | None, category: str | None, q: str | None) -> dict[str, Any]:
    """Filters as the service takes them; anything malformed is simply dropped."""
    region = region if region and len(region) <= 32 and region.replace("-", "").isalnum() and region.islower() else None
    category = category if category in CATEGORIES else None
    q = (q or "").strip()[:100] or None
    return {"region": region, "category": category, "q": q}


class CatalogPages(Page):
    opt = {"exclude_from_auth": True}

    @get("/products")
    async def products(
        self,
        request: Request,
        region: FromQuery[str | None] = None,
        category: FromQuery[str | None] = None,
        paired_with: FromQuery[str | None] = None,
        q: FromQuery[str | None] = None,
        page: FromQuery[str | None] = None,
    ) -> Template:
        user = await optional_user(request)
        filters = _catalog_filters(region, category, q)
        paired = paired_with if paired_with and len(paired_with) <= 32 and paired_with.replace("-", "").isalnum() else None
        number = _page(page)
        items, total = await catalog.list_products(
            status="listed", paired_with=[paired] if paired else None, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE, **filters
        )
        return render(
            request,
            "products.html",
            user=user,
            products=items,
            pager=pager(total, number),
            regions=await _regions(),
            categories=CATEGORIES,
            paired_unions=await _paired_unions(),
            filters={**filters, "paired_with": paired},
        )

    @get("/products/{product_id:int}")
    async def product(self, request: Request, product_id: FromPath[int]) -> Template:
        user = await optional_user(request)
        product = await catalog.get_product(product_id, listed_only=True)
        region = await get_region(product.region)
        return render(request, "product.html", user=user, product=product, region=region)


# --- buyer: the basket, the order form -----------------------------------------------------------


def read_basket(request: Request) -> dict[int, int]:
    """The basket cookie: "12:2,15:1" (product id: quantity)."""
    basket: dict[int, int] = {}
    for item in request.cookies.get(BASKET_COOKIE, "").split("."):
        pid, _, qty = item.partition("-")
        product_id, quantity = _int_or_none(pid), _int_or_none(qty, 1, 10_000)
        if product_id and quantity and len(basket) < BASKET_MAX_LINES:
            basket[product_id] = quantity
    return basket


def basket_cookie(basket: dict[int, int]) -> Cookie:
    value = ".".join(f"{pid}-{qty}" for pid, qty in basket.items())
    return Cookie(key=BASKET_COOKIE, value=value, path="/", httponly=True, samesite="strict", max_age=30 * 24 * 3600 if value else 0)


def _all(form: Any, key: str) -> list[Any]:
    """Every value of a repeated form field (checkboxes, lines); [] when there is none."""
    return list(form.getall(key, [])) if hasattr(form, "getall") else []


def _lines_from_form(form: Any) -> dict[int, int]:
    lines: dict[int, int] = {}
    for item in _all(form, "line"):
        pid, _, qty = str(item).partition(":")
        product_id, quantity = _int_or_none(pid), _int_or_none(qty, 1, 10_000)
        if product_id and quantity and len(lines) < BASKET_MAX_LINES:
            lines[product_id] = quantity
    return lines


async def basket_view(basket: dict[int, int]) -> dict[str, Any]:
    """The basket's lines at today's prices; products no longer on sale are marked."""
    lines = []
    total = 0
    for product_id, quantity in basket.items():
        try:
            product = await catalog.get_product(product_id)
        except DomainError:
            continue
        available = product.status == "listed"
        amount = product.price_fen * quantity
        if available:
            total += amount
        lines.append({"product": product, "quantity": quantity, "amount_fen": amount, "available": available})
    return {"lines": lines, "total_fen": total, "count": sum(l["quantity"] for l in lines if l["available"])}


def _selected_members(form: Any) -> list[int]:
    seen: list[int] = []
    for value in _all(form, "member"):
        member_id = _int_or_none(value)
        if member_id and member_id not in seen:
            seen.append(member_id)
    return seen


def split_preview(total_fen: int, selected: list[int], budget: dict[str, Any]) -> dict[str, Any]:
    """Each selected member's share of an even split (the same split the order will make),
    against what is left of their quota."""
    by_id = {m["member_id"]: m for m in budget["members"]}
    chosen = [m for m in selected if m in by_id]
    rows = []
    if chosen and total_fen:
        for member_id, share in orders.split_evenly(total_fen, chosen):
            member = by_id[member_id]
            rows.append(
                {
                    "member": member,
                    "share_fen": share,
                    "after_fen": member["remaining_fen"] - share,
                    "over": share > member["remaining_fen"],
                }
            )
    return {
        "rows": rows,
        "total_fen": total_fen,
        "members": len(chosen),
        "over": [r for r in rows if r["over"]],
        "too_small": bool(chosen) and 0 < total_fen < len(chosen),
    }


async def _paired_codes(union_id: int) -> list[str]:
    """The codes of the buyer's branch and every union above it: regions paired with any
    of them are the branch's 对口地区."""
    row = await Union.select(Union.path).where(Union.id == union_id).first()
    ids = [int(p) for p in (row["path"] if row else "").strip("/").split("/") if p]
    if not ids:
        return []
    return [u["code"] for u in await Union.select(Union.code).where(Union.id.is_in(ids))]


class ShopPages(Page):
    """基层工会采购员: the catalog with a basket, and the order form."""

    async def _shop_context(self, request: Request, basket: dict[int, int], selected: list[int] | None = None) -> dict[str, Any]:
        user = request.user
        query = request.query_params
        filters = _catalog_filters(query.get("region"), query.get("category"), query.get("q"))
        show_all = query.get("all") == "1"
        paired = None if show_all else await _paired_codes(user.union_id)
        number = _page(query.get("page"))
        products, total = await catalog.list_products(
            status="listed", paired_with=paired or None, limit=12, offset=(number - 1) * 12, **filters
        )
        year = budgets.budget_year(_now(request))
        budget = await budgets.branch_budget(user.union_id, year)
        budget["members"] = [m for m in budget["members"] if m["active"]]
        view = await basket_view(basket)
        selected = selected if selected is not None else []
        return {
            "products": products,
            "pager": pager(total, number, 12),
            "regions": await _regions(),
            "categories": CATEGORIES,
            "filters": filters,
            "show_all": show_all,
            "basket": view,
            "budget": budget,
            "selected": selected,
            "preview": split_preview(view["total_fen"], selected, budget),
            "idempotency_key": uuid.uuid4().hex,
            "in_basket": set(basket),
        }

    @get("/shop")
    async def shop(self, request: Request) -> Template:
        return render(request, "shop.html", **await self._shop_context(request, read_basket(request)))

    @post("/shop/basket", status_code=200)
    async def change_basket(self, request: Request) -> Response:
        """op=add|remove|inc|dec of one product; answers the basket partial (HTMX) or goes back."""
        form = await request.form()
        basket = read_basket(request)
        product_id = _int_or_none(form.get("product_id"))
        op = form.get("op", "add")
        if product_id:
            quantity = basket.get(product_id, 0)
            if op in ("add", "inc"):
                if quantity == 0:
                    await catalog.get_product(product_id, listed_only=True)  # not found: nothing to add
                if quantity or len(basket) < BASKET_MAX_LINES:
                    basket[product_id] = min(quantity + max(1, _int_or_none(form.get("quantity"), 1, 10_000) or 1), 10_000)
            elif op == "dec" and quantity > 1:
                basket[product_id] = quantity - 1
            elif op in ("dec", "remove"):
                basket.pop(product_id, None)
        cookie = basket_cookie(basket)
        if not is_htmx(request):
            return Redirect(path="/shop", status_code=303, cookies=[cookie])
        year = budgets.budget_year(_now(request))
        return render(
            request,
            "_basket.html",
            basket=await basket_view(basket),
            budget_year=year,
            cookies=[cookie],
            headers={"HX-Trigger": "basket-changed"},
        )

    @post("/shop/preview", status_code=200)
    async def preview(self, request: Request) -> Template:
        """The even split of the basket over the ticked members, live (HTMX)."""
        form = await request.form()
        lines = _lines_from_form(form) or read_basket(request)
        view = await basket_view(lines)
        year = budgets.budget_year(_now(request))
        budget = await budgets.branch_budget(request.user.union_id, year)
        budget["members"] = [m for m in budget["members"] if m["active"]]
        return render(request, "_preview.html", preview=split_preview(view["total_fen"], _selected_members(form), budget))

    @post("/shop/order", status_code=200)
    async def place(self, request: Request) -> Response:
        """Place the order through the same service as `POST /api/orders`, then start payment."""
        form = await request.form()
        lines = _lines_from_form(form) or read_basket(request)
        selected = _selected_members(form)
        key = str(form.get("idempotency_key") or "")[:64]

        async def again(status: int, error: dict[str, Any]) -> Template:
            context = await self._shop_context(request, lines, selected)
            _enrich(error, context)
            return render(request, "shop.html", status_code=status, error=error, **context)

        if not lines:
            return await again(400, ui.problem("采购清单是空的", "请先把商品加入采购清单。"))
        if not selected:
            return await again(400, ui.problem("请选择会员", "订单金额将平均分摊给所选会员，请至少勾选一名会员。"))
        if not key:
            key = uuid.uuid4().hex
        try:
            body = msgspec.convert(
                {"lines": [{"product_id": p, "quantity": q} for p, q in lines.items()], "members": selected}, OrderIn
            )
        except msgspec.ValidationError as exc:
            return await again(400, ui.problem("订单内容有误", str(exc)))
        settings = request.app.state.settings
        provider = provider_for(settings)
        now = _now(request)
        try:
            order_id, created = await orders.place_order(
                branch_id=request.user.union_id, user_id=request.user.id, body=body, key=key, now=now, provider=provider
            )
            if created:
                await orders.start_payment(order_id, provider, now)
        except DomainError as exc:
            explained = ui.explain(exc)
            return await again(_status_of(exc), explained)
        return Redirect(path=f"/orders/{order_id}?ok=placed", status_code=303, cookies=[basket_cookie({})])


def _enrich(error: dict[str, Any], context: dict[str, Any]) -> None:
    """Name the members over their quota and the products short of stock."""
    members = {m["member_id"]: m for m in context["budget"]["members"]}
    for m in error["extra"].get("members", []) if error["code"] == "cap_exceeded" else []:
        known = members.get(m.get("member_id"), {})
        remaining = max(m.get("cap_fen", 0) - m.get("spent_fen", 0) - m.get("held_fen", 0), 0)
        error["over_members"].append(
            {"name": known.get("name", f"会员 {m.get('member_id')}"), "member_no": known.get("member_no", ""), "requested_fen": m.get("requested_fen", 0), "remaining_fen": remaining}
        )
    titles = {l["product"].id: l["product"].title for l in context["basket"]["lines"]}
    for p in error["extra"].get("products", []) if error["code"] in ("out_of_stock", "not_listed") else []:
        if not isinstance(p, dict):
            continue
        pid = p.get("product_id")
        text = f"需要 {p.get('requested')}，仅剩 {p.get('available')}" if error["code"] == "out_of_stock" else ui.PRODUCT_STATES.get(p.get("status", ""), "不在售")
        error["products"].append({"title": titles.get(pid, f"商品 {pid}"), "text": text})


# --- orders ----------------------------------------------------------------------------------------


async def _union_names(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {u["id"]: u["name"] for u in await Union.select(Union.id, Union.name).where(Union.id.is_in(sorted(ids)))}


class OrderPages(Page):
    """Buyers (their branch), auditors (their subtree) and admins: orders and their details."""

    @get("/orders")
    async def orders(self, request: Request, status: FromQuery[str | None] = None, page: FromQuery[str | None] = None) -> Template:
        status = status if status in ui.ORDER_STATES else None
        number = _page(page)
        items, total = await orders.list_orders(request.user, status=status, year=None, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
        return render(
            request,
            "orders.html",
            orders=items,
            pager=pager(total, number),
            status=status,
            states=ui.ORDER_STATES,
            branches=await _union_names({o.branch_id for o in items}),
        )

    async def _detail(self, request: Request, order_id: int, status_code: int = 200, error: Any = None) -> Template:
        order = await orders.get_order(order_id, request.user)
        distribution = await reports.order_distribution(order_id)
        refund_rows = await refunds.list_refunds(order_id) if request.user.role in ("admin", "auditor", "buyer") else []
        branch = await budgets.get_union(order.branch_id)
        return render(
            request,
            "order.html",
            status_code=status_code,
            order=order,
            distribution=distribution,
            refunds=refund_rows,
            branch=branch,
            error=error,
        )

    @get("/orders/{order_id:int}")
    async def order(self, request: Request, order_id: FromPath[int]) -> Template:
        return await self._detail(request, order_id)

    @post("/orders/{order_id:int}/cancel", status_code=200, guards=[auth.buyer_only])
    async def cancel(self, request: Request, order_id: FromPath[int]) -> Response:
        try:
            await orders.cancel_order(order_id, request.user.union_id, _now(request))
        except ShopError as exc:
            if exc.code in ("not_found", "forbidden"):
                raise
            return await self._detail(request, order_id, status_code=_status_of(exc), error=ui.explain(exc))
        return Redirect(path=f"/orders/{order_id}?ok=cancelled", status_code=303)


# --- buyer: members and their yearly budget -----------------------------------------------------------


class MemberPages(Page):
    async def _members_page(self, request: Request, status_code: int = 200, **extra: Any) -> Template:
        query = request.query_params
        number = _page(query.get("page"))
        q = (query.get("q") or "").strip()[:50] or None
        items, total = await budgets.list_members(request.user.union_id, q=q, limit=50, offset=(number - 1) * 50)
        extra.setdefault("form", {"member_no": "", "name": ""})
        extra.setdefault("imported", None)
        extra.setdefault("import_errors", [])
        return render(request, "members.html", status_code=status_code, members=items, pager=pager(total, number, 50), q=q or "", **extra)

    @get("/members")
    async def members(self, request: Request) -> Template:
        return await self._members_page(request)

    @post("/members", status_code=200)
    async def add(self, request: Request) -> Response:
        form = await request.form()
        member_no = str(form.get("member_no") or "").strip()
        name = str(form.get("name") or "").strip()
        try:
            await budgets.create_member(request.user.union_id, member_no, name)
        except BudgetError as exc:
            return await self._members_page(
                request, status_code=_status_of(exc), error=ui.explain(exc), form={"member_no": member_no, "name": name}
            )
        return Redirect(path="/members?ok=added", status_code=303)

    @post("/members/{member_id:int}/active", status_code=200)
    async def set_active(self, request: Request, member_id: FromPath[int]) -> Response:
        form = await request.form()
        member = await budgets.update_member(member_id, branch_id=request.user.union_id, active=form.get("active") == "1")
        if is_htmx(request):
            return render(request, "_member_row.html", m=member)
        return Redirect(path="/members?ok=saved", status_code=303)

    @post("/members/import", status_code=200, request_max_body_size=IMPORT_MAX_BYTES)
    async def import_csv(self, request: Request) -> Template:
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return await self._members_page(request, status_code=400, error=ui.problem("请选择要导入的 CSV 文件"))
        data = await upload.read()
        try:
            result = await budgets.import_members(request.user.union_id, data)
        except BudgetError as exc:
            errors = [{"line": e.get("line"), "message": ui.translate(e.get("message", ""))} for e in exc.extra.get("errors", [])]
            explained = ui.explain(exc)
            if errors:
                explained = {**explained, "title": f"文件中有 {len(errors)} 行有误，全部未导入；请改正后重新导入。", "details": []}
            return await self._members_page(request, status_code=_status_of(exc), error=explained, import_errors=errors)
        return await self._members_page(request, imported=result)


class BudgetPages(Page):
    @get("/budget")
    async def budget(self, request: Request, year: FromQuery[str | None] = None) -> Template:
        chosen = _year(request, year)
        budget = await budgets.branch_budget(request.user.union_id, chosen)
        totals = {
            "spent_fen": sum(m["spent_fen"] for m in budget["members"]),
            "held_fen": sum(m["held_fen"] for m in budget["members"]),
            "remaining_fen": sum(m["remaining_fen"] for m in budget["members"]),
        }
        branch = await budgets.get_union(request.user.union_id)
        return render(request, "budget.html", budget=budget, totals=totals, years=_years(request), year=chosen, branch=branch)


# --- supplier ----------------------------------------------------------------------------------------------

PRODUCT_FIELDS = ("title", "region", "category", "unit", "price", "stock", "description")


def _product_form(form: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's fields -> (values for the service, {field: Chinese problem})."""
    raw = {f: str(form.get(f) or "").strip() for f in PRODUCT_FIELDS}
    problems: dict[str, str] = {}
    if not raw["title"]:
        problems["title"] = "请填写商品名称"
    elif len(raw["title"]) > 60:
        problems["title"] = "商品名称最多 60 个字"
    if not raw["unit"]:
        problems["unit"] = "请填写单位，如“箱”“盒”“袋”"
    elif len(raw["unit"]) > 8:
        problems["unit"] = "单位最多 8 个字"
    if raw["category"] not in CATEGORIES:
        problems["category"] = "请选择品类"
    if not raw["region"]:
        problems["region"] = "请选择产地"
    price = ui.parse_yuan(raw["price"])
    if price is None or not 1 <= price <= 100_000_00:
        problems["price"] = "请填写价格（元），如 88 或 88.50，最高 100000 元"
    stock = _int_or_none(raw["stock"], 0, 1_000_000)
    if stock is None:
        problems["stock"] = "请填写库存数量（0 到 1000000 的整数）"
    if len(raw["description"]) > 2000:
        problems["description"] = "商品介绍最多 2000 个字"
    values = {
        "title": raw["title"],
        "region": raw["region"],
        "category": raw["category"],
        "unit": raw["unit"],
        "price_fen": price,
        "stock": stock,
        "description": raw["description"],
    }
    return values, problems


class SupplierPages(Page):
    async def _regions_of_supplier(self, request: Request) -> list[Any]:
        supplier = await get_supplier(request.user.supplier_id)
        return [await get_region(code) for code in supplier.regions]

    async def _form(self, request: Request, product: Any | None, values: dict[str, Any], problems: dict[str, str], error: Any = None, status_code: int = 200) -> Template:
        return render(
            request,
            "supplier_product_form.html",
            status_code=status_code,
            product=product,
            values=values,
            problems=problems,
            error=error,
            regions=await self._regions_of_supplier(request),
            categories=CATEGORIES,
        )

    @get("/supplier/products")
    async def products(self, request: Request, status: FromQuery[str | None] = None, page: FromQuery[str | None] = None) -> Template:
        status = status if status in ui.PRODUCT_STATES else None
        number = _page(page)
        items, total = await catalog.list_products(
            supplier_id=request.user.supplier_id, status=status, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
        )
        supplier = await get_supplier(request.user.supplier_id)
        return render(
            request, "supplier_products.html", products=items, pager=pager(total, number), status=status, states=ui.PRODUCT_STATES, supplier=supplier
        )

    @get("/supplier/products/new")
    async def new(self, request: Request) -> Template:
        values = {"title": "", "region": "", "category": "", "unit": "", "price": "", "stock": "", "description": ""}
        return await self._form(request, None, values, {})

    @post("/supplier/products", status_code=200)
    async def create(self, request: Request) -> Response:
        form = await request.form()
        values, problems = _product_form(form)
        shown = {f: str(form.get(f) or "") for f in PRODUCT_FIELDS}
        if problems:
            return await self._form(request, None, shown, problems, status_code=400)
        try:
            await catalog.create_product(request.user.supplier_id, **values)
        except DomainError as exc:
            return await self._form(request, None, shown, {}, error=ui.explain(exc), status_code=_status_of(exc))
        return Redirect(path="/supplier/products?ok=created", status_code=303)

    @get("/supplier/products/{product_id:int}/edit")
    async def edit(self, request: Request, product_id: FromPath[int]) -> Template:
        product = await catalog.get_product(product_id, supplier_id=request.user.supplier_id)
        values = {
            "title": product.title,
            "region": product.region,
            "category": product.category,
            "unit": product.unit,
            "price": ui.yuan_plain(product.price_fen),
            "stock": str(product.stock),
            "description": product.description,
        }
        return await self._form(request, product, values, {})

    @post("/supplier/products/{product_id:int}", status_code=200)
    async def update(self, request: Request, product_id: FromPath[int]) -> Response:
        product = await catalog.get_product(product_id, supplier_id=request.user.supplier_id)
        form = await request.form()
        values, problems = _product_form(form)
        shown = {f: str(form.get(f) or "") for f in PRODUCT_FIELDS}
        if problems:
            return await self._form(request, product, shown, problems, status_code=400)
        try:
            await catalog.update_product(request.user.supplier_id, product_id, values)
        except DomainError as exc:
            return await self._form(request, product, shown, {}, error=ui.explain(exc), status_code=_status_of(exc))
        return Redirect(path="/supplier/products?ok=saved", status_code=303)

    @post("/supplier/products/{product_id:int}/submit", status_code=200)
    async def submit(self, request: Request, product_id: FromPath[int]) -> Response:
        product = await catalog.submit_product(request.user.supplier_id, product_id)
        if is_htmx(request):
            return render(request, "_supplier_product_row.html", p=product)
        return Redirect(path="/supplier/products?ok=submitted", status_code=303)

    @get("/supplier/orders")
    async def orders(self, request: Request, status: FromQuery[str | None] = None, page: FromQuery[str | None] = None) -> Template:
        status = status if status in ui.ORDER_STATES else None
        number = _page(page)
        items, total = await orders.list_orders(request.user, status=status, year=None, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
        return render(request, "supplier_orders.html", orders=items, pager=pager(total, number), status=status, states=ui.ORDER_STATES)


# --- admin -------------------------------------------------------------------------------------------------


async def _pending_transfers(limit: int = 200) -> tuple[list[Any], int]:
    """Orders waiting for a bank transfer to arrive, oldest first (the page's own list)."""
    where = (Order.status == orders.OPEN) & (Order.provider == "transfer")
    ids = [r["id"] for r in await Order.select(Order.id).where(where).order_by(Order.id).limit(limit)]
    return await orders.orders_out(ids), await Order.count().where(where)


def _flatten(nodes: list[dict], depth: int = 0) -> list[dict]:
    rows = []
    for node in nodes:
        rows.append({**node, "depth": depth, "has_children": bool(node["children"])})
        rows.extend(_flatten(node["children"], depth + 1))
    return rows


class AdminPages(Page):
    @get("/admin/reviews")
    async def reviews(self, request: Request, page: FromQuery[str | None] = None) -> Template:
        number = _page(page)
        items, total = await catalog.list_products(status="pending_review", limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
        return render(request, "admin_reviews.html", products=items, pager=pager(total, number))

    @post("/admin/reviews/{product_id:int}/approve", status_code=200)
    async def approve(self, request: Request, product_id: FromPath[int]) -> Response:
        try:
            product = await catalog.approve_product(product_id)
        except DomainError as exc:
            return self._review_result(request, product_id, None, ui.explain(exc))
        return self._review_result(request, product_id, product, None)

    @post("/admin/reviews/{product_id:int}/reject", status_code=200)
    async def reject(self, request: Request, product_id: FromPath[int]) -> Response:
        form = await request.form()
        reason = str(form.get("reason") or "").strip()
        if not reason:
            return self._review_result(request, product_id, None, ui.problem("请填写驳回原因"))
        try:
            product = await catalog.reject_product(product_id, reason[:200])
        except DomainError as exc:
            return self._review_result(request, product_id, None, ui.explain(exc))
        return self._review_result(request, product_id, product, None)

    def _review_result(self, request: Request, product_id: int, product: Any, error: Any) -> Response:
        if is_htmx(request):
            return render(request, "_review_result.html", product_id=product_id, product=product, error=error)
        if error:
            return _error_page(request, 409, error["title"], error["details"])
        return Redirect(path="/admin/reviews", status_code=303)

    @get("/admin/orders")
    async def admin_orders(self, request: Request) -> Template:
        pending, pending_total = await _pending_transfers()
        late, late_total = await orders.list_needs_refund(limit=200, offset=0)
        branches = await _union_names({o.branch_id for o in pending + late})
        return render(
            request, "admin_orders.html", pending=pending, pending_total=pending_total, late=late, late_total=late_total, branches=branches
        )

    @post("/admin/orders/{order_id:int}/confirm", status_code=200)
    async def confirm(self, request: Request, order_id: FromPath[int]) -> Response:
        form = await request.form()
        reference = str(form.get("reference") or "").strip()[:64]
        error = None
        if not reference:
            error = ui.problem("请填写银行流水上的转账附言")
        else:
            try:
                await orders.confirm_transfer(order_id, reference, _now(request))
            except ShopError as exc:
                error = ui.explain(exc)
        order = await orders.get_order(order_id, request.user)
        if is_htmx(request):
            return render(request, "_confirm_result.html", order=order, error=error, reference=reference)
        if error:
            return _error_page(request, _status_of_error(error), error["title"], error["details"])
        return Redirect(path="/admin/orders", status_code=303)

    @post("/admin/orders/{order_id:int}/refund", status_code=200)
    async def refund(self, request: Request, order_id: FromPath[int]) -> Response:
        """Give back a payment that arrived after the order was no longer held (whole)."""
        error = None
        try:
            await refunds.refund_order(order_id, RefundIn(), user_id=request.user.id, now=_now(request), settings=request.app.state.settings)
        except ShopError as exc:
            error = ui.explain(exc)
        order = await orders.get_order(order_id, request.user)
        if is_htmx(request):
            return render(request, "_refund_result.html", order=order, error=error)
        if error:
            return _error_page(request, _status_of_error(error), error["title"], error["details"])
        return Redirect(path="/admin/orders", status_code=303)

    @get("/admin/policy")
    async def policy(self, request: Request) -> Template:
        return await self._policy_page(request)

    async def _policy_page(self, request: Request, status_code: int = 200, error: Any = None, form: dict | None = None) -> Template:
        current = budgets.budget_year(_now(request))
        policies = [await budgets.get_policy(y) for y in range(current + 1, current - 3, -1)]
        return render(
            request,
            "admin_policy.html",
            status_code=status_code,
            policies=policies,
            current=current,
            error=error,
            form=form or {"year": str(current), "cap": ""},
            default_cap=budgets.DEFAULT_CAP_FEN,
        )

    @post("/admin/policy", status_code=200)
    async def set_policy(self, request: Request) -> Response:
        form = await request.form()
        shown = {"year": str(form.get("year") or ""), "cap": str(form.get("cap") or "")}
        year = _int_or_none(shown["year"], budgets.YEAR_MIN, budgets.YEAR_MAX)
        cap = ui.parse_yuan(shown["cap"])
        if year is None or cap is None:
            error = ui.problem("请填写年度和每人每年的额度（元）")
            return await self._policy_page(request, status_code=400, error=error, form=shown)
        try:
            await budgets.set_cap(year, cap)
        except BudgetError as exc:
            return await self._policy_page(request, status_code=_status_of(exc), error=ui.explain(exc), form=shown)
        return Redirect(path="/admin/policy?ok=cap", status_code=303)

    @get("/admin/targets")
    async def targets(self, request: Request, year: FromQuery[str | None] = None) -> Template:
        chosen = _year(request, year)
        rows = _flatten(await budgets.targets_report(None, chosen))
        return render(request, "admin_targets.html", rows=rows, year=chosen, years=_years(request))

    @post("/admin/targets/{union_id:int}/{year:int}", status_code=200)
    async def set_target(self, request: Request, union_id: FromPath[int], year: FromPath[int]) -> Response:
        form = await request.form()
        target = ui.parse_yuan(str(form.get("target") or ""))
        error = None
        if target is None:
            error = ui.problem("请填写目标金额（元）")
        else:
            try:
                await budgets.set_target(union_id, year, target)
            except BudgetError as exc:
                error = ui.explain(exc)
        if not is_htmx(request):
            if error:
                return _error_page(request, _status_of_error(error), error["title"], error["details"])
            return Redirect(path=f"/admin/targets?year={year}", status_code=303)
        rows = {r["union_id"]: r for r in _flatten(await budgets.targets_report(None, year))}
        row = rows.get(union_id)
        if row is None:
            raise BudgetError("not_found", f"union {union_id} does not exist")
        return render(request, "_target_row.html", r=row, year=year, error=error, saved=error is None)


def _status_of_error(error: dict[str, Any]) -> int:
    return CODES.get(error.get("code", ""), (400, ""))[0]


# --- reports and audit (admin, auditor) ------------------------------------------------------------------------


def _chart(roots: list[dict]) -> dict[str, Any] | None:
    """The horizontal bar chart at the top: the children of the root (or the roots)."""
    nodes = roots[0]["children"] if len(roots) == 1 and roots[0]["children"] else roots
    if not nodes:
        return None
    scale = max([max(n["spent_fen"], n["target_fen"] or 0) for n in nodes] + [1])
    bars = []
    for i, n in enumerate(nodes):
        bars.append(
            {
                "node": n,
                "y": i * 34,
                "spent_w": (n["spent_fen"] * 1000) // scale,
                "target_w": ((n["target_fen"] or 0) * 1000) // scale,
                "class": ui.progress_class(n["spent_fen"], n["target_fen"]),
                "label": ui.percent(n["spent_fen"], n["target_fen"]) if n["target_fen"] else "未设目标",
            }
        )
    title = roots[0]["name"] if len(roots) == 1 and roots[0]["children"] else "各工会"
    return {"bars": bars, "height": len(bars) * 34 + 8, "title": title}


class ReportPages(Page):
    @get("/reports/targets")
    async def targets(self, request: Request, year: FromQuery[str | None] = None, union_id: FromQuery[str | None] = None) -> Template:
        chosen = _year(request, year)
        root = await budgets.scope_root(request.user, _int_or_none(union_id))
        tree = await budgets.targets_report(root, chosen)
        rows = _flatten(tree)
        root_union = await budgets.get_union(root) if root is not None else None
        parent_link = None
        if root_union and root_union["parent_id"] and (
            request.user.role == "admin" or await budgets.is_in_subtree(root_union["parent_id"], request.user.union_id)
        ):
            parent_link = root_union["parent_id"]
        export = urlencode({k: v for k, v in {"year": chosen, "union_id": root}.items() if v is not None})
        return render(
            request,
            "reports_targets.html",
            rows=rows,
            chart=_chart(tree),
            year=chosen,
            years=_years(request),
            cap_fen=await budgets.cap_for_year(chosen),
            root_union=root_union,
            parent_link=parent_link,
            export=export,
        )

    @get("/audit/members")
    async def audit_members(
        self, request: Request, year: FromQuery[str | None] = None, min_ratio: FromQuery[str | None] = None, page: FromQuery[str | None] = None
    ) -> Template:
        chosen = _year(request, year)
        ratios = {"0": "不限", "0.5": "50%", "0.8": "80%", "0.9": "90%", "1": "100%（已用满）"}
        ratio = min_ratio if min_ratio in ratios else "0.9"
        number = _page(page)
        root = await budgets.scope_root(request.user, None)
        items, total = await budgets.audit_members(root, chosen, float(ratio), PAGE_SIZE, (number - 1) * PAGE_SIZE)
        export = urlencode({"year": chosen, "min_ratio": ratio})
        return render(
            request,
            "audit_members.html",
            items=items,
            pager=pager(total, number),
            year=chosen,
            years=_years(request),
            ratio=ratio,
            ratios=ratios,
            export=export,
        )

    @get("/audit/ledger")
    async def ledger(
        self,
        request: Request,
        member_id: FromQuery[str | None] = None,
        order_id: FromQuery[str | None] = None,
        kind: FromQuery[str | None] = None,
        year: FromQuery[str | None] = None,
        page: FromQuery[str | None] = None,
    ) -> Template:
        filters = {
            "member_id": _int_or_none(member_id),
            "order_id": _int_or_none(order_id),
            "kind": kind if kind in ui.LEDGER_KINDS else None,
            "year": _int_or_none(year, budgets.YEAR_MIN, budgets.YEAR_MAX),
        }
        number = _page(page)
        root = await budgets.scope_root(request.user, None)
        items, total = await budgets.ledger_page(root, limit=50, offset=(number - 1) * 50, **filters)
        ids = sorted({e["member_id"] for e in items})
        members = (
            {m["id"]: m for m in await Member.select(Member.id, Member.member_no, Member.name).where(Member.id.is_in(ids))} if ids else {}
        )
        export = urlencode({k: v for k, v in filters.items() if v is not None})
        return render(
            request,
            "audit_ledger.html",
            items=items,
            members=members,
            pager=pager(total, number, 50),
            filters=filters,
            kinds=ui.LEDGER_KINDS,
            years=_years(request),
            export=export,
        )

    @get("/audit/ledger/verify")
    async def verify(self, request: Request, year: FromQuery[str | None] = None) -> Template:
        chosen = _int_or_none(year, budgets.YEAR_MIN, budgets.YEAR_MAX)
        root = await budgets.scope_root(request.user, None)
        result = await budgets.verify_scope(root, chosen)
        template = "_verify.html" if is_htmx(request) else "verify.html"
        return render(request, template, result=result, year=chosen)


ROUTES = {
    "public": [LoginPages, CatalogPages],
    "any": [HomePage],
    "buyer": [ShopPages, MemberPages, BudgetPages],
    "reader": [OrderPages],
    "supplier": [SupplierPages],
    "admin": [AdminPages],
    "auditor": [ReportPages],
}
