"""Rendering pages: who is asking, the navigation, templates and HTMX partials, the pager, and
errors as pages (a login redirect, a 403 page) instead of problem+json."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from litestar import Controller, Request, Response
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Redirect, Template

from budgets import checks, ledger, unused
from common.clock import local
from common.errors import DomainError
from shop.auth.accounts import Principal
from shop.auth.tokens import principal_of_request
from shop.db import database_unreachable
from shop.errors import CODES, path_id_out_of_range
from shop.notifications.inbox import unread_count
from shop.web import ui
from shop.web.forms import int_or_none

logger = logging.getLogger("shop.web")

PAGE_SIZE = 20

HOME = {
    "buyer": "/shop", "supplier": "/supplier/products", "admin": "/admin/reviews", "auditor": "/reports/targets",
    "approver": "/approvals",
}

NAV: dict[str | None, list[tuple[str, str]]] = {
    "buyer": [
        ("/shop", "采购下单"),
        ("/orders", "我的订单"),
        ("/after-sales", "售后"),
        ("/members", "会员"),
        ("/budget", "年度额度"),
        ("/addresses", "收货与开票"),
        ("/reports/statement", "对账单"),
        ("/products", "商品目录"),
    ],
    "supplier": [
        ("/supplier/products", "我的商品"),
        ("/supplier/shipments", "发货"),
        ("/supplier/orders", "订单"),
        ("/after-sales", "售后"),
        ("/reports/settlement", "结算"),
        ("/products", "商品目录"),
    ],
    "admin": [
        ("/admin/reviews", "商品审核"),
        ("/admin/products", "商品管理"),
        ("/admin/orders", "收款与退款"),
        ("/after-sales", "售后"),
        ("/admin/policy", "额度与审批"),
        ("/admin/targets", "帮扶目标"),
        ("/reports/targets", "目标完成"),
        ("/reports/unused", "剩余额度"),
        ("/audit/members", "额度审计"),
        ("/audit/ledger", "额度流水"),
        ("/audit/trail", "操作记录"),
        ("/reports/settlement", "结算对账"),
        ("/orders", "订单"),
        ("/admin/users", "账号"),
    ],
    "auditor": [
        ("/reports/targets", "目标完成"),
        ("/reports/unused", "剩余额度"),
        ("/audit/members", "额度审计"),
        ("/audit/ledger", "额度流水"),
        ("/audit/trail", "操作记录"),
        ("/reports/statement", "对账单"),
        ("/orders", "订单"),
        ("/after-sales", "售后"),
    ],
    "approver": [
        ("/approvals", "订单审批"),
        ("/orders", "订单"),
        ("/products", "商品目录"),
    ],
    None: [("/products", "商品目录")],
}

# ?ok=… after a redirect: what just happened, said once at the top of the page
NOTICES = {
    "placed": "订单已提交，额度已为所选会员预留。",
    "cancelled": "订单已取消，预留的额度和库存已释放。",
    "added": "会员已添加。",
    "link": "已更换该会员的额度查询链接，原链接和已打印的二维码已失效；请重新下载或打印。",
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
    "address": "收货地址已保存。",
    "address_deleted": "收货地址已删除。",
    "invoice_profile": "发票抬头已保存。",
    "refunded": "退款已完成，金额已按比例退回会员额度。",
    "after_sale": "售后申请已提交，等待供应商或管理员处理。",
    "received": "已确认收货。",
    "shipped": "已发货，采购单位会收到通知。",
    "invoice_issued": "发票已上传，采购单位会收到通知并确认。",
    "invoice_accepted": "发票已接受。",
    "invoice_rejected": "发票已退回，供应商会收到退回原因并重新开具。",
    "delisted": "商品已下架。",
    "read": "通知已全部标为已读。",
    "approved": "订单已审批通过，采购员会收到通知，可以付款了。",
    "rejected": "订单已驳回，预留的额度和库存已释放，采购员会看到驳回原因。",
    "approval_rule": "审批规则已保存，之后提交的订单按新规则审批。",
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
            "nav": nav_for(user),
            "unread": getattr(request.state, "unread", 0) if user else 0,
            "yearend": getattr(request.state, "yearend", None) if user else None,
            "path": request.url.path,
            "qs": lambda **changes: query_url(request, **changes),
            **context,
        },
        status_code=status_code,
        cookies=cookies,
        headers=headers,
    )


def nav_for(user: Principal | None) -> list[tuple[str, str]]:
    """The role's navigation; a buyer who also approves gets the approvals beside its buying."""
    nav = NAV.get(user.role if user else None, NAV[None])
    if user is not None and user.role == "buyer" and user.approves:
        nav = [nav[0], ("/approvals", "订单审批"), *nav[1:]]
    return nav


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


def _where_they_were(request: Request) -> str | None:
    """The page to come back to after logging in: this page (a GET), the page an HTMX click
    or a form was sent from (HX-Current-URL, Referer), if it is one of this site's."""
    if request.method == "GET" and not is_htmx(request):
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return here if request.url.path != "/" else None
    came_from = request.headers.get("hx-current-url") or request.headers.get("referer") or ""
    parts = urlsplit(came_from)
    if parts.netloc and parts.netloc != request.url.netloc:
        return None
    back = safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))
    return back if back and not back.startswith("/login") else None


def _unauthenticated(request: Request, exc: Exception) -> Response:
    """To the login page, saying why when a session was there but no longer counts (expired,
    logged out elsewhere, password changed), and coming back here afterwards."""
    params = {}
    if back := _where_they_were(request):
        params["next"] = back
    if request.cookies.get("shop_token"):
        params["expired"] = "1"
    target = "/login" + ("?" + urlencode(params, quote_via=quote) if params else "")
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
        return error_page(request, 413, "文件太大", ["上传的文件超过了允许的大小（图片、发票最大 5 MB），没有保存任何内容。请返回上一页，压缩或换一个文件后重试。"])
    return error_page(request, exc.status_code, "无法完成请求")


def _unexpected(request: Request, exc: Exception) -> Response:
    if database_unreachable(exc):
        logger.warning("database unreachable on page %s %s: %r", request.method, request.url.path, exc)
        return error_page(request, 503, "服务暂时不可用，请稍后再试", ["数据库暂时无法连接，刚才的操作没有生效。"])
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


def page_aware(api_handlers: dict[Any, Any]) -> dict[Any, Any]:
    """The app's own exception handlers (errors no route answered: an unknown address, a
    method a path does not take): a page for every path that is not the API's."""
    from shop.web import is_page_path

    def on_http(request: Request, exc: HTTPException) -> Response:
        if not is_page_path(request.url.path):
            return api_handlers[HTTPException](request, exc)
        status = exc.status_code
        handler = {401: _unauthenticated, 403: _forbidden, 404: _not_found, 405: _not_found, 400: _bad_request}.get(status, _http)
        return handler(request, exc)

    def on_any(request: Request, exc: Exception) -> Response:
        if not is_page_path(request.url.path):
            return api_handlers[Exception](request, exc)
        return _unexpected(request, exc)

    return {**api_handlers, HTTPException: on_http, Exception: on_any}


async def before_page(request: Request) -> None:
    """Before a page: how many of the user's notifications are unread (the bell in the top bar),
    and from 1 December a buyer's members with quota left (the year-end banner)."""
    user = user_of(request)
    if user is not None and not is_htmx(request) and request.method == "GET":
        request.state.unread = await unread_count(user.id)
        if user.role == "buyer" and user.union_id is not None:
            request.state.yearend = await year_end(user.union_id, clock(request))


YEAR_END_MONTH = 12  # the quota must be used by 31 December: the banner shows all December


async def year_end(branch_id: int, now: datetime) -> dict[str, int] | None:
    """In December (Shanghai): `{year, members_with_quota, remaining_fen}` of the branch, when
    any member has quota left; else None."""
    today = local(now)
    if today.month != YEAR_END_MONTH:
        return None
    summary = await unused.branch_summary(branch_id, today.year)
    return {**summary, "year": today.year} if summary["members_with_quota"] else None


class Page(Controller):
    """Every page: HTML errors (a login redirect, a 403 page) instead of problem+json."""

    exception_handlers = PAGE_EXCEPTION_HANDLERS
    include_in_schema = False
    before_request = before_page
