"""Reading the pages' forms and query strings: page numbers, ids, the basket cookie, order lines,
ticked members and the supplier's product form."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import Cookie

from catalog import regions
from common.schemas import ID_MAX
from shop.web import ui

BASKET_COOKIE = "shop_basket"
BASKET_MAX_LINES = 50
IMPORT_MAX_BYTES = 8 * 1024 * 1024

def page_number(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 100_000))
    except ValueError:
        return 1


def int_or_none(value: str | None, low: int = 1, high: int = ID_MAX) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if low <= number <= high else None


def read_basket(request: Request) -> dict[int, int]:
    """The basket cookie: "12-2.15-1" (product id-quantity, lines joined by dots)."""
    basket: dict[int, int] = {}
    for item in request.cookies.get(BASKET_COOKIE, "").split("."):
        pid, _, qty = item.partition("-")
        product_id, quantity = int_or_none(pid), int_or_none(qty, 1, 10_000)
        if product_id and quantity and len(basket) < BASKET_MAX_LINES:
            basket[product_id] = quantity
    return basket


def basket_cookie(basket: dict[int, int]) -> Cookie:
    value = ".".join(f"{pid}-{qty}" for pid, qty in basket.items())
    return Cookie(key=BASKET_COOKIE, value=value, path="/", httponly=True, samesite="strict", max_age=30 * 24 * 3600 if value else 0)


def form_values(form: Any, key: str) -> list[Any]:
    """Every value of a repeated form field (checkboxes, lines); [] when there is none."""
    return list(form.getall(key, [])) if hasattr(form, "getall") else []


def lines_from_form(form: Any) -> dict[int, int]:
    lines: dict[int, int] = {}
    for item in form_values(form, "line"):
        pid, _, qty = str(item).partition(":")
        product_id, quantity = int_or_none(pid), int_or_none(qty, 1, 10_000)
        if product_id and quantity and len(lines) < BASKET_MAX_LINES:
            lines[product_id] = quantity
    return lines


def selected_members(form: Any) -> list[int]:
    seen: list[int] = []
    for value in form_values(form, "member"):
        member_id = int_or_none(value)
        if member_id and member_id not in seen:
            seen.append(member_id)
    return seen


# `stock_shown` (hidden, edit form only): the stock the page showed when it was opened.
PRODUCT_FIELDS = ("title", "region", "category", "unit", "price", "stock", "stock_shown", "description")


def product_form(form: Any, *, editing: bool = False) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's fields -> (values for the service, {field: Chinese problem}).

    Editing, the stock typed is a change from the stock the page showed: the service gets
    `stock_delta` (typed - shown; none when they are equal), so units that orders reserved
    since the page was opened stay reserved."""
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
    if raw["category"] not in regions.CATEGORIES:
        problems["category"] = "请选择品类"
    if not raw["region"]:
        problems["region"] = "请选择产地"
    price = ui.parse_yuan(raw["price"])
    if price is None or not 1 <= price <= 100_000_00:
        problems["price"] = "请填写价格（元），如 88 或 88.50，最高 100000 元"
    stock = int_or_none(raw["stock"], 0, 1_000_000)
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
        "description": raw["description"],
    }
    if not editing:
        values["stock"] = stock
    elif (shown := int_or_none(raw["stock_shown"], 0, 1_000_000)) is None:
        problems["stock"] = "页面已过期，请重新打开编辑页后再修改"
    elif stock is not None and stock != shown:
        values["stock_delta"] = stock - shown
    return values, problems
