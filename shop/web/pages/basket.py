"""The buyer's 采购车 (basket) and order form: each member's remaining quota beside the name,
an even split or an amount per member, a live preview of each member's share (answered with
every change of the basket, so it is always the basket as it is), the delivery address, and
placing the order through `shop.orders.placement.checkout`.

The basket and the ticked members live in cookies (`forms.py`), so both survive paging and
searching the catalogue; the page's requests that change them go one at a time
(`hx-sync` on the order form), each answering the basket and the preview together."""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.response import Redirect, Template

from budgets import ledger, members, unions
from catalog import regions
from catalog import service as catalog
from catalog.tables import ProductStatus
from common.errors import DomainError
from shop.fulfilment import addresses
from shop.orders.placement import checkout, split_evenly
from shop.orders.schemas import OrderIn
from shop.web import ui
from shop.web.forms import (
    BASKET_MAX_LINES,
    Selection,
    basket_cookie,
    form_values,
    int_or_none,
    lines_from_form,
    page_number,
    read_basket,
    read_selection_cookie,
    selection_cookie,
    selection_from_form,
)
from shop.web.pages.catalog import catalog_filters, listed_regions
from shop.web.render import Page, clock, is_htmx, pager, render, status_of

CATALOG_PAGE = 12


async def basket_view(basket: dict[int, int]) -> dict[str, Any]:
    """The basket's lines at today's prices; products no longer on sale are marked."""
    lines = []
    total = 0
    for product_id, quantity in basket.items():
        try:
            product = await catalog.get_product(product_id)
        except DomainError:
            continue
        available = product.status == ProductStatus.listed
        amount = product.price_fen * quantity
        if available:
            total += amount
        lines.append({"product": product, "quantity": quantity, "amount_fen": amount, "available": available})
    return {"lines": lines, "total_fen": total, "count": sum(line["quantity"] for line in lines if line["available"])}


def split_preview(total_fen: int, selection: Selection, budget: dict[str, Any]) -> dict[str, Any]:
    """Each ticked member's share (the even split the order will make, or the amounts typed)
    against what is left of their quota, and what stops the order from being placed."""
    by_id = {m["member_id"]: m for m in budget["members"]}
    chosen = [m for m in selection.members if m in by_id]
    custom = selection.split == "custom"
    if custom:
        shares = [(m, selection.amounts.get(m)) for m in chosen]
    else:
        shares = split_evenly(total_fen, chosen) if chosen and total_fen else []
    rows = []
    for member_id, share in shares:
        member = by_id[member_id]
        rows.append(
            {
                "member": member,
                "share_fen": share,
                "typed": selection.typed.get(member_id, ""),
                "problem": selection.problems.get(member_id) if custom else None,
                "after_fen": member["remaining_fen"] - (share or 0),
                "over": share is not None and share > member["remaining_fen"],
            }
        )
    allocated = sum(share or 0 for _, share in shares)
    return {
        "rows": rows,
        "total_fen": total_fen,
        "members": len(chosen),
        "custom": custom,
        "allocated_fen": allocated,
        "diff_fen": total_fen - allocated if custom else 0,  # > 0: still to allocate; < 0: too much
        "missing": [r for r in rows if r["problem"]],
        "over": [r for r in rows if r["over"]],
        "too_small": not custom and bool(chosen) and 0 < total_fen < len(chosen),
    }


async def _budget(request: Request) -> dict[str, Any]:
    """The branch's members this year with their quota left (active members only)."""
    budget = await members.branch_budget(request.user.union_id, ledger.budget_year(clock(request)))
    budget["members"] = [m for m in budget["members"] if m["active"]]
    return budget


def _selection(request: Request, form: Any | None) -> Selection:
    """The members as the form posted them (it carries `split`), else as the cookie kept them."""
    if form is not None and (form.get("split") in ("even", "custom") or form_values(form, "member")):
        return selection_from_form(form)
    return read_selection_cookie(request)


class ShopPages(Page):
    """基层工会采购员: the catalog with a basket, and the order form."""

    async def _shop_context(self, request: Request, basket: dict[int, int], selection: Selection) -> dict[str, Any]:
        user = request.user
        query = request.query_params
        filters = catalog_filters(query.get("region"), query.get("category"), query.get("q"))
        show_all = query.get("all") == "1"
        paired = None if show_all else await unions.lineage_codes(user.union_id)
        number = page_number(query.get("page"))
        products, total = await catalog.list_products(
            status=ProductStatus.listed,
            paired_with=paired or None,
            limit=CATALOG_PAGE,
            offset=(number - 1) * CATALOG_PAGE,
            **filters,
        )
        budget = await _budget(request)
        view = await basket_view(basket)
        return {
            "products": products,
            "pager": pager(total, number, CATALOG_PAGE),
            "regions": await listed_regions(),
            "categories": regions.CATEGORIES,
            "filters": filters,
            "show_all": show_all,
            "basket": view,
            "budget": budget,
            "selection": selection,
            "preview": split_preview(view["total_fen"], selection, budget),
            "addresses": await addresses.list_addresses(user.union_id),
            "address_id": None,
            "oob": False,
            "idempotency_key": uuid.uuid4().hex,
            "in_basket": set(basket),
        }

    @get("/shop")
    async def shop(self, request: Request) -> Template:
        context = await self._shop_context(request, read_basket(request), read_selection_cookie(request))
        return render(request, "shop.html", **context)

    @post("/shop/basket", status_code=200)
    async def change_basket(self, request: Request) -> Response:
        """op=add|remove|inc|dec of one product; answers the basket and, with it, the preview
        of the same basket (HTMX), or goes back to the page."""
        form = await request.form()
        basket = read_basket(request)
        product_id = int_or_none(form.get("product_id"))
        op = form.get("op", "add")
        added = None
        if product_id:
            quantity = basket.get(product_id, 0)
            if op in ("add", "inc"):
                product = await catalog.get_product(product_id, listed_only=not quantity)  # new and not on sale: not found
                if quantity or len(basket) < BASKET_MAX_LINES:
                    basket[product_id] = min(quantity + max(1, int_or_none(form.get("quantity"), 1, 10_000) or 1), 10_000)
                    added = product.title if op == "add" else None
            elif op == "dec" and quantity > 1:
                basket[product_id] = quantity - 1
            elif op in ("dec", "remove"):
                basket.pop(product_id, None)
        selection = _selection(request, form)
        cookies = [basket_cookie(basket), selection_cookie(selection)]
        if not is_htmx(request):
            return Redirect(path="/shop", status_code=303, cookies=cookies)
        view = await basket_view(basket)
        headers = {}
        if added is not None:  # a toast says so wherever the page is scrolled (the basket may be far down)
            headers["HX-Trigger"] = json.dumps({"basket-added": {"title": added, "count": view["count"]}})
        preview = split_preview(view["total_fen"], selection, await _budget(request))
        if op in ("inc", "dec") and product_id in basket:  # the same lines: only the figures change
            headers["HX-Reswap"] = "none"
            return render(request, "_basket_bits.html", basket=view, preview=preview, product_id=product_id, cookies=cookies, headers=headers)
        return render(request, "_basket.html", basket=view, preview=preview, oob=True, cookies=cookies, headers=headers)

    @post("/shop/preview", status_code=200)
    async def preview(self, request: Request) -> Template:
        """The split of the basket over the ticked members, live (HTMX); the ticks are kept."""
        form = await request.form()
        basket = read_basket(request) or lines_from_form(form)
        view = await basket_view(basket)
        selection = _selection(request, form)
        return render(
            request,
            "_preview.html",
            preview=split_preview(view["total_fen"], selection, await _budget(request)),
            cookies=[selection_cookie(selection)],
        )

    @post("/shop/order", status_code=200)
    async def place(self, request: Request) -> Response:
        """Place the order through the same service as `POST /api/orders`, then start payment."""
        form = await request.form()
        lines = lines_from_form(form) or read_basket(request)
        selection = _selection(request, form)
        address_id = int_or_none(form.get("address_id"))
        key = str(form.get("idempotency_key") or "")[:64] or uuid.uuid4().hex

        async def again(status: int, error: dict[str, Any]) -> Template:
            context = await self._shop_context(request, lines, selection)
            context["address_id"] = address_id
            _enrich(error, context)
            return render(request, "shop.html", status_code=status, error=error, **context)

        if not lines:
            return await again(400, ui.problem("采购车是空的", "请先把商品加入采购车。"))
        if not selection.members:
            return await again(400, ui.problem("请选择会员", "订单金额由所选会员分摊，请至少勾选一名会员。"))
        body: dict[str, Any] = {"lines": [{"product_id": p, "quantity": q} for p, q in lines.items()]}
        if selection.split == "custom":
            if problem := _custom_problem(selection, (await basket_view(lines))["total_fen"], await _budget(request)):
                return await again(400, problem)
            body["allocations"] = [{"member_id": m, "amount_fen": selection.amounts[m]} for m in selection.members]
        else:
            body["members"] = selection.members
        if address_id:
            body["address_id"] = address_id
        try:
            order_in = msgspec.convert(body, OrderIn)
        except msgspec.ValidationError as exc:
            return await again(400, ui.problem("订单内容有误", str(exc)))
        try:
            order, _ = await checkout(request.user, order_in, key=key, now=clock(request), settings=request.app.state.settings)
        except DomainError as exc:
            return await again(status_of(exc), ui.explain(exc))
        done = [basket_cookie({}), selection_cookie(Selection())]
        return Redirect(path=f"/orders/{order.id}?ok=placed", status_code=303, cookies=done)


def _custom_problem(selection: Selection, total_fen: int, budget: dict[str, Any]) -> dict[str, Any] | None:
    """What stops a custom split from being an order: an amount missing or not understood, or
    amounts that do not add up to the basket."""
    names = {m["member_id"]: m["name"] for m in budget["members"]}
    if selection.problems:
        details = [f"{names.get(m, m)}：{p}" for m, p in selection.problems.items()]
        return ui.problem("请为每位勾选的会员填写分摊金额", *details)
    allocated = sum(selection.amounts[m] for m in selection.members)
    if allocated != total_fen:
        gap = total_fen - allocated
        said = f"还差 {ui.yuan(gap)} 未分摊" if gap > 0 else f"多分摊了 {ui.yuan(-gap)}"
        return ui.problem("分摊金额合计与订单金额不一致", f"订单合计 {ui.yuan(total_fen)}，已分摊 {ui.yuan(allocated)}：{said}。")
    return None


def _enrich(error: dict[str, Any], context: dict[str, Any]) -> None:
    """Name the members over their quota and the products short of stock."""
    by_id = {m["member_id"]: m for m in context["budget"]["members"]}
    for m in error["extra"].get("members", []) if error["code"] == "cap_exceeded" else []:
        known = by_id.get(m.get("member_id"), {})
        remaining = max(m.get("cap_fen", 0) - m.get("spent_fen", 0) - m.get("held_fen", 0), 0)
        error["over_members"].append(
            {
                "name": known.get("name", "（已不在本单位）"),
                "member_no": known.get("member_no", ""),
                "requested_fen": m.get("requested_fen", 0),
                "remaining_fen": remaining,
            }
        )
    titles = {line["product"].id: line["product"].title for line in context["basket"]["lines"]}
    for p in error["extra"].get("products", []) if error["code"] in ("out_of_stock", "not_listed") else []:
        if not isinstance(p, dict):
            continue
        pid = p.get("product_id")
        text = (
            f"需要 {p.get('requested')}，仅剩 {p.get('available')}"
            if error["code"] == "out_of_stock"
            else ui.PRODUCT_STATES.get(p.get("status", ""), "不在售")
        )
        error["products"].append({"title": titles.get(pid, "（已下架的商品）"), "text": text})
