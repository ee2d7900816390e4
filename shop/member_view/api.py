"""HTTP for the members' links: what a member sees through theirs (public, limited per
client address), and the branch buyer's side (a new link for a member, every member's link
as JSON, CSV or XLSX). Thin: parse, authorise, call one domain function, shape the answer."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import CacheControlHeader
from litestar.params import PathParameter, QueryParameter

from budgets import ledger, links
from common.errors import DomainError
from common.schemas import PathId
from shop.auth.ratelimit import count_address
from shop.auth.scope import branch_of
from shop.member_view import links as member_links
from shop.member_view.view import member_view
from shop.reports.export import Column, Format, respond

ExportFormat = Annotated[Format, QueryParameter(name="format")]
Token = Annotated[str, PathParameter(description="the member's link token (unknown or malformed: 404)")]

LINK_COLUMNS = [Column("member_no", "会员编号"), Column("name", "姓名"), Column("status", "状态"), Column("url", "额度查询链接")]


class MemberRef(msgspec.Struct, kw_only=True):
    member_no: str
    name: str


class MemberViewItem(msgspec.Struct, kw_only=True):
    date: str
    products: list[str]
    amount_fen: int
    refunded_fen: int
    status: str


class MemberViewOut(msgspec.Struct, kw_only=True):
    year: int
    member: MemberRef
    branch: str
    cap_fen: int
    spent_fen: int
    held_fen: int
    remaining_fen: int
    items: list[MemberViewItem]


class MemberLinkOut(msgspec.Struct, kw_only=True):
    member_id: int
    member_no: str
    name: str
    url: str


class MemberLinkList(msgspec.Struct, kw_only=True):
    items: list[MemberLinkOut]
    total: int


async def view_of_token(request: Request, token: str) -> dict[str, Any]:
    """The member's view through a link, counted against the address's limit first (the
    page and the API alike); an unknown or ended link is `not_found`."""
    settings = request.app.state.settings
    await count_address(request, "member-view", settings.member_view_rate_limit)
    member_id = await links.find_member(token)
    now = request.app.state.clock()
    view = await member_view(member_id, ledger.budget_year(now)) if member_id is not None else None
    if view is None:
        raise DomainError("not_found", "no member has this link (it may have been replaced)")
    return view


class MemberViewController(Controller):
    path = "/api/member-view"
    opt = {"exclude_from_auth": True, "problems": (429,)}

    @get("/{token:str}", cache_control=CacheControlHeader(private=True, no_store=True))
    async def view(self, request: Request, token: Token) -> MemberViewOut:
        """This year's quota of the member whose link it is, and each allocation (public)."""
        view = await view_of_token(request, token)
        return msgspec.convert(view, MemberViewOut)


class MemberLinkController(Controller):
    path = "/api/members"

    @post("/{member_id:int}/link", status_code=200)
    async def regenerate(self, request: Request, member_id: PathId) -> MemberLinkOut:
        """A new link for a member of the branch; the old one answers 404 from now on."""
        link = await member_links.regenerate(member_id, branch_of(request), request.app.state.settings, request.app.state.clock())
        return MemberLinkOut(**link)

    @get("/links")
    async def index(self, request: Request, fmt: ExportFormat = "json") -> Any:
        """Every member of the branch with their link (made where missing), by member_no."""
        items = await member_links.branch_links(branch_of(request), request.app.state.settings, request.app.state.clock())
        body = MemberLinkList(items=[MemberLinkOut(**{k: i[k] for k in ("member_id", "member_no", "name", "url")}) for i in items], total=len(items))
        rows = [{**i, "status": "在册" if i["active"] else "已停用"} for i in items]
        return await respond(fmt, rows, LINK_COLUMNS, "会员额度查询链接", body, "会员链接")


ROUTES: dict[str, list] = {
    "public": [MemberViewController],
    "buyer": [MemberLinkController],
}
