"""The buyer's branch: its delivery addresses (收货地址) and whom its invoices are made out to
(发票抬头) — the same domain functions as `/api/branch/addresses` and
`/api/branch/invoice-profile`."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from litestar import Request, Response, get, post
from litestar.response import Redirect, Template

from common.errors import DomainError
from common.schemas import PathId
from shop.fulfilment import addresses, invoice_profile
from shop.fulfilment.schemas import AddressIn, AddressPatch, InvoiceProfileIn
from shop.web import ui
from shop.web.render import Page, clock, render, status_of

TAX_NO = re.compile(r"[0-9A-Za-z]{15,20}")
LIMITS = {"name": 40, "phone": 32, "address": 200}
LABELS = {"name": "收货人", "phone": "电话", "address": "地址"}
BAD_TEXT = "内容中有不允许的字符（如控制字符），请重新输入"


def _address_form(form: Any) -> tuple[dict[str, str], list[str]]:
    """The posted address, trimmed, and what is wrong with it (in Chinese)."""
    values = {k: " ".join(str(form.get(k) or "").split()) for k in LIMITS}
    problems = []
    for key, limit in LIMITS.items():
        if not values[key]:
            problems.append(f"请填写{LABELS[key]}")
        elif len(values[key]) > limit:
            problems.append(f"{LABELS[key]}最多 {limit} 个字")
    return values, problems


class BranchPages(Page):
    async def _page(self, request: Request, status_code: int = 200, **extra: Any) -> Template:
        branch = request.user.union_id
        profile = await invoice_profile.get_profile(branch)
        extra.setdefault("form", {"name": "", "phone": "", "address": ""})
        extra.setdefault("profile_form", {"title": profile.title if profile else "", "tax_no": profile.tax_no if profile else ""})
        extra.setdefault("editing", None)
        return render(
            request,
            "addresses.html",
            status_code=status_code,
            addresses=await addresses.list_addresses(branch),
            profile=profile,
            **extra,
        )

    @get("/addresses")
    async def page(self, request: Request) -> Template:
        return await self._page(request)

    @post("/addresses", status_code=200)
    async def create(self, request: Request) -> Response:
        form = await request.form()
        values, problems = _address_form(form)
        if problems:
            return await self._page(request, 400, error=ui.problem("收货地址未保存", *problems), form=values)
        try:
            body = msgspec.convert({**values, "is_default": form.get("is_default") == "1"}, AddressIn)
            await addresses.create_address(request.user.union_id, body)
        except msgspec.ValidationError:
            return await self._page(request, 400, error=ui.problem("收货地址未保存", BAD_TEXT), form=values)
        except DomainError as exc:
            return await self._page(request, status_of(exc), error=ui.explain(exc), form=values)
        return Redirect(path="/addresses?ok=address", status_code=303)

    @post("/addresses/{address_id:int}", status_code=200)
    async def update(self, request: Request, address_id: PathId) -> Response:
        form = await request.form()
        values, problems = _address_form(form)
        if problems:
            return await self._page(request, 400, error=ui.problem("收货地址未保存", *problems), editing={"id": address_id, **values})
        try:
            await addresses.update_address(request.user.union_id, address_id, msgspec.convert(values, AddressPatch))
        except msgspec.ValidationError:
            return await self._page(request, 400, error=ui.problem("收货地址未保存", BAD_TEXT), editing={"id": address_id, **values})
        except DomainError as exc:
            if exc.code in ("not_found", "forbidden"):
                raise
            return await self._page(request, status_of(exc), error=ui.explain(exc), editing={"id": address_id, **values})
        return Redirect(path="/addresses?ok=address", status_code=303)

    @post("/addresses/{address_id:int}/default", status_code=200)
    async def make_default(self, request: Request, address_id: PathId) -> Response:
        await addresses.update_address(request.user.union_id, address_id, AddressPatch(is_default=True))
        return Redirect(path="/addresses?ok=address", status_code=303)

    @post("/addresses/{address_id:int}/delete", status_code=200)
    async def delete(self, request: Request, address_id: PathId) -> Response:
        await addresses.delete_address(request.user.union_id, address_id)
        return Redirect(path="/addresses?ok=address_deleted", status_code=303)

    @post("/invoice-profile", status_code=200)
    async def set_profile(self, request: Request) -> Response:
        form = await request.form()
        shown = {"title": " ".join(str(form.get("title") or "").split()), "tax_no": str(form.get("tax_no") or "").strip()}
        problems = []
        if not shown["title"] or len(shown["title"]) > 100:
            problems.append("请填写发票抬头（单位全称，最多 100 个字）")
        if not TAX_NO.fullmatch(shown["tax_no"]):
            problems.append("纳税人识别号应为 15 到 20 位字母或数字（统一社会信用代码为 18 位）")
        if problems:
            return await self._page(request, 400, error=ui.problem("发票抬头未保存", *problems), profile_form=shown)
        try:
            await invoice_profile.put_profile(
                request.user.union_id, msgspec.convert(shown, InvoiceProfileIn), user_id=request.user.id, now=clock(request)
            )
        except msgspec.ValidationError:
            return await self._page(request, 400, error=ui.problem("发票抬头未保存", BAD_TEXT), profile_form=shown)
        except DomainError as exc:
            return await self._page(request, status_of(exc), error=ui.explain(exc), profile_form=shown)
        return Redirect(path="/addresses?ok=invoice_profile", status_code=303)
