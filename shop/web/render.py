"""Rendering pages: who is asking, the navigation, templates and HTMX partials, the pager, and
errors as pages (a login redirect, a 403 page) instead of problem+json."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, urlencode

from litestar import Controller, Request, Response
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Redirect, Template

from budgets import checks, ledger
from common.errors import DomainError
from shop.auth.accounts import Principal
from shop.auth.tokens import principal_of_request
from shop.errors import CODES, path_id_out_of_range
from shop.web import ui
from shop.web.forms import int_or_none

logger = logging.getLogger("shop.web")

PAGE_SIZE = 20

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
        ("/admin/users", "账号"),
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
    "photo_added": "图片已上传。",
    "photo_removed": "图片已删除。",
    "photo_review": "图片已更新；商品已转为待审核，审核通过后重新上架。",
    "cap": "额度已保存。",
    "bye": "已退出登录。",
    "password": "密码已修改，其他设备上的登录已失效。",
    "reset": "密码已重置，该账号原有的登录已失效。",
}


# --- who is asking ----------------------------------------------------------------------


def user_of(request: Request) -> Principal | None:
    user = request.scope.get("user")
    return user if isinstance(user, Principal) else None


async def optional_user(request: Request) -> Principal | None:
    """On public pages (no auth middleware): the logged-in user, if the cookie says so."""
    return await principal_of_request(request)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def safe_next(target: str | None) -> str | None:
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
            "qs": lambda **changes: query_url(request, **changes),
            **context,
        },
        status_code=status_code,
        cookies=cookies,
        headers=headers,
    )


def query_url(request: Request, **changes: Any) -> str:
    """The current query string with some parameters changed (None or "" drops one)."""
    params = {k: v for k, v in request.query_params.items()}
    for key, value in changes.items():
        params[key] = value
    kept = {k: v for k, v in params.items() if v not in (None, "") and k != "ok"}
    return "?" + urlencode(kept) if kept else "?"


def pager(total: int, page: int, size: int = PAGE_SIZE) -> dict[str, int]:
    pages = max(1, -(-total // size))
    return {"page": page, "pages": pages, "total": total, "size": size}


def clock(request: Request):
    return request.app.state.clock()


def year_of(request: Request, value: str | None) -> int:
    return int_or_none(value, checks.YEAR_MIN, checks.YEAR_MAX) or ledger.budget_year(clock(request))


def years_for(request: Request) -> list[int]:
    current = ledger.budget_year(clock(request))
    return list(range(current + 1, current - 4, -1))


def status_of(exc: Any) -> int:
    return CODES.get(getattr(exc, "code", ""), (500, ""))[0]


# --- errors, as pages -------------------------------------------------------------------


def error_page(request: Request, status: int, title: str, details: list[str] | None = None) -> Response:
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
        return error_page(request, 403, "页面已过期，请刷新页面后重新提交。")
    return error_page(request, 403, "没有权限访问此页面", ["当前账号的角色不能使用这项功能；如需开通，请联系管理员。"])


def _not_found(request: Request, exc: Exception) -> Response:
    return error_page(request, 404, "找不到该页面或记录")


def _bad_request(request: Request, exc: HTTPException) -> Response:
    if isinstance(exc, ValidationException) and path_id_out_of_range(exc):
        return _not_found(request, exc)
    return error_page(request, 400, "请求的内容有误", ["请返回上一页检查后重试。"])


def _domain(request: Request, exc: Exception) -> Response:
    explained = ui.explain(exc)
    status = status_of(exc)
    if status == 401:
        return _unauthenticated(request, exc)
    return error_page(request, status, explained["title"], explained["details"])


def _http(request: Request, exc: HTTPException) -> Response:
    if exc.status_code >= 500:
        logger.error("server error on page %s %s: %r", request.method, request.url.path, exc)
        return error_page(request, exc.status_code, "系统暂时无法完成请求，请稍后再试")
    if exc.status_code == 429:
        return error_page(request, 429, "操作太频繁，请稍后再试")
    if exc.status_code == 413:
        return error_page(request, 413, "文件太大")
    return error_page(request, exc.status_code, "无法完成请求")


def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on page %s %s", request.method, request.url.path, exc_info=exc)
    return error_page(request, 500, "系统出错了，已记录，请稍后再试")


PAGE_EXCEPTION_HANDLERS = {
    401: _unauthenticated,
    403: _forbidden,
    404: _not_found,
    400: _bad_request,
    DomainError: _domain,
    # (one refusal type for every package)
    # (mapped to a page with its message in Chinese)
    HTTPException: _http,
    Exception: _unexpected,
}


class Page(Controller):
    """Every page: HTML errors (a login redirect, a 403 page) instead of problem+json."""

    exception_handlers = PAGE_EXCEPTION_HANDLERS
    include_in_schema = False
