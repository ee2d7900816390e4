"""Reading the pages' forms and query strings: page numbers, ids, the basket cookie, order lines,
ticked members and the supplier's product form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar import Request
from litestar.datastructures import Cookie

from catalog import regions
from common.schemas import ID_MAX
from shop.web import ui

BASKET_COOKIE = "shop_basket"
BASKET_MAX_LINES = 50
MEMBERS_COOKIE = "shop_members"  # the members ticked on the order form, kept while the buyer browses
MEMBERS_COOKIE_MAX = 3800  # a cookie holds about 4 KB: a selection that does not fit is not kept
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


@dataclass
class Selection:
    """The order form's members: who is ticked, how the total is split (`even`, or `custom`
    amounts in fen per member), as posted or as kept in the cookie."""

    members: list[int] = field(default_factory=list)
    split: str = "even"
    amounts: dict[int, int] = field(default_factory=dict)  # custom: the amounts understood
    typed: dict[int, str] = field(default_factory=dict)  # custom: what was typed, as typed
    problems: dict[int, str] = field(default_factory=dict)  # custom: amounts not understood


def _ranges(ids: list[int]) -> list[str]:
    """[3, 4, 5, 9] -> ["3-5", "9"] (a branch's members are mostly numbered in a row)."""
    out: list[str] = []
    for number in sorted(set(ids)):
        if out and "-" in out[-1] and int(out[-1].split("-")[1]) == number - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{number}"
        elif out and "-" not in out[-1] and int(out[-1]) == number - 1:
            out[-1] = f"{out[-1]}-{number}"
        else:
            out.append(str(number))
    return out


def selection_cookie(selection: Selection) -> Cookie:
    """`e:3-5.9` (an even split over members 3, 4, 5 and 9) or `c:3~5000.4~2500` (amounts in fen)."""
    if selection.split == "custom":
        body = ".".join(f"{m}~{selection.amounts[m]}" if m in selection.amounts else str(m) for m in selection.members)
    else:
        body = ".".join(_ranges(selection.members))
    value = f"{'c' if selection.split == 'custom' else 'e'}:{body}" if selection.members else ""
    if len(value) > MEMBERS_COOKIE_MAX:
        value = ""
    return Cookie(key=MEMBERS_COOKIE, value=value, path="/", httponly=True, samesite="strict", max_age=7 * 24 * 3600 if value else 0)


def read_selection_cookie(request: Request) -> Selection:
    raw = request.cookies.get(MEMBERS_COOKIE, "")
    mode, _, body = raw.partition(":")
    selection = Selection(split="custom" if mode == "c" else "even")
    for item in body.split(".") if body else []:
        if selection.split == "custom":
            member, _, fen = item.partition("~")
            member_id, amount = int_or_none(member), int_or_none(fen, 1, 100_000_000)
            if member_id and member_id not in selection.members:
                selection.members.append(member_id)
                if amount:
                    selection.amounts[member_id] = amount
                    selection.typed[member_id] = ui.yuan_plain(amount)
        else:
            low, _, high = item.partition("-")
            first, last = int_or_none(low), int_or_none(high or low)
            if first and last and 0 <= last - first < 10_000:
                selection.members.extend(m for m in range(first, last + 1) if m not in selection.members)
        if len(selection.members) > 5000:
            break
    return selection


def selection_from_form(form: Any) -> Selection:
    """The ticked members, the split and, for a custom split, each ticked member's amount."""
    selection = Selection(members=selected_members(form), split="custom" if form.get("split") == "custom" else "even")
    if selection.split == "custom":
        for member_id in selection.members:
            typed = str(form.get(f"amount-{member_id}") or "").strip()[:32]
            selection.typed[member_id] = typed
            fen, problem = ui.read_yuan(typed)
            if problem:
                selection.problems[member_id] = "请填写金额" if not typed else problem
            elif not fen:
                selection.problems[member_id] = "金额须大于 0"
            else:
                selection.amounts[member_id] = fen
    return selection


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
    price, price_problem = ui.read_yuan(raw["price"])
    if price_problem:
        problems["price"] = f"价格：{price_problem}"
    elif price is None or not 1 <= price <= 100_000_00:
        problems["price"] = "价格须在 0.01 元到 100000 元之间"
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
