"""The buyer's basket (采购车) and order form: each member's remaining quota beside the name,
a live split preview, and placing the order through `shop.orders.placement.checkout`."""

from __future__ import annotations

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
from shop.orders.placement import checkout, split_evenly
from shop.orders.schemas import OrderIn
from shop.web import ui
from shop.web.forms import (
    BASKET_MAX_LINES,
    basket_cookie,
    int_or_none,
    lines_from_form,
    page_number,
    read_basket,
    selected_members,
)
from shop.web.pages.catalog import catalog_filters, listed_regions
from shop.web.render import Page, clock, is_htmx, pager, render, status_of

# --- buyer: the basket, the order form -----------------------------------------------------------


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
    return {"lines": lines, "total_fen": total, "count": sum(l["quantity"] for l in lines if l["available"])}


def split_preview(total_fen: int, selected: list[int], budget: dict[str, Any]) -> dict[str, Any]:
    """Each selected member's share of an even split (the same split the order will make),
    against what is left of their quota."""
    by_id = {m["member_id"]: m for m in budget["members"]}
    chosen = [m for m in selected if m in by_id]
    rows = []
    if chosen and total_fen:
        for member_id, share in split_evenly(total_fen, chosen):
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


class ShopPages(Page):
    """基层工会采购员: the catalog with a basket, and the order form."""

    async def _shop_context(self, request: Request, basket: dict[int, int], selected: list[int] | None = None) -> dict[str, Any]:
        user = request.user
        query = request.query_params
        filters = catalog_filters(query.get("region"), query.get("category"), query.get("q"))
        show_all = query.get("all") == "1"
        paired = None if show_all else await unions.lineage_codes(user.union_id)
        number = page_number(query.get("page"))
        products, total = await catalog.list_products(
            status=ProductStatus.listed, paired_with=paired or None, limit=12, offset=(number - 1) * 12, **filters
        )
        year = ledger.budget_year(clock(request))
        budget = await members.branch_budget(user.union_id, year)
        budget["members"] = [m for m in budget["members"] if m["active"]]
        view = await basket_view(basket)
        selected = selected if selected is not None else []
        return {
            "products": products,
            "pager": pager(total, number, 12),
            "regions": await listed_regions(),
            "categories": regions.CATEGORIES,
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
        product_id = int_or_none(form.get("product_id"))
        op = form.get("op", "add")
        if product_id:
            quantity = basket.get(product_id, 0)
            if op in ("add", "inc"):
                if quantity == 0:
                    await catalog.get_product(product_id, listed_only=True)  # not found: nothing to add
                if quantity or len(basket) < BASKET_MAX_LINES:
                    basket[product_id] = min(quantity + max(1, int_or_none(form.get("quantity"), 1, 10_000) or 1), 10_000)
            elif op == "dec" and quantity > 1:
                basket[product_id] = quantity - 1
            elif op in ("dec", "remove"):
                basket.pop(product_id, None)
        cookie = basket_cookie(basket)
        if not is_htmx(request):
            return Redirect(path="/shop", status_code=303, cookies=[cookie])
        year = ledger.budget_year(clock(request))
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
        lines = lines_from_form(form) or read_basket(request)
        view = await basket_view(lines)
        year = ledger.budget_year(clock(request))
        budget = await members.branch_budget(request.user.union_id, year)
        budget["members"] = [m for m in budget["members"] if m["active"]]
        return render(request, "_preview.html", preview=split_preview(view["total_fen"], selected_members(form), budget))

    @post("/shop/order", status_code=200)
    async def place(self, request: Request) -> Response:
        """Place the order through the same service as `POST /api/orders`, then start payment."""
        form = await request.form()
        lines = lines_from_form(form) or read_basket(request)
        selected = selected_members(form)
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
        try:
            order, _ = await checkout(
                request.user, body, key=key, now=clock(request), settings=request.app.state.settings
            )
        except DomainError as exc:
            explained = ui.explain(exc)
            return await again(status_of(exc), explained)
        return Redirect(path=f"/orders/{order.id}?ok=placed", status_code=303, cookies=[basket_cookie({})])


def _enrich(error: dict[str, Any], context: dict[str, Any]) -> None:
    """Name the members over their quota and the products short of stock."""
    by_id = {m["member_id"]: m for m in context["budget"]["members"]}
    for m in error["extra"].get("members", []) if error["code"] == "cap_exceeded" else []:
        known = by_id.get(m.get("member_id"), {})
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
